//! The x86-64 kernels of [`super`] (design §2's arithmetic, 8 or 4
//! pixels at a time). Pixels are turned into luma ×1000 with two
//! `pmaddwd`: a byte shuffle spreads each pixel into 16-bit pairs
//! (B, G) and (R, 0), multiplied by (114, 587) and (299, 0) and summed
//! into one 32-bit lane per pixel. From there: luma ≥ 128000 is the
//! threshold bit, luma ∈ {0, 255000} means pure black or white (the
//! weights are positive and sum to 1000, so only (0,0,0) and
//! (255,255,255) reach them), and `div1000` gives the grey level.
//! Masks are gathered with `movemask` (least significant bit first) and
//! bit-reversed into the rows' most-significant-first order.

use std::arch::x86_64::*;

/// Per 128-bit lane: pixel k (k < 4) as 16-bit (B, G) in dword k, for a
/// pixel size of 3 or 4 bytes.
const fn shuffle_bg(bpp: usize) -> [i8; 16] {
    let mut s = [-1i8; 16];
    let mut k = 0;
    while k < 4 {
        s[4 * k] = (bpp * k) as i8;
        s[4 * k + 2] = (bpp * k + 1) as i8;
        k += 1;
    }
    s
}

/// Per 128-bit lane: pixel k as 32-bit R in dword k.
const fn shuffle_r(bpp: usize) -> [i8; 16] {
    let mut s = [-1i8; 16];
    let mut k = 0;
    while k < 4 {
        s[4 * k] = (bpp * k + 2) as i8;
        k += 1;
    }
    s
}

const BG3: [i8; 16] = shuffle_bg(3);
const R3: [i8; 16] = shuffle_r(3);
const BG4: [i8; 16] = shuffle_bg(4);
const R4: [i8; 16] = shuffle_r(4);
const COEF_BG: i32 = 114 | (587 << 16);
const COEF_R: i32 = 299;
const ALPHA: i32 = 0xff00_0000_u32 as i32;

// ---- AVX2 -------------------------------------------------------------

/// 8 pixels starting at `p`: (luma ×1000 per 32-bit lane, pure mask
/// lanes all-ones where pure). 24-bit reads `p..p + 28`, 32-bit
/// `p..p + 32`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn avx2_luma8(p: *const u8, bpp: usize, alpha: bool) -> (__m256i, __m256i) {
    // SAFETY: the caller guarantees the bytes read are in bounds.
    unsafe {
        let (v, bg, r) = if bpp == 3 {
            // Lanes: pixels 0..4 at p, pixels 4..8 at p + 12.
            let lo = _mm_loadu_si128(p.cast());
            let hi = _mm_loadu_si128(p.add(12).cast());
            let v = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
            (v, &BG3, &R3)
        } else {
            (_mm256_loadu_si256(p.cast()), &BG4, &R4)
        };
        let bg = _mm256_broadcastsi128_si256(_mm_loadu_si128(bg.as_ptr().cast()));
        let r = _mm256_broadcastsi128_si256(_mm_loadu_si128(r.as_ptr().cast()));
        let luma = _mm256_add_epi32(
            _mm256_madd_epi16(_mm256_shuffle_epi8(v, bg), _mm256_set1_epi32(COEF_BG)),
            _mm256_madd_epi16(_mm256_shuffle_epi8(v, r), _mm256_set1_epi32(COEF_R)),
        );
        let mut pure = _mm256_or_si256(
            _mm256_cmpeq_epi32(luma, _mm256_setzero_si256()),
            _mm256_cmpeq_epi32(luma, _mm256_set1_epi32(255_000)),
        );
        if alpha {
            let a = _mm256_set1_epi32(ALPHA);
            pure = _mm256_and_si256(pure, _mm256_cmpeq_epi32(_mm256_and_si256(v, a), a));
        }
        (luma, pure)
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn avx2_mask8(v: __m256i) -> u64 {
    _mm256_movemask_ps(_mm256_castsi256_ps(v)) as u32 as u64
}

/// # Safety
/// AVX2 must be available; `bytes` must hold `out.len()` × 64 pixels
/// of `bpp` bytes plus 4 bytes when `bpp` is 3.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2_bgr8_threshold(
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    out: &mut [u64],
) -> bool {
    debug_assert!(bytes.len() >= out.len() * 64 * bpp + if bpp == 3 { 4 } else { 0 });
    let mut pure_all = u64::MAX;
    let limit = _mm256_set1_epi32(127_999);
    for (wi, word) in out.iter_mut().enumerate() {
        let (mut bits, mut pure) = (0u64, 0u64);
        for g in 0..8 {
            // SAFETY: in bounds by the function's contract.
            let (luma, p) =
                unsafe { avx2_luma8(bytes.as_ptr().add((wi * 64 + g * 8) * bpp), bpp, alpha) };
            bits |= avx2_mask8(_mm256_cmpgt_epi32(luma, limit)) << (8 * g);
            pure |= avx2_mask8(p) << (8 * g);
        }
        *word = bits.reverse_bits();
        pure_all &= pure;
    }
    pure_all == u64::MAX
}

