//! The `.rle` format (design §1): a 4-byte header (width, height as u16 LE)
//! followed by the runs of every row, top row first, each row cut into
//! chunks of 127 pixels and each chunk written as its runs,
//! `(bit << 7) | count`.
//!
//! Rows are handled as *packed bit rows*: `u64` words, first pixel in the
//! most significant bit of word 0, bit 1 = white. Bits past the width are
//! ignored on input and zero on output. This module does no I/O beyond the
//! `Read`/`Write` handed to it and knows nothing of BMP files.

use std::io::{self, Read, Write};

/// Longest run a byte can hold, and the chunk length rows are cut into.
pub const CHUNK: usize = 127;
/// Largest width or height the 16-bit header can carry.
pub const MAX_DIMENSION: u32 = u16::MAX as u32;

/// Number of `u64` words a packed row of `width` pixels occupies.
pub fn words_for(width: usize) -> usize {
    width.div_ceil(64)
}

/// Image size as stored in the 4-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u16,
    pub height: u16,
}

impl Header {
    /// The header bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        let [w0, w1] = self.width.to_le_bytes();
        let [h0, h1] = self.height.to_le_bytes();
        [w0, w1, h0, h1]
    }
}

/// A structural problem in `.rle` data, with the byte offset where it was
/// found.
#[derive(Debug, thiserror::Error)]
pub enum RleError {
    #[error("truncated header: {got} of 4 bytes")]
    ShortHeader { got: usize },
    #[error("invalid header: width and height must be at least 1 (got {width}x{height})")]
    EmptyImage { width: u16, height: u16 },
    #[error("corrupt run at byte {offset}: count 0")]
    ZeroCount { offset: u64 },
    #[error(
        "corrupt run at byte {offset}: count {count} overruns the chunk ({left} pixels left in it)"
    )]
    Overrun { offset: u64, count: u8, left: usize },
    #[error("truncated data at byte {offset}: row {row} of {height} is incomplete")]
    Truncated {
        offset: u64,
        row: usize,
        height: u16,
    },
    #[error("trailing data at byte {offset}: the image ends there")]
    Trailing { offset: u64 },
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

/// Appends the runs of one packed row of `width` pixels to `out`.
pub fn encode_row(row: &[u64], width: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // At most one byte per pixel.
    out.resize(start + width, 0);
    let n = RowLayout::new(width).encode_into(row, &mut out[start..]);
    out.truncate(start + n);
}

/// Which run finder a [`RowLayout`] uses: the portable one, the AVX2 one
/// (`rle/avx2.rs`: starts found 256 pixels at a time, taken with
/// `tzcnt`/`blsr`, the first two of a word without a branch), or the
/// AVX-512 one (`rle/x86.rs`: VBMI2 `vpcompressb` writes the runs of 64
/// pixels at once) where the CPU has it. All write the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFinder {
    /// Word at a time, one start after the other; runs everywhere, and is
    /// the definition the others are tested against.
    Portable,
    /// x86-64 AVX2, BMI1/2, POPCNT, LZCNT (docs/performance.md, "The
    /// 1-bit page": AMD before Zen 4, Intel before Ice Lake).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// x86-64 AVX-512 (F, BW, VBMI, VBMI2), GFNI, BMI1/2, POPCNT, LZCNT.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

impl RunFinder {
    /// The fastest run finder this CPU runs (detected once).
    pub fn detect() -> RunFinder {
        *RunFinder::available()
            .last()
            .expect("BUG: the portable finder is always available")
    }

    /// Every run finder this CPU runs, slowest first: the portable one,
    /// then each SIMD one the CPU has (detected once).
    pub fn available() -> Vec<RunFinder> {
        static ALL: std::sync::OnceLock<Vec<RunFinder>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            #[allow(unused_mut)]
            let mut all = vec![RunFinder::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if avx2::available() {
                    all.push(RunFinder::Avx2);
                }
                if x86::available() {
                    all.push(RunFinder::Avx512);
                }
            }
            all
        })
        .clone()
    }
}

/// Per-width masks for the run finder: forced run starts at the chunk
/// boundaries, and the valid bits of each word.
#[derive(Debug, Clone)]
pub struct RowLayout {
    width: usize,
    /// Bits set where a chunk starts (every 127 pixels, not at 0).
    boundaries: Vec<u64>,
    /// Bits set for pixels inside the width.
    valid: Vec<u64>,
    finder: RunFinder,
    /// For [`RunFinder::Avx2`] and [`RunFinder::Avx512`]: `boundaries` and `valid` pixel-first
    /// (pixel p at bit p % 64), `valid` without pixel 0, both padded with
    /// zero words to a multiple of 8.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    forced_lsb: Vec<u64>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    valid_lsb: Vec<u64>,
}

