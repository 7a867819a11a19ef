//! BMP files (design §3): header parsing and validation, with the mode
//! Pillow would open the file as ([`BmpInfo::parse`], `header.rs`), a
//! streaming row reader that hands out rows top row first, as stored
//! ([`Rows`], `rows.rs`), the one reader of the RLE8/RLE4 opcode grammar
//! that decoding and the completion check share ([`RleReader`],
//! `opcodes.rs`), and the 1-bit writer used by `decompress`
//! ([`write_1bit`], `writer.rs`); here, the [`Source`] the reading goes
//! through and the errors ([`BmpError`]). Turning rows into bits (and into
//! exact colours, [`crate::bilevel::rgba_row`]) is [`crate::bilevel`]'s.
//!
//! Written by hand rather than with the `image`/`bmp` crates because those
//! decode whole images into memory (O(width × height)), refuse several
//! variants design §2–3 requires (2 bpp, arbitrary bitfields, OS/2 v2, RLE
//! deltas and early ends) and do not expose the palette-level facts Pillow's
//! mode choice depends on. Nothing here allocates a size read from a header
//! before that size has been checked against the file and the pixel limit.

mod header;
mod opcodes;
mod rows;
mod writer;

pub use header::{BmpInfo, Compression, Masks, PillowMode};
pub use opcodes::{RleOp, RleReader};
pub use rows::{Blocks, RowData, Rows};
pub use writer::write_1bit;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Something BMP bytes can be read from at arbitrary offsets, so rows can be
/// read in display order without holding the whole image. `Sync` so that
/// large images can be read on one thread while another converts.
pub trait Source: Sync {
    /// Total length in bytes.
    fn byte_len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Reads as much as is there, up to `buf.len()`; returns the count.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Hints that `len` bytes at `offset` will be read soon, so that they
    /// can be fetched ahead. Only speed depends on it; the default does
    /// nothing.
    fn will_need(&self, _offset: u64, _len: u64) {}
}

