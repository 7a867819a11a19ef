//! Tests of the two-thread dither: one thread and two give the same bytes.

use super::*;

/// A 24-bit BMP with a noisy gradient and pure black-and-white bands,
/// bottom-up or top-down, rows padded to 4 bytes.
fn bmp24(width: usize, height: usize, top_down: bool) -> Vec<u8> {
    let stride = (width * 3).div_ceil(4) * 4;
    let mut out = Vec::new();
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&((54 + stride * height) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(width as i32).to_le_bytes());
    let h = if top_down {
        -(height as i32)
    } else {
        height as i32
    };
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    let mut seed = 7u32;
    for y in 0..height {
        let start = out.len();
        for x in 0..width {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Noisy at both ends, so that either row order starts
            // with work for the dither (and takes two threads).
            let band = if y < 80 || y + 80 >= height {
                0
            } else {
                (y / 40) % 3
            };
            let v = match band {
                0 => ((x + y) % 256) as u8 ^ (seed >> 28) as u8,
                1 => 255,
                _ => {
                    if (x / 9 + y / 5) % 2 == 0 {
                        0
                    } else {
                        255
                    }
                }
            };
            out.extend_from_slice(&[v, v, v]);
        }
        out.resize(start + stride, 0);
    }
    out
}

/// An uncompressed BMP of `bpp` bits a pixel (16, 24, 32 direct
/// colour, or 8 with the grey ramp palette, which Pillow reads as "L"),
/// bottom-up, whose pixel values come from `pixel(x, y)` (a 16-bit value
/// is 5-5-5).
fn bmp_of(width: usize, height: usize, bpp: u16, pixel: impl Fn(usize, usize) -> u32) -> Vec<u8> {
    let stride = (width * usize::from(bpp) / 8).div_ceil(4) * 4;
    let palette = if bpp == 8 { 256 * 4 } else { 0 };
    let offset = 54 + palette;
    let mut out = Vec::new();
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&((offset + stride * height) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(width as i32).to_le_bytes());
    out.extend_from_slice(&(height as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&bpp.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    if bpp == 8 {
        for i in 0..=255u8 {
            out.extend_from_slice(&[i, i, i, 0]);
        }
    }
    for y in (0..height).rev() {
        let start = out.len();
        for x in 0..width {
            let v = pixel(x, y).to_le_bytes();
            out.extend_from_slice(&v[..usize::from(bpp) / 8]);
        }
        out.resize(start + stride, 0);
    }
    out
}

/// The two-thread dither writes exactly what the one-thread loop
/// writes, with the same verdicts, for every way of reading pixels
/// that dithers: 24- and 32-bit (the kernels), 16-bit (the table), the
/// grey palette; noisy, so that every row is busy. (An image that
/// switches is never lossless: rows whose pixels are all pure black or
/// white give the dither no work, so the probe rows had an impure one.)
#[test]
fn two_threads_give_the_one_thread_bytes_for_every_pixel_layout() {
    // 211 columns, 300 rows: several blocks, odd and even row counts.
    let (width, height) = (211, 300);
    let noise = |x: usize, y: usize| {
        let mut s = (x as u32).wrapping_mul(2_654_435_761) ^ (y as u32).wrapping_mul(40_503);
        s ^= s >> 13;
        s = s.wrapping_mul(1_274_126_177);
        s ^ (s >> 16)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("24-bit noise", bmp_of(width, height, 24, noise)),
        ("32-bit noise", bmp_of(width, height, 32, noise)),
        (
            "16-bit noise",
            bmp_of(width, height, 16, |x, y| noise(x, y) & 0x7fff),
        ),
        ("grey palette noise", bmp_of(width, height, 8, noise)),
    ];
    for (name, bmp) in cases {
        let info = BmpInfo::parse(&bmp.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        let a = compress_with(&info, bmp.as_slice(), &mut one, Conversion::Dither, &|| {
            None
        })
        .unwrap();
        let asked = std::cell::Cell::new(false);
        let b = compress_with(&info, bmp.as_slice(), &mut two, Conversion::Dither, &|| {
            asked.set(true);
            Some(Alone::Between(u32::MAX, u32::MAX))
        })
        .unwrap();
        assert!(
            asked.get(),
            "{name}: the probe did not switch to two threads"
        );
        assert!(one == two, "{name}: the bytes differ");
        assert_eq!(a, b, "{name}");
    }
}

/// The two-thread dither writes exactly what the one-thread loop
/// writes, over many blocks, in both row orders and modes, and when one
/// thread goes on alone from the first block, from a block starting on
/// an odd row or on an even one, for one block and back to two (from
/// the first, from the odd one), or when crowded.
#[test]
fn two_threads_give_the_one_thread_bytes() {
    // 1001 × 3 bytes a row: 87 rows per block, from row 64 (the probe's
    // rows) on: blocks start at rows 64, 151 (odd: its first row goes to
    // the other thread) and 238; 289 rows end with a block of 51.
    let alone = [
        Alone::Between(u32::MAX, u32::MAX),
        Alone::Between(0, u32::MAX),
        Alone::Between(100, u32::MAX),
        Alone::Between(200, u32::MAX),
        Alone::Between(0, 100),
        Alone::Between(100, 200),
        Alone::WhenCrowded,
    ];
    for (height, top_down) in [(301, false), (301, true), (289, false)] {
        let bmp = bmp24(1001, height, top_down);
        let info = BmpInfo::parse(&bmp.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
        for conversion in [Conversion::Dither, Conversion::Threshold] {
            let mut serial = Vec::new();
            let a =
                compress_with(&info, bmp.as_slice(), &mut serial, conversion, &|| None).unwrap();
            for alone in alone {
                let mut two = Vec::new();
                let b = compress_with(&info, bmp.as_slice(), &mut two, conversion, &|| Some(alone))
                    .unwrap();
                assert!(serial == two, "top_down {top_down} {conversion} {alone:?}");
                assert_eq!(a, b);
            }
        }
    }
}

/// A file that shrinks while being read fails the same way on both
/// paths, and the threads end: in the probe's rows (a bottom-up file cut
/// in half: its first rows are at the end), and after the switch, with
/// both dithering threads at work or one alone (top-down, cut at three
/// quarters: the block from row 64 is read, the next is not).
#[test]
fn a_read_error_with_two_threads_is_reported() {
    for (top_down, cut, switches) in [(false, 2, false), (true, 4, true)] {
        let bmp = bmp24(1001, 301, top_down);
        let info = BmpInfo::parse(&bmp.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
        let short = &bmp[..bmp.len() * (cut - 1) / cut];
        for two in [
            None,
            Some(Alone::Between(u32::MAX, u32::MAX)),
            Some(Alone::Between(0, u32::MAX)),
        ] {
            let asked = std::cell::Cell::new(false);
            let err = compress_with(&info, short, std::io::sink(), Conversion::Dither, &|| {
                asked.set(true);
                two
            })
            .unwrap_err();
            assert!(
                matches!(err, CompressError::Bmp(BmpError::Truncated { .. })),
                "{err}"
            );
            assert_eq!(asked.get(), switches, "top_down {top_down} {two:?}");
        }
    }
}
