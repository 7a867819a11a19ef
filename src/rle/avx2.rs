//! The AVX2 run finder of [`super::RowLayout`], for x86-64 CPUs without
//! AVX-512 VBMI2 (docs/performance.md, "The 1-bit page"). The portable
//! `RowLayout::encode_words` stays the definition and the unit tests hold
//! this one to it byte for byte.
//!
//! Three passes over a row:
//!
//! 1. Four words at a time, the row's bits are turned pixel-first (pixel
//!    p at bit p of word p / 64: a byte swap for packed words, then each
//!    byte's bits reversed with two `vpshufb` nibble lookups), and each
//!    word's *starts* `x ^ (x << 1 | carry)` (or-ed with the forced chunk
//!    starts, and-ed with the width) and *before* bits (the pixel left of
//!    each one: the colour of the run a start ends) are stored on the
//!    stack, with one bit per word saying whether it holds a start.
//! 2. For every word holding a start (found by `tzcnt` on that bit mask,
//!    so words without one cost nothing), its starts are taken from the
//!    bottom with `tzcnt` and cleared with `blsr`, each written as the
//!    byte `p % 128 | before << 7` at the output offset, which then moves
//!    by `popcnt`. The first two slots are written whether the word has
//!    that many starts or not, so blank and lightly inked words (most of
//!    a page) take no branch that depends on the image; the loop for the
//!    rest runs on words of three starts or more. Nothing carries from
//!    one start to the next but the bit mask.
//! 3. The run bytes are the differences of consecutive start bytes in
//!    their low 7 bits (no run is longer than 127), 32 at a time.
//!
//! Measured against writing each run's length in pass 2 (a chain through
//! the previous start) and against 3, 4 or 8 unconditional slots: docs/
//! performance.md, "The 1-bit page".

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Widest row: the header's 16-bit width, in words.
const MAX_WORDS: usize = (super::MAX_DIMENSION as usize).div_ceil(64);
/// Words per vector.
const LANES: usize = 4;
/// Starts per word written without a branch on the image (2 measured
/// best of 2, 3, 4 and 8: more are vectorised by the compiler, slower).
const SLOTS: usize = 2;

/// Whether this CPU runs [`encode`].
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("popcnt")
        && is_x86_feature_detected!("lzcnt")
}