impl RowLayout {
    /// The layout of a `width`-pixel row (1..=65535), with the fastest run
    /// finder this CPU runs.
    pub fn new(width: usize) -> RowLayout {
        RowLayout::with_finder(width, RunFinder::detect())
    }

    /// The layout of a `width`-pixel row with a given run finder (for
    /// tests and benches). Panics unless `finder` is one of
    /// [`RunFinder::available`]: the others would run instructions this
    /// CPU lacks.
    pub fn with_finder(width: usize, finder: RunFinder) -> RowLayout {
        assert!(
            RunFinder::available().contains(&finder),
            "{finder:?} does not run on this CPU"
        );
        let words = words_for(width);
        let mut boundaries = vec![0u64; words];
        for p in (CHUNK..width).step_by(CHUNK) {
            boundaries[p / 64] |= 1 << (63 - p % 64);
        }
        let mut valid = vec![u64::MAX; words];
        if let Some(last) = valid.last_mut() {
            *last = tail_mask(width);
        }
        let (forced_lsb, valid_lsb) = match finder {
            RunFinder::Portable => (Vec::new(), Vec::new()),
            RunFinder::Avx2 | RunFinder::Avx512 => {
                let padded = words.next_multiple_of(8);
                let lsb = |masks: &[u64]| -> Vec<u64> {
                    let mut v: Vec<u64> = masks.iter().map(|w| w.reverse_bits()).collect();
                    v.resize(padded, 0);
                    v
                };
                let mut valid_lsb = lsb(&valid);
                if let Some(first) = valid_lsb.first_mut() {
                    *first &= !1;
                }
                (lsb(&boundaries), valid_lsb)
            }
        };
        RowLayout {
            width,
            boundaries,
            valid,
            finder,
            forced_lsb,
            valid_lsb,
        }
    }

    /// The run finder this layout uses.
    pub fn finder(&self) -> RunFinder {
        self.finder
    }

    /// Encodes one packed row into `out` (at least `width` bytes); returns
    /// the number of bytes written (see `RowLayout::encode_words`). Bytes
    /// of `out` past that count may be overwritten too.
    pub fn encode_into(&self, row: &[u64], out: &mut [u8]) -> usize {
        let row = &row[..self.valid.len()];
        #[cfg(target_arch = "x86_64")]
        if let Some(n) = self.encode_simd(row.as_ptr().cast(), row.len() * 8, true, out) {
            return n;
        }
        self.encode_words(|i| row[i], out)
    }

    /// [`RowLayout::encode_into`] for a row as a 1-bit image stores it
    /// (a BMP's row: bytes, first pixel in the most significant bit, 1 =
    /// white; at least `width.div_ceil(8)` bytes, padding ignored), read
    /// straight into the run finder, without a packed copy.
    pub fn encode_bytes_into(&self, bytes: &[u8], out: &mut [u8]) -> usize {
        assert!(bytes.len() * 8 >= self.width);
        #[cfg(target_arch = "x86_64")]
        if let Some(n) = self.encode_simd(bytes.as_ptr(), bytes.len(), false, out) {
            return n;
        }
        let words = self.valid.len();
        let full = (bytes.len() / 8).min(words);
        // The last word, when the row's bytes end inside it.
        let mut be = [0u8; 8];
        let rest = &bytes[full * 8..];
        let n = rest.len().min(8);
        be[..n].copy_from_slice(&rest[..n]);
        let tail = u64::from_be_bytes(be);
        let head = &bytes[..full * 8];
        self.encode_words(
            |i| match head.get(i * 8..i * 8 + 8) {
                Some(b) => u64::from_be_bytes(b.try_into().expect("BUG: 8 bytes")),
                None => tail,
            },
            out,
        )
    }

    /// The row at `src` (`len` readable bytes: packed words with `swap`,
    /// a BMP's bytes without) through this layout's SIMD run finder, or
    /// `None` for the portable one.
    #[cfg(target_arch = "x86_64")]
    fn encode_simd(&self, src: *const u8, len: usize, swap: bool, out: &mut [u8]) -> Option<usize> {
        if self.width == 0 {
            return None;
        }
        assert!(out.len() >= self.width && len * 8 >= self.width);
        let (forced, valid) = (&self.forced_lsb, &self.valid_lsb);
        match self.finder {
            RunFinder::Portable => None,
            // SAFETY: `Avx2` is only chosen when `avx2::available()`
            // (`with_finder` checks `RunFinder::available`); the callers
            // hand over `len` readable bytes, `out` holds the width
            // (asserted), and `with_finder` built the masks padded.
            RunFinder::Avx2 => {
                Some(unsafe { avx2::encode(src, len, swap, self.width, forced, valid, out) })
            }
            // SAFETY: as above, with `x86::available()`.
            RunFinder::Avx512 => {
                Some(unsafe { x86::encode(src, len, swap, self.width, forced, valid, out) })
            }
        }
    }

