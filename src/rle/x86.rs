//! The AVX-512 run finder of [`super::RowLayout`] (design §1's runs, 64
//! pixels at a time; the portable `RowLayout::encode_words` stays the
//! definition and the unit tests hold this one to it byte for byte).
//!
//! Two passes over a row:
//!
//! 1. Eight words at a time, the row's bits are turned pixel-first (pixel
//!    p at bit p of word p / 64: a byte swap for packed words, then one
//!    GFNI affine step reversing the bits of every byte), and each word's
//!    *starts* `x ^ (x << 1 | carry)` (or-ed with the forced chunk
//!    starts, and-ed with the width) and *before* bits (the pixel left of
//!    each one: the colour of the run a start ends) are stored on the
//!    stack, with one bit per word saying whether it holds a start.
//! 2. For every word holding a start (found by `tzcnt` on that bit mask,
//!    so words without one cost nothing), one `vpcompressb` (VBMI2) packs
//!    the byte `p | before << 7` of every start p of the word, in order;
//!    the difference with the same vector shifted one lane up is each
//!    run's length (the low 7 bits: no run is longer than 127) and its
//!    colour is bit 7 of the start's own byte. The 64 bytes are stored at
//!    the output offset (with a mask of `popcnt(starts)` lanes near the
//!    end of `out`), which then moves by `popcnt(starts)`. The first
//!    lane, whose run began in an earlier word, is rewritten from scalar
//!    arithmetic.
//!
//! No instruction depends on the previous run, only the output offset on
//! the previous word's count.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Widest row: the header's 16-bit width, in words.
const MAX_WORDS: usize = (super::MAX_DIMENSION as usize).div_ceil(64);
/// Words per vector.
const LANES: usize = 8;

/// Whether this CPU runs [`encode`].
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("avx512vbmi2")
        && is_x86_feature_detected!("gfni")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("popcnt")
        && is_x86_feature_detected!("lzcnt")
}