impl Source for File {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match FileExt::read_at(self, &mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
    #[cfg(target_os = "linux")]
    fn will_need(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: no pointers; the descriptor is this open file's. The
        // result is ignored: a refused hint changes nothing but speed.
        unsafe {
            libc::posix_fadvise(self.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
        }
    }
}

impl Source for [u8] {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let n = Source::read_at(self, buf, offset)?;
        if n < buf.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(<[u8]>::len(self));
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl<T: Source + ?Sized> Source for &T {
    fn byte_len(&self) -> io::Result<u64> {
        (**self).byte_len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn will_need(&self, offset: u64, len: u64) {
        (**self).will_need(offset, len)
    }
}

/// Why a BMP could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BmpError {
    #[error("not a BMP file{0}")]
    NotBmp(&'static str),
    #[error("unsupported BMP variant: {0}")]
    Unsupported(Unsupported),
    #[error("invalid BMP header: {0}")]
    Invalid(InvalidHeader),
    #[error(
        "image too large: {width}x{height} exceeds the .rle format's limit of 65535 pixels per side"
    )]
    TooLargeForFormat { width: u64, height: u64 },
    #[error(
        "image too large: {width}x{height} = {pixels} pixels exceeds the configured limit of {limit}"
    )]
    PixelLimit {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    #[error("truncated BMP: {what} needs {needed} bytes, the file has {len}")]
    Truncated {
        what: &'static str,
        needed: u64,
        len: u64,
    },
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

/// A BMP variant that is valid but not decoded (design §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// A `BA` signature: an OS/2 bitmap array holding several images.
    #[error("OS/2 bitmap array")]
    Os2BitmapArray,
    /// An info header of a size that is no known layout.
    #[error("info header size {size}")]
    InfoHeaderSize { size: u32 },
    /// Compression code 3 in an OS/2 2.x or 1-bit file.
    #[error("Huffman 1D compression")]
    Huffman1D,
    /// Compression code 4 with 24 bits per pixel.
    #[error("RLE24 compression")]
    Rle24,
    /// Compression code 4 (`BI_JPEG`).
    #[error("embedded JPEG")]
    EmbeddedJpeg,
    /// Compression code 5 (`BI_PNG`).
    #[error("embedded PNG")]
    EmbeddedPng,
    /// Compression codes 11 to 13.
    #[error("CMYK")]
    Cmyk { compression: u32 },
    /// A bit count of 64.
    #[error("64 bits per pixel")]
    Bits64,
    /// A bitfield mask whose set bits are not one run.
    #[error("non-contiguous {channel} mask {mask:#x}")]
    NonContiguousMask { channel: &'static str, mask: u32 },
}

/// A header field that no valid BMP has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    /// A compression code that means nothing.
    #[error("unknown compression {compression}")]
    UnknownCompression { compression: u32 },
    /// A bit count other than 1, 2, 4, 8, 16, 24, 32 (or 64).
    #[error("bit count {bits}")]
    BitCount { bits: u16 },
    /// RLE8 without 8 bits per pixel, or RLE4 without 4.
    #[error("{compression} with {bits} bits per pixel")]
    RleBitCount { compression: Compression, bits: u16 },
    /// Bitfield masks on a palette image.
    #[error("bitfields with {bits} bits per pixel")]
    BitfieldsBitCount { bits: u16 },
    /// A width of zero or less.
    #[error("width {width}")]
    Width { width: i64 },
    /// A height of zero, or `i32::MIN` (whose magnitude is no `i32`).
    #[error("height {height}")]
    Height { height: i64 },
    /// A bitfield mask with bits above the pixel's `bits`.
    #[error("{channel} mask {mask:#x} does not fit in {bits} bits")]
    MaskTooWide {
        channel: &'static str,
        mask: u32,
        bits: u16,
    },
    /// More palette entries declared (`biClrUsed`) than any BMP can have.
    #[error("palette size {colors_used}")]
    PaletteSizeExceeded { colors_used: u64 },
}

impl BmpError {
    /// True when the cause is the input itself (bad, unsupported, too large),
    /// false for I/O trouble that may pass.
    pub fn is_bad_input(&self) -> bool {
        match self {
            BmpError::Io(e) => e.kind() == io::ErrorKind::UnexpectedEof,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_reads_as_the_wording_users_and_tests_match() {
        use InvalidHeader as I;
        use Unsupported as U;
        let cases: &[(BmpError, &str)] = &[
            (
                BmpError::Unsupported(U::Os2BitmapArray),
                "unsupported BMP variant: OS/2 bitmap array",
            ),
            (
                BmpError::Unsupported(U::InfoHeaderSize { size: 200 }),
                "unsupported BMP variant: info header size 200",
            ),
            (
                BmpError::Unsupported(U::Huffman1D),
                "unsupported BMP variant: Huffman 1D compression",
            ),
            (
                BmpError::Unsupported(U::Rle24),
                "unsupported BMP variant: RLE24 compression",
            ),
            (
                BmpError::Unsupported(U::EmbeddedJpeg),
                "unsupported BMP variant: embedded JPEG",
            ),
            (
                BmpError::Unsupported(U::EmbeddedPng),
                "unsupported BMP variant: embedded PNG",
            ),
            (
                BmpError::Unsupported(U::Cmyk { compression: 12 }),
                "unsupported BMP variant: CMYK",
            ),
            (
                BmpError::Unsupported(U::Bits64),
                "unsupported BMP variant: 64 bits per pixel",
            ),
            (
                BmpError::Unsupported(U::NonContiguousMask {
                    channel: "green",
                    mask: 0x0f0f,
                }),
                "unsupported BMP variant: non-contiguous green mask 0xf0f",
            ),
            (
                BmpError::Invalid(I::UnknownCompression { compression: 9 }),
                "invalid BMP header: unknown compression 9",
            ),
            (
                BmpError::Invalid(I::BitCount { bits: 7 }),
                "invalid BMP header: bit count 7",
            ),
            (
                BmpError::Invalid(I::RleBitCount {
                    compression: Compression::Rle8,
                    bits: 4,
                }),
                "invalid BMP header: RLE8 with 4 bits per pixel",
            ),
            (
                BmpError::Invalid(I::RleBitCount {
                    compression: Compression::Rle4,
                    bits: 8,
                }),
                "invalid BMP header: RLE4 with 8 bits per pixel",
            ),
            (
                BmpError::Invalid(I::BitfieldsBitCount { bits: 8 }),
                "invalid BMP header: bitfields with 8 bits per pixel",
            ),
            (
                BmpError::Invalid(I::Width { width: -3 }),
                "invalid BMP header: width -3",
            ),
            (
                BmpError::Invalid(I::Height { height: 0 }),
                "invalid BMP header: height 0",
            ),
            (
                BmpError::Invalid(I::MaskTooWide {
                    channel: "red",
                    mask: 0x1_0000,
                    bits: 16,
                }),
                "invalid BMP header: red mask 0x10000 does not fit in 16 bits",
            ),
            (
                BmpError::Invalid(I::PaletteSizeExceeded { colors_used: 70000 }),
                "invalid BMP header: palette size 70000",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), *text);
            assert!(error.is_bad_input(), "{text}");
        }
    }

    /// An INFO header (40 bytes) after the file header, with the given
    /// width, height, bit count, compression code and colour count.
    fn header(width: i32, height: i32, bits: u16, compression: u32, colors: u32) -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&54u32.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&width.to_le_bytes());
        b.extend_from_slice(&height.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&compression.to_le_bytes());
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&colors.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.resize(4096, 0);
        b
    }

