//! One image, BMP in, `.rle` out, streamed row by row: parse the header,
//! read each row, convert it to bits, encode it. Also the inverse check:
//! decode `.rle` bytes and compare them with what was encoded. Works on a
//! [`Source`] and a `Write`; naming, temporary files and fsync belong to the
//! callers.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use xxhash_rust::xxh3::Xxh3;

mod pipeline;

use pipeline::{Alone, PIPELINE_PIXELS, PROBE_ROWS, two_dithering};

use crate::bilevel::{Conversion, Converter};
use crate::bmp::{Blocks, BmpError, BmpInfo, RowData, Rows, Source};
use crate::formats::{self, DecodeError, Decoder, Format, FormatSet};
use crate::rle::{self, Encoder, Header, RleError};

/// Default cap on width × height.
pub const DEFAULT_MAX_PIXELS: u64 = 1_000_000_000;

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub conversion: Conversion,
    /// Images with more pixels are refused before anything is allocated.
    pub max_pixels: u64,
    /// The formats taken; a file of another is refused, saying so.
    pub formats: FormatSet,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            conversion: Conversion::Dither,
            max_pixels: DEFAULT_MAX_PIXELS,
            formats: FormatSet::DECODED,
        }
    }
}

/// What compressing one image produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub width: u32,
    pub height: u32,
    /// Length of the BMP file.
    pub bytes_in: u64,
    /// Length of the `.rle` output.
    pub bytes_out: u64,
    /// Every source pixel was pure black or white and opaque.
    pub lossless: bool,
    /// XXH3 digest of the `.rle` bytes, for [`verify_rle`].
    pub digest: u64,
    /// What the source was.
    pub format: Format,
}

/// Why compressing failed.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error(transparent)]
    Bmp(#[from] BmpError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// No format's magic number: what rlewatch reads, named.
    #[error("{}", if *.empty { "an empty file, not an image" } else {
        "not an image file rlewatch reads (no BMP, TIFF, PNG, PNM or GIF signature)"
    })]
    NotAnImage { empty: bool },
    /// A format left out of `compress.formats`.
    #[error("{0} files are not archived here (compress.formats leaves {0} out)")]
    NotAccepted(Format),
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
}

impl CompressError {
    /// True when the input is at fault (quarantine it), false for I/O
    /// trouble that may pass (retry).
    pub fn is_bad_input(&self) -> bool {
        match self {
            CompressError::Bmp(e) => e.is_bad_input(),
            CompressError::Decode(e) => e.is_bad_input(),
            CompressError::NotAnImage { .. } | CompressError::NotAccepted(_) => true,
            CompressError::Write(_) => false,
        }
    }
}

