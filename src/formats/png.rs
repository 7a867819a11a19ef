//! PNG (design §2.1), decoded row by row with the `png` crate and turned
//! into the mode Pillow 13.0.0 opens each colour type and depth as:
//!
//! | IHDR | Pillow mode | rows here |
//! | --- | --- | --- |
//! | grey 1 | `1` | [`Layout::One`] (1 = white, as in the file) |
//! | grey 2, 4 | `L` (×0x55, ×0x11) | [`Layout::Grey`] |
//! | grey 8 | `L` | [`Layout::Grey`] |
//! | grey 16 | `I;16`, clipped to 255 | [`Layout::Grey`] |
//! | palette 1–8 | `P` (PLTE; indices past it black) | [`Layout::Palette`] |
//! | RGB 8, 16 | `RGB` (16: high byte) | [`Layout::Bgr`] |
//! | grey+alpha 8 | `LA`, alpha dropped | [`Layout::Grey`] |
//! | grey+alpha 16 | `RGBA` of the high bytes | [`Layout::Grey`] (R = G = B) |
//! | RGBA 8, 16 | `RGBA` (16: high byte), alpha dropped | [`Layout::Bgr`] |
//!
//! `tRNS`, `gAMA`, `sBIT` and ICC profiles change no pixel; a transparent
//! pixel (alpha below opaque, or the `tRNS` colour or index) makes the
//! source impure ([`Decoder::source_pure`]), as does a 16-bit sample whose
//! kept byte looks black or white while the sample is not.
//!
//! Checksums as Pillow checks them: the CRC of every chunk before the
//! first IDAT (critical or not) is verified here, by streaming the chunk;
//! the image data's CRCs and its zlib Adler-32 are not (the `png` crate
//! is told to ignore both). Adam7-interlaced images are gathered whole in
//! a [`Frame`] (one byte a pixel: a bit as 0/255, a grey level, an index,
//! or for colour the grey level (299R + 587G + 114B) / 1000 that Pillow's
//! dither and threshold both start from, design §2).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::{DecodeError, Decoder, Format, Frame, Header, Layout, Whole, check_size};
use crate::bmp::Source;

const F: Format = Format::Png;
const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// What the `png` crate reads: the signature and an IHDR made here, then
/// the file from its first IDAT on. Pillow reads the chunks before the
/// image data itself, and forgives what the crate refuses there (an
/// unknown critical chunk, two PLTE chunks, a compression method other
/// than 0, an interlace method other than 0 or 1), so those chunks are
/// read here ([`pre_idat`]) and the crate never sees them.
struct SrcRead<'a> {
    src: &'a (dyn Source + 'a),
    prefix: Vec<u8>,
    /// Where the first IDAT starts in the file.
    idat_pos: u64,
    /// Position in the stream: the prefix, then the file from `idat_pos`.
    at: u64,
}

impl Read for SrcRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let plen = self.prefix.len() as u64;
        let n = if self.at < plen {
            let from = &self.prefix[self.at as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else {
            self.src.read_at(buf, self.idat_pos + (self.at - plen))?
        };
        self.at += n as u64;
        Ok(n)
    }
}

impl Seek for SrcRead<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let end = || -> io::Result<u64> {
            Ok(self.prefix.len() as u64 + self.src.byte_len()?.saturating_sub(self.idat_pos))
        };
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.at.checked_add_signed(d),
            SeekFrom::End(d) => end()?.checked_add_signed(d),
        };
        self.at = to.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.at)
    }
}

/// A PNG chunk with its length and CRC.
fn chunk(cid: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(cid);
    crc.update(data);
    let mut out = Vec::with_capacity(12 + data.len());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(cid);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// What Pillow's APNG chunk handlers remember.
#[derive(Debug, Clone, Copy, Default)]
struct Apng {
    /// acTL's frame count, when valid (and given once).
    frames: Option<u32>,
    /// The last fcTL or fdAT sequence number.
    seq: Option<u32>,
}

fn ihdr_size(ihdr: Option<[u8; 13]>) -> (u64, u64) {
    ihdr.map_or((0, 0), |h| {
        (
            u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]])),
            u64::from(u32::from_be_bytes([h[4], h[5], h[6], h[7]])),
        )
    })
}