/// Encodes the row whose bits are the first `len` bytes at `src` into
/// `out` and returns the number of bytes written; the arguments are those
/// of the AVX-512 `x86::encode`. With `swap`, `src` is packed `u64` words
/// (first pixel in the most significant bit, native little-endian memory);
/// without, bytes as a 1-bit BMP stores them. `forced` and `valid` are the
/// layout's masks pixel-first (bit p % 64 of word p / 64), padded with zero
/// words to a multiple of 8 words; `valid` excludes pixel 0, which never
/// ends a run.
///
/// # Safety
///
/// The CPU must pass [`available`]; `src..src + len` must be readable;
/// `out` must hold `width` bytes, `1 <= width <= 65535`, and `forced`
/// and `valid` must hold `width.div_ceil(64)` words rounded up to 8.
#[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
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
    // The row's last, partial vector, zero-padded (its bits past the
    // width are masked off by `valid`).
    let mut last = [0u8; 32];
    // SAFETY: the features are enabled (caller); loads stay inside `src`
    // (whole vectors only below `len`, the rest through `last`), `forced`
    // and `valid` (asserted); stores stay inside the stack arrays
    // (`vectors * 4` words) and `out` (below).
    unsafe {
        // Per 128-bit lane, the bytes of each u64 in reverse order.
        let bswap = _mm256_broadcastsi128_si256(_mm_set_epi8(
            8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7,
        ));
        // A nibble's bits reversed, in the high nibble (for the low
        // nibble of a byte) and in the low nibble (for the high one).
        let rev_to_high = _mm256_broadcastsi128_si256(_mm_set_epi8(
            0xF0u8 as i8,
            0x70,
            0xB0u8 as i8,
            0x30,
            0xD0u8 as i8,
            0x50,
            0x90u8 as i8,
            0x10,
            0xE0u8 as i8,
            0x60,
            0xA0u8 as i8,
            0x20,
            0xC0u8 as i8,
            0x40,
            0x80u8 as i8,
            0x00,
        ));
        let rev_to_low = _mm256_broadcastsi128_si256(_mm_set_epi8(
            0x0F, 0x07, 0x0B, 0x03, 0x0D, 0x05, 0x09, 0x01, 0x0E, 0x06, 0x0A, 0x02, 0x0C, 0x04,
            0x08, 0x00,
        ));
        let nibble = _mm256_set1_epi8(0x0F);
        let zero = _mm256_setzero_si256();
        let mut prev = zero;
        for v in 0..vectors {
            let at = v * 32;
            let mut x = if at + 32 <= len {
                _mm256_loadu_si256(src.add(at).cast())
            } else {
                let take = len.saturating_sub(at);
                std::ptr::copy_nonoverlapping(src.add(at), last.as_mut_ptr(), take);
                _mm256_loadu_si256(last.as_ptr().cast())
            };
            if swap {
                x = _mm256_shuffle_epi8(x, bswap);
            }
            let lo = _mm256_and_si256(x, nibble);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nibble);
            x = _mm256_or_si256(
                _mm256_shuffle_epi8(rev_to_high, lo),
                _mm256_shuffle_epi8(rev_to_low, hi),
            );
            // Lane j: the word before word j (lane 3 of `prev` for j = 0).
            let straddle = _mm256_permute2x128_si256::<0x21>(prev, x);
            let left = _mm256_alignr_epi8::<8>(x, straddle);
            let b = _mm256_or_si256(_mm256_slli_epi64::<1>(x), _mm256_srli_epi64::<63>(left));
            let f = _mm256_loadu_si256(forced.as_ptr().add(v * LANES).cast());
            let m = _mm256_loadu_si256(valid.as_ptr().add(v * LANES).cast());
            // ((x ^ b) | f) & m
            let s = _mm256_and_si256(_mm256_or_si256(_mm256_xor_si256(x, b), f), m);
            _mm256_storeu_si256(starts.as_mut_ptr().add(v * LANES).cast(), s);
            _mm256_storeu_si256(before.as_mut_ptr().add(v * LANES).cast(), b);
            let empty = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(s, zero)));
            busy[v / 16] |= u64::from(!empty as u8 & 0xF) << (4 * (v % 16));
            prev = x;
        }

        // Pass 2: for each start p, in order, the byte `p % 128 | before
        // << 7`; the run bytes are the differences (pass 3).
        let out_ptr = out.as_mut_ptr();
        let mut n = 0usize;
        for (c, &mask) in busy.iter().enumerate().take(words.div_ceil(64)) {
            let mut mask = mask;
            while mask != 0 {
                let i = c * 64 + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let mut s = starts[i].assume_init();
                let b = before[i].assume_init();
                // p % 128 of the word's pixel 0: the start bytes below
                // never carry into bit 7 (64 + 63 < 128).
                let base = (i % 2) * 64;
                let count = s.count_ones() as usize;
                let at = out_ptr.add(n);
                let mut j = 0;
                // Always true with 2 slots (the word has a start, so n + 1
                // < width); kept so that SLOTS can be tuned. The unit
                // tests' canary catches a store past `out`.
                if n + SLOTS <= out.len() {
                    // The first SLOTS starts, written whether there or not
                    // (no branch on the image; the bytes past `count` are
                    // overwritten by the next word or left past `n`).
                    while j < SLOTS {
                        let k = s.trailing_zeros();
                        *at.add(j) = (base as u8 + k as u8) | (b.wrapping_shr(k) << 7) as u8;
                        s &= s.wrapping_sub(1);
                        j += 1;
                    }
                }
                // The rest (n + count < width: one start per pixel, and
                // pixel 0 is none).
                while s != 0 {
                    let k = s.trailing_zeros();
                    *at.add(j) = (base as u8 + k as u8) | (b.wrapping_shr(k) << 7) as u8;
                    s &= s - 1;
                    j += 1;
                }
                n += count;
            }
        }
        // The last run: its colour is the last pixel's (`prev` holds the
        // last vector's pixel-first words).
        let mut tail = [0u64; LANES];
        _mm256_storeu_si256(tail.as_mut_ptr().cast(), prev);
        let last_bit = (tail[(words - 1) % LANES] >> ((width - 1) % 64)) as u8 & 1;
        // A start at the width ends the last run.
        *out_ptr.add(n) = (last_bit << 7) | (width % 128) as u8;
        let n = n + 1;
        lengths(&mut out[..n]);
        n
    }
}

/// Pass 3: turns the start bytes `p % 128 | before << 7` into run bytes,
/// in place: `before << 7 | (p - p') % 128` where p' is the previous
/// start's (0 for the first): the run from p' to p, of the colour left of
/// p. No run is longer than 127 pixels, so 7 bits of p are enough.
#[target_feature(enable = "avx2")]
fn lengths(bytes: &mut [u8]) {
    let high = _mm256_set1_epi8(0x80u8 as i8);
    let low = _mm256_set1_epi8(0x7f);
    let mut prev = _mm256_setzero_si256();
    let mut whole = bytes.chunks_exact_mut(32);
    let run = |v: __m256i, prev: __m256i| {
        // Lane j: byte j - 1 (byte 31 of `prev` for j = 0).
        let shifted = _mm256_alignr_epi8::<15>(v, _mm256_permute2x128_si256::<0x21>(prev, v));
        let d = _mm256_sub_epi8(v, shifted);
        _mm256_or_si256(_mm256_and_si256(v, high), _mm256_and_si256(d, low))
    };
    for chunk in &mut whole {
        // SAFETY: `chunk` is 32 bytes, read and written unaligned.
        unsafe {
            let v = _mm256_loadu_si256(chunk.as_ptr().cast());
            _mm256_storeu_si256(chunk.as_mut_ptr().cast(), run(v, prev));
            prev = v;
        }
    }
    let rest = whole.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 32];
        buf[..rest.len()].copy_from_slice(rest);
        // SAFETY: `buf` is 32 bytes, read and written unaligned.
        unsafe {
            let v = _mm256_loadu_si256(buf.as_ptr().cast());
            _mm256_storeu_si256(buf.as_mut_ptr().cast(), run(v, prev));
        }
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}
