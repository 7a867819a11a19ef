//! Floyd–Steinberg exactly as Pillow does it (design §2; `tobilevel` in
//! Pillow's Convert.c): [`dither_row`], the scalar definition, and
//! [`dither_row_fast`], the same results with the serial loop skipped over
//! quiet spans and shortened per pixel ([`fs_step`]). The error array
//! (width + 1 entries) is the caller's, carried from row to row.

use super::simd::{self, Isa};

/// One row of Pillow's Floyd–Steinberg (`tobilevel` in Convert.c): left to
/// right, errors carried in `errors` (width + 1 entries) to the next row,
/// with its exact integer arithmetic: the summed error is divided by 16
/// with truncation toward zero.
pub(super) fn dither_row(grey: &[u8], errors: &mut [i32], out: &mut [u64]) {
    out.fill(0);
    // l: 7/16-scaled error flowing right; l0, l1: the pending below-row sums.
    let (mut l, mut l0, mut l1) = (0i32, 0i32, 0i32);
    for (x, &g) in grey.iter().enumerate() {
        let v = (i32::from(g) + (l + errors[x + 1]) / 16).clamp(0, 255);
        let white = v > 128;
        if white {
            out[x / 64] |= 1 << (63 - x % 64);
        }
        let e = v - if white { 255 } else { 0 };
        errors[x] = 3 * e + l0;
        l0 = 5 * e + l1;
        l1 = e;
        l = 7 * e;
    }
    errors[grey.len()] = l0;
}

/// [`dither_row`] with the same arithmetic and results, skipping the work
/// where it provably has none.
///
/// At pixel x the loop's state is the error carried right (`l`), the two
/// pending below-row sums (`l0`, `l1`) and the error waiting from the row
/// above (`errors[x + 1]`). When all four are zero and the grey level is
/// 0 or 255, v is the grey level itself, so the pixel's error e is 0: the
/// pixel is black or white as its grey says, writes `errors[x] = 0`, and
/// leaves the state all zero — a "quiet" span that needs no serial work.
/// [`simd::quiet64`] finds the quiet pixels (grey and the error above; the
/// row above's errors ahead of x are not touched by this row's loop before
/// x, so the mask holds for the whole word) and the loop jumps over them
/// whenever its own state is zero. Pure black-and-white pages are quiet
/// everywhere and run at threshold speed.
///
/// Returns the number of pixels that were not skipped.
pub(super) fn dither_row_fast(isa: Isa, grey: &[u8], errors: &mut [i32], out: &mut [u64]) -> u64 {
    let width = grey.len();
    debug_assert_eq!(errors.len(), width + 1);
    let mut state = FsState::ZERO;
    let mut skipped = 0;
    for (wi, word) in out.iter_mut().enumerate() {
        let base = wi * 64;
        let n = (width - base).min(64);
        let g = &grey[base..base + n];
        // errors[base..=base + n]: e[i + 1] waits for pixel i, e[i] is written by it.
        let e = &mut errors[base..=base + n];
        let (quiet, white) = match (g.try_into(), e[1..].try_into()) {
            (Ok(g64), Ok(e64)) => simd::quiet64(isa, g64, e64).unwrap_or((0, 0)),
            _ => {
                let (mut quiet, mut white) = (0u64, 0u64);
                for i in 0..n {
                    quiet |= u64::from((g[i] == 0 || g[i] == 255) && e[i + 1] == 0) << i;
                    white |= u64::from(g[i] >= 128) << i;
                }
                (quiet, white)
            }
        };
        // Bit i for pixel base + i, reversed into the row's order at the end.
        let mut bits = 0u64;
        let mut i = 0;
        while i < n {
            if quiet >> i == 0 {
                // Nothing left to skip in this word: the plain loop.
                for j in i..n {
                    let (white, below) = fs_step(g[j], e[j + 1], &mut state);
                    bits |= u64::from(white) << j;
                    e[j] = below;
                }
                break;
            }
            if state == FsState::ZERO {
                let run = ((quiet >> i).trailing_ones() as usize).min(n - i);
                if run > 0 {
                    let span = if run == 64 {
                        u64::MAX
                    } else {
                        ((1u64 << run) - 1) << i
                    };
                    bits |= white & span;
                    // 3e + l0 = 0; the rest of the span's entries are already 0.
                    e[i] = 0;
                    i += run;
                    skipped += run;
                    continue;
                }
            }
            let (is_white, below) = fs_step(g[i], e[i + 1], &mut state);
            bits |= u64::from(is_white) << i;
            e[i] = below;
            i += 1;
        }
        *word = bits.reverse_bits();
    }
    errors[width] = state.l0;
    (width - skipped) as u64
}

/// The serial state of [`dither_row`]: `l` the error flowing right (×16),
/// `l0`, `l1` the pending sums for the row below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FsState {
    l: i32,
    pub(super) l0: i32,
    l1: i32,
}

impl FsState {
    pub(super) const ZERO: FsState = FsState { l: 0, l0: 0, l1: 0 };
}

/// One pixel of [`dither_row`]: grey `g` and the error waiting from the row
/// above; returns (white, the value to store for the row below) and
/// advances the state. The same arithmetic, arranged for a shorter
/// dependency chain from one pixel's error to the next: with s = g +
/// (l + below) / 16, white is s > 128 (clamping to 0..=255 cannot cross
/// 128), and the error is min(s − 255, 0) if white, else max(s, 0) — both
/// computed while the comparison is made, then picked with a mask.
#[inline(always)]
pub(super) fn fs_step(g: u8, below: i32, st: &mut FsState) -> (bool, i32) {
    let s = i32::from(g) + (st.l + below) / 16;
    let white = s > 128;
    // A mask, not `if`: the compiler turns a select of two values into a
    // branch here, which mispredicts on every other pixel of a photograph.
    let mask = -i32::from(white);
    let (if_white, if_black) = ((s - 255).min(0), s.max(0));
    let err = if_black ^ ((if_white ^ if_black) & mask);
    let store = 3 * err + st.l0;
    st.l0 = 5 * err + st.l1;
    st.l1 = err;
    st.l = 7 * err;
    (white, store)
}
