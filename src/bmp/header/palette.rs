//! The palette, which also decides the mode Pillow would open the file as
//! (design §2), and the whole checked against the file's length.

use super::*;

/// What the palette step settles.
pub(super) struct Palette {
    /// RGB entries, at most 256; empty for direct colour.
    pub(super) entries: Vec<[u8; 3]>,
    pub(super) mode: PillowMode,
    /// Where the pixel data really starts.
    pub(super) data_offset: u64,
}

/// Reads the palette of a ≤ 8-bit file from `table_start` and decides
/// Pillow's mode from it; direct-colour files have none and are "RGB".
///
/// Also settles where the pixels start: a data offset at or before the
/// colour table (zero, or right at its start: a known writer bug) means
/// right after the declared palette, as Pillow reads it; no file's pixels
/// start inside its headers. Only the entries that fit before the pixel
/// data are read (OS/2 files may store fewer than 2^bits), at most 256.
pub(super) fn read_palette(
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
        return Err(invalid(InvalidHeader::PaletteSizeExceeded {
            colors_used: declared,
        }));
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

/// Pillow's choice for palette images: greyscale palettes (entry i is
/// (i, i, i); for two colours exactly black, white) open as "1" (≤ 2
/// colours) or "L"; everything else as "P". 2-bit files, which Pillow
/// refuses, are "P" (design §2).
pub(super) fn pillow_palette_mode(palette: &[[u8; 3]], declared: u64, bits: u16) -> PillowMode {
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