/// # Safety
/// AVX2 must be available; `bytes` must hold `grey.len()` (a multiple
/// of 32) pixels of `bpp` bytes plus 4 bytes when `bpp` is 3.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2_bgr8_grey(
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    grey: &mut [u8],
) -> bool {
    debug_assert!(grey.len().is_multiple_of(32));
    debug_assert!(bytes.len() >= grey.len() * bpp + if bpp == 3 { 4 } else { 0 });
    let mut pure_all = u32::MAX;
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (bi, block) in grey.chunks_exact_mut(32).enumerate() {
        let mut g = [_mm256_setzero_si256(); 4];
        let mut pure = 0u32;
        for (k, gk) in g.iter_mut().enumerate() {
            // SAFETY: in bounds by the function's contract.
            let (luma, p) =
                unsafe { avx2_luma8(bytes.as_ptr().add((bi * 32 + k * 8) * bpp), bpp, alpha) };
            *gk = _mm256_srli_epi32::<22>(_mm256_mullo_epi32(
                _mm256_srli_epi32::<3>(luma),
                _mm256_set1_epi32(33555),
            ));
            pure |= (avx2_mask8(p) as u32) << (8 * k);
        }
        let ab = _mm256_packus_epi32(g[0], g[1]);
        let cd = _mm256_packus_epi32(g[2], g[3]);
        let bytes32 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
        // SAFETY: `block` is 32 bytes.
        unsafe { _mm256_storeu_si256(block.as_mut_ptr().cast(), bytes32) };
        pure_all &= pure;
    }
    pure_all == u32::MAX
}

/// # Safety
/// AVX2 must be available; `grey.len() == out.len() * 64`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2_grey_threshold(grey: &[u8], out: &mut [u64]) {
    debug_assert_eq!(grey.len(), out.len() * 64);
    for (word, g) in out.iter_mut().zip(grey.chunks_exact(64)) {
        // SAFETY: `g` is 64 bytes. The sign bit of a byte is g ≥ 128.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(g.as_ptr().cast()),
                _mm256_loadu_si256(g.as_ptr().add(32).cast()),
            )
        };
        let bits = u64::from(_mm256_movemask_epi8(lo) as u32)
            | u64::from(_mm256_movemask_epi8(hi) as u32) << 32;
        *word = bits.reverse_bits();
    }
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2_quiet64(grey: &[u8; 64], below: &[i32; 64]) -> (u64, u64) {
    // SAFETY: fixed-size arrays, every load in bounds.
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut e = [zero; 8];
        let mut any = zero;
        for (k, ek) in e.iter_mut().enumerate() {
            *ek = _mm256_loadu_si256(below.as_ptr().add(8 * k).cast());
            any = _mm256_or_si256(any, *ek);
        }
        let mut calm = u64::MAX;
        if _mm256_testz_si256(any, any) == 0 {
            calm = 0;
            for (k, ek) in e.iter().enumerate() {
                calm |= avx2_mask8(_mm256_cmpeq_epi32(*ek, zero)) << (8 * k);
            }
        }
        let (mut pure, mut white) = (0u64, 0u64);
        for half in 0..2 {
            let g = _mm256_loadu_si256(grey.as_ptr().add(32 * half).cast());
            let p = _mm256_or_si256(
                _mm256_cmpeq_epi8(g, zero),
                _mm256_cmpeq_epi8(g, _mm256_set1_epi8(-1)),
            );
            pure |= u64::from(_mm256_movemask_epi8(p) as u32) << (32 * half);
            white |= u64::from(_mm256_movemask_epi8(g) as u32) << (32 * half);
        }
        (pure & calm, white)
    }
}

// ---- SSE4.1 -----------------------------------------------------------

/// 4 pixels starting at `p`; reads `p..p + 16`.
#[inline]
#[target_feature(enable = "sse4.1")]
unsafe fn sse41_luma4(p: *const u8, bpp: usize, alpha: bool) -> (__m128i, __m128i) {
    // SAFETY: the caller guarantees the bytes read are in bounds.
    unsafe {
        let v = _mm_loadu_si128(p.cast());
        let (bg, r) = if bpp == 3 { (&BG3, &R3) } else { (&BG4, &R4) };
        let bg = _mm_loadu_si128(bg.as_ptr().cast());
        let r = _mm_loadu_si128(r.as_ptr().cast());
        let luma = _mm_add_epi32(
            _mm_madd_epi16(_mm_shuffle_epi8(v, bg), _mm_set1_epi32(COEF_BG)),
            _mm_madd_epi16(_mm_shuffle_epi8(v, r), _mm_set1_epi32(COEF_R)),
        );
        let mut pure = _mm_or_si128(
            _mm_cmpeq_epi32(luma, _mm_setzero_si128()),
            _mm_cmpeq_epi32(luma, _mm_set1_epi32(255_000)),
        );
        if alpha {
            let a = _mm_set1_epi32(ALPHA);
            pure = _mm_and_si128(pure, _mm_cmpeq_epi32(_mm_and_si128(v, a), a));
        }
        (luma, pure)
    }
}

