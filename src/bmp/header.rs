//! BMP header parsing and validation (design §3), one step per part of
//! the file, in the order the file holds them (as image-rs's BMP decoder
//! reads its metadata):
//!
//! 1. the file header: signature, data offset, info header size
//!    (`read_file_header`);
//! 2. the info header, whose size tells its layout: OS/2 1.x core, or
//!    INFO/V2–V5 and OS/2 2.x (`read_info_header`), then its fields
//!    checked: compression and bit count (`pixel_format`), width and
//!    height against the format and the pixel limit (`dimensions`);
//! 3. the bitfield masks (`read_masks`);
//! 4. the palette, which also decides the mode Pillow would open the file
//!    as, since the pixel→bit rule depends on it (`read_palette`,
//!    design §2);
//! 5. the whole against the file's length (`check_pixel_data`).
//!
//! [`BmpInfo::parse`] runs them. Every size read from a header is checked
//! before anything it sizes is allocated.

use super::{BmpError, InvalidHeader, Source, Unsupported};
use crate::magic::Magic;

mod format;
mod palette;

use format::{PixelFormat, Size, dimensions, pixel_format, read_masks};
use palette::read_palette;

/// How the pixel data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed, rows padded to 4 bytes.
    None,
    Rle8,
    Rle4,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Rle8 => "RLE8",
            Compression::Rle4 => "RLE4",
        })
    }
}

/// Where each colour channel sits in a 16/24/32-bit pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masks {
    pub red: u32,
    pub green: u32,
    pub blue: u32,
    /// 0 when the file has no alpha channel.
    pub alpha: u32,
}

/// The image mode Pillow's BMP plugin would pick, which decides the
/// conversion rule (design §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PillowMode {
    /// Bilevel: the palette index is the bit.
    One,
    /// Greyscale palette, dithered.
    L,
    /// Any other palette: thresholded per palette colour, never dithered.
    P,
    /// Direct colour, dithered.
    Rgb,
}

/// Everything needed to read and convert the pixels, validated.
#[derive(Debug, Clone)]
pub struct BmpInfo {
    pub width: u32,
    pub height: u32,
    /// Rows stored top row first (negative height).
    pub top_down: bool,
    pub bits_per_pixel: u16,
    pub compression: Compression,
    /// Channel masks for 16/24/32-bit images.
    pub masks: Option<Masks>,
    /// Palette entries as RGB (at most 256; indices past the end are black).
    pub palette: Vec<[u8; 3]>,
    pub mode: PillowMode,
    /// Offset of the first pixel byte.
    pub data_offset: u64,
    /// Bytes per stored row (uncompressed only).
    pub stride: u64,
    /// File length seen while parsing.
    pub file_len: u64,
}

const FILE_HEADER: u64 = 14;
const MAX_INFO_HEADER: usize = 124;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn invalid(why: InvalidHeader) -> BmpError {
    BmpError::Invalid(why)
}
fn unsupported(what: Unsupported) -> BmpError {
    BmpError::Unsupported(what)
}

