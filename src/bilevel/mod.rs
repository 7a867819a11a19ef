//! Pixels → bits, exactly as Pillow's `convert('1')` does it
//! (`docs/design.md` §2), row by row, plus the "lossless" verdict (every
//! pixel pure black or pure white and fully opaque; design §2, §4.4).
//!
//! The rule depends on the mode Pillow would open the file as
//! ([`PillowMode`](crate::bmp::PillowMode), decided with the header):
//! bilevel palettes use the index as the bit, other palettes threshold
//! each palette colour (never dithered), greyscale palettes and direct
//! colour go through a grey level that is dithered (Floyd–Steinberg,
//! Pillow's integer arithmetic) or thresholded at 128. This module knows
//! nothing of files.
//!
//! The scalar code is the definition; `simd` speeds up the hot loops
//! (direct colour → bits or grey with the lossless check in the same pass,
//! grey → bits, and the dither's skip over spans where it provably has
//! nothing to do) and must agree with it bit for bit.
//!
//! The files, in the order a row goes through them:
//!
//! - `plan.rs`: Pillow's mode → this image's plan (the table of design §2).
//! - `converter.rs`: [`Converter`], one image's rows → bits by its plan.
//! - `direct.rs`: direct-colour pixels: channels, Pillow's grey level,
//!   the 16-bit table, the layouts the kernels read.
//! - `threshold.rs`: grey → bits (threshold or dither), bit packing.
//! - `dither.rs`: Floyd–Steinberg as Pillow does it, and its fast form.
//! - `wavefront.rs`: [`Wavefront`], the same dither on two threads.
//! - `lossless.rs`: the lossless verdict, and exact colours ([`rgba_row`]).
//! - `simd.rs`, `simd/x86.rs`: the vectorised kernels.
//! - `tests.rs`: kernels against the scalar code, the scalar code against
//!   design §2.

mod converter;
mod direct;
mod dither;
mod lossless;
mod plan;
mod simd;
#[cfg(test)]
mod tests;
mod threshold;
mod wavefront;

pub use converter::Converter;
pub use lossless::rgba_row;
pub use wavefront::Wavefront;

/// How grey levels become bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conversion {
    /// Floyd–Steinberg error diffusion (Pillow's default).
    #[default]
    Dither,
    /// Plain threshold at 128 (Pillow's `dither=NONE`).
    Threshold,
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conversion::Dither => "dither",
            Conversion::Threshold => "threshold",
        })
    }
}

/// Pillow's luminance test, scaled by 1000: 299 R + 587 G + 114 B.
#[inline]
fn luma1000(r: u8, g: u8, b: u8) -> u32 {
    299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)
}
