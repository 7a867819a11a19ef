//! Cross-checks of the whole conversion (design §2): the kernels against
//! the scalar code at every width, alignment and pixel format, and the
//! scalar code against independent, literal transcriptions of design §2's
//! rules (the dither, direct colour's grey level and lossless verdict).
//! Tests of one piece live with it (`direct.rs`, `simd.rs`).

use super::Conversion;
use super::converter::Converter;
use super::direct::{Direct, Table16};
use super::dither::dither_row;
use super::simd::Isa;
use crate::bmp::{BmpInfo, Masks, PillowMode, RowData};
use crate::rle;

/// An independent, literal transcription of the rule in design §2
/// (errors kept per target pixel, not in Pillow's rolling form).
fn dither_reference(grey: &[Vec<u8>]) -> Vec<Vec<bool>> {
    let w = grey[0].len();
    let mut below = vec![0i32; w + 1]; // errors for the current row, from the row above
    let mut out = Vec::new();
    for row in grey {
        let mut next = vec![0i32; w + 1];
        let mut right = 0;
        let mut bits = Vec::new();
        for x in 0..w {
            let v = (i32::from(row[x]) + (right + below[x]) / 16).clamp(0, 255);
            let white = v > 128;
            bits.push(white);
            let e = v - if white { 255 } else { 0 };
            right = 7 * e;
            if x > 0 {
                next[x - 1] += 3 * e;
            }
            next[x] += 5 * e;
            next[x + 1] += e;
        }
        below = next;
        out.push(bits);
    }
    out
}

#[test]
fn dither_matches_the_design_transcription() {
    let mut seed = 12345u32;
    for &w in &[1usize, 2, 3, 63, 64, 65, 130] {
        let rows: Vec<Vec<u8>> = (0..17)
            .map(|_| {
                (0..w)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect()
            })
            .collect();
        let expected = dither_reference(&rows);
        let mut errors = vec![0; w + 1];
        let mut out = vec![0u64; w.div_ceil(64)];
        for (row, exp) in rows.iter().zip(&expected) {
            dither_row(row, &mut errors, &mut out);
            let got: Vec<bool> = (0..w)
                .map(|x| out[x / 64] >> (63 - x % 64) & 1 == 1)
                .collect();
            assert_eq!(&got, exp, "width {w}");
        }
    }
}

/// Pixel formats the kernels and the scalar code share: (bits per
/// pixel, masks, mode).
const FORMATS: &[(u16, Masks, PillowMode)] = &[
    (24, RGB8, PillowMode::Rgb),
    (32, RGB8, PillowMode::Rgb),
    (
        32,
        Masks {
            alpha: 0xff00_0000,
            ..RGB8
        },
        PillowMode::Rgb,
    ),
    (
        16,
        Masks {
            red: 0xf800,
            green: 0x07e0,
            blue: 0x1f,
            alpha: 0,
        },
        PillowMode::Rgb,
    ),
    // 4-4-4-4 with alpha: not a layout Pillow reads itself (exact
    // scaling, alpha in the lossless verdict).
    (
        16,
        Masks {
            red: 0x0f00,
            green: 0x00f0,
            blue: 0x000f,
            alpha: 0xf000,
        },
        PillowMode::Rgb,
    ),
    // Bytes are indices into a greyscale palette (Pillow's "L").
    (8, RGB8, PillowMode::L),
];
const RGB8: Masks = Masks {
    red: 0xff_0000,
    green: 0xff00,
    blue: 0xff,
    alpha: 0,
};

fn info(width: usize, (bits, masks, mode): (u16, Masks, PillowMode)) -> BmpInfo {
    let grey = mode == PillowMode::L;
    BmpInfo {
        width: width as u32,
        height: 1,
        top_down: true,
        bits_per_pixel: bits,
        compression: crate::bmp::Compression::None,
        masks: (!grey).then_some(masks),
        palette: if grey {
            (0..=255u8).map(|i| [i, i, i]).collect()
        } else {
            Vec::new()
        },
        mode,
        data_offset: 0,
        stride: 0,
        file_len: 0,
    }
}

/// Kinds of rows: random bytes, pure black/white pixels, pure pixels
/// with a sprinkling of near-pure ones (one channel or alpha off by one).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Random,
    Pure,
    NearPure,
}

/// `rows` rows of `width` pixels of `bits` bits, each `slack` bytes
/// longer than its pixels, from a seeded generator.
fn make_rows(
    width: usize,
    bits: u16,
    kind: Kind,
    rows: usize,
    slack: usize,
    seed: u64,
) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bpp = usize::from(bits / 8);
    (0..rows)
        .map(|_| {
            let mut row = vec![0u8; width * bpp + slack];
            for px in row.chunks_exact_mut(bpp).take(width) {
                let r = next();
                match kind {
                    Kind::Random => px.copy_from_slice(&r.to_le_bytes()[..bpp]),
                    Kind::Pure | Kind::NearPure => {
                        px.fill(if r & 1 == 1 { 255 } else { 0 });
                        if bpp == 4 {
                            px[3] = 255; // opaque, where alpha counts
                        }
                        if matches!(kind, Kind::NearPure) && (r >> 8) % 5 == 0 {
                            let i = (r >> 16) as usize % bpp;
                            px[i] = if px[i] == 0 { 1 } else { 254 };
                        }
                    }
                }
            }
            for b in &mut row[width * bpp..] {
                *b = next() as u8;
            }
            row
        })
        .collect()
}

