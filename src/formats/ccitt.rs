//! The CCITT fax codecs of TIFF (design §2.1): Modified Huffman (TIFF
//! compression 2), Group 3 / T.4 in its 1-D and 2-D forms (compression 3)
//! and Group 4 / T.6 (compression 4), decoded one row at a time.
//!
//! Pillow 13.0.0 decodes these through libtiff, so what counts here is
//! libtiff's behaviour, not just T.4/T.6: how it finds EOLs (any run of
//! 11 zero bits, then any further zeros, then the 1), how it pads the end
//! of the data with zero bits, how it mends a row whose runs fall short of
//! or overshoot the width ("Premature EOL" / "Line length mismatch": the
//! run that crosses the row end is dropped and the rest of the row is
//! white), that a bad code word ends the row (rest white) without failing
//! the strip, that Group 4 data ending early (EOFB or end of data) still
//! succeeds once a row was decoded, leaving the strip's remaining rows
//! alone, while Modified Huffman and Group 3 data ending early fail. This
//! module re-implements that state machine in Rust, step for step, so that
//! its rows are the ones Pillow sees even for damaged data.
//!
//! Written by hand, not with a crate, because none fits (evaluated for
//! issue 22):
//! - `fax` 0.3 (pdf-rs): no Modified Huffman (its Group 3 decoder wants an
//!   EOL before every row and knows no byte-aligned rows), no Group 3 2-D,
//!   and its recovery from bad data is not libtiff's.
//! - `hayro-ccitt` 0.5: all three codings, but it takes the whole strip as
//!   one `&[u8]` (a single-strip G4 page would have to be read whole), it
//!   mends damaged rows the way PDF readers do (resynchronising at the next
//!   EOL, clipping overlong runs) rather than libtiff's way, and it needs
//!   Rust 1.92 (this crate's minimum is 1.88).
//!
//! Memory: the input is read through an 8 KiB buffer, and the state is two
//! run arrays and one row, O(width), whatever the number of rows. When
//! Group 3 data ends where an EOL should be, libtiff decodes the strip
//! again from its start as if it had no EOLs, the new rows following those
//! already given, and so must this: [`RowDecoder::new_seekable`] seeks
//! back for that, while [`RowDecoder::new`] (and [`decode`]) keep Group 3
//! input as read, up to 4 MiB (a dense text page of 7200×5600 is about
//! 0.6 MB), and refuse a restart past that ([`CcittError::Unsupported`]).
//!
//! libtiff keeps some state from one strip (or tile) of an image to the
//! next: whether Group 3 data is taken to have no EOLs (after such a
//! restart), and its run arrays, which damaged data can read past the
//! current rows' runs. [`decode`] starts afresh; a caller that wants
//! libtiff's rows for damaged multi-strip images too decodes the strips
//! in order with one [`RowDecoder`], [`RowDecoder::next_strip`] moving it
//! on. For undamaged data the two agree.
//!
//! Uncompressed mode (T4Options / T6Options bit 1) is not refused: libtiff
//! ignores the option and, on meeting the extension code that starts an
//! uncompressed run, reports an error but goes on with the rest of that row
//! white, so this decoder does the same.

// Until the TIFF decoder calls it (issue 22); remove then.
#![allow(dead_code)]

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::OnceLock;

/// The coding of a strip (TIFF Compression, and the T4Options bits that
/// change decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// TIFF compression 2: 1-D codes, no EOLs, each row starting on a byte
    /// boundary.
    ModifiedHuffman,
    /// TIFF compression 3 (T.4). `two_d`: T4Options bit 0, rows start with
    /// a 1-D/2-D tag bit. `fill_bits`: T4Options bit 2, zero bits before
    /// EOLs so that they end on byte boundaries; libtiff skips any zero
    /// bits before an EOL whatever this says, and so does this decoder.
    Group3 { two_d: bool, fill_bits: bool },
    /// TIFF compression 4 (T.6).
    Group4,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::ModifiedHuffman => "CCITT Modified Huffman",
            Coding::Group3 { two_d: false, .. } => "CCITT Group 3 1-D",
            Coding::Group3 { two_d: true, .. } => "CCITT Group 3 2-D",
            Coding::Group4 => "CCITT Group 4",
        }
    }
}

/// How to decode one strip or tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Pixels in a row (ImageWidth, or TileWidth for tiles).
    pub width: u32,
    pub coding: Coding,
    /// FillOrder = 2: the first bit of each byte is its least significant.
    pub lsb_first: bool,
}

/// Why a strip could not be decoded. The `Display` text is the reason, in
/// words for users (the caller adds the file's name).
#[derive(Debug, thiserror::Error)]
pub enum CcittError {
    /// The data ended before the rows were all decoded, where libtiff fails
    /// the strip (Modified Huffman and Group 3 always; Group 4 when not
    /// even its first row was there).
    #[error("{coding} data ends early, in row {row} of {rows}")]
    Truncated {
        coding: &'static str,
        /// 1-based.
        row: u32,
        rows: u32,
    },
    /// Data libtiff refuses: more color changes in a row than its run
    /// arrays hold, or a zero width.
    #[error("invalid {coding} data in row {row}: {why}")]
    Invalid {
        coding: &'static str,
        row: u32,
        why: &'static str,
    },
    /// Data libtiff would decode by a path this decoder does not take:
    /// a Group 3 strip over 4 MiB, not seekable, that would need decoding
    /// again from its start.
    #[error("unsupported {coding} data: {why}")]
    Unsupported {
        coding: &'static str,
        why: &'static str,
    },
    /// Reading the input failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// Returned by a caller's `on_row` to stop decoding (with its reason);
    /// [`decode`] passes it back unchanged. The decoder never makes one.
    #[error("{0}")]
    Stopped(String),
}

/// Decodes up to `rows` rows from `input` (one strip's or tile's bytes),
/// calling `on_row` with each row as 1-bit samples packed most significant
/// bit first, ⌈width/8⌉ bytes, a black run (fax meaning) as 1 bits (the
/// sample values libtiff hands back; the caller applies Photometric; bits
/// past the width are 0). Returns the number of rows delivered.
///
/// Fewer than `rows` rows are delivered, without error, when Group 4 data
/// ends early (an EOFB, or the end of the data) after at least one row:
/// libtiff then decodes the interrupted row (rest white) and leaves the
/// rest of the strip's buffer as it was, which in Pillow is zero samples
/// in its first strip and the previous strip's rows (same positions) in
/// later strips.
pub fn decode(
    input: impl Read,
    params: &Params,
    rows: u32,
    mut on_row: impl FnMut(&[u8]) -> Result<(), CcittError>,
) -> Result<u32, CcittError> {
    let mut rd = RowDecoder::new(input, params, rows)?;
    let mut n = 0;
    while let Some(row) = rd.next_row()? {
        on_row(row)?;
        n += 1;
    }
    Ok(n)
}