/// Pillow refuses a compressed text or ICC chunk whose data (at
/// `start..end` in the file; `s` its first bytes) inflates too far.
fn text_rule(
    src: &dyn Source,
    cid: &[u8],
    s: &[u8],
    start: u64,
    end: u64,
) -> Result<(), DecodeError> {
    if let Some(at) = compressed_text_start(cid, s)
        && start + (at as u64) < end
        && inflates_too_far(src, start + at as u64, end)?
    {
        return Err(DecodeError::invalid(
            F,
            format!(
                "the {} chunk inflates to more than 1 MiB (Pillow refuses it as a decompression bomb)",
                cid_text(cid)
            ),
        ));
    }
    Ok(())
}

/// Pillow's `MAX_TEXT_CHUNK`: a compressed text or ICC chunk that inflates
/// to more than this is refused (`_safe_zlib_decompress`).
const MAX_TEXT_CHUNK: usize = 1024 * 1024;

/// Where the zlib stream of a zTXt, compressed iTXt or iCCP chunk starts
/// in its data `s` (the chunk's first bytes), as Pillow's handlers find it.
fn compressed_text_start(cid: &[u8], s: &[u8]) -> Option<usize> {
    let nul = |from: usize| {
        s.get(from..)?
            .iter()
            .position(|&c| c == 0)
            .map(|i| from + i)
    };
    match cid {
        b"zTXt" => Some(nul(0)? + 2),
        b"iCCP" => Some(nul(0).map_or(1, |i| i + 2)),
        b"iTXt" => {
            let k = nul(0)?;
            let (cf, cm) = (*s.get(k + 1)?, *s.get(k + 2)?);
            let lang = nul(k + 3)?;
            let tk = nul(lang + 1)?;
            (cf != 0 && cm == 0).then_some(tk + 1)
        }
        _ => None,
    }
}

/// Whether the zlib stream in `src[from..end]` inflates to more than
/// [`MAX_TEXT_CHUNK`] (a broken stream is not: Pillow ignores it), read
/// in pieces with a bounded buffer.
fn inflates_too_far(src: &dyn Source, mut from: u64, end: u64) -> io::Result<bool> {
    let mut inflater = fdeflate::Decompressor::new();
    let mut out = vec![0u8; MAX_TEXT_CHUNK + 1];
    let mut produced = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut piece = vec![0u8; 64 * 1024];
    loop {
        let n = (end - from).min(piece.len() as u64) as usize;
        src.read_exact_at(&mut piece[..n], from)?;
        from += n as u64;
        pending.extend_from_slice(&piece[..n]);
        let last = from == end;
        match inflater.read(&pending, &mut out, produced, last) {
            Ok((used, made)) => {
                pending.drain(..used);
                produced += made;
            }
            Err(_) => return Ok(false),
        }
        if produced > MAX_TEXT_CHUNK {
            return Ok(true);
        }
        if inflater.is_done() || last {
            return Ok(false);
        }
    }
}