/// Converts `rows` (each read at byte `offset` of its own buffer) with
/// every instruction set this CPU has and checks each against the
/// scalar reference: the bits, the lossless verdict and the error row.
fn check_isas(
    width: usize,
    format: usize,
    rows: &[Vec<u8>],
    offset: usize,
    conversion: Conversion,
) {
    let info = info(width, FORMATS[format]);
    let run = |isa| {
        let mut c = Converter::with_isa(&info, conversion, isa);
        let mut out = Vec::new();
        for row in rows {
            let mut buf = vec![0xa5u8; offset];
            buf.extend_from_slice(row);
            let mut bits = vec![u64::MAX; rle::words_for(width)];
            c.row(RowData::Packed(&buf[offset..]), &mut bits);
            out.push(bits);
        }
        (out, c.lossless(), c.errors)
    };
    let expected = run(Isa::Scalar);
    for isa in Isa::available() {
        assert_eq!(
            run(isa),
            expected,
            "{isa:?} width {width} format {:?} offset {offset} {conversion}",
            FORMATS[format]
        );
    }
}

#[test]
fn kernels_match_the_scalar_code_at_every_width() {
    for width in 1..=300 {
        for (format, &(bits, ..)) in FORMATS.iter().enumerate() {
            for (k, kind) in [Kind::Random, Kind::Pure, Kind::NearPure]
                .into_iter()
                .enumerate()
            {
                let slack = (width + k) % 8;
                let rows = make_rows(
                    width,
                    bits,
                    kind,
                    3,
                    slack,
                    (width * 31 + format * 7 + k) as u64,
                );
                for conversion in [Conversion::Dither, Conversion::Threshold] {
                    check_isas(width, format, &rows, (width * 3 + k) % 32, conversion);
                }
            }
        }
    }
}

proptest::proptest! {
    // Failure seeds live with the integration tests' (tests/), not in a
    // folder of their own at the top of the repository.
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/proptest-regressions/bilevel.txt",
            ),
        )),
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn kernels_match_the_scalar_code_on_random_rows(
        width in 1usize..=300,
        format in 0..FORMATS.len(),
        kind in proptest::prop_oneof![
            proptest::prelude::Just(Kind::Random),
            proptest::prelude::Just(Kind::Pure),
            proptest::prelude::Just(Kind::NearPure),
        ],
        rows in 1usize..=4,
        slack in 0usize..8,
        offset in 0usize..64,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let rows = make_rows(width, FORMATS[format].0, kind, rows, slack, seed);
        for conversion in [Conversion::Dither, Conversion::Threshold] {
            check_isas(width, format, &rows, offset, conversion);
        }
    }
}

/// The scalar reference against a literal reading of design §2 for
/// 24- and 32-bit rows: g = (299 R + 587 G + 114 B) / 1000, then
/// g ≥ 128 or its Floyd–Steinberg; lossless iff every pixel is
/// (0,0,0) or (255,255,255).
#[test]
fn scalar_direct_colour_matches_the_design_transcription() {
    for (format, width, kind) in [
        (0, 130, Kind::Random),
        (1, 65, Kind::Random),
        (0, 200, Kind::Pure),
        (1, 7, Kind::NearPure),
    ] {
        let bits = FORMATS[format].0;
        let bpp = usize::from(bits / 8);
        let rows = make_rows(width, bits, kind, 5, 1, 99);
        let greys: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| {
                r.chunks_exact(bpp)
                    .take(width)
                    .map(|p| {
                        ((299 * u32::from(p[2]) + 587 * u32::from(p[1]) + 114 * u32::from(p[0]))
                            / 1000) as u8
                    })
                    .collect()
            })
            .collect();
        let pure = rows.iter().all(|r| {
            r.chunks_exact(bpp)
                .take(width)
                .all(|p| p[..3] == [0; 3] || p[..3] == [255; 3])
        });
        let dithered = dither_reference(&greys);
        for conversion in [Conversion::Dither, Conversion::Threshold] {
            let mut c = Converter::with_isa(&info(width, FORMATS[format]), conversion, Isa::Scalar);
            for (y, row) in rows.iter().enumerate() {
                let mut out = vec![0u64; rle::words_for(width)];
                c.row(RowData::Packed(row), &mut out);
                let got: Vec<bool> = (0..width)
                    .map(|x| out[x / 64] >> (63 - x % 64) & 1 == 1)
                    .collect();
                let want: Vec<bool> = match conversion {
                    Conversion::Dither => dithered[y].clone(),
                    Conversion::Threshold => greys[y].iter().map(|&g| g >= 128).collect(),
                };
                assert_eq!(
                    got, want,
                    "format {format} width {width} row {y} {conversion}"
                );
            }
            assert_eq!(c.lossless(), pure);
        }
    }
}