    /// The run finder of [`RowLayout::encode_into`] over the row's packed
    /// words (at least as many as the width needs; the rest are ignored).
    ///
    /// Works a word at a time: `w ^ (w >> 1 | previous bit)` has a 1
    /// wherever a run starts; chunk boundaries are or-ed in as forced
    /// starts; each start, found from the top, ends the previous run.
    /// (Writing through a slice index keeps the length in a register,
    /// unlike `Vec::push`.)
    ///
    /// The starts are taken by their bit index k (`ilog2`, one `bsr`) and
    /// cleared with `s ^= 1 << k`: the chain from one start to the next is
    /// those two instructions, where counting leading zeros and clearing
    /// `MSB >> j` took four. On rows of short runs (dithered tone) this
    /// measured 1.5× faster; on a text page, the same.
    #[inline]
    fn encode_words(&self, word: impl Fn(usize) -> u64, out: &mut [u8]) -> usize {
        let width = self.width;
        assert!(out.len() >= width);
        let mut n = 0;
        let mut run_start = 0usize;
        // The bit "before" pixel 0 equals it, so no start is seen there.
        let mut prev = word(0) >> 63;
        let mut w = 0;
        for (i, (&forced, &valid)) in self.boundaries.iter().zip(&self.valid).enumerate() {
            w = word(i);
            // Bit k of this word is pixel `top - k`.
            let top = i * 64 + 63;
            // Bit k of `before` is the pixel before bit k's: the colour of
            // the run that a start at bit k ends.
            let before = (w >> 1) | (prev << 63);
            let mut starts = ((w ^ before) | forced) & valid;
            while starts != 0 {
                let k = starts.ilog2();
                let p = top - k as usize;
                // Runs are at most 127 long: boundaries are forced starts.
                out[n] = ((((before >> k) & 1) as u8) << 7) | (p - run_start) as u8;
                n += 1;
                run_start = p;
                starts ^= 1 << k;
            }
            prev = w & 1;
        }
        let last_bit = (w >> (63 - (width - 1) % 64)) as u8 & 1;
        out[n] = (last_bit << 7) | (width - run_start) as u8;
        n + 1
    }
}

/// Mask of the valid bits in the last word of a `width`-pixel row.
pub fn tail_mask(width: usize) -> u64 {
    match width % 64 {
        0 => u64::MAX,
        r => !(u64::MAX >> r),
    }
}

/// Writes whole images: header first, then rows top to bottom.
pub struct Encoder<W: Write> {
    out: W,
    layout: RowLayout,
    rows_left: usize,
    buf: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    /// Starts an image; writes the header.
    pub fn new(mut out: W, header: Header) -> io::Result<Self> {
        out.write_all(&header.to_bytes())?;
        let width = usize::from(header.width);
        Ok(Encoder {
            out,
            layout: RowLayout::new(width),
            rows_left: usize::from(header.height),
            // The worst case is one byte per pixel.
            buf: vec![0; width],
        })
    }

    /// Encodes and writes the next row (top to bottom).
    pub fn write_row(&mut self, row: &[u64]) -> io::Result<()> {
        assert!(self.rows_left > 0, "BUG: more rows than the header says");
        self.rows_left -= 1;
        let n = self.layout.encode_into(row, &mut self.buf);
        self.out.write_all(&self.buf[..n])
    }

    /// Encodes and writes the next row given as a 1-bit image stores it
    /// (see [`RowLayout::encode_bytes_into`]).
    pub fn write_row_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        assert!(self.rows_left > 0, "BUG: more rows than the header says");
        self.rows_left -= 1;
        let n = self.layout.encode_bytes_into(bytes, &mut self.buf);
        self.out.write_all(&self.buf[..n])
    }

    /// Writes `rows` rows already encoded (by [`RowLayout::encode_into`]
    /// with this image's width) as `bytes`.
    pub fn write_encoded(&mut self, bytes: &[u8], rows: usize) -> io::Result<()> {
        assert!(
            rows <= self.rows_left,
            "BUG: more rows than the header says"
        );
        self.rows_left -= rows;
        self.out.write_all(bytes)
    }

    /// Ends the image and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        assert_eq!(self.rows_left, 0, "BUG: fewer rows than the header says");
        Ok(self.out)
    }
}

/// Encodes a whole image held as packed rows (`words_for(width)` words per
/// row) into a new buffer. Convenience for tests and small images.
pub fn encode_image(header: Header, rows: &[u64]) -> Vec<u8> {
    let wpr = words_for(usize::from(header.width));
    let mut out = header.to_bytes().to_vec();
    for row in rows.chunks(wpr).take(usize::from(header.height)) {
        encode_row(row, usize::from(header.width), &mut out);
    }
    out
}