/// Reads exactly `buf.len()` bytes at `offset` or reports what was cut off.
fn read_part(
    src: &impl Source,
    buf: &mut [u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<(), BmpError> {
    let needed = offset + buf.len() as u64;
    if needed > len {
        return Err(BmpError::Truncated { what, needed, len });
    }
    src.read_exact_at(buf, offset).map_err(|e| match e.kind() {
        // The file shrank while being read.
        std::io::ErrorKind::UnexpectedEof => BmpError::Truncated { what, needed, len },
        _ => BmpError::Io(e),
    })
}

impl BmpInfo {
    /// Parses and validates the headers and palette. `max_pixels` caps
    /// width × height; it is checked before anything sized by the header is
    /// allocated. The steps, in order, are the module's (see above); the
    /// first one to fail gives the error.
    pub fn parse(src: &impl Source, max_pixels: u64) -> Result<BmpInfo, BmpError> {
        let len = src.byte_len()?;
        let file = read_file_header(src, len)?;
        let info = read_info_header(src, len, file.info_size)?;
        let format = pixel_format(&info)?;
        let size = dimensions(&info, max_pixels)?;
        let (masks, table_start) = read_masks(src, len, &info, &format)?;
        let palette = read_palette(src, len, &info, file.off_bits, table_start)?;
        let stride = check_pixel_data(len, palette.data_offset, &size, &info, &format)?;
        Ok(BmpInfo {
            width: size.width as u32,
            height: size.height as u32,
            top_down: size.top_down,
            bits_per_pixel: info.bits,
            compression: format.compression,
            masks,
            palette: palette.entries,
            mode: palette.mode,
            data_offset: palette.data_offset,
            stride,
            file_len: len,
        })
    }
}

/// What the 14-byte file header says, with the size of the info header
/// (its first field, read in the same go).
struct FileHeader {
    /// `bfOffBits`: where the file says the pixel data starts.
    off_bits: u64,
    /// The info header's size, which tells its layout.
    info_size: u32,
}

/// Reads the file header. A `BA` signature (an OS/2 bitmap array) is
/// unsupported; anything else but `BM` is not a BMP, with a hint at what it
/// looks like instead.
fn read_file_header(src: &impl Source, len: u64) -> Result<FileHeader, BmpError> {
    let mut head = [0u8; 18];
    let got = src.read_at(&mut head, 0)?;
    if got >= 2 && &head[..2] == b"BA" {
        return Err(unsupported(Unsupported::Os2BitmapArray));
    }
    if got < 2 || &head[..2] != b"BM" {
        return Err(BmpError::NotBmp(Magic::of(&head[..got])));
    }
    if got < 18 {
        return Err(BmpError::Truncated {
            what: "the file header",
            needed: 18,
            len,
        });
    }
    Ok(FileHeader {
        off_bits: u64::from(u32_at(&head, 10)),
        info_size: u32_at(&head, 14),
    })
}

/// The info header's layout, told by its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// OS/2 1.x `BITMAPCOREHEADER` (12 bytes): 16-bit width and height, no
    /// compression field, 3-byte palette entries.
    Core,
    /// Windows `BITMAPINFOHEADER` (40 bytes) and its V2–V5 extensions (52,
    /// 56, 108, 124 bytes), which carry the masks from V2 on.
    Info,
    /// OS/2 2.x: any other size from 16 to 64 bytes. The header may be cut
    /// anywhere; fields past its end read as zero.
    Os2V2,
}

impl Layout {
    /// The layout of an info header of `size` bytes; `None` if unknown.
    fn of(size: u32) -> Option<Layout> {
        match size {
            12 => Some(Layout::Core),
            40 | 52 | 56 | 108 | 124 => Some(Layout::Info),
            16..=64 => Some(Layout::Os2V2),
            _ => None,
        }
    }
}

/// The info header's fields, whatever its layout, as read (not yet
/// checked).
struct InfoHeader {
    layout: Layout,
    /// Size in bytes as declared.
    size: u32,
    /// The header's bytes (the first `size`; the rest zero), for the masks
    /// of V2 and later.
    bytes: [u8; MAX_INFO_HEADER],
    width: i64,
    /// Negative when rows are stored top row first.
    height: i64,
    bits: u16,
    /// `biCompression`; 0 for the core header, which has none.
    compression: u32,
    /// `biClrUsed`, 0 meaning 2^bits; 0 for the core header.
    colors_used: u32,
}

/// Reads the info header that follows the file header and takes its fields
/// apart by layout ([`InfoHeader::core`], [`InfoHeader::info`]). A size
/// that is no known layout is unsupported.
fn read_info_header(src: &impl Source, len: u64, size: u32) -> Result<InfoHeader, BmpError> {
    let Some(layout) = Layout::of(size) else {
        return Err(unsupported(Unsupported::InfoHeaderSize { size }));
    };
    let mut bytes = [0u8; MAX_INFO_HEADER];
    read_part(
        src,
        &mut bytes[..size as usize],
        FILE_HEADER,
        len,
        "the info header",
    )?;
    Ok(match layout {
        Layout::Core => InfoHeader::core(bytes),
        Layout::Info | Layout::Os2V2 => InfoHeader::info(layout, size, bytes),
    })
}

impl InfoHeader {
    /// The OS/2 1.x core header: unsigned 16-bit width and height, the bit
    /// count; no compression and no colour count.
    fn core(bytes: [u8; MAX_INFO_HEADER]) -> InfoHeader {
        InfoHeader {
            layout: Layout::Core,
            size: 12,
            width: i64::from(u16_at(&bytes, 4)),
            height: i64::from(u16_at(&bytes, 6)),
            bits: u16_at(&bytes, 10),
            compression: 0,
            colors_used: 0,
            bytes,
        }
    }

    /// `BITMAPINFOHEADER`, V2–V5 and OS/2 2.x: signed 32-bit width and
    /// height, bit count, compression code and colour count. Fields past the
    /// end of a short OS/2 2.x header read as zero.
    fn info(layout: Layout, size: u32, bytes: [u8; MAX_INFO_HEADER]) -> InfoHeader {
        let field = |off: usize| {
            if off + 4 <= size as usize {
                u32_at(&bytes, off)
            } else {
                0
            }
        };
        InfoHeader {
            layout,
            size,
            width: i64::from(u32_at(&bytes, 4) as i32),
            height: i64::from(u32_at(&bytes, 8) as i32),
            bits: u16_at(&bytes, 14),
            compression: field(16),
            colors_used: field(32),
            bytes,
        }
    }
}

/// Checks the whole against the file's length and returns the stride
/// (bytes per stored row, padded to 4): every row of an uncompressed image
/// must be there; an RLE stream must start within the file (it may end
/// early, design §2).
fn check_pixel_data(
    len: u64,
    data_offset: u64,
    size: &Size,
    info: &InfoHeader,
    format: &PixelFormat,
) -> Result<u64, BmpError> {
    let stride = (size.width * u64::from(info.bits)).div_ceil(32) * 4;
    if format.compression == Compression::None {
        let needed = data_offset + stride * size.height;
        if needed > len {
            return Err(BmpError::Truncated {
                what: "the pixel data",
                needed,
                len,
            });
        }
    } else if data_offset > len {
        return Err(BmpError::Truncated {
            what: "the pixel data",
            needed: data_offset,
            len,
        });
    }
    Ok(stride)
}