// ---------------------------------------------------------------------
// Code tables (T.4 tables 1–3, T.4 §4.2 / T.6 table 1 for the modes),
// looked up by the next 7 (modes), 12 (white) or 13 (black) bits.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// No code starts with these bits.
    Null,
    Pass,
    Horiz,
    V0,
    /// Vertical, a1 right of b1 by `param`.
    VR,
    /// Vertical, a1 left of b1 by `param`.
    VL,
    /// 0000001: an extension (uncompressed mode).
    Ext,
    TermW,
    TermB,
    MakeUpW,
    MakeUpB,
    /// Extended make-up codes (1792–2560), the same for both colors.
    MakeUp,
    /// Zero bits: 7 in the modes table, 11 in the run tables (libtiff
    /// calls these EOL; the final 1 is left for the next row's sync).
    Eol,
}

#[derive(Debug, Clone, Copy)]
struct Ent {
    st: St,
    width: u8,
    param: u16,
}

const NULL_ENT: Ent = Ent {
    st: St::Null,
    width: 0,
    param: 0,
};

struct Tables {
    main: [Ent; 128],
    white: Vec<Ent>,
    black: Vec<Ent>,
}

/// White terminating codes, run lengths 0–63.
const TERM_WHITE: [&str; 64] = [
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111", "10011", "10100",
    "00111", "01000", "001000", "000011", "110100", "110101", "101010", "101011", "0100111",
    "0001100", "0001000", "0010111", "0000011", "0000100", "0101000", "0101011", "0010011",
    "0100100", "0011000", "00000010", "00000011", "00011010", "00011011", "00010010", "00010011",
    "00010100", "00010101", "00010110", "00010111", "00101000", "00101001", "00101010", "00101011",
    "00101100", "00101101", "00000100", "00000101", "00001010", "00001011", "01010010", "01010011",
    "01010100", "01010101", "00100100", "00100101", "01011000", "01011001", "01011010", "01011011",
    "01001010", "01001011", "00110010", "00110011", "00110100",
];

/// White make-up codes, run lengths 64, 128, … 1728.
const MAKEUP_WHITE: [&str; 27] = [
    "11011",
    "10010",
    "010111",
    "0110111",
    "00110110",
    "00110111",
    "01100100",
    "01100101",
    "01101000",
    "01100111",
    "011001100",
    "011001101",
    "011010010",
    "011010011",
    "011010100",
    "011010101",
    "011010110",
    "011010111",
    "011011000",
    "011011001",
    "011011010",
    "011011011",
    "010011000",
    "010011001",
    "010011010",
    "011000",
    "010011011",
];

/// Black terminating codes, run lengths 0–63.
const TERM_BLACK: [&str; 64] = [
    "0000110111",
    "010",
    "11",
    "10",
    "011",
    "0011",
    "0010",
    "00011",
    "000101",
    "000100",
    "0000100",
    "0000101",
    "0000111",
    "00000100",
    "00000111",
    "000011000",
    "0000010111",
    "0000011000",
    "0000001000",
    "00001100111",
    "00001101000",
    "00001101100",
    "00000110111",
    "00000101000",
    "00000010111",
    "00000011000",
    "000011001010",
    "000011001011",
    "000011001100",
    "000011001101",
    "000001101000",
    "000001101001",
    "000001101010",
    "000001101011",
    "000011010010",
    "000011010011",
    "000011010100",
    "000011010101",
    "000011010110",
    "000011010111",
    "000001101100",
    "000001101101",
    "000011011010",
    "000011011011",
    "000001010100",
    "000001010101",
    "000001010110",
    "000001010111",
    "000001100100",
    "000001100101",
    "000001010010",
    "000001010011",
    "000000100100",
    "000000110111",
    "000000111000",
    "000000100111",
    "000000101000",
    "000001011000",
    "000001011001",
    "000000101011",
    "000000101100",
    "000001011010",
    "000001100110",
    "000001100111",
];

/// Black make-up codes, run lengths 64, 128, … 1728.
const MAKEUP_BLACK: [&str; 27] = [
    "0000001111",
    "000011001000",
    "000011001001",
    "000001011011",
    "000000110011",
    "000000110100",
    "000000110101",
    "0000001101100",
    "0000001101101",
    "0000001001010",
    "0000001001011",
    "0000001001100",
    "0000001001101",
    "0000001110010",
    "0000001110011",
    "0000001110100",
    "0000001110101",
    "0000001110110",
    "0000001110111",
    "0000001010010",
    "0000001010011",
    "0000001010100",
    "0000001010101",
    "0000001011010",
    "0000001011011",
    "0000001100100",
    "0000001100101",
];

/// Extended make-up codes (both colors), run lengths 1792, 1856, … 2560.
const MAKEUP_EXT: [&str; 13] = [
    "00000001000",
    "00000001100",
    "00000001101",
    "000000010010",
    "000000010011",
    "000000010100",
    "000000010101",
    "000000010110",
    "000000010111",
    "000000011100",
    "000000011101",
    "000000011110",
    "000000011111",
];

/// Enters `code` (as written in T.4, first bit first) into the `bits`-bit
/// table `t`: every index starting with those bits.
fn enter(t: &mut [Ent], bits: u32, code: &str, st: St, param: u16) {
    let width = code.len() as u32;
    let value = u32::from_str_radix(code, 2).expect("table code");
    let shift = bits - width;
    for i in value << shift..(value + 1) << shift {
        t[i as usize] = Ent {
            st,
            width: width as u8,
            param,
        };
    }
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut main = [NULL_ENT; 128];
        let modes: [(&str, St, u16); 11] = [
            ("0001", St::Pass, 0),
            ("001", St::Horiz, 0),
            ("1", St::V0, 0),
            ("011", St::VR, 1),
            ("000011", St::VR, 2),
            ("0000011", St::VR, 3),
            ("010", St::VL, 1),
            ("000010", St::VL, 2),
            ("0000010", St::VL, 3),
            ("0000001", St::Ext, 0),
            ("0000000", St::Eol, 0),
        ];
        for (code, st, param) in modes {
            enter(&mut main, 7, code, st, param);
        }
        let mut white = vec![NULL_ENT; 1 << 12];
        let mut black = vec![NULL_ENT; 1 << 13];
        for (t, bits, term, makeup, st_term, st_makeup) in [
            (
                &mut white,
                12,
                &TERM_WHITE,
                &MAKEUP_WHITE,
                St::TermW,
                St::MakeUpW,
            ),
            (
                &mut black,
                13,
                &TERM_BLACK,
                &MAKEUP_BLACK,
                St::TermB,
                St::MakeUpB,
            ),
        ] {
            for (i, code) in makeup.iter().enumerate() {
                enter(t, bits, code, st_makeup, 64 * (i as u16 + 1));
            }
            for (i, code) in MAKEUP_EXT.iter().enumerate() {
                enter(t, bits, code, St::MakeUp, 1792 + 64 * i as u16);
            }
            for (i, code) in term.iter().enumerate() {
                enter(t, bits, code, st_term, i as u16);
            }
            enter(t, bits, "00000000000", St::Eol, 0);
        }
        Tables { main, white, black }
    })
}