/// The checks by which Pillow's chunk handlers (`PngStream.chunk_*`)
/// refuse a file, before the image data and after it; `s` is the start of
/// the chunk's data (up to 1024 bytes), `length` its whole length.
fn chunk_rules(
    cid: &[u8],
    s: &[u8],
    length: u64,
    apng: &mut Apng,
    (width, height): (u64, u64),
) -> Result<(), DecodeError> {
    let at_least = |min: u64| {
        if length < min {
            Err(DecodeError::invalid(
                F,
                format!("truncated {} chunk ({length} bytes)", cid_text(cid)),
            ))
        } else {
            Ok(())
        }
    };
    let be32 = |i: usize| u32::from_be_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let nul = s.iter().position(|&c| c == 0);
    match cid {
        b"gAMA" => at_least(4),
        b"cHRM" => at_least(32),
        b"sRGB" => at_least(1),
        b"pHYs" => at_least(9),
        b"iCCP" => {
            // Pillow reads the byte after the first NUL (s[0] if none).
            match s.get(nul.map_or(0, |i| i + 1)) {
                Some(0) => Ok(()),
                Some(m) => Err(DecodeError::invalid(
                    F,
                    format!("unknown compression method {m} in the iCCP chunk"),
                )),
                None => Err(DecodeError::invalid(F, "iCCP chunk cut short")),
            }
        }
        b"zTXt" => match nul.and_then(|i| s.get(i + 1)) {
            Some(&m) if m != 0 => Err(DecodeError::invalid(
                F,
                format!("unknown compression method {m} in a zTXt chunk"),
            )),
            _ => Ok(()),
        },
        b"acTL" => {
            at_least(8)?;
            let n = be32(0);
            if apng.frames.is_some() {
                apng.frames = None;
            } else if n != 0 && n <= 0x8000_0000 {
                apng.frames = Some(n);
            }
            Ok(())
        }
        b"fcTL" | b"fdAT" => {
            at_least(if cid == b"fcTL" { 26 } else { 4 })?;
            let seq = be32(0);
            let in_order = match apng.seq {
                None => cid == b"fcTL" && seq == 0,
                Some(last) => u64::from(last) + 1 == u64::from(seq),
            };
            if !in_order {
                return Err(DecodeError::invalid(
                    F,
                    "APNG contains frame sequence errors",
                ));
            }
            apng.seq = Some(seq);
            if cid == b"fcTL" {
                let (w, h, x, y) = (be32(4), be32(8), be32(12), be32(16));
                if u64::from(x) + u64::from(w) > width || u64::from(y) + u64::from(h) > height {
                    return Err(DecodeError::invalid(F, "APNG contains invalid frames"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Pillow's `is_cid`: four ASCII letters, digits or underscores.
fn is_cid(t: &[u8]) -> bool {
    t.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// What the chunks before the first IDAT say, read as Pillow reads them.
struct Pre {
    ihdr: [u8; 13],
    /// Where the first IDAT chunk starts.
    idat_pos: u64,
    width: u32,
    height: u32,
    depth: u8,
    colour: u8,
    interlaced: bool,
    /// An APNG with more than one frame (Pillow stops its walk after the
    /// image at the next fcTL).
    animated: bool,
    apng: Apng,
    plte: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
}

fn cid_text(t: &[u8]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// Walks the chunks up to the first IDAT, checking each one's CRC (as
/// Pillow's `_open` does) and keeping IHDR, PLTE and tRNS.
fn pre_idat(src: &dyn Source) -> Result<Pre, DecodeError> {
    let mut sig = [0u8; 8];
    if src.read_at(&mut sig, 0)? < 8 || &sig != SIGNATURE {
        return Err(DecodeError::invalid(F, "not a PNG file (bad signature)"));
    }
    let len = src.byte_len()?;
    let mut pos = 8u64;
    let mut ihdr: Option<[u8; 13]> = None;
    let mut plte = None;
    let mut trns = None;
    let mut apng = Apng::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut head = [0u8; 8];
        if src.read_at(&mut head, pos)? < 8 {
            return Err(DecodeError::truncated(
                F,
                "the file ends before the image data",
            ));
        }
        let length = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let cid: [u8; 4] = [head[4], head[5], head[6], head[7]];
        if !is_cid(&cid) {
            return Err(DecodeError::invalid(
                F,
                format!("broken PNG file (chunk type {:?})", cid_text(&cid)),
            ));
        }
        if &cid == b"IDAT" {
            break;
        }
        if &cid == b"IEND" {
            return Err(DecodeError::invalid(
                F,
                "no image data (IEND before any IDAT)",
            ));
        }
        if pos + 12 + length > len {
            return Err(DecodeError::truncated(
                F,
                format!("the file ends inside the {} chunk", cid_text(&cid)),
            ));
        }
        // Keep the start of the chunk (IHDR 13 bytes, PLTE ≤ 768, tRNS ≤
        // 256 and the fields Pillow checks are all that is read of any),
        // CRC everything.
        let mut kept = Vec::new();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&cid);
        let mut at = pos + 8;
        let end = at + length;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..n], at)?;
            crc.update(&buf[..n]);
            if kept.len() < 1024 {
                kept.extend_from_slice(&buf[..n.min(1024 - kept.len())]);
            }
            at += n as u64;
        }
        chunk_rules(&cid, &kept, length, &mut apng, ihdr_size(ihdr))?;
        text_rule(src, &cid, &kept, pos + 8, end)?;
        let mut stored = [0u8; 4];
        src.read_exact_at(&mut stored, end)?;
        if crc.finalize() != u32::from_be_bytes(stored) {
            return Err(DecodeError::invalid(
                F,
                format!(
                    "broken PNG file (bad checksum in the {} chunk)",
                    cid_text(&cid)
                ),
            ));
        }
        match &cid {
            b"IHDR" => {
                if kept.len() < 13 {
                    return Err(DecodeError::invalid(F, "IHDR chunk shorter than 13 bytes"));
                }
                let mut h = [0u8; 13];
                h.copy_from_slice(&kept[..13]);
                if h[11] != 0 {
                    return Err(DecodeError::invalid(F, "unknown filter method"));
                }
                ihdr = Some(h);
            }
            // Pillow keeps PLTE only once IHDR said palette.
            b"PLTE" if ihdr.is_some_and(|h| h[9] == 3) => plte = Some(kept),
            b"tRNS" => trns = Some(kept),
            _ => {}
        }
        pos = end + 4;
    }
    let Some(h) = ihdr else {
        return Err(DecodeError::invalid(
            F,
            "no IHDR chunk before the image data",
        ));
    };
    let width = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let height = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let (depth, colour) = (h[8], h[9]);
    let known = matches!(
        (depth, colour),
        (1 | 2 | 4 | 8 | 16, 0) | (8 | 16, 2) | (1 | 2 | 4 | 8, 3) | (8 | 16, 4) | (8 | 16, 6)
    );
    if !known {
        return Err(DecodeError::unsupported(
            F,
            format!("bit depth {depth} with colour type {colour}"),
        ));
    }
    if width == 0 || height == 0 {
        return Err(DecodeError::invalid(
            F,
            format!("empty image ({width}x{height})"),
        ));
    }
    Ok(Pre {
        ihdr: h,
        idat_pos: pos,
        width,
        height,
        depth,
        colour,
        interlaced: h[12] != 0,
        // Pillow counts the IDAT image as a frame of its own when no fcTL
        // comes before it.
        animated: apng
            .frames
            .is_some_and(|n| u64::from(n) + u64::from(apng.seq.is_none()) > 1),
        apng,
        plte,
        trns,
    })
}

/// How samples of one pixel are laid out in a decoded (unfiltered) row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Grey of 1, 2, 4 bits.
    GreyBits(u8),
    Grey8,
    Grey16,
    /// Palette indices of 1, 2, 4, 8 bits.
    Index(u8),
    Rgb8,
    Rgb16,
    GreyA8,
    GreyA16,
    Rgba8,
    Rgba16,
}

/// A sub-byte sample `i` of a row packed most significant bits first.
fn sub_sample(raw: &[u8], i: usize, bits: u8) -> u8 {
    let bit = i * usize::from(bits);
    let shift = 8 - usize::from(bits) - bit % 8;
    (raw[bit / 8] >> shift) & ((1u8 << bits) - 1)
}

/// Whether a 16-bit sample's kept (high) byte looks black or white while
/// the sample is not.
fn clips16(hi: u8, lo: u8) -> bool {
    (hi == 0 && lo != 0) || (hi == 255 && lo != 255)
}

/// Rows of a PNG file (see the module's documentation).
pub struct PngDecoder<'a> {
    header: Header,
    src: &'a (dyn Source + 'a),
    idat_pos: u64,
    animated: bool,
    apng: Apng,
    reader: png::Reader<BufReader<SrcRead<'a>>>,
    kind: Kind,
    /// The tRNS colour (samples, in the file's depth) for grey and RGB.
    key: Option<[u16; 3]>,
    /// Palette entries tRNS makes less than opaque.
    see_through: Option<[bool; 256]>,
    /// Whole frame (Adam7), and the next row of it to hand out.
    frame: Option<(Frame, u32)>,
    px: Vec<u8>,
    /// A decoded row, copied out of the reader.
    raw: Vec<u8>,
    row: Vec<u8>,
    y: u32,
    pure: bool,
}

/// A decoder for the PNG file `src`.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    let pre = pre_idat(src)?;
    check_size(u64::from(pre.width), u64::from(pre.height), max_pixels)?;
    let kind = match (pre.colour, pre.depth) {
        (0, 8) => Kind::Grey8,
        (0, 16) => Kind::Grey16,
        (0, d) => Kind::GreyBits(d),
        (3, d) => Kind::Index(d),
        (2, 8) => Kind::Rgb8,
        (2, _) => Kind::Rgb16,
        (4, 8) => Kind::GreyA8,
        (4, _) => Kind::GreyA16,
        (6, 8) => Kind::Rgba8,
        _ => Kind::Rgba16,
    };
    let mut key = None;
    let mut see_through = None;
    if let Some(t) = &pre.trns {
        let word = |i: usize| u16::from_be_bytes([t[2 * i], t[2 * i + 1]]);
        match kind {
            Kind::Index(_) => {
                let mut s = [false; 256];
                for (e, &a) in s.iter_mut().zip(t.iter()) {
                    *e = a < 255;
                }
                see_through = Some(s);
            }
            Kind::GreyBits(_) | Kind::Grey8 | Kind::Grey16 if t.len() >= 2 => {
                key = Some([word(0); 3]);
            }
            Kind::Rgb8 | Kind::Rgb16 if t.len() >= 6 => key = Some([word(0), word(1), word(2)]),
            // Pillow: "Truncated tRNS chunk" for grey and RGB.
            Kind::GreyBits(_) | Kind::Grey8 | Kind::Grey16 | Kind::Rgb8 | Kind::Rgb16 => {
                return Err(DecodeError::invalid(F, "tRNS chunk too short"));
            }
            _ => {}
        }
    }
    let palette: Vec<[u8; 3]> = pre
        .plte
        .as_deref()
        .unwrap_or_default()
        .chunks_exact(3)
        .take(256)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let stream_layout = match kind {
        Kind::GreyBits(1) => Layout::One,
        Kind::Index(_) => Layout::Palette(palette),
        Kind::Rgb8 | Kind::Rgb16 | Kind::Rgba8 | Kind::Rgba16 => Layout::Bgr,
        _ => Layout::Grey,
    };
    let frame = if pre.interlaced {
        Some((
            Frame::new(pre.width, pre.height, max_pixels, "Adam7 interlacing")?,
            0,
        ))
    } else {
        None
    };
    let layout = match (&frame, stream_layout) {
        (Some(_), Layout::Bgr) => Layout::Grey,
        (_, l) => l,
    };

    let mut options = png::DecodeOptions::default();
    options.set_ignore_text_chunk(true);
    options.set_ignore_iccp_chunk(true);
    // Pillow does not check the image data's CRCs (those it checks were
    // checked above); zlib checks the Adler-32 when it reaches it.
    options.set_ignore_crc(true);
    options.set_ignore_adler32(false);
    let mut ihdr = pre.ihdr;
    ihdr[10] = 0;
    ihdr[12] = u8::from(pre.interlaced);
    let mut prefix = SIGNATURE.to_vec();
    prefix.extend_from_slice(&chunk(b"IHDR", &ihdr));
    let stream = SrcRead {
        src,
        prefix,
        idat_pos: pre.idat_pos,
        at: 0,
    };
    let mut decoder =
        png::Decoder::new_with_options(BufReader::with_capacity(64 * 1024, stream), options);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let reader = decoder.read_info().map_err(png_error)?;
    let header = Header {
        format: F,
        width: pre.width,
        height: pre.height,
        layout,
    };
    let row = vec![0; header.layout.row_bytes(pre.width)];
    let mut dec = PngDecoder {
        header,
        src,
        idat_pos: pre.idat_pos,
        animated: pre.animated,
        apng: pre.apng,
        reader,
        kind,
        key,
        see_through,
        frame,
        px: Vec::new(),
        raw: Vec::new(),
        row,
        y: 0,
        pure: true,
    };
    if dec.frame.is_some() {
        dec.fill_frame()?;
    }
    Ok(Box::new(dec))
}