    #[test]
    fn header_fields_no_bmp_has_are_refused_with_the_field_and_its_value() {
        let parse = |b: Vec<u8>| BmpInfo::parse(&b.as_slice(), 1 << 20).unwrap_err();
        let cases = [
            (
                header(4, 4, 8, 9, 0),
                "invalid BMP header: unknown compression 9",
            ),
            (header(4, 4, 7, 0, 0), "invalid BMP header: bit count 7"),
            (
                header(4, 4, 4, 1, 0),
                "invalid BMP header: RLE8 with 4 bits per pixel",
            ),
            (
                header(4, 4, 8, 2, 0),
                "invalid BMP header: RLE4 with 8 bits per pixel",
            ),
            (
                header(4, 4, 8, 3, 0),
                "invalid BMP header: bitfields with 8 bits per pixel",
            ),
            (header(0, 4, 8, 0, 0), "invalid BMP header: width 0"),
            (header(4, 0, 8, 0, 0), "invalid BMP header: height 0"),
            (
                header(4, 4, 8, 0, 70000),
                "invalid BMP header: palette size 70000",
            ),
            (
                header(4, 4, 8, 5, 0),
                "unsupported BMP variant: embedded PNG",
            ),
            (
                header(4, 4, 24, 4, 0),
                "unsupported BMP variant: RLE24 compression",
            ),
            (
                header(4, 4, 64, 0, 0),
                "unsupported BMP variant: 64 bits per pixel",
            ),
            (header(4, 4, 32, 12, 0), "unsupported BMP variant: CMYK"),
        ];
        for (bytes, text) in cases {
            assert_eq!(parse(bytes).to_string(), text);
        }
        let mut masks = header(4, 4, 16, 3, 0);
        masks[54..66].copy_from_slice(&[0x00, 0x7c, 0, 0, 0xe0, 0x03, 0, 0, 0x1f, 0, 1, 0]);
        assert_eq!(
            parse(masks).to_string(),
            "invalid BMP header: blue mask 0x1001f does not fit in 16 bits"
        );
        let mut masks = header(4, 4, 16, 3, 0);
        masks[54..66].copy_from_slice(&[0x00, 0x7c, 0, 0, 0xe0, 0x02, 0, 0, 0x1f, 0, 0, 0]);
        assert_eq!(
            parse(masks).to_string(),
            "unsupported BMP variant: non-contiguous green mask 0x2e0"
        );
        assert!(matches!(
            parse(header(4, 4, 8, 9, 0)),
            BmpError::Invalid(InvalidHeader::UnknownCompression { compression: 9 })
        ));
    }
}