// ---------------------------------------------------------------------
// Bits.

/// The most of a Group 3 strip kept in memory for a restart (see
/// [`RowDecoder::sync_eol`]) when the input cannot seek: a dense text page
/// of 7200×5600 takes about 0.6 MB.
/// (Small in tests, to test it.)
const RECORD_LIMIT: usize = if cfg!(test) { 1 << 16 } else { 4 << 20 };

fn seek_to<R: Seek>(r: &mut R, pos: u64) -> io::Result<()> {
    r.seek(SeekFrom::Start(pos)).map(|_| ())
}

/// The input as bits, first bit first, with libtiff's end-of-data rule:
/// asking for n bits when fewer are left pads them with zero bits, and the
/// data has ended only when not one bit (real or padding) is left.
struct Bits<R> {
    src: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// The input has no more bytes.
    ended: bool,
    /// Every byte read so far, kept while a restart may come (Group 3),
    /// up to [`RECORD_LIMIT`].
    record: Option<Vec<u8>>,
    /// A restart needs more than was recorded.
    record_lost: bool,
    /// How to go back to the input's first byte (`start`) instead of
    /// recording it, for seekable input.
    rewind: Option<fn(&mut R, u64) -> io::Result<()>>,
    start: u64,
    /// Bytes to read again before the input's next ones, after a restart.
    replay: Vec<u8>,
    replay_pos: usize,
    lsb_first: bool,
    /// The next `avail` bits, left-aligned; the bits below are zero.
    acc: u64,
    avail: u32,
}

impl<R: Read> Bits<R> {
    fn new(src: R, lsb_first: bool) -> Bits<R> {
        Bits {
            src,
            buf: vec![0; 8192].into_boxed_slice(),
            pos: 0,
            len: 0,
            ended: false,
            record: None,
            record_lost: false,
            rewind: None,
            start: 0,
            replay: Vec::new(),
            replay_pos: 0,
            lsb_first,
            acc: 0,
            avail: 0,
        }
    }

    #[cold]
    fn read_more(&mut self) -> io::Result<()> {
        if self.replay_pos < self.replay.len() {
            let n = (self.replay.len() - self.replay_pos).min(self.buf.len());
            self.buf[..n].copy_from_slice(&self.replay[self.replay_pos..self.replay_pos + n]);
            self.replay_pos += n;
            self.pos = 0;
            self.len = n;
            return Ok(());
        }
        loop {
            match self.src.read(&mut self.buf) {
                Ok(0) => {
                    self.ended = true;
                    return Ok(());
                }
                Ok(n) => {
                    if let Some(r) = &mut self.record {
                        if r.len() + n > RECORD_LIMIT {
                            self.record = None;
                            self.record_lost = true;
                        } else {
                            r.extend_from_slice(&self.buf[..n]);
                        }
                    }
                    self.pos = 0;
                    self.len = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        if let Some(word) = self.buf.get(self.pos..self.pos + 8) {
            // Eight bytes at once; as many whole ones as fit are kept.
            let mut w = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            if self.lsb_first {
                w = w.reverse_bits().swap_bytes();
            }
            if self.pos + 8 <= self.len {
                let take = (64 - self.avail) / 8;
                let avail = self.avail + 8 * take;
                self.acc |= w >> self.avail;
                if avail < 64 {
                    self.acc &= !(u64::MAX >> avail);
                }
                self.avail = avail;
                self.pos += take as usize;
                return Ok(());
            }
        }
        while self.avail <= 56 {
            if self.pos == self.len {
                if self.ended {
                    return Ok(());
                }
                self.read_more()?;
                continue;
            }
            let mut b = self.buf[self.pos];
            self.pos += 1;
            if self.lsb_first {
                b = b.reverse_bits();
            }
            self.acc |= u64::from(b) << (56 - self.avail);
            self.avail += 8;
        }
        Ok(())
    }

    /// Keeps what is read for [`Self::restart`]: by seeking back if
    /// `seekable`, else by recording it.
    fn keep_start(&mut self, seekable: Option<fn(&mut R, u64) -> io::Result<()>>, start: u64) {
        self.rewind = seekable;
        self.start = start;
        if seekable.is_none() {
            self.record = Some(Vec::new());
        }
    }

    /// Goes back to the first bit of the input, and stops keeping it:
    /// false when it was not kept (more than [`RECORD_LIMIT`] read).
    fn restart(&mut self) -> io::Result<bool> {
        if let Some(rewind) = self.rewind.take() {
            rewind(&mut self.src, self.start)?;
        } else if self.record_lost {
            return Ok(false);
        } else {
            self.replay = self.record.take().unwrap_or_default();
        }
        self.replay_pos = 0;
        self.pos = 0;
        self.len = 0;
        self.ended = false;
        self.acc = 0;
        self.avail = 0;
        Ok(true)
    }

    /// Makes `n` (≤ 16) bits available: false when the data has ended with
    /// no bit left.
    #[inline]
    fn need(&mut self, n: u32) -> io::Result<bool> {
        if self.avail < n {
            self.refill()?;
            if self.avail < n {
                if self.avail == 0 {
                    return Ok(false);
                }
                self.avail = n;
            }
        }
        Ok(true)
    }

    /// The next `n` (1..=16) bits; `need(n)` first.
    #[inline]
    fn peek(&self, n: u32) -> u32 {
        (self.acc >> (64 - n)) as u32
    }

    /// Drops `n` (≤ available) bits.
    #[inline]
    fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.avail);
        self.acc <<= n;
        self.avail -= n;
    }
}

// ---------------------------------------------------------------------
// Rows.

/// The run arrays are full: libtiff's "Buffer overflow" (fails the strip).
struct Overflow;

/// How decoding a row's codes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The row is decoded (or mended after a bad code or an EOL).
    Done,
    /// The data ended (the row is mended as far as decoded).
    Eof,
}

enum Fail {
    Overflow,
    Io(io::Error),
}