fn png_error(e: png::DecodingError) -> DecodeError {
    match e {
        png::DecodingError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            DecodeError::truncated(F, "the image data ends before the last row")
        }
        png::DecodingError::IoError(e) => DecodeError::Io(e),
        png::DecodingError::LimitsExceeded => {
            DecodeError::unsupported(F, "decoding needs more memory than allowed")
        }
        png::DecodingError::Format(f) => {
            let why = f.to_string();
            if why.contains("WrongChecksum") {
                DecodeError::invalid(F, "broken data stream (its Adler-32 checksum is wrong)")
            } else if why.contains("end of")
                || why.contains("EOF")
                || why.contains("ended")
                || why.contains("not have enough data")
                || why.contains("InsufficientInput")
            {
                DecodeError::truncated(F, format!("the image data ends early ({why})"))
            } else {
                DecodeError::invalid(F, why)
            }
        }
        other => DecodeError::invalid(F, other.to_string()),
    }
}

impl PngDecoder<'_> {
    /// `n` pixels of `raw` (a decoded row) as one byte a pixel (a bit as
    /// 0/255, grey, index) or three (B, G, R), into `self.px`; notes
    /// impure pixels.
    fn samples(&mut self, raw: &[u8], n: usize) {
        let px = &mut self.px;
        px.clear();
        let key = self.key;
        let mut impure = false;
        match self.kind {
            Kind::GreyBits(bits) => {
                let scale = 255 / ((1u8 << bits) - 1);
                for i in 0..n {
                    let s = sub_sample(raw, i, bits);
                    impure |= key.is_some_and(|k| k[0] == u16::from(s));
                    px.push(s * scale);
                }
            }
            Kind::Grey8 => {
                px.extend_from_slice(&raw[..n]);
                if let Some(k) = key {
                    impure |= raw[..n].iter().any(|&s| u16::from(s) == k[0]);
                }
            }
            Kind::Grey16 => {
                for s in raw[..2 * n].chunks_exact(2) {
                    let v = u16::from_be_bytes([s[0], s[1]]);
                    // I;16 clipped (design §2.1): 255…65534 show white.
                    impure |= (255..65535).contains(&v) || key.is_some_and(|k| k[0] == v);
                    px.push(v.min(255) as u8);
                }
            }
            Kind::Index(bits) => {
                if bits == 8 {
                    px.extend_from_slice(&raw[..n]);
                } else {
                    px.extend((0..n).map(|i| sub_sample(raw, i, bits)));
                }
                if let Some(t) = &self.see_through {
                    impure |= px.iter().any(|&i| t[usize::from(i)]);
                }
            }
            Kind::Rgb8 | Kind::Rgba8 => {
                let step = if self.kind == Kind::Rgb8 { 3 } else { 4 };
                for p in raw[..step * n].chunks_exact(step) {
                    px.extend_from_slice(&[p[2], p[1], p[0]]);
                    impure |= step == 4 && p[3] != 255;
                    impure |= key
                        .is_some_and(|k| k == [u16::from(p[0]), u16::from(p[1]), u16::from(p[2])]);
                }
            }
            Kind::Rgb16 | Kind::Rgba16 => {
                let step = if self.kind == Kind::Rgb16 { 6 } else { 8 };
                for p in raw[..step * n].chunks_exact(step) {
                    px.extend_from_slice(&[p[4], p[2], p[0]]);
                    impure |= clips16(p[0], p[1]) || clips16(p[2], p[3]) || clips16(p[4], p[5]);
                    impure |= step == 8 && (p[6] != 255 || p[7] != 255);
                    impure |= key.is_some_and(|k| {
                        let w = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
                        k == [w(0), w(2), w(4)]
                    });
                }
            }
            Kind::GreyA8 => {
                for p in raw[..2 * n].chunks_exact(2) {
                    px.push(p[0]);
                    impure |= p[1] != 255;
                }
            }
            Kind::GreyA16 => {
                for p in raw[..4 * n].chunks_exact(4) {
                    px.push(p[0]);
                    impure |= clips16(p[0], p[1]) || p[2] != 255 || p[3] != 255;
                }
            }
        }
        if impure {
            self.pure = false;
        }
    }

    /// Decodes every Adam7 pass into the frame.
    fn fill_frame(&mut self) -> Result<(), DecodeError> {
        const PASSES: [(u32, u32, u32, u32); 7] = [
            (8, 0, 8, 0),
            (8, 4, 8, 0),
            (4, 0, 8, 4),
            (4, 2, 4, 0),
            (2, 0, 4, 2),
            (2, 1, 2, 0),
            (1, 0, 2, 1),
        ];
        let (w, h) = (self.header.width, self.header.height);
        let bgr = matches!(
            self.kind,
            Kind::Rgb8 | Kind::Rgb16 | Kind::Rgba8 | Kind::Rgba16
        );
        let mut raw = Vec::new();
        for (p, &(xs, xo, ys, yo)) in PASSES.iter().enumerate() {
            let cols = w.saturating_sub(xo).div_ceil(xs);
            let lines = h.saturating_sub(yo).div_ceil(ys);
            if cols == 0 || lines == 0 {
                continue;
            }
            for line in 0..lines {
                let row = self.reader.next_interlaced_row().map_err(png_error)?;
                let Some(row) = row else {
                    return Err(DecodeError::truncated(F, "the image data ends early"));
                };
                let expected = png::Adam7Info::new(p as u8 + 1, line, w);
                if !matches!(row.interlace(), png::InterlaceInfo::Adam7(i) if *i == expected) {
                    return Err(DecodeError::invalid(F, "Adam7 passes out of order"));
                }
                raw.clear();
                raw.extend_from_slice(row.data());
                self.samples(&raw, cols as usize);
                let Some((frame, _)) = self.frame.as_mut() else {
                    break;
                };
                let out = frame.row_mut((yo + line * ys) as usize);
                for i in 0..cols as usize {
                    let x = (xo + i as u32 * xs) as usize;
                    out[x] = if bgr {
                        let (b, g, r) = (self.px[3 * i], self.px[3 * i + 1], self.px[3 * i + 2]);
                        let l =
                            (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
                        // (1, 0, 0) is grey 0: looks black, is not.
                        let pure_px = (r, g, b) == (0, 0, 0) || (r, g, b) == (255, 255, 255);
                        if (l == 0 || l == 255) && !pure_px {
                            self.pure = false;
                        }
                        l as u8
                    } else {
                        self.px[i]
                    };
                }
            }
        }
        Ok(())
    }
}

