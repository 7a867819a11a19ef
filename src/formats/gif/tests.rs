use super::*;

#[test]
fn the_ramp_needs_no_palette() {
    assert!(!palette_needed(&[0, 0, 0, 1, 1, 1]));
    assert!(palette_needed(&[0, 0, 0, 255, 255, 255]));
    assert!(palette_needed(&[0, 0, 0, 1, 1, 2]));
}

fn decode(data: &[u8]) -> Result<(Header, Vec<Vec<u8>>), DecodeError> {
    let mut d = open(&data, 1 << 20)?;
    let mut rows = Vec::new();
    while let Some(r) = d.next_row()? {
        rows.push(r.to_vec());
    }
    Ok((d.header().clone(), rows))
}

/// A 4x1 GIF with a global table of two entries; LZW (minimum code size
/// 2) by hand: clear 4, then 1, 0, 1, 1 as literal codes and end 5,
/// packed least significant bit first; codes are 3 bits wide until the
/// table reaches 8 entries (after the third code), then 4.
fn four_pixels(table: &[u8]) -> Vec<u8> {
    let mut g = b"GIF89a\x04\x00\x01\x00\x80\x00\x00".to_vec();
    g.extend_from_slice(table);
    g.extend_from_slice(b",\x00\x00\x00\x00\x04\x00\x01\x00\x00\x02");
    let codes = [(4u32, 3u32), (1, 3), (0, 3), (1, 3), (1, 4), (5, 4)];
    let (mut acc, mut n, mut bytes) = (0u32, 0u32, Vec::new());
    for (c, bits) in codes {
        acc |= c << n;
        n += bits;
        while n >= 8 {
            bytes.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        bytes.push(acc as u8);
    }
    g.push(bytes.len() as u8);
    g.extend(bytes);
    g.extend_from_slice(b"\x00;");
    g
}

#[test]
fn palette_or_grey_as_pillow_decides() {
    let (h, rows) = decode(&four_pixels(&[0, 0, 0, 255, 255, 255])).expect("decodes");
    assert_eq!(h.layout, Layout::Palette(vec![[0, 0, 0], [255, 255, 255]]));
    assert_eq!(rows, [[1, 0, 1, 1]]);
    // The ramp (0,0,0), (1,1,1): no palette, mode L.
    let (h, _) = decode(&four_pixels(&[0, 0, 0, 1, 1, 1])).expect("decodes");
    assert_eq!(h.layout, Layout::Grey);
}

#[test]
fn the_first_frame_ends_at_its_last_pixel() {
    let g = four_pixels(&[0, 0, 0, 255, 255, 255]);
    // Without the trailer and the block terminator Pillow still reads it,
    // but the file is not whole yet.
    let cut = &g[..g.len() - 2];
    assert!(decode(cut).is_ok());
    assert!(matches!(whole(&cut), Whole::NotYet(_)));
    // Data cut inside the codes: truncated.
    let short = &g[..g.len() - 4];
    assert!(matches!(decode(short), Err(DecodeError::Truncated { .. })));
}

#[test]
fn a_sub_block_cut_short_is_truncated_though_its_pixels_are_there() {
    // The data sub-block is 3 bytes; its first 2 hold all four pixels.
    // Pillow decodes no sub-block that is not all in the file.
    let g = four_pixels(&[0, 0, 0, 255, 255, 255]);
    let cut = &g[..g.len() - 3];
    assert!(matches!(decode(cut), Err(DecodeError::Truncated { .. })));
}