impl From<Overflow> for Fail {
    fn from(_: Overflow) -> Fail {
        Fail::Overflow
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// The decoding state of one row: libtiff's `a0`, `RunLength`, `pa` (next
/// slot in the row's runs), `b1` and `pb` (next slot in the reference
/// runs). Positions are `i32` with wrapping arithmetic, as in libtiff.
struct Cursor {
    a0: i32,
    run_length: i32,
    pa: usize,
    b1: i32,
    pb: usize,
}

/// Decodes a strip row by row, for callers that pull rows (a streaming
/// TIFF decoder); [`decode`] is this with a callback.
pub struct RowDecoder<R> {
    bits: Bits<R>,
    coding: Coding,
    width: u32,
    rows: u32,
    /// Rows decoded so far.
    line: u32,
    finished: bool,
    /// Runs of the row being decoded, white first, alternating (libtiff's
    /// `curruns`), and of the previous row for 2-D coding (`refruns`,
    /// empty for 1-D). Both hold `nruns` entries and are never cleared
    /// between rows, as in libtiff.
    cur: Vec<u32>,
    refr: Vec<u32>,
    /// `cur` and `refr` were swapped an odd number of times.
    swapped: bool,
    /// An EOL's 11 zero bits were read at the end of the last row (its
    /// final 1 is still to come).
    eol_seen: bool,
    /// Group 3 data is decoded as having no EOLs (after a restart).
    no_eol: bool,
    row: Vec<u8>,
}

impl<R: Read> RowDecoder<R> {
    /// A decoder of `rows` rows from `input`. Group 3 input is kept as
    /// read, up to 4 MiB, in case libtiff's restart is needed (see
    /// [`Self::new_seekable`]).
    pub fn new(input: R, params: &Params, rows: u32) -> Result<RowDecoder<R>, CcittError> {
        Self::with_start(input, params, rows, None, 0)
    }

    fn with_start(
        input: R,
        params: &Params,
        rows: u32,
        seekable: Option<fn(&mut R, u64) -> io::Result<()>>,
        start: u64,
    ) -> Result<RowDecoder<R>, CcittError> {
        let coding = params.coding;
        // libtiff keeps `a0` and the width in an `int`.
        if params.width == 0 || params.width > i32::MAX as u32 - 64 {
            return Err(CcittError::Invalid {
                coding: coding.name(),
                row: 1,
                why: "the width is 0 or too large",
            });
        }
        let two_d = matches!(coding, Coding::Group4 | Coding::Group3 { two_d: true, .. });
        // libtiff's run array size: width + 1 rounded up to 32, doubled
        // for 2-D coding.
        let mut nruns = (params.width as usize + 1).div_ceil(32) * 32;
        if two_d {
            nruns *= 2;
        }
        let cur = vec![0; nruns];
        let mut refr = Vec::new();
        if two_d {
            // The reference line above the first row is white.
            refr = vec![0; nruns];
            refr[0] = params.width;
        }
        let mut bits = Bits::new(input, params.lsb_first);
        if matches!(coding, Coding::Group3 { .. }) {
            bits.keep_start(seekable, start);
        }
        Ok(RowDecoder {
            bits,
            coding,
            width: params.width,
            rows,
            line: 0,
            finished: false,
            cur,
            refr,
            swapped: false,
            eol_seen: false,
            no_eol: false,
            row: vec![0; (params.width as usize).div_ceil(8)],
        })
    }

    /// A decoder of the same image's next strip or tile (`rows` rows from
    /// `input`), keeping what libtiff keeps between them: its run arrays
    /// and, for Group 3, whether the data is taken to have no EOLs.
    pub fn next_strip<R2: Read>(self, input: R2, rows: u32) -> RowDecoder<R2> {
        self.next_strip_with_start(input, rows, None, 0)
    }

    fn next_strip_with_start<R2: Read>(
        self,
        input: R2,
        rows: u32,
        seekable: Option<fn(&mut R2, u64) -> io::Result<()>>,
        start: u64,
    ) -> RowDecoder<R2> {
        let RowDecoder {
            bits,
            coding,
            width,
            mut cur,
            mut refr,
            swapped,
            no_eol,
            row,
            ..
        } = self;
        // libtiff starts each strip with its first run array as the row's
        // and the second as the reference, white.
        if swapped {
            std::mem::swap(&mut cur, &mut refr);
        }
        if !refr.is_empty() {
            refr[0] = width;
            refr[1] = 0;
        }
        let mut bits = Bits::new(input, bits.lsb_first);
        if matches!(coding, Coding::Group3 { .. }) && !no_eol {
            bits.keep_start(seekable, start);
        }
        RowDecoder {
            bits,
            coding,
            width,
            rows,
            line: 0,
            finished: false,
            cur,
            refr,
            swapped: false,
            eol_seen: false,
            no_eol,
            row,
        }
    }

    /// The next row (⌈width/8⌉ bytes, black = 1), or `None` after the last
    /// one (before `rows` rows when Group 4 data ends early: see
    /// [`decode`]).
    pub fn next_row(&mut self) -> Result<Option<&[u8]>, CcittError> {
        if self.finished || self.line >= self.rows {
            return Ok(None);
        }
        let last = match self.decode_row() {
            Ok(last) => last,
            Err(e) => {
                self.finished = true;
                return Err(e);
            }
        };
        self.line += 1;
        if last {
            self.finished = true;
        }
        Ok(Some(&self.row))
    }

    fn lastx(&self) -> i32 {
        self.width as i32
    }

    fn truncated(&self) -> CcittError {
        CcittError::Truncated {
            coding: self.coding.name(),
            row: self.line + 1,
            rows: self.rows,
        }
    }

    fn fail(&self, f: Fail) -> CcittError {
        match f {
            Fail::Overflow => CcittError::Invalid {
                coding: self.coding.name(),
                row: self.line + 1,
                why: "more color changes in a row than libtiff has room for",
            },
            Fail::Io(e) => CcittError::Io(e),
        }
    }

    /// Decodes one row into `self.row`; true when it is the last one
    /// there will be (Group 4 data ended early).
    fn decode_row(&mut self) -> Result<bool, CcittError> {
        let mut c = Cursor {
            a0: 0,
            run_length: 0,
            pa: 0,
            b1: 0,
            pb: 0,
        };
        match self.coding {
            Coding::ModifiedHuffman => {
                match self.expand_1d(&mut c).map_err(|f| self.fail(f))? {
                    Flow::Done => {}
                    Flow::Eof => return Err(self.truncated()),
                }
                self.fill(c.pa);
                // Each row starts on a byte boundary.
                let n = self.bits.avail % 8;
                self.bits.consume(n);
                Ok(false)
            }
            Coding::Group3 { two_d, .. } => {
                if !self.sync_eol()? {
                    return Err(self.truncated());
                }
                let is_1d = if two_d {
                    if !self.bits.need(1)? {
                        return Err(self.truncated());
                    }
                    let tag = self.bits.peek(1);
                    self.bits.consume(1);
                    c.b1 = self.refr[0] as i32;
                    c.pb = 1;
                    tag == 1
                } else {
                    true
                };
                let flow = if is_1d {
                    self.expand_1d(&mut c)
                } else {
                    self.expand_2d(&mut c)
                };
                match flow.map_err(|f| self.fail(f))? {
                    Flow::Done => {}
                    Flow::Eof => return Err(self.truncated()),
                }
                self.fill(c.pa);
                if two_d {
                    if c.pa < self.cur.len() {
                        // The imaginary change ending the reference line.
                        self.cur[c.pa] = 0;
                    }
                    std::mem::swap(&mut self.cur, &mut self.refr);
                    self.swapped = !self.swapped;
                }
                Ok(false)
            }
            Coding::Group4 => {
                c.b1 = self.refr[0] as i32;
                c.pb = 1;
                let flow = self.expand_2d(&mut c).map_err(|f| self.fail(f))?;
                if flow == Flow::Eof || self.eol_seen {
                    // End of the data, or an EOL (the EOFB): this row as
                    // far as it got, and no more.
                    if self.line == 0 {
                        return Err(self.truncated());
                    }
                    self.fill(c.pa);
                    return Ok(true);
                }
                self.fill(c.pa);
                if c.pa >= self.cur.len() {
                    return Err(self.fail(Fail::Overflow));
                }
                self.cur[c.pa] = 0;
                std::mem::swap(&mut self.cur, &mut self.refr);
                self.swapped = !self.swapped;
                Ok(false)
            }
        }
    }

    /// Skips to just past the next EOL (any bits up to 11 zero bits, more
    /// zero bits, a 1), or past the rest of one whose 11 zero bits ended
    /// the last row. False when the data ends first.
    ///
    /// When the data ends after an EOL's zero bits, libtiff takes the data
    /// to have no EOLs and decodes the strip again from its first bit,
    /// the rows it gives then following those already given: so does this
    /// (which is why Group 3 input is recorded).
    fn sync_eol(&mut self) -> Result<bool, CcittError> {
        if self.no_eol {
            return Ok(true);
        }
        if !self.eol_seen {
            loop {
                if !self.bits.need(11)? {
                    return Ok(false);
                }
                if self.bits.peek(11) == 0 {
                    break;
                }
                self.bits.consume(1);
            }
        }
        loop {
            if !self.bits.need(8)? {
                if !self.bits.restart()? {
                    return Err(CcittError::Unsupported {
                        coding: self.coding.name(),
                        why: "the data ends where an EOL should be, and libtiff would \
                              then decode the strip again from its start, which is \
                              more than this keeps (4 MiB)",
                    });
                }
                self.no_eol = true;
                self.eol_seen = false;
                return Ok(true);
            }
            if self.bits.peek(8) != 0 {
                break;
            }
            self.bits.consume(8);
        }
        while self.bits.peek(1) == 0 {
            self.bits.consume(1);
        }
        self.bits.consume(1);
        self.eol_seen = false;
        Ok(true)
    }

    /// Ends the current run (libtiff's SETVALUE).
    #[inline]
    fn set_value(&mut self, c: &mut Cursor, x: i32) -> Result<(), Overflow> {
        let slot = self.cur.get_mut(c.pa).ok_or(Overflow)?;
        *slot = c.run_length.wrapping_add(x) as u32;
        c.pa += 1;
        c.a0 = c.a0.wrapping_add(x);
        c.run_length = 0;
        Ok(())
    }

    /// Mends a row whose runs do not add up to the width: drops the runs
    /// that cross its end, and makes the rest of the row white.
    fn cleanup_runs(&mut self, c: &mut Cursor) -> Result<(), Overflow> {
        let lastx = self.lastx();
        if c.run_length != 0 {
            self.set_value(c, 0)?;
        }
        if c.a0 != lastx {
            while c.a0 > lastx && c.pa > 0 {
                c.pa -= 1;
                c.a0 = c.a0.wrapping_sub(self.cur[c.pa] as i32);
            }
            if c.a0 < lastx {
                if c.a0 < 0 {
                    c.a0 = 0;
                }
                if c.pa & 1 == 1 {
                    self.set_value(c, 0)?;
                }
                self.set_value(c, lastx - c.a0)?;
            } else if c.a0 > lastx {
                self.set_value(c, lastx)?;
                self.set_value(c, 0)?;
            }
        }
        Ok(())
    }

    /// Reads one run of `white` or black (make-up codes, then a
    /// terminating code) in horizontal mode: false for a bad code.
    #[inline]
    fn horizontal_run(&mut self, c: &mut Cursor, white: bool) -> Result<Option<bool>, Fail> {
        let t = tables();
        let (bits, table, term, makeup) = if white {
            (12, &t.white, St::TermW, St::MakeUpW)
        } else {
            (13, &t.black, St::TermB, St::MakeUpB)
        };
        loop {
            if !self.bits.need(bits)? {
                return Ok(None);
            }
            let e = table[self.bits.peek(bits) as usize];
            self.bits.consume(u32::from(e.width));
            if e.st == term {
                self.set_value(c, i32::from(e.param))?;
                return Ok(Some(true));
            } else if e.st == makeup || e.st == St::MakeUp {
                c.a0 = c.a0.wrapping_add(i32::from(e.param));
                c.run_length = c.run_length.wrapping_add(i32::from(e.param));
            } else {
                return Ok(Some(false));
            }
        }
    }

    /// Decodes a 1-D coded row (libtiff's EXPAND1D).
    fn expand_1d(&mut self, c: &mut Cursor) -> Result<Flow, Fail> {
        let t = tables();
        let lastx = self.lastx();
        'row: loop {
            for white in [true, false] {
                let (bits, table, term, makeup) = if white {
                    (12, &t.white, St::TermW, St::MakeUpW)
                } else {
                    (13, &t.black, St::TermB, St::MakeUpB)
                };
                loop {
                    if !self.bits.need(bits)? {
                        self.cleanup_runs(c)?;
                        return Ok(Flow::Eof);
                    }
                    let e = table[self.bits.peek(bits) as usize];
                    self.bits.consume(u32::from(e.width));
                    if e.st == term {
                        self.set_value(c, i32::from(e.param))?;
                        break;
                    } else if e.st == makeup || e.st == St::MakeUp {
                        c.a0 = c.a0.wrapping_add(i32::from(e.param));
                        c.run_length = c.run_length.wrapping_add(i32::from(e.param));
                    } else {
                        if e.st == St::Eol {
                            self.eol_seen = true;
                        }
                        // An EOL, or a bad code word: the row ends here.
                        break 'row;
                    }
                }
                if c.a0 >= lastx {
                    break 'row;
                }
            }
            // A white and a black run of 0 change nothing: drop them.
            if c.pa >= 2 && self.cur[c.pa - 1] == 0 && self.cur[c.pa - 2] == 0 {
                c.pa -= 2;
            }
        }
        self.cleanup_runs(c)?;
        Ok(Flow::Done)
    }

    /// Moves `b1` to the first change on the reference line right of `a0`
    /// and of the color opposite to a0's (libtiff's CHECK_b1).
    #[inline]
    fn check_b1(&self, c: &mut Cursor) -> Result<(), Overflow> {
        if c.pa != 0 {
            let lastx = self.lastx();
            while c.b1 <= c.a0 && c.b1 < lastx {
                if c.pb + 1 >= self.refr.len() {
                    return Err(Overflow);
                }
                c.b1 =
                    c.b1.wrapping_add(self.refr[c.pb] as i32)
                        .wrapping_add(self.refr[c.pb + 1] as i32);
                c.pb += 2;
            }
        }
        Ok(())
    }

    /// Decodes a 2-D coded row (libtiff's EXPAND2D).
    fn expand_2d(&mut self, c: &mut Cursor) -> Result<Flow, Fail> {
        let t = tables();
        let lastx = self.lastx();
        let nruns = self.cur.len();
        while c.a0 < lastx {
            if c.pa >= nruns {
                return Err(Fail::Overflow);
            }
            if !self.bits.need(7)? {
                self.cleanup_runs(c)?;
                return Ok(Flow::Eof);
            }
            let e = t.main[self.bits.peek(7) as usize];
            self.bits.consume(u32::from(e.width));
            match e.st {
                St::Pass => {
                    self.check_b1(c)?;
                    if c.pb + 1 >= nruns {
                        return Err(Fail::Overflow);
                    }
                    c.b1 = c.b1.wrapping_add(self.refr[c.pb] as i32);
                    c.pb += 1;
                    c.run_length = c.run_length.wrapping_add(c.b1.wrapping_sub(c.a0));
                    c.a0 = c.b1;
                    c.b1 = c.b1.wrapping_add(self.refr[c.pb] as i32);
                    c.pb += 1;
                }
                St::Horiz => {
                    // The first run has a0's color: white after an even
                    // number of changes.
                    let white_first = c.pa & 1 == 0;
                    for white in [white_first, !white_first] {
                        match self.horizontal_run(c, white)? {
                            Some(true) => {}
                            // A bad code word: the row ends here.
                            Some(false) => return self.eol_2d(c),
                            None => {
                                self.cleanup_runs(c)?;
                                return Ok(Flow::Eof);
                            }
                        }
                    }
                    self.check_b1(c)?;
                }
                St::V0 | St::VR => {
                    self.check_b1(c)?;
                    let d = c.b1.wrapping_sub(c.a0);
                    let d = if e.st == St::VR {
                        d.wrapping_add(i32::from(e.param))
                    } else {
                        d
                    };
                    self.set_value(c, d)?;
                    if c.pb >= nruns {
                        return Err(Fail::Overflow);
                    }
                    c.b1 = c.b1.wrapping_add(self.refr[c.pb] as i32);
                    c.pb += 1;
                }
                St::VL => {
                    self.check_b1(c)?;
                    let p = i32::from(e.param);
                    if c.b1 < c.a0.wrapping_add(p) {
                        // a1 left of a0: a bad code word.
                        return self.eol_2d(c);
                    }
                    self.set_value(c, c.b1.wrapping_sub(c.a0).wrapping_sub(p))?;
                    // libtiff steps back without a check; at the start of
                    // the reference runs that would read before them.
                    if c.pb == 0 {
                        return Err(Fail::Overflow);
                    }
                    c.pb -= 1;
                    c.b1 = c.b1.wrapping_sub(self.refr[c.pb] as i32);
                }
                St::Ext | St::Eol => {
                    // An uncompressed-mode extension (not supported: the
                    // rest of the row is white) or an EOL.
                    self.cur[c.pa] = lastx.wrapping_sub(c.a0) as u32;
                    c.pa += 1;
                    if e.st == St::Eol {
                        if !self.bits.need(4)? {
                            self.cleanup_runs(c)?;
                            return Ok(Flow::Eof);
                        }
                        self.bits.consume(4);
                        self.eol_seen = true;
                    }
                    return self.eol_2d(c);
                }
                // Every 7-bit pattern is a mode code.
                St::Null | St::TermW | St::TermB | St::MakeUpW | St::MakeUpB | St::MakeUp => {
                    return self.eol_2d(c);
                }
            }
        }
        if c.run_length != 0 {
            if c.run_length.wrapping_add(c.a0) < lastx {
                // A pass ended the row short of its end: a V0 must follow.
                if !self.bits.need(1)? {
                    self.cleanup_runs(c)?;
                    return Ok(Flow::Eof);
                }
                if self.bits.peek(1) == 0 {
                    return self.eol_2d(c);
                }
                self.bits.consume(1);
            }
            self.set_value(c, 0)?;
        }
        self.eol_2d(c)
    }

    fn eol_2d(&mut self, c: &mut Cursor) -> Result<Flow, Fail> {
        self.cleanup_runs(c)?;
        Ok(Flow::Done)
    }

    /// Paints the row from its runs `cur[..pa]`, clipping (in place, as
    /// the next row's reference) any run past the width.
    fn fill(&mut self, pa: usize) {
        let lastx = self.width;
        let mut n = pa;
        if n & 1 == 1 {
            // An odd number of runs ends white… then black of length 0.
            if let Some(slot) = self.cur.get_mut(n) {
                *slot = 0;
            }
            n += 1;
        }
        self.row.fill(0);
        let n = n.min(self.cur.len());
        // A run past the width is cut to end there (x ≤ lastx throughout).
        let clip = |x: u32, run: &mut u32| {
            if *run > lastx - x {
                *run = lastx - x;
            }
            *run
        };
        let mut x: u32 = 0;
        for pair in self.cur[..n].chunks_exact_mut(2) {
            x += clip(x, &mut pair[0]);
            let black = clip(x, &mut pair[1]);
            if black != 0 {
                set_bits(&mut self.row, x as usize, black as usize);
                x += black;
            }
        }
    }
}

impl<R: Read + Seek> RowDecoder<R> {
    /// A decoder of `rows` rows from `input`, from its current position,
    /// which seeks back there if libtiff's restart of Group 3 data is
    /// needed instead of keeping what it reads.
    pub fn new_seekable(
        mut input: R,
        params: &Params,
        rows: u32,
    ) -> Result<RowDecoder<R>, CcittError> {
        let start = input.stream_position()?;
        Self::with_start(input, params, rows, Some(seek_to::<R>), start)
    }
}

impl<R: Read> RowDecoder<R> {
    /// [`Self::next_strip`] for seekable input (see
    /// [`RowDecoder::new_seekable`]).
    pub fn next_strip_seekable<R2: Read + Seek>(
        self,
        mut input: R2,
        rows: u32,
    ) -> Result<RowDecoder<R2>, CcittError> {
        let start = input.stream_position()?;
        Ok(self.next_strip_with_start(input, rows, Some(seek_to::<R2>), start))
    }
}

/// Sets bits `x .. x + n` of a row packed most significant bit first.
#[inline]
fn set_bits(row: &mut [u8], x: usize, n: usize) {
    let end = x + n;
    let (first, last) = (x / 8, (end - 1) / 8);
    let head = 0xffu8 >> (x % 8);
    let tail = 0xffu8 << (7 - (end - 1) % 8);
    if first == last {
        row[first] |= head & tail;
    } else {
        row[first] |= head;
        let middle = &mut row[first + 1..last];
        if middle.len() <= 8 {
            // Short runs are most; a call to memset costs more.
            for b in middle {
                *b = 0xff;
            }
        } else {
            middle.fill(0xff);
        }
        row[last] |= tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tests need of a TIFF file holding one CCITT image (a
    /// minimal reading of its first directory, not the TIFF decoder).
    struct Tiff {
        width: u32,
        height: u32,
        rows_per_strip: u32,
        min_is_white: bool,
        params: Params,
        strips: Vec<(usize, usize)>,
    }

    fn parse_tiff(f: &[u8]) -> Tiff {
        let le = &f[..2] == b"II";
        let u16_at = |o: usize| {
            let b = [f[o], f[o + 1]];
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let u32_at = |o: usize| {
            let b = [f[o], f[o + 1], f[o + 2], f[o + 3]];
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let ifd = u32_at(4) as usize;
        let mut tags = std::collections::HashMap::new();
        for i in 0..u16_at(ifd) as usize {
            let e = ifd + 2 + 12 * i;
            let (tag, typ, count) = (u16_at(e), u16_at(e + 2), u32_at(e + 4) as usize);
            let size = if typ == 3 { 2 } else { 4 };
            let at = if size * count <= 4 {
                e + 8
            } else {
                u32_at(e + 8) as usize
            };
            let values: Vec<u32> = (0..count)
                .map(|k| {
                    if typ == 3 {
                        u32::from(u16_at(at + 2 * k))
                    } else {
                        u32_at(at + 4 * k)
                    }
                })
                .collect();
            tags.insert(tag, values);
        }
        let one = |t: u16, d: u32| tags.get(&t).map_or(d, |v| v[0]);
        let (width, height) = (one(256, 0), one(257, 0));
        let coding = match one(259, 1) {
            2 => Coding::ModifiedHuffman,
            3 => Coding::Group3 {
                two_d: one(292, 0) & 1 == 1,
                fill_bits: one(292, 0) & 4 == 4,
            },
            4 => Coding::Group4,
            c => panic!("compression {c}"),
        };
        let strips = tags[&273]
            .iter()
            .zip(&tags[&279])
            .map(|(&o, &n)| (o as usize, n as usize))
            .collect();
        Tiff {
            width,
            height,
            rows_per_strip: one(278, u32::MAX).min(height),
            min_is_white: one(262, 0) == 0,
            params: Params {
                width,
                coding,
                lsb_first: one(266, 1) == 2,
            },
            strips,
        }
    }

    /// The file decoded as Pillow's `convert('1').tobytes()` would give it
    /// (1 = white, rows of ⌈width/8⌉ bytes), rows a strip leaves out kept
    /// as Pillow's strip buffer has them.
    fn pillow_bits(file: &[u8], seekable: bool) -> Result<Vec<u8>, CcittError> {
        let t = parse_tiff(file);
        let stride = (t.width as usize).div_ceil(8);
        let per = t.rows_per_strip as usize;
        let mut strip_buf = vec![0u8; stride * per];
        let mut out = Vec::new();
        let mut rd: Option<RowDecoder<io::Cursor<&[u8]>>> = None;
        for (s, &(off, len)) in t.strips.iter().enumerate() {
            let rows = (t.height as usize - s * per).min(per);
            let Some(data) = file.get(off..off + len) else {
                return Err(CcittError::Stopped("strip past the end".into()));
            };
            let data = io::Cursor::new(data);
            let next = match (rd.take(), seekable) {
                (None, false) => RowDecoder::new(data, &t.params, rows as u32)?,
                (None, true) => RowDecoder::new_seekable(data, &t.params, rows as u32)?,
                (Some(prev), false) => prev.next_strip(data, rows as u32),
                (Some(prev), true) => prev.next_strip_seekable(data, rows as u32)?,
            };
            let rd = rd.insert(next);
            let mut y = 0;
            while let Some(row) = rd.next_row()? {
                strip_buf[y * stride..(y + 1) * stride].copy_from_slice(row);
                y += 1;
            }
            out.extend_from_slice(&strip_buf[..rows * stride]);
        }
        // Samples to Pillow's bits: MinIsWhite samples are 1 for black.
        let pad = (8 - t.width % 8) % 8;
        for row in out.chunks_mut(stride) {
            for b in row.iter_mut() {
                if t.min_is_white {
                    *b = !*b;
                }
            }
            *row.last_mut().unwrap() &= 0xffu8 << pad;
        }
        Ok(out)
    }

    fn rows_of(
        data: &[u8],
        coding: Coding,
        width: u32,
        rows: u32,
    ) -> Result<Vec<Vec<u8>>, CcittError> {
        let params = Params {
            width,
            coding,
            lsb_first: false,
        };
        let mut out = Vec::new();
        let n = decode(data, &params, rows, |row| {
            out.push(row.to_vec());
            Ok(())
        })?;
        assert_eq!(n as usize, out.len());
        Ok(out)
    }

    /// The vectors of tests/data/formats/ccitt (made by its
    /// make_vectors.py with Pillow and libtiff-tools): each `NAME.tif`
    /// decodes to what Pillow made of it, `NAME.bits`, or fails where
    /// Pillow failed (`NAME.err`).
    #[test]
    fn decodes_as_pillow_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats/ccitt");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_none_or(|e| e != "tif") {
                continue;
            }
            for seekable in [false, true] {
                let mine = pillow_bits(&std::fs::read(&p).unwrap(), seekable);
                if p.with_extension("err").exists() {
                    assert!(mine.is_err(), "{}: Pillow fails, this decodes", p.display());
                } else {
                    let expected = std::fs::read(p.with_extension("bits")).unwrap();
                    match mine {
                        Ok(bits) => assert!(bits == expected, "{}: not Pillow's bits", p.display()),
                        Err(e) => panic!("{}: {e}", p.display()),
                    }
                }
            }
            checked += 1;
        }
        assert!(checked >= 36, "only {checked} vectors");
    }

    // Hand-made bit strings (codes from T.4 tables 1–3 and T.6 table 1).

    #[test]
    fn modified_huffman_rows_start_on_bytes() {
        // Row 1: white 3 (1000), black 5 (0011); row 2: white 8 (10011),
        // then 3 fill bits.
        let rows = rows_of(&[0b1000_0011, 0b1001_1000], Coding::ModifiedHuffman, 8, 2).unwrap();
        assert_eq!(rows, [[0b0001_1111], [0]]);
    }

    #[test]
    fn a_run_past_the_row_end_is_dropped_and_the_rest_is_white() {
        // Width 6: white 2 (0111), black 7 (00011): the black run crosses
        // the end, so libtiff drops it and the row is white after 2.
        let rows = rows_of(&[0b0111_0001, 0b1000_0000], Coding::ModifiedHuffman, 6, 1).unwrap();
        assert_eq!(rows, [[0]]);
        // Width 9 (two bytes a row, pad bits 0): white 1 (000111), black 8
        // (000101) ends exactly at the end.
        let rows = rows_of(&[0b0001_1100, 0b0101_0000], Coding::ModifiedHuffman, 9, 1).unwrap();
        assert_eq!(rows, [[0b0111_1111, 0b1000_0000]]);
    }

    #[test]
    fn group3_rows_follow_eols() {
        // EOL (000000000001), white 4 (1011), black 4 (011); EOL, white 8
        // (10011); then RTC, which is not read.
        let bits = "000000000001 1011 011 000000000001 10011 000000000001 000000000001";
        let bytes = pack(bits);
        let g3 = Coding::Group3 {
            two_d: false,
            fill_bits: false,
        };
        let rows = rows_of(&bytes, g3, 8, 2).unwrap();
        assert_eq!(rows, [[0b0000_1111], [0]]);
    }

    #[test]
    fn group4_ending_early_keeps_the_rows_decoded() {
        // Two white rows (V0 each: "1"), then the data ends: the third row
        // reads padding zeros as an EOL, and is given white, and decoding
        // stops there.
        let rows = rows_of(&[0b1100_0000], Coding::Group4, 8, 5).unwrap();
        assert_eq!(rows, [[0], [0], [0]]);
        // With not even one row, it fails (as libtiff's strip read does).
        assert!(matches!(
            rows_of(&[], Coding::Group4, 8, 5),
            Err(CcittError::Truncated {
                row: 1,
                rows: 5,
                ..
            })
        ));
    }

    #[test]
    fn group4_vertical_and_horizontal_modes() {
        // Width 8. Row 1: horizontal (001), white 2 (0111), black 3 (10),
        // V0 (1) to b1 = 8. Row 2 against it: VR1 (011) puts a1 at 3,
        // VL1 (010) the next change at 4, V0 at 8.
        let bytes = pack("001 0111 10 1 011 010 1");
        let rows = rows_of(&bytes, Coding::Group4, 8, 2).unwrap();
        assert_eq!(rows, [[0b0011_1000], [0b0001_0000]]);
    }

    #[test]
    fn fill_order_2_reverses_each_byte() {
        let params = Params {
            width: 8,
            coding: Coding::ModifiedHuffman,
            lsb_first: true,
        };
        let data = [0b1100_0001u8, 0b0001_1001];
        let mut rows = Vec::new();
        decode(&data[..], &params, 2, |r| {
            rows.push(r.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, [[0b0001_1111], [0]]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        // The black code of row 1 is read with 9 zero bits of padding past
        // the end; after the byte alignment 8 are left, which row 2 reads
        // as an EOL (a white row): only row 3 finds no bit at all.
        let e = rows_of(&[0b1000_0011], Coding::ModifiedHuffman, 8, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CCITT Modified Huffman data ends early, in row 3 of 3"
        );
        let e = rows_of(&[], Coding::Group4, 0, 1).unwrap_err();
        assert!(e.to_string().contains("width is 0"), "{e}");
        let params = Params {
            width: 8,
            coding: Coding::Group4,
            lsb_first: false,
        };
        let e = decode(&[0xff_u8][..], &params, 4, |_| {
            Err(CcittError::Stopped("enough".into()))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "enough");
    }

    #[test]
    fn a_group3_restart_past_what_is_kept_is_refused() {
        // EOL, a white row of 8 (10011), then bits without 11 zeros in a
        // row past the limit, then zeros: row 2's EOL search finds the
        // zeros, the data ends after them, and the strip would have to be
        // decoded again from its start.
        let mut data = pack("000000000001 10011 111");
        data.resize(RECORD_LIMIT + 100, 0xff);
        data.extend([0, 0]);
        let g3 = Coding::Group3 {
            two_d: false,
            fill_bits: false,
        };
        let e = rows_of(&data, g3, 8, 2).unwrap_err();
        assert!(matches!(e, CcittError::Unsupported { .. }), "{e}");
        // Seekable input goes back to its start instead: the second row is
        // the first one again, decoded without EOLs (the EOL's zero bits
        // then read as an EOL: a white row).
        let params = Params {
            width: 8,
            coding: g3,
            lsb_first: false,
        };
        let mut rd = RowDecoder::new_seekable(io::Cursor::new(&data), &params, 2).unwrap();
        assert_eq!(rd.next_row().unwrap(), Some(&[0u8][..]));
        assert_eq!(rd.next_row().unwrap(), Some(&[0u8][..]));
        assert_eq!(rd.next_row().unwrap(), None);
    }

    /// Bytes from a string of 0s and 1s (spaces ignored), zero-padded.
    fn pack(bits: &str) -> Vec<u8> {
        let bits: Vec<u8> = bits
            .bytes()
            .filter(|b| *b != b' ')
            .map(|b| b - b'0')
            .collect();
        bits.chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, b)| acc | b << (7 - i))
            })
            .collect()
    }

    /// Times decoding `$CCITT_SPEED_FILE` (every strip, rows counted and
    /// dropped), best of 10: run with `--release`.
    #[test]
    #[ignore]
    fn decode_speed() {
        // Run by hand with a file; `cargo test -- --ignored` (CI) skips it.
        let Ok(path) = std::env::var("CCITT_SPEED_FILE") else {
            println!("skipped: set CCITT_SPEED_FILE to a CCITT TIFF to time");
            return;
        };
        let file = std::fs::read(path).unwrap();
        let t = parse_tiff(&file);
        let mut best = std::time::Duration::MAX;
        let mut black = 0u64;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            black = 0;
            for (s, &(off, len)) in t.strips.iter().enumerate() {
                let rows = (t.height - s as u32 * t.rows_per_strip).min(t.rows_per_strip);
                decode(&file[off..off + len], &t.params, rows, |row| {
                    black += u64::from(row[0].count_ones());
                    Ok(())
                })
                .unwrap();
            }
            best = best.min(start.elapsed());
        }
        println!(
            "{}x{}: {:.2} ms ({black})",
            t.width,
            t.height,
            best.as_secs_f64() * 1e3
        );
    }

    /// Compares every `NAME.tif` in `$CCITT_DIFF_DIR` with Pillow's
    /// decoding of it (`NAME.bits`, or `NAME.err` when Pillow fails):
    /// the differential check of the module's comment, run by hand.
    #[test]
    #[ignore]
    fn differential_dir() {
        // Run by hand on generated files; `cargo test -- --ignored` (CI)
        // skips it.
        let Ok(dir) = std::env::var("CCITT_DIFF_DIR") else {
            println!("skipped: set CCITT_DIFF_DIR to a folder of NAME.tif and NAME.bits");
            return;
        };
        let (mut same, mut both_fail, mut bad) = (0, 0, Vec::new());
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tif"))
            .collect();
        names.sort();
        for p in names {
            let file = std::fs::read(&p).unwrap();
            let mine = pillow_bits(&file, true);
            let bits = std::fs::read(p.with_extension("bits"));
            match (mine, bits) {
                (Ok(m), Ok(b)) if m == b => same += 1,
                (Err(_), Err(_)) => both_fail += 1,
                (m, b) => bad.push(format!(
                    "{}: mine {:?}, Pillow {}",
                    p.display(),
                    m.map(|m| match &b {
                        Ok(b) => (m.len(), m.iter().zip(b).position(|(x, y)| x != y)),
                        Err(_) => (m.len(), None),
                    }),
                    b.map_or("error".into(), |b| b.len().to_string())
                )),
            }
        }
        println!("{same} same, {both_fail} failed both, {} differ", bad.len());
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