#[test]
fn the_16_bit_table_agrees_with_the_scalar_rules_for_every_value() {
    for &(bits, masks, _) in FORMATS.iter().filter(|f| f.0 == 16) {
        let d = Direct::new(bits, masks);
        let t = Table16::new(&d);
        for px in 0..=u16::MAX {
            let want = (d.grey(u32::from(px)), d.pure(u32::from(px)));
            assert_eq!(t.lookup(px), want, "pixel {px:#06x}");
        }
    }
}

/// Design §2's lossless verdict read literally, one pixel at a time, for
/// every direct-colour format and every channel at 0, 1, its maximum
/// less one and its maximum: pure black is every colour channel 0, pure
/// white every colour channel all ones, and either counts only where the
/// alpha channel (if the masks have one) is all ones.
#[test]
fn every_pixel_near_black_or_white_gets_the_design_lossless_verdict() {
    let top = |mask: u32| mask >> mask.trailing_zeros();
    let levels = |mask: u32| {
        if mask == 0 {
            vec![0]
        } else {
            vec![0, 1, top(mask) - 1, top(mask)]
        }
    };
    let at = |v: u32, mask: u32| {
        if mask == 0 {
            0
        } else {
            v << mask.trailing_zeros()
        }
    };
    for &format @ (bits, m, _) in FORMATS.iter().filter(|f| f.2 == PillowMode::Rgb) {
        // The kernels read 8-bit channels; 16-bit formats go to the
        // scalar code or its table (checked against it elsewhere).
        let isas = if bits == 16 {
            vec![Isa::Scalar]
        } else {
            vec![Isa::Scalar, Isa::detect()]
        };
        for (r, g, b, a) in levels(m.red).into_iter().flat_map(|r| {
            levels(m.green).into_iter().flat_map(move |g| {
                levels(m.blue)
                    .into_iter()
                    .flat_map(move |b| levels(m.alpha).into_iter().map(move |a| (r, g, b, a)))
            })
        }) {
            let black = (r, g, b) == (0, 0, 0);
            let white = (r, g, b) == (top(m.red), top(m.green), top(m.blue));
            let opaque = m.alpha == 0 || a == top(m.alpha);
            let want = opaque && (black || white);
            let px = at(r, m.red) | at(g, m.green) | at(b, m.blue) | at(a, m.alpha);
            let mut row = px.to_le_bytes()[..usize::from(bits / 8)].to_vec();
            row.extend_from_slice(&[0xa5; 4]);
            for &isa in &isas {
                for conversion in [Conversion::Dither, Conversion::Threshold] {
                    let mut c = Converter::with_isa(&info(1, format), conversion, isa);
                    let mut out = vec![0u64; 1];
                    c.row(RowData::Packed(&row), &mut out);
                    assert_eq!(
                        c.lossless(),
                        want,
                        "{bits} bits, masks {m:x?}, pixel {px:#x} (r {r} g {g} b {b} a {a}), \
                         {isa:?}, {conversion}"
                    );
                }
            }
        }
    }
}

/// The same verdict for palette images (1, 4 and 8 bits): lossless iff
/// every index used names pure black or pure white, whatever the other
/// entries are.
#[test]
fn a_palette_image_is_lossless_iff_every_colour_it_uses_is_black_or_white() {
    const BLACK: [u8; 3] = [0, 0, 0];
    const WHITE: [u8; 3] = [255, 255, 255];
    let colours = [BLACK, WHITE, [255, 0, 0], [1, 0, 0], [255, 255, 254]];
    let width = 70; // past one 64-pixel word
    for bits in [1u16, 4, 8] {
        for c0 in colours {
            for c1 in colours {
                // Only index 0, only index 1, both.
                for pattern in [|_: usize| 0u8, |_| 1, |x| (x % 3 == 1) as u8] {
                    let used: Vec<u8> = (0..width).map(pattern).collect();
                    let want = used
                        .iter()
                        .all(|&i| [BLACK, WHITE].contains(&[c0, c1][usize::from(i)]));
                    let mut row = vec![0u8; (width * usize::from(bits)).div_ceil(8) + 4];
                    for (x, &i) in used.iter().enumerate() {
                        let at = x * usize::from(bits);
                        row[at / 8] |= i << (8 - usize::from(bits) - at % 8);
                    }
                    let mut info = info(width, FORMATS[0]);
                    info.bits_per_pixel = bits;
                    info.masks = None;
                    info.palette = vec![c0, c1];
                    info.mode = PillowMode::P;
                    for conversion in [Conversion::Dither, Conversion::Threshold] {
                        let mut c = Converter::new(&info, conversion);
                        let mut out = vec![0u64; rle::words_for(width)];
                        c.row(RowData::Packed(&row), &mut out);
                        assert_eq!(
                            c.lossless(),
                            want,
                            "{bits} bits, palette {c0:?} {c1:?}, indices {:?}…",
                            &used[..6]
                        );
                    }
                }
            }
        }
    }
}
