//! Grey levels and indices → packed bits (design §1–2): [`bilevel`] turns
//! a row of grey levels into bits by threshold (g ≥ 128, the kernels
//! first) or by the dither (`dither.rs`); [`pack`] and [`pack_from`] pack
//! any per-pixel test into words, most significant bit first, as the
//! `.rle` encoder reads them; [`unpack_indices`] spreads packed palette
//! indices into bytes.

use super::Conversion;
use super::dither::{dither_row, dither_row_fast};
use super::simd::{self, Isa};

/// Grey levels → packed bits, by Pillow's rules. Returns the number of
/// pixels that went through the dither's serial step.
pub(super) fn bilevel(
    isa: Isa,
    grey: &[u8],
    conversion: Conversion,
    errors: &mut [i32],
    out: &mut [u64],
) -> u64 {
    match (conversion, isa) {
        (Conversion::Threshold, _) => {
            let done = simd::grey_threshold(isa, grey, out);
            pack_from(&grey[done..], done, |g| g >= 128, out);
            0
        }
        (Conversion::Dither, Isa::Scalar) => {
            dither_row(grey, errors, out);
            grey.len() as u64
        }
        (Conversion::Dither, _) => dither_row_fast(isa, grey, errors, out),
    }
}

/// Packs `bit(v)` of every byte into words, most significant bit first, 64
/// pixels per inner loop so the compiler can vectorise it.
#[inline]
pub(super) fn pack(values: &[u8], bit: impl Fn(u8) -> bool, out: &mut [u64]) {
    for (chunk, word) in values.chunks(64).zip(out.iter_mut()) {
        let mut w = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            w |= u64::from(bit(v)) << (63 - i);
        }
        *word = w;
    }
}

/// [`pack`] for the pixels from `start` (a multiple of 64) on, `values`
/// being those pixels' values.
#[inline]
pub(super) fn pack_from(values: &[u8], start: usize, bit: impl Fn(u8) -> bool, out: &mut [u64]) {
    debug_assert_eq!(start % 64, 0);
    pack(values, bit, &mut out[start / 64..]);
}

/// Spreads 1/2/4/8-bit packed indices (most significant first) into bytes.
pub(super) fn unpack_indices(bytes: &[u8], bits: u16, out: &mut [u8]) {
    match bits {
        8 => out.copy_from_slice(&bytes[..out.len()]),
        _ => {
            let per_byte = 8 / usize::from(bits);
            let mask = (1u8 << bits) - 1;
            for (x, o) in out.iter_mut().enumerate() {
                let shift = 8 - bits as usize * (x % per_byte + 1);
                *o = (bytes[x / per_byte] >> shift) & mask;
            }
        }
    }
}
