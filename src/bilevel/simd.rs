//! Vectorised kernels for the hot loops of [`super`] (design §2's
//! arithmetic), with runtime dispatch: AVX2 or SSE4.1 on x86-64 when the
//! CPU has them (`simd/x86.rs`), nothing elsewhere.
//!
//! Every kernel handles a *prefix* of its input (whole blocks of pixels it
//! can load without reading past the slice) and returns how many pixels it
//! did; the caller finishes the rest with the scalar reference code, which
//! is also all that runs under [`Isa::Scalar`]. So the scalar code stays
//! the definition, and the kernels must agree with it bit for bit (the
//! property tests in `super::tests` compare them on every width and
//! alignment). Kernels never decide anything the scalar code would not:
//! they compute the same integers (luma ×1000, its exact quotient by 1000,
//! the same comparisons), just 8 or 4 pixels at a time.

/// Instruction set used by a converter, detected once per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The scalar reference code only.
    Scalar,
    /// x86-64 SSE4.1 (4 pixels per step).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Sse41,
    /// x86-64 AVX2 (8 pixels per step).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
            if std::arch::is_x86_feature_detected!("sse4.1") {
                return Isa::Sse41;
            }
        }
        Isa::Scalar
    }

    /// Every instruction set this CPU can run, for tests.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let best = Isa::detect();
        let mut all = vec![Isa::Scalar];
        if best != Isa::Scalar {
            all.push(Isa::Sse41);
        }
        if best == Isa::Avx2 {
            all.push(Isa::Avx2);
        }
        all
    }
}

/// `luma / 1000` for every luma 0..=255000 (299 R + 587 G + 114 B of 8-bit
/// channels) without a division: `x / 1000 = (x / 8) / 125`, and
/// `y / 125 = (y × 33555) >> 22` for every y < 2^15 (33555 = ⌈2^22 / 125⌉;
/// the error 71 y / 2^22 stays below 1/125). Checked for every luma by a
/// unit test; the kernels use the same formula in 32-bit lanes.
#[cfg(test)]
pub(crate) fn div1000(luma: u32) -> u32 {
    ((luma >> 3) * 33555) >> 22
}

/// Direct-colour rows with 8-bit B, G, R at offsets 0, 1, 2 of each
/// `bpp`-byte pixel (`bpp` 3 or 4), thresholded: fills whole words of
/// `out` (64 pixels each, first pixel in the most significant bit) and
/// returns (pixels done, all of them pure). With `alpha`, pixels also need
/// byte 3 = 255 to be pure.
pub(crate) fn bgr8_threshold(
    isa: Isa,
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    width: usize,
    out: &mut [u64],
) -> (usize, bool) {
    // Whole words whose last load stays inside `bytes` (24-bit loads read
    // 4 bytes past the last pixel of their group).
    let words = |slack: usize| {
        let by_width = width / 64;
        let by_bytes = bytes.len().saturating_sub(slack) / (64 * bpp);
        by_width.min(by_bytes).min(out.len())
    };
    // Rows too short for one word (a 1-pixel row of 3 bytes, shorter than
    // a load's slack) are the scalar code's.
    if words(0) == 0 {
        return (0, true);
    }
    match isa {
        Isa::Scalar => (0, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let n = words(if bpp == 3 { 4 } else { 0 });
            // SAFETY: AVX2 was detected; `n` words fit in `bytes` and `out`.
            let pure = unsafe { x86::avx2_bgr8_threshold(bytes, bpp, alpha, &mut out[..n]) };
            (n * 64, pure)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Sse41 => {
            let n = words(if bpp == 3 { 4 } else { 0 });
            // SAFETY: SSE4.1 was detected; `n` words fit in `bytes` and `out`.
            let pure = unsafe { x86::sse41_bgr8_threshold(bytes, bpp, alpha, &mut out[..n]) };
            (n * 64, pure)
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => (0, true),
    }
}

/// Like [`bgr8_threshold`] but producing grey levels `luma / 1000` into
/// `grey` (32 pixels per block); returns (pixels done, all pure).
pub(crate) fn bgr8_grey(
    isa: Isa,
    bytes: &[u8],
    bpp: usize,
    alpha: bool,
    grey: &mut [u8],
) -> (usize, bool) {
    let blocks = |slack: usize| {
        let by_width = grey.len() / 32;
        let by_bytes = bytes.len().saturating_sub(slack) / (32 * bpp);
        by_width.min(by_bytes)
    };
    if blocks(0) == 0 {
        return (0, true);
    }
    match isa {
        Isa::Scalar => (0, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let n = blocks(if bpp == 3 { 4 } else { 0 });
            // SAFETY: AVX2 was detected; `n` blocks fit in `bytes` and `grey`.
            let pure = unsafe { x86::avx2_bgr8_grey(bytes, bpp, alpha, &mut grey[..n * 32]) };
            (n * 32, pure)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Sse41 => {
            let n = blocks(if bpp == 3 { 4 } else { 0 });
            // SAFETY: SSE4.1 was detected; `n` blocks fit in `bytes` and `grey`.
            let pure = unsafe { x86::sse41_bgr8_grey(bytes, bpp, alpha, &mut grey[..n * 32]) };
            (n * 32, pure)
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => (0, true),
    }
}

/// Grey levels thresholded at 128 into whole words of `out`; returns the
/// pixels done (a multiple of 64).
pub(crate) fn grey_threshold(isa: Isa, grey: &[u8], out: &mut [u64]) -> usize {
    let n = (grey.len() / 64).min(out.len());
    match isa {
        Isa::Scalar => 0,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: AVX2 was detected; `n` words fit in `grey` and `out`.
            unsafe { x86::avx2_grey_threshold(&grey[..n * 64], &mut out[..n]) };
            n * 64
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Sse41 => {
            // SAFETY: SSE4.1 was detected; `n` words fit in `grey` and `out`.
            unsafe { x86::sse41_grey_threshold(&grey[..n * 64], &mut out[..n]) };
            n * 64
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => 0,
    }
}

/// For the dither's fast path, over 64 pixels: `(quiet, white)`, bit i
/// (least significant first) for pixel i. Quiet: grey 0 or 255 and a zero
/// error waiting below (`below[i] == 0`); white: grey ≥ 128 (meaningful
/// where quiet). `None` under [`Isa::Scalar`].
pub(crate) fn quiet64(isa: Isa, grey: &[u8; 64], below: &[i32; 64]) -> Option<(u64, u64)> {
    match isa {
        Isa::Scalar => None,
        // SAFETY: AVX2 was detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(unsafe { x86::avx2_quiet64(grey, below) }),
        // SAFETY: SSE4.1 was detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Sse41 => Some(unsafe { x86::sse41_quiet64(grey, below) }),
        #[cfg(not(target_arch = "x86_64"))]
        _ => None,
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    #[test]
    fn div1000_is_exact_for_every_luma() {
        for luma in 0..=255_000u32 {
            assert_eq!(super::div1000(luma), luma / 1000, "luma {luma}");
        }
    }
}
