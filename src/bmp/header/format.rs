//! The info header's fields checked: compression and bit count, width and
//! height against the format and the pixel limit; then the bitfield masks
//! (design §3).

use super::*;

/// How the pixel data is stored, as the info header declares it.
pub(super) struct PixelFormat {
    pub(super) compression: Compression,
    /// The file gives bitfield masks (compression codes 3 and 6)…
    pub(super) bitfields: bool,
    /// …and an alpha mask among them (code 6).
    pub(super) alpha_bitfields: bool,
}

/// Checks the compression code, the bit count and how they go together.
/// Huffman 1D, RLE24, embedded JPEG or PNG, CMYK and 64 bits per pixel are
/// unsupported variants (design §3); other unknown values are invalid.
pub(super) fn pixel_format(info: &InfoHeader) -> Result<PixelFormat, BmpError> {
    let bits = info.bits;
    // Codes 3 and 4 mean Huffman 1D and RLE24 in OS/2 2.x files (every
    // header of 16 to 64 bytes but the Windows sizes, the full 64-byte one
    // included); a 1-bit file with code 3 can only be Huffman either way.
    // In a Windows INFO/V4/V5 header code 4 is BI_JPEG, whatever the bits.
    let huffman = info.compression == 3 && (info.layout == Layout::Os2V2 || bits == 1);
    let rle24 = info.compression == 4 && bits == 24 && info.layout == Layout::Os2V2;
    let (compression, bitfields, alpha_bitfields) = match info.compression {
        _ if huffman => return Err(unsupported(Unsupported::Huffman1D)),
        _ if rle24 => return Err(unsupported(Unsupported::Rle24)),
        0 => (Compression::None, false, false),
        1 => (Compression::Rle8, false, false),
        2 => (Compression::Rle4, false, false),
        3 => (Compression::None, true, false),
        4 => return Err(unsupported(Unsupported::EmbeddedJpeg)),
        5 => return Err(unsupported(Unsupported::EmbeddedPng)),
        6 => (Compression::None, true, true),
        code @ 11..=13 => {
            return Err(unsupported(Unsupported::Cmyk { compression: code }));
        }
        other => {
            return Err(invalid(InvalidHeader::UnknownCompression {
                compression: other,
            }));
        }
    };

    match bits {
        1 | 2 | 4 | 8 | 16 | 24 | 32 => {}
        64 => return Err(unsupported(Unsupported::Bits64)),
        other => return Err(invalid(InvalidHeader::BitCount { bits: other })),
    }
    match compression {
        Compression::Rle8 if bits != 8 => {
            return Err(invalid(InvalidHeader::RleBitCount { compression, bits }));
        }
        Compression::Rle4 if bits != 4 => {
            return Err(invalid(InvalidHeader::RleBitCount { compression, bits }));
        }
        _ => {}
    }
    if bitfields && bits <= 8 {
        return Err(invalid(InvalidHeader::BitfieldsBitCount { bits }));
    }
    Ok(PixelFormat {
        compression,
        bitfields,
        alpha_bitfields,
    })
}

/// The image's size, checked.
pub(super) struct Size {
    pub(super) width: u64,
    pub(super) height: u64,
    /// Rows stored top row first (negative height).
    pub(super) top_down: bool,
}

/// Checks width and height: width at least 1, height not 0 (negative
/// means top-down rows), each side within the `.rle` format's 65535
/// (design §1), and width × height within `max_pixels` (design §3).
pub(super) fn dimensions(info: &InfoHeader, max_pixels: u64) -> Result<Size, BmpError> {
    let (width, height_raw) = (info.width, info.height);
    if width <= 0 {
        return Err(invalid(InvalidHeader::Width { width }));
    }
    if height_raw == 0 || height_raw == i64::from(i32::MIN) {
        return Err(invalid(InvalidHeader::Height { height: height_raw }));
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
pub(super) fn read_masks(
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

/// The layout 16-bit (5-5-5) and 24/32-bit (8-8-8) files have without
/// bitfields.
pub(super) fn default_masks(bits: u16) -> Masks {
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
pub(super) fn check_masks(m: Masks, bits: u16) -> Result<Masks, BmpError> {
    let limit: u64 = 1u64 << bits;
    for (name, mask) in [
        ("red", m.red),
        ("green", m.green),
        ("blue", m.blue),
        ("alpha", m.alpha),
    ] {
        if u64::from(mask) >= limit {
            return Err(invalid(InvalidHeader::MaskTooWide {
                channel: name,
                mask,
                bits,
            }));
        }
        if mask != 0
            && (mask >> mask.trailing_zeros()).count_ones()
                != 32 - (mask >> mask.trailing_zeros()).leading_zeros()
        {
            return Err(unsupported(Unsupported::NonContiguousMask {
                channel: name,
                mask,
            }));
        }
    }
    Ok(m)
}
