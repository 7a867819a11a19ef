//! BMP header parsing and validation: file header, the info header in all
//! its sizes (OS/2 v1 and v2, INFO, V2–V5), bitfield masks and palette.
//! Also decides the mode Pillow would open the file as, since the
//! pixel→bit rule depends on it (design §2).

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
    /// allocated.
    pub fn parse(src: &impl Source, max_pixels: u64) -> Result<BmpInfo, BmpError> {
        let len = src.byte_len()?;
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
        let off_bits = u64::from(u32_at(&head, 10));
        let header_size = u32_at(&head, 14);
        let os2_v1 = header_size == 12;
        let windows = matches!(header_size, 40 | 52 | 56 | 108 | 124);
        // OS/2 2.x headers may be cut anywhere from 16 to 64 bytes.
        let os2_v2 = !windows && (16..=64).contains(&header_size);
        if !(os2_v1 || windows || os2_v2) {
            return Err(unsupported(format!("info header size {header_size}")));
        }
        let mut hdr = [0u8; MAX_INFO_HEADER];
        let hsize = header_size as usize;
        read_part(src, &mut hdr[..hsize], FILE_HEADER, len, "the info header")?;
        // Fields past the header's end read as zero (short OS/2 v2 headers).
        let field = |off: usize| {
            if off + 4 <= hsize {
                u32_at(&hdr, off)
            } else {
                0
            }
        };

        let (width, height_raw, bits, compression_code, colors_used) = if os2_v1 {
            (
                i64::from(u16_at(&hdr, 4)),
                i64::from(u16_at(&hdr, 6)),
                u16_at(&hdr, 10),
                0,
                0,
            )
        } else {
            (
                i64::from(u32_at(&hdr, 4) as i32),
                i64::from(u32_at(&hdr, 8) as i32),
                u16_at(&hdr, 14),
                field(16),
                field(32),
            )
        };

        // Compression: codes 3 and 4 mean Huffman 1D and RLE24 in OS/2 2.x
        // files; a 1-bit file with code 3 can only be Huffman either way.
        let huffman = compression_code == 3 && (os2_v2 || header_size == 64 || bits == 1);
        let rle24 = compression_code == 4 && bits == 24;
        let (compression, bitfields, alpha_bitfields) = match compression_code {
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

        if width <= 0 {
            return Err(invalid(format!("width {width}")));
        }
        if height_raw == 0 || height_raw == i64::from(i32::MIN) {
            return Err(invalid(format!("height {height_raw}")));
        }
        let top_down = height_raw < 0;
        let height = height_raw.unsigned_abs();
        let width = width as u64;
        if width > u64::from(crate::rle::MAX_DIMENSION)
            || height > u64::from(crate::rle::MAX_DIMENSION)
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

        // Masks: in the header from V2 (52 bytes) on, else right after it.
        let mut table_start = FILE_HEADER + u64::from(header_size);
        let masks = if bitfields {
            let want = if alpha_bitfields { 16 } else { 12 };
            let mut m = [0u32; 4];
            if windows && header_size >= 52 {
                for (i, slot) in
                    m.iter_mut()
                        .enumerate()
                        .take(if header_size >= 56 { 4 } else { 3 })
                {
                    *slot = u32_at(&hdr, 40 + 4 * i);
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
            Some(if masks.red == 0 && masks.green == 0 && masks.blue == 0 {
                // All-zero masks: Pillow takes them as the default layout.
                default_masks(bits)
            } else {
                check_masks(masks, bits)?
            })
        } else if bits > 8 {
            Some(default_masks(bits))
        } else {
            None
        };

        // Palette.
        let mut palette = Vec::new();
        let mut mode = PillowMode::Rgb;
        let mut data_offset = off_bits;
        if bits <= 8 {
            let entry = if os2_v1 { 3u64 } else { 4u64 };
            let declared = if colors_used == 0 {
                1u64 << bits
            } else {
                u64::from(colors_used)
            };
            if declared > 65536 {
                return Err(invalid(format!("palette size {declared}")));
            }
            // A data offset right at the palette start (or zero) is a known
            // writer bug; Pillow then reads the pixels after the palette.
            if off_bits <= table_start {
                data_offset = table_start + declared * entry;
            }
            // Entries that fit before the pixel data (OS/2 files may store
            // fewer than 2^bits entries); never more than 256.
            let room = (data_offset - table_start) / entry;
            let count = declared.min(room).min(256) as usize;
            let mut raw = vec![0u8; count * entry as usize];
            read_part(src, &mut raw, table_start, len, "the palette")?;
            palette = raw
                .chunks(entry as usize)
                .map(|e| [e[2], e[1], e[0]])
                .collect();
            mode = pillow_palette_mode(&palette, declared, bits);
        } else if data_offset < table_start {
            data_offset = table_start;
        }

        let stride = (width * u64::from(bits)).div_ceil(32) * 4;
        if compression == Compression::None {
            let needed = data_offset + stride * height;
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

        Ok(BmpInfo {
            width: width as u32,
            height: height as u32,
            top_down,
            bits_per_pixel: bits,
            compression,
            masks,
            palette,
            mode,
            data_offset,
            stride,
            file_len: len,
        })
    }
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
