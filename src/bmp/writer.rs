//! Writes a 1-bit BMP (palette black, white; bottom-up, as every reader
//! expects) from packed rows given top row first, for `decompress`
//! (design §3). Rows are placed with positioned writes, so memory stays
//! O(width).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::rle;

const DATA_OFFSET: u64 = 14 + 40 + 8;

/// Writes a `width`×`height` 1-bit BMP to `file`, pulling rows top to bottom
/// from `next_row` (each at least [`rle::words_for`]`(width)` packed words).
pub fn write_1bit(
    file: &File,
    width: u32,
    height: u32,
    mut next_row: impl FnMut(&mut [u64]) -> io::Result<()>,
) -> io::Result<()> {
    let stride = u64::from(width).div_ceil(32) * 4;
    let image_size = stride * u64::from(height);
    let file_size = DATA_OFFSET + image_size;
    let mut head = Vec::with_capacity(DATA_OFFSET as usize);
    head.extend_from_slice(b"BM");
    head.extend_from_slice(&u32::try_from(file_size).unwrap_or(u32::MAX).to_le_bytes());
    head.extend_from_slice(&[0; 4]);
    head.extend_from_slice(&(DATA_OFFSET as u32).to_le_bytes());
    head.extend_from_slice(&40u32.to_le_bytes());
    head.extend_from_slice(&(width as i32).to_le_bytes());
    head.extend_from_slice(&(height as i32).to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes()); // planes
    head.extend_from_slice(&1u16.to_le_bytes()); // bits per pixel
    head.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    head.extend_from_slice(&u32::try_from(image_size).unwrap_or(0).to_le_bytes());
    head.extend_from_slice(&2835u32.to_le_bytes()); // 72 dpi
    head.extend_from_slice(&2835u32.to_le_bytes());
    head.extend_from_slice(&2u32.to_le_bytes()); // colours used
    head.extend_from_slice(&2u32.to_le_bytes()); // colours important
    head.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 0]); // black, white
    file.set_len(file_size)?;
    file.write_all_at(&head, 0)?;

    let mut words = vec![0u64; rle::words_for(width as usize)];
    let mut bytes = vec![0u8; words.len() * 8];
    for y in 0..u64::from(height) {
        next_row(&mut words)?;
        for (chunk, w) in bytes.chunks_exact_mut(8).zip(&words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
        let offset = DATA_OFFSET + (u64::from(height) - 1 - y) * stride;
        file.write_all_at(&bytes[..stride as usize], offset)?;
    }
    Ok(())
}