/// A `Write` that counts and digests what passes through it.
struct Digesting<W> {
    inner: W,
    count: u64,
    hasher: Xxh3,
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A `Read` that counts and digests what passes through it.
struct DigestingReader<R> {
    inner: R,
    count: u64,
    hasher: Xxh3,
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Compresses the image in `src` into `out` (header + runs): a BMP, or
/// any format of [`formats`] but JPEG, known by its first bytes. `out`
/// should be buffered; it is flushed at the end.
pub fn compress(
    src: &(impl Source + ?Sized),
    out: impl Write,
    opts: Options,
) -> Result<Outcome, CompressError> {
    let _active = Active::enter();
    match Format::of(src).map_err(BmpError::Io)? {
        None => Err(not_an_image(src)),
        Some(Format::Jpeg) => Err(jpeg_refused().into()),
        Some(f) if !opts.formats.contains(f) => Err(CompressError::NotAccepted(f)),
        Some(Format::Bmp) => {
            let info = BmpInfo::parse(&src, opts.max_pixels)?;
            compress_parsed(&info, src, out, opts.conversion)
        }
        Some(format) => {
            let src = &src as &dyn Source;
            let mut decoder = formats::open(src, format, opts.max_pixels)?;
            compress_decoded(
                decoder.as_mut(),
                src.byte_len().map_err(BmpError::Io)?,
                out,
                opts.conversion,
            )
        }
    }
}

/// The error for a file that starts as no format does.
fn not_an_image(src: &(impl Source + ?Sized)) -> CompressError {
    match src.byte_len() {
        Ok(0) => CompressError::NotAnImage { empty: true },
        Ok(_) => CompressError::NotAnImage { empty: false },
        Err(e) => CompressError::Bmp(BmpError::Io(e)),
    }
}

/// Why JPEG files are refused (design §2.1; the measurements behind it
/// are in docs/faq.md).
pub fn jpeg_refused() -> DecodeError {
    DecodeError::unsupported(
        Format::Jpeg,
        "JPEG is not archived: a JPEG's pixels depend on the decoder, and the archive must \
         equal the reference's, which decodes with libjpeg-turbo; rlewatch does not link it, \
         and the pure-Rust decoders differ from it by a few levels per pixel, which \
         dithering spreads. Save or scan the page as PNG or TIFF (G4 for black and white)",
    )
}

/// Checks that `src` is an image [`compress`] takes, reading only its
/// header (the one-shot commands check before they pick an output).
pub fn probe(src: &(impl Source + ?Sized), max_pixels: u64) -> Result<Format, CompressError> {
    match Format::of(src).map_err(BmpError::Io)? {
        None => Err(not_an_image(src)),
        Some(Format::Bmp) => {
            BmpInfo::parse(&src, max_pixels)?;
            Ok(Format::Bmp)
        }
        Some(Format::Jpeg) => Err(jpeg_refused().into()),
        Some(format) => {
            formats::open(&src as &dyn Source, format, max_pixels)?;
            Ok(format)
        }
    }
}

/// Compresses the rows of `decoder` (a file of `bytes_in` bytes) into
/// `out`, through the same converter and encoder as a BMP's rows.
pub fn compress_decoded(
    decoder: &mut dyn Decoder,
    bytes_in: u64,
    out: impl Write,
    conversion: Conversion,
) -> Result<Outcome, CompressError> {
    let head = decoder.header().clone();
    let info = head.bmp_info(bytes_in);
    let header = Header {
        width: head.width as u16,
        height: head.height as u16,
    };
    let mut converter = Converter::new(&info, conversion);
    let sink = Digesting {
        inner: out,
        count: 0,
        hasher: Xxh3::new(),
    };
    let mut enc = Encoder::new(sink, header).map_err(CompressError::Write)?;
    let mut bits = vec![0u64; rle::words_for(info.width as usize)];
    let mut rows = 0u32;
    while let Some(row) = decoder.next_row()? {
        encode_row(&mut enc, &mut converter, RowData::Packed(row), &mut bits)?;
        rows += 1;
    }
    if rows != head.height {
        return Err(CompressError::Decode(formats::DecodeError::truncated(
            head.format,
            format!("{rows} of {} rows decoded", head.height),
        )));
    }
    let mut counted = enc.finish().map_err(CompressError::Write)?;
    counted.flush().map_err(CompressError::Write)?;
    Ok(Outcome {
        width: head.width,
        height: head.height,
        bytes_in,
        bytes_out: counted.count,
        lossless: converter.lossless() && decoder.source_pure(),
        digest: counted.hasher.digest(),
        format: head.format,
    })
}

/// Compressions under way in this process ([`compress`] calls), for
/// the choice of the two-thread dither: a process compressing several
/// images at once already keeps its cores busy.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// One compression counted in [`ACTIVE`] while it lives.
struct Active;

impl Active {
    fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// [`compress`] for a header already parsed.
pub fn compress_parsed(
    info: &BmpInfo,
    src: &(impl Source + ?Sized),
    out: impl Write,
    conversion: Conversion,
) -> Result<Outcome, CompressError> {
    let large = u64::from(info.width) * u64::from(info.height) >= PIPELINE_PIXELS;
    // Asked only when the dither would go to two threads: finding the
    // CPUs reads cgroup files, a measurable part of compressing a 1-bit
    // page. Two threads each for every compression under way must fit
    // (the dither's two threads wait on each other: on a core short they
    // take turns, and lose).
    let two_threads = || {
        let active = ACTIVE.load(Ordering::Relaxed).max(1);
        let fits = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2 * active);
        (large && fits).then_some(Alone::WhenCrowded)
    };
    compress_with(info, src, out, conversion, &two_threads)
}

/// [`compress_parsed`], with [`two_dithering`] allowed or not
/// (`two_threads` is asked once, when the probe would switch; `None`:
/// not allowed). It is used for uncompressed images whose rows go
/// through the dither's serial loop, once the first [`PROBE_ROWS`] rows
/// show that loop busy on most pixels:
/// only that loop is long enough for a second thread to matter;
/// thresholding (and 1-bit images) run near memory speed on one thread,
/// and handing blocks across cores measured no faster there.
fn compress_with(
    info: &BmpInfo,
    src: &(impl Source + ?Sized),
    out: impl Write,
    conversion: Conversion,
    two_threads: &dyn Fn() -> Option<Alone>,
) -> Result<Outcome, CompressError> {
    // The header check bounds both sides to 65535.
    let header = Header {
        width: info.width as u16,
        height: info.height as u16,
    };
    let mut converter = Converter::new(info, conversion);
    let sink = Digesting {
        inner: out,
        count: 0,
        hasher: Xxh3::new(),
    };
    let mut enc = Encoder::new(sink, header).map_err(CompressError::Write)?;
    // Probe the first rows on this thread; hand the rest to two threads
    // only if the dither's serial loop has real work (not on a pure
    // black-and-white page, whose quiet spans are skipped: there the
    // hand-offs cost more than they save).
    let mut rows = Rows::new(info, src)?;
    let mut bits = vec![0u64; rle::words_for(info.width as usize)];
    let mut done = 0u32;
    let mut switch = None;
    while let Some(row) = rows.next_row()? {
        encode_row(&mut enc, &mut converter, row, &mut bits)?;
        done += 1;
        if done == PROBE_ROWS && converter.dithers() {
            let busy = converter.serial_pixels() * 2 > u64::from(done) * u64::from(info.width);
            switch = if busy {
                two_threads().zip(Blocks::new(info))
            } else {
                None
            };
            if switch.is_some() {
                break;
            }
        }
    }
    drop(rows);
    if let Some((alone, blocks)) = switch {
        let blocks = blocks.starting_at(done);
        two_dithering(info, src, blocks, done, &mut converter, &mut enc, alone)?;
    }
    let mut counted = enc.finish().map_err(CompressError::Write)?;
    counted.flush().map_err(CompressError::Write)?;
    Ok(Outcome {
        width: info.width,
        height: info.height,
        bytes_in: info.file_len,
        bytes_out: counted.count,
        lossless: converter.lossless(),
        digest: counted.hasher.digest(),
        format: Format::Bmp,
    })
}

/// Why a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("corrupt .rle: {0}")]
    Corrupt(#[from] RleError),
    #[error("size mismatch: the .rle is {got_w}x{got_h}, expected {want_w}x{want_h}")]
    Size {
        got_w: u16,
        got_h: u16,
        want_w: u32,
        want_h: u32,
    },
    #[error("content mismatch: the bytes differ from what was encoded")]
    Content,
}

/// Decodes `.rle` bytes strictly and checks they are exactly the bytes
/// `expected` describes (size, length and digest): the bytes that were
/// encoded, so the pixels they decode to are the pixels that were encoded.
pub fn verify_rle(input: impl Read, expected: &Outcome) -> Result<(), VerifyError> {
    let reader = DigestingReader {
        inner: input,
        count: 0,
        hasher: Xxh3::new(),
    };
    let mut dec = rle::Decoder::new(reader)?;
    let h = dec.header();
    if u32::from(h.width) != expected.width || u32::from(h.height) != expected.height {
        return Err(VerifyError::Size {
            got_w: h.width,
            got_h: h.height,
            want_w: expected.width,
            want_h: expected.height,
        });
    }
    // Every run is checked; the pixels themselves need not be produced:
    // the decoder is deterministic, so equal bytes decode to equal pixels.
    while dec.skip_row()? {}
    let read = dec.into_inner();
    if read.count != expected.bytes_out || read.hasher.digest() != expected.digest {
        return Err(VerifyError::Content);
    }
    Ok(())
}

#[cfg(test)]
mod format_vectors;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiff_vectors;

/// One row into the encoder: a 1-bit row that needs no conversion goes
/// straight to the coder, any other through the converter into `bits`.
fn encode_row<W: Write>(
    enc: &mut Encoder<W>,
    converter: &mut Converter,
    row: RowData<'_>,
    bits: &mut [u64],
) -> Result<(), CompressError> {
    match converter.as_bits(row) {
        Some(bytes) => enc.write_row_bytes(bytes),
        None => {
            converter.row(row, bits);
            enc.write_row(bits)
        }
    }
    .map_err(CompressError::Write)
}
