//! Why a BMP could not be read: one [`BmpError`] variant per kind of
//! trouble, and for refused headers a typed reason ([`Unsupported`],
//! [`InvalidHeader`]) whose fields are the values found. The wording of
//! each message is what users, logs and quarantine notes read; nothing
//! here decides what the daemon does with it beyond
//! [`BmpError::is_bad_input`].

use std::io;

use super::Compression;

/// Why a BMP could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BmpError {
    /// Not a BMP: what the file looks like instead.
    #[error("not a BMP file{0}")]
    NotBmp(crate::magic::Magic),
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
