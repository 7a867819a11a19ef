//! PNM (design §2.1): P1–P6, plain and raw, decoded the way Pillow 13.0.0
//! reads them, row by row.
//!
//! Written by hand: no well-kept crate streams PNM with Pillow's own rules,
//! and those rules are what the archive must reproduce: its header tokens
//! (a `#` comment inside a token does not end it; at most 10 characters;
//! Python's `int()`, so `+5` and `1_0` are numbers), its scaling of a
//! maxval other than 255 (`round(v / maxval × 255)`, Python's
//! round-half-to-even on the double; mode `I` for a P5 maxval above 255,
//! later clamped to 255), raw samples above maxval clamped but plain ones
//! refused, and the plain formats read in blocks of 1 MiB with comments
//! removed block by block (the tokens of a whole block are checked, even
//! past the last sample needed).
//!
//! - P1/P4 → [`Layout::One`] (1 means black in the file).
//! - P2/P5 → [`Layout::Grey`]; P3/P6 → [`Layout::Bgr`].
//! - PAM (P7) is refused, as Pillow refuses it.

use std::io;

use super::{DecodeError, Decoder, Format, Header, Layout, Whole, check_size};
use crate::bmp::Source;

const F: Format = Format::Pnm;

/// Pillow's `ImageFile.SAFEBLOCK`: the plain formats are read in blocks
/// of this size, and where comments and token checks fall depends on it.
const SAFEBLOCK: usize = 1024 * 1024;

/// Bytes the cursor reads from the file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Python's `bytes.split()` whitespace (also PpmImagePlugin's
/// `b_whitespace`).
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A buffered reader over a [`Source`] that knows its position (the GIF
/// decoder reads through it too).
pub(super) struct Cursor<'a> {
    src: &'a (dyn Source + 'a),
    /// File offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a (dyn Source + 'a), offset: u64) -> Cursor<'a> {
        Cursor {
            src,
            base: offset,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// The file offset of the next byte.
    pub(super) fn offset(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Refills the buffer; false at the end of the file.
    fn refill(&mut self) -> io::Result<bool> {
        self.base += self.buf.len() as u64;
        self.buf.resize(READ_CHUNK, 0);
        let n = self.src.read_at(&mut self.buf, self.base)?;
        self.buf.truncate(n);
        self.at = 0;
        Ok(n > 0)
    }

    pub(super) fn byte(&mut self) -> io::Result<Option<u8>> {
        if self.at == self.buf.len() && !self.refill()? {
            return Ok(None);
        }
        self.at += 1;
        Ok(Some(self.buf[self.at - 1]))
    }

    /// Appends up to `n` bytes to `out` (fewer only at the end of the
    /// file), as Python's `fp.read(n)`.
    pub(super) fn read_up_to(&mut self, out: &mut Vec<u8>, mut n: usize) -> io::Result<()> {
        while n > 0 {
            if self.at == self.buf.len() && !self.refill()? {
                break;
            }
            let take = n.min(self.buf.len() - self.at);
            out.extend_from_slice(&self.buf[self.at..self.at + take]);
            self.at += take;
            n -= take;
        }
        Ok(())
    }

    /// Fills `out`; false if the file ends first.
    fn read_full(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut got = 0;
        while got < out.len() {
            if self.at == self.buf.len() && !self.refill()? {
                return Ok(false);
            }
            let take = (out.len() - got).min(self.buf.len() - self.at);
            out[got..got + take].copy_from_slice(&self.buf[self.at..self.at + take]);
            self.at += take;
            got += take;
        }
        Ok(true)
    }
}

/// Python's `int(token)` for a token without whitespace: an optional sign,
/// then decimal digits with single underscores between them.
fn py_int(token: &[u8]) -> Option<i64> {
    let (neg, digits) = match token.first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let mut value: i64 = 0;
    let mut last_digit = false;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
                last_digit = true;
            }
            b'_' if last_digit => last_digit = false,
            _ => return None,
        }
    }
    if !last_digit {
        return None;
    }
    Some(if neg { -value } else { value })
}