/// Encodes the row whose bits are the first `len` bytes at `src` into
/// `out` and returns the number of bytes written. With `swap`, `src` is
/// packed `u64` words (first pixel in the most significant bit, native
/// little-endian memory); without, bytes as a 1-bit BMP stores them
/// (first pixel in the most significant bit of byte 0). `forced` and
/// `valid` are the layout's masks pixel-first (bit p % 64 of word p / 64),
/// padded with zero words to a multiple of 8 words; `valid` excludes
/// pixel 0, which never ends a run.
///
/// # Safety
///
/// The CPU must pass [`available`]; `src..src + len` must be readable;
/// `out` must hold `width` bytes, `1 <= width <= 65535`, and `forced`
/// and `valid` must hold `width.div_ceil(64)` words rounded up to 8.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2,gfni,bmi1,bmi2,popcnt,lzcnt")]
pub(super) unsafe fn encode(
    src: *const u8,
    len: usize,
    swap: bool,
    width: usize,
    forced: &[u64],
    valid: &[u64],
    out: &mut [u8],
) -> usize {
    let words = width.div_ceil(64);
    let vectors = words.div_ceil(LANES);
    assert!(width >= 1 && words <= MAX_WORDS && out.len() >= width);
    assert!(forced.len() >= vectors * LANES && valid.len() >= vectors * LANES);
    let len = len.min(words * 8);
    let mut starts = [MaybeUninit::<u64>::uninit(); MAX_WORDS.next_multiple_of(LANES)];
    let mut before = [MaybeUninit::<u64>::uninit(); MAX_WORDS.next_multiple_of(LANES)];
    let mut busy = [0u64; MAX_WORDS.div_ceil(64)];
    // SAFETY: the features are enabled (caller); loads stay inside `src`
    // (masked to `len`), `forced` and `valid` (asserted); stores stay
    // inside the stack arrays (`vectors * 8` words) and `out` (below).
    unsafe {
        // Per 128-bit lane, the bytes of each u64 in reverse order.
        let bswap = _mm512_broadcast_i32x4(_mm_set_epi8(
            8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7,
        ));
        // The GF(2) matrix reversing the bits of a byte.
        let reverse = _mm512_set1_epi64(0x8040_2010_0804_0201_u64 as i64);
        let mut prev = _mm512_setzero_si512();
        for v in 0..vectors {
            let at = v * 64;
            let take = len.saturating_sub(at).min(64);
            let mut x =
                _mm512_maskz_loadu_epi8(_bzhi_u64(u64::MAX, take as u32), src.add(at).cast());
            if swap {
                x = _mm512_shuffle_epi8(x, bswap);
            }
            x = _mm512_gf2p8affine_epi64_epi8::<0>(x, reverse);
            // Lane j: the word before word j (lane 7 of `prev` for j = 0).
            let left = _mm512_alignr_epi64::<7>(x, prev);
            let b = _mm512_or_si512(_mm512_slli_epi64::<1>(x), _mm512_srli_epi64::<63>(left));
            let f = _mm512_loadu_si512(forced.as_ptr().add(at / 8).cast());
            let m = _mm512_loadu_si512(valid.as_ptr().add(at / 8).cast());
            // ((x ^ b) | f) & m
            let s = _mm512_and_si512(_mm512_or_si512(_mm512_xor_si512(x, b), f), m);
            _mm512_storeu_si512(starts.as_mut_ptr().add(v * LANES).cast(), s);
            _mm512_storeu_si512(before.as_mut_ptr().add(v * LANES).cast(), b);
            let nonzero = _mm512_test_epi64_mask(s, s);
            busy[v / 8] |= u64::from(nonzero) << (8 * (v % 8));
            prev = x;
        }

        let index = _mm512_set_epi8(
            63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,
            41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
            19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        );
        let high = _mm512_set1_epi8(0x80u8 as i8);
        let index_high = _mm512_or_si512(index, high);
        // Lane j takes lane j - 1 (lane 0 is zeroed by the mask).
        let up = _mm512_set_epi8(
            62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
            40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
            18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0,
        );
        let out_ptr = out.as_mut_ptr();
        let mut n = 0usize;
        let mut run_start = 0usize;
        for (c, &mask) in busy.iter().enumerate().take(words.div_ceil(64)) {
            let mut mask = mask;
            while mask != 0 {
                let i = c * 64 + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let s = starts[i].assume_init();
                let b = before[i].assume_init();
                let bytes = _mm512_mask_blend_epi8(b, index, index_high);
                let p = _mm512_maskz_compress_epi8(s, bytes);
                let q = _mm512_maskz_permutexvar_epi8(!1, up, p);
                let d = _mm512_sub_epi8(p, q);
                // (p & 0x80) | (d & 0x7f)
                let r = _mm512_ternarylogic_epi32::<0xE4>(p, d, high);
                let count = s.count_ones() as usize;
                if n + 64 <= out.len() {
                    // Whole vectors while there is room (measured 2–5 %
                    // faster than a masked store): the lanes past `count`
                    // are overwritten by the next word or left past `n`.
                    _mm512_storeu_si512(out_ptr.add(n).cast(), r);
                } else {
                    // n + count <= width: one byte per run, and runs <= pixels.
                    _mm512_mask_storeu_epi8(
                        out_ptr.add(n).cast(),
                        _bzhi_u64(u64::MAX, count as u32),
                        r,
                    );
                }
                let base = i * 64;
                let first = s.trailing_zeros() as usize;
                *out_ptr.add(n) = ((base + first - run_start) as u8) | (((b >> first) as u8) << 7);
                n += count;
                run_start = base + 63 - s.leading_zeros() as usize;
            }
        }
        // The last run: its colour is the last pixel's (`prev` holds the
        // last vector's pixel-first words).
        let mut tail = [0u64; LANES];
        _mm512_storeu_si512(tail.as_mut_ptr().cast(), prev);
        let last_bit = (tail[(words - 1) % LANES] >> ((width - 1) % 64)) as u8 & 1;
        *out_ptr.add(n) = (last_bit << 7) | (width - run_start) as u8;
        n + 1
    }
}
