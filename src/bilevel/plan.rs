//! Pillow's mode choice turned into a plan (design §2): which rule of the
//! table in design §2 an image's pixels follow, with the per-index tables
//! a palette image needs. The mode itself ([`PillowMode`]) is decided with
//! the header (`bmp::header`, design §2–3); [`Converter`](super::Converter)
//! carries the plan out row by row.

use super::direct::Direct;
use super::luma1000;
use crate::bmp::{BmpInfo, Compression, PillowMode};

/// How one image's pixels become bits: the rule of design §2 for its
/// Pillow mode, set up once per image.
pub(super) enum Plan {
    /// 1-bit uncompressed, bits mapped a word at a time: output =
    /// (input & keep) ^ flip, with `pure[i]` saying whether index i is pure.
    Words {
        keep: u64,
        flip: u64,
        pure: [bool; 2],
    },
    /// Palette images: per-index bit (One, P) or grey (L).
    Indexed {
        bit: Box<[u8; 256]>,
        grey: Box<[u8; 256]>,
        pure: Box<[bool; 256]>,
        via_grey: bool,
    },
    /// Direct colour ("RGB"): each pixel's grey level, from its channels.
    Direct(Direct),
}

/// The plan for a palette image ("1", "L" or "P"): a bit and a grey level
/// per index (for "1", the index is the bit; for "P", the colour's luma
/// thresholded; for "L", the grey level, dithered later), or, for 1-bit
/// uncompressed rows outside "L", a word-at-a-time mapping.
pub(super) fn indexed_plan(info: &BmpInfo, mode: PillowMode) -> Plan {
    let pal = &info.palette;
    // Indices past the palette's end are black (as Pillow ≥ 10.1).
    let colour = |i: usize| pal.get(i).copied().unwrap_or([0, 0, 0]);
    let bit_of = |i: usize| match mode {
        PillowMode::One => i == 1,
        _ => {
            let [r, g, b] = colour(i);
            luma1000(r, g, b) >= 128_000
        }
    };
    let pure_of = |i: usize| matches!(colour(i), [0, 0, 0] | [255, 255, 255]);
    if info.bits_per_pixel == 1 && mode != PillowMode::L && info.compression == Compression::None {
        let (b0, b1) = (bit_of(0), bit_of(1));
        let (keep, flip) = match (b0, b1) {
            (false, true) => (u64::MAX, 0),
            (true, false) => (u64::MAX, u64::MAX),
            (false, false) => (0, 0),
            (true, true) => (0, u64::MAX),
        };
        return Plan::Words {
            keep,
            flip,
            pure: [pure_of(0), pure_of(1)],
        };
    }
    let mut bit = Box::new([0u8; 256]);
    let mut grey = Box::new([0u8; 256]);
    let mut pure = Box::new([false; 256]);
    for i in 0..256 {
        bit[i] = u8::from(bit_of(i));
        grey[i] = colour(i)[0];
        pure[i] = pure_of(i);
    }
    Plan::Indexed {
        bit,
        grey,
        pure,
        via_grey: mode == PillowMode::L,
    }
}