/// Why a header could not be read.
enum HeaderError {
    /// The file ends inside the header (it may still be being written).
    Eof,
    /// A width or height of zero: invalid, or a header a writer fills in
    /// last.
    Zero(DecodeError),
    Bad(DecodeError),
}

impl From<io::Error> for HeaderError {
    fn from(e: io::Error) -> HeaderError {
        HeaderError::Bad(DecodeError::Io(e))
    }
}

/// PpmImagePlugin's `_read_token`.
fn read_token(cur: &mut Cursor<'_>, what: &str) -> Result<Vec<u8>, HeaderError> {
    let mut token = Vec::new();
    while token.len() <= 10 {
        match cur.byte()? {
            None => break,
            Some(c) if is_ws(c) => {
                if token.is_empty() {
                    continue;
                }
                break;
            }
            Some(b'#') => {
                // The rest of the line; the token goes on after it.
                while let Some(c) = cur.byte()? {
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                }
            }
            Some(c) => token.push(c),
        }
    }
    if token.is_empty() {
        return Err(HeaderError::Eof);
    }
    if token.len() > 10 {
        return Err(HeaderError::Bad(DecodeError::invalid(
            F,
            format!("the {what} in the header is longer than 10 characters"),
        )));
    }
    Ok(token)
}

fn read_number(cur: &mut Cursor<'_>, what: &str) -> Result<i64, HeaderError> {
    let token = read_token(cur, what)?;
    py_int(&token).ok_or_else(|| {
        HeaderError::Bad(DecodeError::invalid(
            F,
            format!(
                "the {what} in the header is not a number: {:?}",
                String::from_utf8_lossy(&token)
            ),
        ))
    })
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PnmHeader {
    /// b'1' … b'6'.
    kind: u8,
    width: u32,
    height: u32,
    /// 1 for P1/P4.
    maxval: u32,
    /// Where the raster starts.
    data_offset: u64,
}

impl PnmHeader {
    fn plain(&self) -> bool {
        self.kind <= b'3'
    }
    fn bands(&self) -> usize {
        if self.kind == b'3' || self.kind == b'6' {
            3
        } else {
            1
        }
    }
    fn bilevel(&self) -> bool {
        self.kind == b'1' || self.kind == b'4'
    }
    /// Bytes of one raw row.
    fn raw_row_bytes(&self) -> usize {
        let w = self.width as usize;
        if self.bilevel() {
            w.div_ceil(8)
        } else {
            w * self.bands() * if self.maxval < 256 { 1 } else { 2 }
        }
    }
}

fn parse_header(src: &dyn Source) -> Result<PnmHeader, HeaderError> {
    let mut cur = Cursor::new(src, 0);
    let mut magic = Vec::new();
    for _ in 0..6 {
        match cur.byte()? {
            None => break,
            Some(c) if is_ws(c) => break,
            Some(c) => magic.push(c),
        }
    }
    let kind = match magic.as_slice() {
        [b'P', k @ b'1'..=b'6'] => *k,
        [b'P', b'7', ..] => {
            return Err(HeaderError::Bad(DecodeError::unsupported(
                F,
                "PAM (P7) files are not read (Pillow refuses them too); save the page as P4, P5 or P6",
            )));
        }
        _ => {
            return Err(HeaderError::Bad(DecodeError::invalid(
                F,
                format!(
                    "unknown magic number {:?} (P1 to P6 are read)",
                    String::from_utf8_lossy(&magic)
                ),
            )));
        }
    };
    let width = read_number(&mut cur, "width")?;
    let height = read_number(&mut cur, "height")?;
    if width <= 0 || height <= 0 {
        let e = DecodeError::invalid(F, format!("the size {width}x{height} is empty or negative"));
        return Err(if width == 0 || height == 0 {
            HeaderError::Zero(e)
        } else {
            HeaderError::Bad(e)
        });
    }
    if width > 65535 || height > 65535 {
        return Err(HeaderError::Bad(DecodeError::TooLargeForFormat {
            width: width as u64,
            height: height as u64,
        }));
    }
    let maxval = if kind == b'1' || kind == b'4' {
        1
    } else {
        let m = read_number(&mut cur, "maxval")?;
        if !(1..65536).contains(&m) {
            return Err(HeaderError::Bad(DecodeError::invalid(
                F,
                format!("maxval {m} is not between 1 and 65535"),
            )));
        }
        m as u32
    };
    Ok(PnmHeader {
        kind,
        width: width as u32,
        height: height as u32,
        maxval,
        data_offset: cur.offset(),
    })
}

/// Python's `round(v / maxval * out_max)`, then clamped to 255 (mode `I`
/// converts to `L` by clamping; design §2.1).
fn scale(v: u32, maxval: u32, out_max: u32) -> u8 {
    let x = (f64::from(v) / f64::from(maxval) * f64::from(out_max)).round_ties_even();
    x.min(f64::from(out_max)).min(255.0) as u8
}

/// The largest value the mode Pillow decodes into holds: 65535 for a P2
/// or P5 with maxval above 255 (mode `I`), else 255.
fn out_max(h: &PnmHeader) -> u32 {
    if h.bands() == 1 && h.maxval > 255 {
        65535
    } else {
        255
    }
}

/// How the samples become bytes.
enum Samples {
    /// Raw P4: bits, 1 = black.
    RawBits,
    /// Raw, one byte a sample, maxval 255: as they are.
    RawBytes,
    /// Raw through a table (maxval ≠ 255, or two bytes a sample), and
    /// whether each value looks pure in the row without being so.
    RawTable {
        two_bytes: bool,
        table: Vec<u8>,
        impure: Vec<bool>,
    },
    /// P1: Pillow's `_decode_bitonal`.
    PlainBits(Plain),
    /// P2/P3: Pillow's `_decode_blocks`.
    PlainValues(Plain),
}

/// The state of Pillow's plain decoder, and the values decoded but not
/// yet handed out.
struct Plain {
    comment_spans: bool,
    half_token: Vec<u8>,
    /// Values (0/1 for P1 as in the file; scaled bytes for P2/P3).
    pending: Vec<u8>,
    taken: usize,
    /// Values decoded so far, of `total`.
    decoded: u64,
    total: u64,
}

impl Plain {
    fn new(total: u64) -> Plain {
        Plain {
            comment_spans: false,
            half_token: Vec::new(),
            pending: Vec::new(),
            taken: 0,
            decoded: 0,
            total,
        }
    }

    fn available(&self) -> usize {
        self.pending.len() - self.taken
    }
}

/// PpmPlainDecoder's `_find_comment_end`: the lowest of the first `\n`
/// and `\r` at or after `start`, with its quirk when one of them is at 0.
fn find_comment_end(block: &[u8], start: usize) -> Option<usize> {
    let find = |c: u8| {
        block[start..]
            .iter()
            .position(|&b| b == c)
            .map_or(-1i64, |p| (start + p) as i64)
    };
    let (a, b) = (find(b'\n'), find(b'\r'));
    let end = if a * b > 0 { a.min(b) } else { a.max(b) };
    usize::try_from(end).ok()
}

fn read_block(cur: &mut Cursor<'_>) -> io::Result<Vec<u8>> {
    let mut block = Vec::new();
    cur.read_up_to(&mut block, SAFEBLOCK)?;
    Ok(block)
}

/// PpmPlainDecoder's `_ignore_comments`.
fn ignore_comments(
    plain: &mut Plain,
    cur: &mut Cursor<'_>,
    mut block: Vec<u8>,
) -> io::Result<Vec<u8>> {
    if plain.comment_spans {
        while !block.is_empty() {
            match find_comment_end(&block, 0) {
                Some(end) => {
                    block.drain(..=end);
                    break;
                }
                None => block = read_block(cur)?,
            }
        }
    }
    plain.comment_spans = false;
    // Removing one comment at a time and searching again from the start,
    // as Pillow does, equals this single pass: what precedes a removed
    // comment holds no '#'.
    let mut out = Vec::with_capacity(block.len());
    let mut i = 0;
    loop {
        match block[i..].iter().position(|&c| c == b'#') {
            None => {
                out.extend_from_slice(&block[i..]);
                break;
            }
            Some(p) => {
                let start = i + p;
                out.extend_from_slice(&block[i..start]);
                match find_comment_end(&block, start) {
                    Some(end) => i = end + 1,
                    None => {
                        plain.comment_spans = true;
                        break;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Rows of a PNM file (see the module's documentation).
pub struct PnmDecoder<'a> {
    header: Header,
    pnm: PnmHeader,
    cur: Cursor<'a>,
    samples: Samples,
    raw: Vec<u8>,
    row: Vec<u8>,
    y: u32,
    pure: bool,
}

/// A decoder for the PNM file `src`.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    Ok(Box::new(PnmDecoder::new(src, max_pixels)?))
}

impl<'a> PnmDecoder<'a> {
    fn new(src: &'a (dyn Source + 'a), max_pixels: u64) -> Result<PnmDecoder<'a>, DecodeError> {
        let pnm = match parse_header(src) {
            Ok(h) => h,
            Err(HeaderError::Eof) => {
                return Err(DecodeError::truncated(F, "the file ends inside the header"));
            }
            Err(HeaderError::Bad(e) | HeaderError::Zero(e)) => return Err(e),
        };
        check_size(u64::from(pnm.width), u64::from(pnm.height), max_pixels)?;
        let layout = if pnm.bilevel() {
            Layout::One
        } else if pnm.bands() == 3 {
            Layout::Bgr
        } else {
            Layout::Grey
        };
        let values = u64::from(pnm.width) * u64::from(pnm.height) * pnm.bands() as u64;
        let samples = match pnm.kind {
            b'1' => Samples::PlainBits(Plain::new(values)),
            b'2' | b'3' => Samples::PlainValues(Plain::new(values)),
            b'4' => Samples::RawBits,
            _ if pnm.maxval == 255 => Samples::RawBytes,
            _ => {
                let two_bytes = pnm.maxval > 255;
                let n = if two_bytes { 65536 } else { 256 };
                let om = out_max(&pnm);
                let table: Vec<u8> = (0..n).map(|v| scale(v, pnm.maxval, om)).collect();
                let impure = (0..n)
                    .map(|v| {
                        let out = table[v as usize];
                        (out == 0 || out == 255) && v != 0 && v != pnm.maxval
                    })
                    .collect();
                Samples::RawTable {
                    two_bytes,
                    table,
                    impure,
                }
            }
        };
        let header = Header {
            format: F,
            width: pnm.width,
            height: pnm.height,
            layout,
        };
        let row = vec![0; header.layout.row_bytes(pnm.width)];
        Ok(PnmDecoder {
            header,
            cur: Cursor::new(src, pnm.data_offset),
            raw: if pnm.plain() {
                Vec::new()
            } else {
                vec![0; pnm.raw_row_bytes()]
            },
            pnm,
            samples,
            row,
            y: 0,
            pure: true,
        })
    }

    fn raw_row(&mut self) -> Result<(), DecodeError> {
        if !self.cur.read_full(&mut self.raw)? {
            return Err(DecodeError::truncated(
                F,
                format!(
                    "the file ends in row {} of {} (image file is truncated)",
                    self.y + 1,
                    self.pnm.height
                ),
            ));
        }
        let bgr = self.pnm.bands() == 3;
        match &self.samples {
            Samples::RawBits => {
                for (o, i) in self.row.iter_mut().zip(&self.raw) {
                    *o = !i;
                }
            }
            Samples::RawBytes => {
                if bgr {
                    put_bgr(&mut self.row, &self.raw);
                } else {
                    self.row.copy_from_slice(&self.raw);
                }
            }
            Samples::RawTable {
                two_bytes,
                table,
                impure,
            } => {
                let mut any_impure = false;
                let mut map = |v: usize| {
                    any_impure |= impure[v];
                    table[v]
                };
                let n = self.row.len();
                if *two_bytes {
                    for (i, o) in self.row.iter_mut().enumerate().take(n) {
                        let v = u16::from_be_bytes([self.raw[2 * i], self.raw[2 * i + 1]]);
                        *o = map(usize::from(v));
                    }
                } else {
                    for (o, &v) in self.row.iter_mut().zip(&self.raw) {
                        *o = map(usize::from(v));
                    }
                }
                if any_impure {
                    self.pure = false;
                }
                if bgr {
                    for px in self.row.chunks_exact_mut(3) {
                        px.swap(0, 2);
                    }
                }
            }
            Samples::PlainBits(_) | Samples::PlainValues(_) => {
                unreachable!("BUG: raw_row called for a plain file")
            }
        }
        Ok(())
    }

    /// Decodes blocks until `need` values wait (or all are decoded).
    fn plain_fill(&mut self, need: usize) -> Result<(), DecodeError> {
        let pnm = self.pnm;
        let om = out_max(&pnm);
        let (plain, bits) = match &mut self.samples {
            Samples::PlainBits(p) => (p, true),
            Samples::PlainValues(p) => (p, false),
            _ => unreachable!("BUG: plain rows asked of a raw file"),
        };
        while plain.available() < need && plain.decoded < plain.total {
            // Forget what was handed out.
            plain.pending.drain(..plain.taken);
            plain.taken = 0;
            let mut block = read_block(&mut self.cur)?;
            if bits {
                if block.is_empty() {
                    break;
                }
                let block = ignore_comments(plain, &mut self.cur, block)?;
                for &c in block.iter().filter(|&&c| !is_ws(c)) {
                    if c != b'0' && c != b'1' {
                        return Err(DecodeError::invalid(
                            F,
                            format!("invalid character {:?} in P1 data", char::from(c)),
                        ));
                    }
                    if plain.decoded < plain.total {
                        plain.pending.push(c - b'0');
                        plain.decoded += 1;
                    }
                }
                continue;
            }
            if block.is_empty() {
                if plain.half_token.is_empty() {
                    break;
                }
                block = b" ".to_vec();
            }
            let mut block = ignore_comments(plain, &mut self.cur, block)?;
            if !plain.half_token.is_empty() {
                let mut joined = std::mem::take(&mut plain.half_token);
                joined.extend_from_slice(&block);
                block = joined;
            }
            let mut tokens: Vec<&[u8]> = block
                .split(|&c| is_ws(c))
                .filter(|t| !t.is_empty())
                .collect();
            if block.last().is_some_and(|&c| !is_ws(c)) {
                let half = tokens.pop().unwrap_or_default();
                if half.len() > 10 {
                    return Err(too_long(half));
                }
                plain.half_token = half.to_vec();
            }
            for token in tokens {
                if token.len() > 10 {
                    return Err(too_long(token));
                }
                let v = py_int(token).ok_or_else(|| {
                    DecodeError::invalid(
                        F,
                        format!(
                            "sample {:?} is not a number",
                            String::from_utf8_lossy(token)
                        ),
                    )
                })?;
                if v < 0 {
                    return Err(DecodeError::invalid(F, format!("sample {v} is negative")));
                }
                if v > i64::from(pnm.maxval) {
                    return Err(DecodeError::invalid(
                        F,
                        format!("sample {v} is above the maxval {}", pnm.maxval),
                    ));
                }
                let v = v as u32;
                let out = scale(v, pnm.maxval, om);
                if (out == 0 || out == 255) && v != 0 && v != pnm.maxval {
                    self.pure = false;
                }
                plain.pending.push(out);
                plain.decoded += 1;
                if plain.decoded == plain.total {
                    break;
                }
            }
        }
        if plain.available() < need {
            return Err(DecodeError::truncated(
                F,
                format!(
                    "the file ends in row {} of {} (not enough samples)",
                    self.y + 1,
                    pnm.height
                ),
            ));
        }
        Ok(())
    }

    fn plain_row(&mut self) -> Result<(), DecodeError> {
        let w = self.pnm.width as usize;
        let need = w * self.pnm.bands();
        self.plain_fill(need)?;
        let (plain, bits) = match &mut self.samples {
            Samples::PlainBits(p) => (p, true),
            Samples::PlainValues(p) => (p, false),
            _ => unreachable!("BUG: plain rows asked of a raw file"),
        };
        let values = &plain.pending[plain.taken..plain.taken + need];
        plain.taken += need;
        if bits {
            self.row.fill(0);
            for (x, &v) in values.iter().enumerate() {
                // 0 in the file is white.
                if v == 0 {
                    self.row[x / 8] |= 0x80 >> (x % 8);
                }
            }
        } else if self.pnm.bands() == 3 {
            put_bgr(&mut self.row, values);
        } else {
            self.row.copy_from_slice(values);
        }
        Ok(())
    }
}

fn too_long(token: &[u8]) -> DecodeError {
    DecodeError::invalid(
        F,
        format!(
            "sample {:?}… is longer than 10 characters",
            String::from_utf8_lossy(&token[..token.len().min(11)])
        ),
    )
}

/// RGB samples to the BGR order of [`Layout::Bgr`].
fn put_bgr(row: &mut [u8], rgb: &[u8]) {
    for (o, i) in row.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
        o[0] = i[2];
        o[1] = i[1];
        o[2] = i[0];
    }
}

impl Decoder for PnmDecoder<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.y == self.pnm.height {
            return Ok(None);
        }
        if self.pnm.plain() {
            self.plain_row()?;
        } else {
            self.raw_row()?;
        }
        self.y += 1;
        Ok(Some(&self.row))
    }

    fn source_pure(&self) -> bool {
        self.pure
    }
}

/// Whether the PNM file `src` is complete: its header read and, raw, the
/// raster as long as declared; plain, enough samples (decoded as Pillow
/// would, so a plain file that turns out invalid counts as complete).
pub fn whole(src: &dyn Source) -> Whole {
    let pnm = match parse_header(src) {
        Ok(h) => h,
        Err(HeaderError::Eof) => return Whole::NotYet("the PNM header is not all there yet"),
        Err(HeaderError::Bad(DecodeError::Io(_))) => {
            return Whole::NotYet("the PNM header could not be read");
        }
        // A size of zero is a header not written yet (a writer that fills
        // it in last); the grace bounds the wait.
        Err(HeaderError::Zero(_)) => return Whole::NotYet("the PNM's size is not written yet"),
        Err(HeaderError::Bad(_)) => return Whole::Complete,
    };
    let Ok(len) = src.byte_len() else {
        return Whole::NotYet("the PNM file's length could not be read");
    };
    if !pnm.plain() {
        let need = pnm.data_offset + pnm.raw_row_bytes() as u64 * u64::from(pnm.height);
        return if len >= need {
            Whole::Complete
        } else {
            Whole::NotYet("the PNM raster is shorter than its header declares")
        };
    }
    // A plain sample takes at least one byte (P1) or two (a digit and a
    // separator): cheap to rule out before decoding.
    let values = u64::from(pnm.width) * u64::from(pnm.height) * pnm.bands() as u64;
    let min_bytes = if pnm.bilevel() {
        values
    } else {
        2 * values - 1
    };
    if len < pnm.data_offset + min_bytes {
        return Whole::NotYet("the plain PNM file has fewer samples than its header declares");
    }
    // A P2/P3 file cut inside its last number ("… 200 25" of "… 200 255")
    // has all its samples, one of them wrong: a number running to the end
    // of the file may still be being written (a writer's file ends with a
    // newline; one that does not waits out the grace).
    let mut last = [0u8; 1];
    if !pnm.bilevel()
        && src.read_at(&mut last, len - 1).is_ok_and(|n| n == 1)
        && last[0].is_ascii_digit()
    {
        return Whole::NotYet("the plain PNM file ends inside a number");
    }
    let Ok(mut dec) = PnmDecoder::new(src, u64::MAX) else {
        return Whole::Complete;
    };
    loop {
        match dec.next_row() {
            Ok(Some(_)) => {}
            Ok(None) => return Whole::Complete,
            Err(DecodeError::Truncated { .. }) => {
                return Whole::NotYet(
                    "the plain PNM file has fewer samples than its header declares",
                );
            }
            Err(DecodeError::Io(_)) => return Whole::NotYet("the PNM file could not be read"),
            Err(_) => return Whole::Complete,
        }
    }
}

#[cfg(test)]
mod tests;
