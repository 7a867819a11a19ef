//! The lossless verdict (design §2 "Lossless", relied on in §4.4): every
//! decoded pixel pure black or pure white, and opaque. Each plan's test is
//! here ([`words_pure`], [`indices_pure`]) or, for direct colour, on the
//! pixel's own type ([`Direct::all_pure`]); the kernels
//! (`simd`) and the 16-bit table (`direct.rs`) compute the same purity in
//! their own passes, and the converter ANDs the rows' answers. Also the
//! exact colours the verdict is about, for inspection: [`rgba_row`].

use super::direct::Direct;
use super::threshold::unpack_indices;
use crate::bmp::{BmpInfo, RowData};

/// A 1-bit row's words (`tail` masking the last word's pixels) use no
/// impure index; `pure[i]` tells whether index i is pure.
pub(super) fn words_pure(words: &[u64], tail: u64, pure: [bool; 2]) -> bool {
    let last = words.len() - 1;
    // Is index `bit` used anywhere in the row?
    let used = |bit: bool| {
        words.iter().enumerate().any(|(i, &w)| {
            let valid = if i == last { tail } else { u64::MAX };
            (if bit { w } else { !w }) & valid != 0
        })
    };
    (pure[0] || !used(false)) && (pure[1] || !used(true))
}

/// Every index of a palette row is pure by the palette's table.
pub(super) fn indices_pure(indices: &[u8], pure: &[bool; 256]) -> bool {
    indices.iter().all(|&i| pure[usize::from(i)])
}

/// The exact colour of each pixel of a row as RGBA (direct colour channels
/// rounded to 8 bits; alpha 255 where the file has none). For inspection
/// and tests; the conversion itself does not go through this.
pub fn rgba_row(info: &BmpInfo, row: RowData<'_>) -> Vec<[u8; 4]> {
    let width = info.width as usize;
    let colour = |i: u8| {
        let [r, g, b] = info
            .palette
            .get(usize::from(i))
            .copied()
            .unwrap_or([0, 0, 0]);
        [r, g, b, 255]
    };
    match (info.masks, row) {
        (_, RowData::Indices(ix)) => ix.iter().map(|&i| colour(i)).collect(),
        (None, RowData::Packed(bytes)) => {
            let mut ix = vec![0u8; width];
            unpack_indices(bytes, info.bits_per_pixel, &mut ix);
            ix.into_iter().map(colour).collect()
        }
        (Some(m), RowData::Packed(bytes)) => {
            let d = Direct::new(info.bits_per_pixel, m);
            (0..width)
                .map(|x| {
                    let px = d.pixel(bytes, x);
                    let a = if d.a.max == 0 {
                        255
                    } else {
                        d.a.exact(d.a.raw(px))
                    };
                    [
                        d.r.exact(d.r.raw(px)),
                        d.g.exact(d.g.raw(px)),
                        d.b.exact(d.b.raw(px)),
                        a,
                    ]
                })
                .collect()
        }
    }
}
