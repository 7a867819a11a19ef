//! Tests of the compression pipeline: one thread and three give the same bytes.

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
            // with work for the dither (and takes the pipeline).
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

/// The three-thread path writes exactly what the one-thread loop
/// writes, over many blocks and batches, in both row orders and modes.
#[test]
fn pipelined_output_equals_the_serial_loop() {
    // 1001 × 3 bytes a row: 87 rows per block, 4 blocks, 19 batches;
    // 289 rows end with a batch of one row.
    for (height, top_down) in [(301, false), (301, true), (289, false)] {
        let bmp = bmp24(1001, height, top_down);
        let info = BmpInfo::parse(&bmp.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
        for conversion in [Conversion::Dither, Conversion::Threshold] {
            let (mut serial, mut piped) = (Vec::new(), Vec::new());
            let a =
                compress_with(&info, bmp.as_slice(), &mut serial, conversion, &|| false).unwrap();
            let b = compress_with(&info, bmp.as_slice(), &mut piped, conversion, &|| true).unwrap();
            assert!(serial == piped, "top_down {top_down} {conversion}");
            assert_eq!(a, b);
        }
    }
}

/// A file that shrinks while being read fails the same way on both
/// paths, and the pipeline's threads end.
#[test]
fn pipelined_read_errors_are_reported() {
    let bmp = bmp24(1001, 301, false);
    let info = BmpInfo::parse(&bmp.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
    let short = &bmp[..bmp.len() / 2];
    for pipeline in [false, true] {
        let err = compress_with(&info, short, std::io::sink(), Conversion::Dither, &|| {
            pipeline
        })
        .unwrap_err();
        assert!(
            matches!(err, CompressError::Bmp(BmpError::Truncated { .. })),
            "{err}"
        );
    }
}