/// Strict streaming decoder: yields packed rows top to bottom and rejects
/// anything that is not exactly one image.
pub struct Decoder<R: Read> {
    input: R,
    header: Header,
    row: usize,
    /// Bytes consumed so far (for error offsets).
    offset: u64,
    buf: Box<[u8]>,
    buf_pos: usize,
    buf_len: usize,
}

impl<R: Read> Decoder<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R) -> Result<Self, RleError> {
        let mut head = [0u8; 4];
        let got = read_full(&mut input, &mut head)
            .map_err(|source| RleError::Io { offset: 0, source })?;
        if got < 4 {
            return Err(RleError::ShortHeader { got });
        }
        let header = Header {
            width: u16::from_le_bytes([head[0], head[1]]),
            height: u16::from_le_bytes([head[2], head[3]]),
        };
        if header.width == 0 || header.height == 0 {
            return Err(RleError::EmptyImage {
                width: header.width,
                height: header.height,
            });
        }
        Ok(Decoder {
            input,
            header,
            row: 0,
            offset: 4,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            buf_pos: 0,
            buf_len: 0,
        })
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// The reader, after the image (every byte it delivered was consumed
    /// once [`Decoder::next_row`] has returned `Ok(false)`).
    pub fn into_inner(self) -> R {
        self.input
    }

    fn fill(&mut self) -> Result<bool, RleError> {
        loop {
            match self.input.read(&mut self.buf) {
                Ok(n) => {
                    self.buf_pos = 0;
                    self.buf_len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(RleError::Io {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
    }

    /// Decodes the next row into `row` (at least `words_for(width)` words;
    /// bits past the width are cleared). Returns `Ok(false)` once all rows
    /// have been read and the input is checked to end there.
    pub fn next_row(&mut self, row: &mut [u64]) -> Result<bool, RleError> {
        let words = &mut row[..words_for(usize::from(self.header.width))];
        words.fill(0);
        self.read_row(|pos, count| set_bits(words, pos, count))
    }

    /// Checks the next row's runs without producing its pixels (the same
    /// strictness as [`Decoder::next_row`], much cheaper).
    pub fn skip_row(&mut self) -> Result<bool, RleError> {
        self.read_row(|_, _| {})
    }

    /// Reads one row's runs, calling `white(pos, count)` for white runs.
    #[inline]
    fn read_row(&mut self, mut white: impl FnMut(usize, usize)) -> Result<bool, RleError> {
        let width = usize::from(self.header.width);
        if self.row == usize::from(self.header.height) {
            if self.buf_pos < self.buf_len || self.fill()? {
                return Err(RleError::Trailing {
                    offset: self.offset,
                });
            }
            return Ok(false);
        }
        let mut pos = 0;
        let mut chunk_end = CHUNK.min(width);
        while pos < width {
            if self.buf_pos == self.buf_len && !self.fill()? {
                return Err(RleError::Truncated {
                    offset: self.offset,
                    row: self.row,
                    height: self.header.height,
                });
            }
            let byte = self.buf[self.buf_pos];
            let count = usize::from(byte & 0x7f);
            if count == 0 {
                return Err(RleError::ZeroCount {
                    offset: self.offset,
                });
            }
            if count > chunk_end - pos {
                return Err(RleError::Overrun {
                    offset: self.offset,
                    count: byte & 0x7f,
                    left: chunk_end - pos,
                });
            }
            if byte & 0x80 != 0 {
                white(pos, count);
            }
            self.buf_pos += 1;
            self.offset += 1;
            pos += count;
            if pos == chunk_end {
                chunk_end = (chunk_end + CHUNK).min(width);
            }
        }
        self.row += 1;
        Ok(true)
    }
}

/// Sets bits `pos..pos + count` of a packed row, a word at a time.
#[inline]
fn set_bits(words: &mut [u64], pos: usize, count: usize) {
    let mut pos = pos;
    let end = pos + count;
    while pos < end {
        let idx = pos / 64;
        let off = pos % 64;
        let n = (end - pos).min(64 - off);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << (64 - off - n)
        };
        words[idx] |= mask;
        pos += n;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decodes a whole `.rle` image into its header and packed rows.
pub fn decode_image(data: &[u8]) -> Result<(Header, Vec<u64>), RleError> {
    let mut dec = Decoder::new(data)?;
    let header = dec.header();
    let wpr = words_for(usize::from(header.width));
    let mut rows = vec![0u64; wpr * usize::from(header.height)];
    for row in rows.chunks_mut(wpr) {
        dec.next_row(row)?;
    }
    let mut scratch = vec![0u64; wpr];
    dec.next_row(&mut scratch)?;
    Ok((header, rows))
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;