impl Decoder for PngDecoder<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.y == self.header.height {
            return Ok(None);
        }
        let w = self.header.width as usize;
        if let Some((frame, _)) = &self.frame {
            let src = frame.row(self.y as usize);
            if self.header.layout == Layout::One {
                self.row.fill(0);
                for (x, &v) in src.iter().enumerate() {
                    if v != 0 {
                        self.row[x / 8] |= 0x80 >> (x % 8);
                    }
                }
            } else {
                self.row.copy_from_slice(src);
            }
        } else {
            let row = self.reader.next_row().map_err(png_error)?;
            let Some(row) = row else {
                return Err(DecodeError::truncated(F, "the image data ends early"));
            };
            if self.kind == Kind::GreyBits(1) {
                let n = self.row.len();
                self.row.copy_from_slice(&row.data()[..n]);
                if let Some(k) = self.key {
                    let raw = row.data();
                    if (0..w).any(|i| u16::from(sub_sample(raw, i, 1)) == k[0]) {
                        self.pure = false;
                    }
                }
            } else {
                let mut raw = std::mem::take(&mut self.raw);
                raw.clear();
                raw.extend_from_slice(row.data());
                self.samples(&raw, w);
                self.raw = raw;
                self.row.copy_from_slice(&self.px);
            }
        }
        self.y += 1;
        if self.y == self.header.height {
            self.finish()?;
        }
        Ok(Some(&self.row))
    }

    fn source_pure(&self) -> bool {
        self.pure
    }
}

