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

use super::{BmpError, Source};

/// How the pixel data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed, rows padded to 4 bytes.
    None,
    Rle8,
    Rle4,
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

fn invalid(msg: impl Into<String>) -> BmpError {
    BmpError::Invalid(msg.into())
}
fn unsupported(msg: impl Into<String>) -> BmpError {
    BmpError::Unsupported(msg.into())
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
        return Err(unsupported("OS/2 bitmap array"));
    }
    if got < 2 || &head[..2] != b"BM" {
        return Err(BmpError::NotBmp(sniff(&head[..got])));
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
        return Err(unsupported(format!("info header size {size}")));
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

/// How the pixel data is stored, as the info header declares it.
struct PixelFormat {
    compression: Compression,
    /// The file gives bitfield masks (compression codes 3 and 6)…
    bitfields: bool,
    /// …and an alpha mask among them (code 6).
    alpha_bitfields: bool,
}

/// Checks the compression code, the bit count and how they go together.
/// Huffman 1D, RLE24, embedded JPEG or PNG, CMYK and 64 bits per pixel are
/// unsupported variants (design §3); other unknown values are invalid.
fn pixel_format(info: &InfoHeader) -> Result<PixelFormat, BmpError> {
    let bits = info.bits;
    // Codes 3 and 4 mean Huffman 1D and RLE24 in OS/2 2.x files (every
    // header of 16 to 64 bytes but the Windows sizes, the full 64-byte one
    // included); a 1-bit file with code 3 can only be Huffman either way.
    let huffman = info.compression == 3 && (info.layout == Layout::Os2V2 || bits == 1);
    let rle24 = info.compression == 4 && bits == 24;
    let (compression, bitfields, alpha_bitfields) = match info.compression {
        _ if huffman => return Err(unsupported("Huffman 1D compression")),
        _ if rle24 => return Err(unsupported("RLE24 compression")),
        0 => (Compression::None, false, false),
        1 => (Compression::Rle8, false, false),
        2 => (Compression::Rle4, false, false),
        3 => (Compression::None, true, false),
        4 => return Err(unsupported("embedded JPEG")),
        5 => return Err(unsupported("embedded PNG")),
        6 => (Compression::None, true, true),
        11..=13 => return Err(unsupported("CMYK")),
        other => return Err(invalid(format!("unknown compression {other}"))),
    };

    match bits {
        1 | 2 | 4 | 8 | 16 | 24 | 32 => {}
        64 => return Err(unsupported("64 bits per pixel")),
        other => return Err(invalid(format!("bit count {other}"))),
    }
    match compression {
        Compression::Rle8 if bits != 8 => {
            return Err(invalid(format!("RLE8 with {bits} bits per pixel")));
        }
        Compression::Rle4 if bits != 4 => {
            return Err(invalid(format!("RLE4 with {bits} bits per pixel")));
        }
        _ => {}
    }
    if bitfields && bits <= 8 {
        return Err(invalid(format!("bitfields with {bits} bits per pixel")));
    }
    Ok(PixelFormat {
        compression,
        bitfields,
        alpha_bitfields,
    })
}

/// The image's size, checked.
struct Size {
    width: u64,
    height: u64,
    /// Rows stored top row first (negative height).
    top_down: bool,
}

/// Checks width and height: width at least 1, height not 0 (negative
/// means top-down rows), each side within the `.rle` format's 65535
/// (design §1), and width × height within `max_pixels` (design §3).
fn dimensions(info: &InfoHeader, max_pixels: u64) -> Result<Size, BmpError> {
    let (width, height_raw) = (info.width, info.height);
    if width <= 0 {
        return Err(invalid(format!("width {width}")));
    }
    if height_raw == 0 || height_raw == i64::from(i32::MIN) {
        return Err(invalid(format!("height {height_raw}")));
    }
    let top_down = height_raw < 0;
    let height = height_raw.unsigned_abs();
    let width = width as u64;
    if width > u64::from(crate::rle::MAX_DIMENSION) || height > u64::from(crate::rle::MAX_DIMENSION)
    {
        return Err(BmpError::TooLargeForFormat { width, height });
    }
    let pixels = width * height;
    if pixels > max_pixels {
        return Err(BmpError::PixelLimit {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    Ok(Size {
        width,
        height,
        top_down,
    })
}

/// The channel masks of a 16/24/32-bit file (`None` for palette images),
/// and where the colour table starts: right after the info header, or
/// after the masks when they follow it.
///
/// Files with bitfields give the masks in the info header from V2
/// (52 bytes) on, else in the 12 bytes (16 with alpha) right after it.
/// All-zero masks are taken as the default layout, as Pillow does; others
/// must fit the pixel and be contiguous. Without bitfields, 16/24/32-bit
/// files have the default masks.
fn read_masks(
    src: &impl Source,
    len: u64,
    info: &InfoHeader,
    format: &PixelFormat,
) -> Result<(Option<Masks>, u64), BmpError> {
    let mut table_start = FILE_HEADER + u64::from(info.size);
    let bits = info.bits;
    if !format.bitfields {
        let masks = (bits > 8).then(|| default_masks(bits));
        return Ok((masks, table_start));
    }
    let want = if format.alpha_bitfields { 16 } else { 12 };
    let mut m = [0u32; 4];
    if info.layout == Layout::Info && info.size >= 52 {
        let count = if info.size >= 56 { 4 } else { 3 };
        for (i, slot) in m.iter_mut().enumerate().take(count) {
            *slot = u32_at(&info.bytes, 40 + 4 * i);
        }
    } else {
        let mut raw = [0u8; 16];
        read_part(
            src,
            &mut raw[..want],
            table_start,
            len,
            "the bitfield masks",
        )?;
        table_start += want as u64;
        for (i, slot) in m.iter_mut().enumerate().take(want / 4) {
            *slot = u32_at(&raw, 4 * i);
        }
    }
    let masks = Masks {
        red: m[0],
        green: m[1],
        blue: m[2],
        alpha: m[3],
    };
    let masks = if masks.red == 0 && masks.green == 0 && masks.blue == 0 {
        // All-zero masks: Pillow takes them as the default layout.
        default_masks(bits)
    } else {
        check_masks(masks, bits)?
    };
    Ok((Some(masks), table_start))
}

/// What the palette step settles.
struct Palette {
    /// RGB entries, at most 256; empty for direct colour.
    entries: Vec<[u8; 3]>,
    mode: PillowMode,
    /// Where the pixel data really starts.
    data_offset: u64,
}

/// Reads the palette of a ≤ 8-bit file from `table_start` and decides
/// Pillow's mode from it; direct-colour files have none and are "RGB".
///
/// Also settles where the pixels start: a data offset at or before the
/// colour table (zero, or right at its start: a known writer bug) means
/// right after the declared palette, as Pillow reads it; no file's pixels
/// start inside its headers. Only the entries that fit before the pixel
/// data are read (OS/2 files may store fewer than 2^bits), at most 256.
fn read_palette(
    src: &impl Source,
    len: u64,
    info: &InfoHeader,
    off_bits: u64,
    table_start: u64,
) -> Result<Palette, BmpError> {
    let bits = info.bits;
    if bits > 8 {
        return Ok(Palette {
            entries: Vec::new(),
            mode: PillowMode::Rgb,
            data_offset: off_bits.max(table_start),
        });
    }
    let entry = if info.layout == Layout::Core {
        3u64
    } else {
        4u64
    };
    let declared = if info.colors_used == 0 {
        1u64 << bits
    } else {
        u64::from(info.colors_used)
    };
    if declared > 65536 {
        return Err(invalid(format!("palette size {declared}")));
    }
    let data_offset = if off_bits <= table_start {
        table_start + declared * entry
    } else {
        off_bits
    };
    let room = (data_offset - table_start) / entry;
    let count = declared.min(room).min(256) as usize;
    let mut raw = vec![0u8; count * entry as usize];
    read_part(src, &mut raw, table_start, len, "the palette")?;
    let entries: Vec<[u8; 3]> = raw
        .chunks(entry as usize)
        .map(|e| [e[2], e[1], e[0]])
        .collect();
    let mode = pillow_palette_mode(&entries, declared, bits);
    Ok(Palette {
        entries,
        mode,
        data_offset,
    })
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

/// Pillow's choice for palette images: greyscale palettes (entry i is
/// (i, i, i); for two colours exactly black, white) open as "1" (≤ 2
/// colours) or "L"; everything else as "P". 2-bit files, which Pillow
/// refuses, are "P" (design §2).
fn pillow_palette_mode(palette: &[[u8; 3]], declared: u64, bits: u16) -> PillowMode {
    if bits == 2 || declared as usize > palette.len() {
        return PillowMode::P;
    }
    let grey = if declared == 2 {
        palette[0] == [0, 0, 0] && palette[1] == [255, 255, 255]
    } else {
        palette.iter().enumerate().all(|(i, &c)| c == [i as u8; 3])
    };
    match (grey, declared <= 2) {
        (true, true) => PillowMode::One,
        (true, false) => PillowMode::L,
        (false, _) => PillowMode::P,
    }
}

/// The layout 16-bit (5-5-5) and 24/32-bit (8-8-8) files have without
/// bitfields.
fn default_masks(bits: u16) -> Masks {
    match bits {
        16 => Masks {
            red: 0x7c00,
            green: 0x03e0,
            blue: 0x001f,
            alpha: 0,
        },
        _ => Masks {
            red: 0x00ff_0000,
            green: 0x0000_ff00,
            blue: 0x0000_00ff,
            alpha: 0,
        },
    }
}

/// Every mask must fit in the pixel's `bits` and be one run of set bits.
fn check_masks(m: Masks, bits: u16) -> Result<Masks, BmpError> {
    let limit: u64 = 1u64 << bits;
    for (name, mask) in [
        ("red", m.red),
        ("green", m.green),
        ("blue", m.blue),
        ("alpha", m.alpha),
    ] {
        if u64::from(mask) >= limit {
            return Err(invalid(format!(
                "{name} mask {mask:#x} does not fit in {bits} bits"
            )));
        }
        if mask != 0
            && (mask >> mask.trailing_zeros()).count_ones()
                != 32 - (mask >> mask.trailing_zeros()).leading_zeros()
        {
            return Err(unsupported(format!("non-contiguous {name} mask {mask:#x}")));
        }
    }
    Ok(m)
}

/// A hint at what a non-BMP file is, for the error message.
fn sniff(head: &[u8]) -> &'static str {
    if head.starts_with(b"\x89PNG") {
        " (it looks like a PNG)"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        " (it looks like a JPEG)"
    } else if head.starts_with(b"GIF8") {
        " (it looks like a GIF)"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        " (it looks like a TIFF)"
    } else if head.is_empty() {
        " (it is empty)"
    } else {
        " (no \"BM\" signature)"
    }
}