#[inline]
#[target_feature(enable = "sse4.1")]
fn sse41_mask4(v: __m128i) -> u64 {
    _mm_movemask_ps(_mm_castsi128_ps(v)) as u32 as u64
}

/// # Safety
/// As [`avx2_bgr8_threshold`], with SSE4.1.
#[target_feature(enable = "sse4.1")]
pub(super) unsafe fn sse41_bgr8_threshold(
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    out: &mut [u64],
) -> bool {
    debug_assert!(bytes.len() >= out.len() * 64 * bpp + if bpp == 3 { 4 } else { 0 });
    let mut pure_all = u64::MAX;
    let limit = _mm_set1_epi32(127_999);
    for (wi, word) in out.iter_mut().enumerate() {
        let (mut bits, mut pure) = (0u64, 0u64);
        for g in 0..16 {
            // SAFETY: in bounds by the function's contract.
            let (luma, p) =
                unsafe { sse41_luma4(bytes.as_ptr().add((wi * 64 + g * 4) * bpp), bpp, alpha) };
            bits |= sse41_mask4(_mm_cmpgt_epi32(luma, limit)) << (4 * g);
            pure |= sse41_mask4(p) << (4 * g);
        }
        *word = bits.reverse_bits();
        pure_all &= pure;
    }
    pure_all == u64::MAX
}

/// # Safety
/// As [`avx2_bgr8_grey`], with SSE4.1.
#[target_feature(enable = "sse4.1")]
pub(super) unsafe fn sse41_bgr8_grey(
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    grey: &mut [u8],
) -> bool {
    debug_assert!(grey.len().is_multiple_of(32));
    debug_assert!(bytes.len() >= grey.len() * bpp + if bpp == 3 { 4 } else { 0 });
    let mut pure_all = u32::MAX;
    for (bi, block) in grey.chunks_exact_mut(16).enumerate() {
        let mut g = [_mm_setzero_si128(); 4];
        let mut pure = 0u32;
        for (k, gk) in g.iter_mut().enumerate() {
            // SAFETY: in bounds by the function's contract.
            let (luma, p) =
                unsafe { sse41_luma4(bytes.as_ptr().add((bi * 16 + k * 4) * bpp), bpp, alpha) };
            *gk = _mm_srli_epi32::<22>(_mm_mullo_epi32(
                _mm_srli_epi32::<3>(luma),
                _mm_set1_epi32(33555),
            ));
            pure |= (sse41_mask4(p) as u32) << (4 * k);
        }
        let ab = _mm_packus_epi32(g[0], g[1]);
        let cd = _mm_packus_epi32(g[2], g[3]);
        // SAFETY: `block` is 16 bytes.
        unsafe { _mm_storeu_si128(block.as_mut_ptr().cast(), _mm_packus_epi16(ab, cd)) };
        pure_all &= pure | 0xffff_0000;
    }
    pure_all == u32::MAX
}

/// # Safety
/// As [`avx2_grey_threshold`], with SSE4.1.
#[target_feature(enable = "sse4.1")]
pub(super) unsafe fn sse41_grey_threshold(grey: &[u8], out: &mut [u64]) {
    debug_assert_eq!(grey.len(), out.len() * 64);
    for (word, g) in out.iter_mut().zip(grey.chunks_exact(64)) {
        let mut bits = 0u64;
        for q in 0..4 {
            // SAFETY: `g` is 64 bytes.
            let v = unsafe { _mm_loadu_si128(g.as_ptr().add(16 * q).cast()) };
            bits |= u64::from(_mm_movemask_epi8(v) as u16) << (16 * q);
        }
        *word = bits.reverse_bits();
    }
}

/// # Safety
/// SSE4.1 must be available.
#[target_feature(enable = "sse4.1")]
pub(super) unsafe fn sse41_quiet64(grey: &[u8; 64], below: &[i32; 64]) -> (u64, u64) {
    // SAFETY: fixed-size arrays, every load in bounds.
    unsafe {
        let zero = _mm_setzero_si128();
        let (mut pure, mut white, mut calm) = (0u64, 0u64, 0u64);
        for k in 0..16 {
            let e = _mm_loadu_si128(below.as_ptr().add(4 * k).cast());
            calm |= sse41_mask4(_mm_cmpeq_epi32(e, zero)) << (4 * k);
        }
        for q in 0..4 {
            let g = _mm_loadu_si128(grey.as_ptr().add(16 * q).cast());
            let p = _mm_or_si128(
                _mm_cmpeq_epi8(g, zero),
                _mm_cmpeq_epi8(g, _mm_set1_epi8(-1)),
            );
            pure |= u64::from(_mm_movemask_epi8(p) as u16) << (16 * q);
            white |= u64::from(_mm_movemask_epi8(g) as u16) << (16 * q);
        }
        (pure & calm, white)
    }
}