impl PngDecoder<'_> {
    /// After the last row, what Pillow still reads: the rest of the
    /// zlib stream when it is there (so a wrong Adler-32 fails), then
    /// the chunks up to IEND, each of which must be all there (its CRC
    /// may be missing); a chunk header cut short or broken ends the walk.
    fn finish(&mut self) -> Result<(), DecodeError> {
        if let Err(e) = self.reader.next_row()
            && e.to_string().contains("WrongChecksum")
        {
            return Err(png_error(e));
        }
        let len = self.src.byte_len()?;
        let mut pos = self.idat_pos;
        let mut image_data = true;
        loop {
            let mut head = [0u8; 8];
            if self.src.read_at(&mut head, pos)? < 8 {
                return Ok(());
            }
            let length = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
            let cid = &head[4..];
            if !is_cid(cid) || cid == b"IEND" || (cid == b"fcTL" && self.animated) {
                return Ok(());
            }
            let end = pos + 8 + length;
            if image_data && cid == b"IDAT" {
                // The image data: the chunk in which it ended may be cut.
                if end > len {
                    return Ok(());
                }
            } else {
                image_data = false;
                if end > len {
                    return Err(DecodeError::truncated(
                        F,
                        format!("the file ends inside the {} chunk", cid_text(cid)),
                    ));
                }
                if cid != b"IDAT" {
                    let mut s = vec![0u8; length.min(1024) as usize];
                    self.src.read_exact_at(&mut s, pos + 8)?;
                    let size = (u64::from(self.header.width), u64::from(self.header.height));
                    chunk_rules(cid, &s, length, &mut self.apng, size)?;
                    text_rule(self.src, cid, &s, pos + 8, end)?;
                }
            }
            pos = end + 4;
        }
    }
}

/// Whether the PNG file `src` is complete: its IEND chunk reached by
/// walking the chunk headers (positioned reads of 8 bytes; no chunk data
/// is read).
pub fn whole(src: &dyn Source) -> Whole {
    let Ok(len) = src.byte_len() else {
        return Whole::NotYet("the PNG file's length could not be read");
    };
    let mut sig = [0u8; 8];
    match src.read_at(&mut sig, 0) {
        Ok(8) if &sig == SIGNATURE => {}
        Ok(n) if n < 8 && sig[..n] == SIGNATURE[..n] => {
            return Whole::NotYet("the PNG signature is not all there yet");
        }
        Ok(_) => return Whole::Complete,
        Err(_) => return Whole::NotYet("the PNG file could not be read"),
    }
    let mut pos = 8u64;
    loop {
        let mut head = [0u8; 8];
        match src.read_at(&mut head, pos) {
            Ok(8) => {}
            Ok(_) => return Whole::NotYet("no IEND chunk yet"),
            Err(_) => return Whole::NotYet("the PNG file could not be read"),
        }
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        // Zeros where a chunk should start: a part not written yet (a
        // writer that fills its header in last); the grace bounds the wait.
        if head == [0; 8] {
            return Whole::NotYet("a PNG chunk is not written yet (zeros)");
        }
        if !is_cid(&head[4..]) || length > 0x7fff_ffff {
            return Whole::Complete;
        }
        pos += 12 + u64::from(length);
        if &head[4..] == b"IEND" {
            return if pos <= len {
                Whole::Complete
            } else {
                Whole::NotYet("the IEND chunk is not all there yet")
            };
        }
        if pos > len {
            return Whole::NotYet("no IEND chunk yet");
        }
    }
}

#[cfg(test)]
mod tests;
