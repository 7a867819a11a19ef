//! The TIFF decoder through the whole conversion: vectors made by
//! `tests/data/formats/tiff/make.py --vectors` with Pillow 13.0.0's
//! expected `.rle` (see the README there), hand-built files for the
//! completion rule and for refusals. (Here, in `compress`, which uses
//! `formats`, not the other way round.)

use crate::bilevel::Conversion;
use crate::compress::{self, CompressError, Options};
use crate::formats::{DecodeError, Format, Whole};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/formats/tiff/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compress(data: &[u8], conversion: Conversion) -> Result<(Vec<u8>, bool), CompressError> {
    let mut out = Vec::new();
    let opts = Options {
        conversion,
        ..Options::default()
    };
    let outcome = compress::compress(data, &mut out, opts)?;
    Ok((out, outcome.lossless))
}

/// Every vector in both modes against Pillow's output; `lossless`: the
/// verdict expected.
fn check(name: &str, lossless: bool) {
    let tif = read(&format!("{name}.tif"));
    for (conversion, mode) in [
        (Conversion::Dither, "dither"),
        (Conversion::Threshold, "threshold"),
    ] {
        let (got, verdict) =
            compress(&tif, conversion).unwrap_or_else(|e| panic!("{name} {mode}: {e}"));
        let want = read(&format!("{name}.{mode}.rle"));
        assert!(got == want, "{name} {mode}: output differs from Pillow's");
        assert_eq!(verdict, lossless, "{name} {mode}: lossless verdict");
    }
}

#[test]
fn bilevel_min_is_white_packbits_strips() {
    check("miniswhite-packbits", true);
}

/// Decoded with 4-byte rows, the LZW strip once ended short (the decoder
/// took its last input while strings were still to come out).
#[test]
fn narrow_grey_alpha_lzw_decodes_to_its_last_row() {
    check("la-lzw-narrow", false);
}

#[test]
fn grey_lzw_with_horizontal_predictor() {
    check("grey8-lzw-pred2", false);
}

#[test]
fn rgb_16_bit_deflate_tiles_keep_the_high_byte() {
    check("rgb16-deflate-tiles", false);
}

#[test]
fn associated_alpha_in_separate_planes_is_unpremultiplied() {
    check("rgba-assoc-planar-lzw", false);
}

#[test]
fn cmyk_turned_by_orientation_6() {
    check("cmyk-o6", false);
}

#[test]
fn big_endian_palette_upside_down_by_orientation_3() {
    check("pal4-mm-o3", false);
}

/// Pillow memory-maps uncompressed single-strip images and, with
/// Orientation 5–8, maps them at the turned size: the reference's
/// scrambled page is what rlewatch must reproduce.
#[test]
fn uncompressed_orientation_8_as_pillow_maps_it() {
    check("grey8-raw-o8", false);
}

#[test]
fn float_samples_with_the_floating_point_predictor() {
    check("float-pred3", false);
}

/// 16-bit MinIsWhite is not inverted; 65535 clips to white but is not a
/// pure pixel of the source.
#[test]
fn grey_16_bit_min_is_white_is_not_inverted() {
    // 0 and 65535 only: pure black and white in 16 bits, so lossless.
    check("grey16-miw-lzw", true);
}

/// BigTIFF (little-endian), through the decoder itself: `Format::sniff`
/// does not know BigTIFF's signature yet.
#[test]
fn bigtiff_strips() {
    let tif = read("bigtiff-rgb-deflate.tif");
    for (conversion, mode) in [
        (Conversion::Dither, "dither"),
        (Conversion::Threshold, "threshold"),
    ] {
        let src: &dyn crate::bmp::Source = &tif.as_slice();
        let mut decoder = crate::formats::open(src, Format::Tiff, u64::MAX).unwrap();
        let mut out = Vec::new();
        compress::compress_decoded(decoder.as_mut(), tif.len() as u64, &mut out, conversion)
            .unwrap();
        assert!(
            out == read(&format!("bigtiff-rgb-deflate.{mode}.rle")),
            "{mode}"
        );
    }
}

#[test]
fn pillow_written_lzw_strips_flipped_by_orientation_4() {
    check("pillow-grey-lzw-o4", false);
}

/// A little-endian, directory-first TIFF of `w` × `h` 8-bit grey pixels in
/// one uncompressed strip, with extra `(tag, type, value)` entries.
fn tiny(w: u32, h: u32, extra: &[(u16, u16, u32)], pixels: &[u8]) -> Vec<u8> {
    // The extra entries first, so that they win over the defaults.
    let mut tags: Vec<(u16, u16, u32)> = extra.to_vec();
    tags.extend_from_slice(&[
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, w * h),
    ]);
    tags.push((273, 4, 0)); // patched below
    tags.sort_by_key(|t| t.0);
    tags.dedup_by_key(|t| t.0);
    let ifd_len = 2 + 12 * tags.len() + 4;
    let data_at = (8 + ifd_len) as u32;
    let mut f = b"II*\0\x08\0\0\0".to_vec();
    f.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for (tag, kind, value) in tags {
        let value = if tag == 273 { data_at } else { value };
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            f.extend_from_slice(&(value as u16).to_le_bytes());
            f.extend_from_slice(&[0, 0]);
        } else {
            f.extend_from_slice(&value.to_le_bytes());
        }
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(pixels);
    f
}

fn whole(data: &[u8]) -> Whole {
    crate::formats::whole(&data, Format::Tiff)
}

#[test]
fn complete_only_when_every_strip_is_there() {
    let f = tiny(
        5,
        3,
        &[],
        &[0, 255, 0, 255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert_eq!(whole(&f), Whole::Complete);
    for cut in 0..f.len() {
        assert!(
            matches!(whole(&f[..cut]), Whole::NotYet(_)),
            "cut at {cut} of {}",
            f.len()
        );
    }
}

#[test]
fn complete_when_the_directory_comes_last() {
    for name in [
        "grey8-lzw-pred2",
        "rgb16-deflate-tiles",
        "pillow-grey-lzw-o4",
    ] {
        let f = read(&format!("{name}.tif"));
        assert_eq!(whole(&f), Whole::Complete, "{name}");
        for cut in [0, 4, 7, 8, f.len() / 2, f.len() - 5, f.len() - 1] {
            assert!(
                matches!(whole(&f[..cut]), Whole::NotYet(_)),
                "{name} cut at {cut}"
            );
        }
    }
}

/// libtiff writes the header with a directory offset of 0 and patches it
/// when the file is closed.
#[test]
fn not_complete_until_the_directory_offset_is_written() {
    let mut f = tiny(3, 1, &[], &[0, 1, 2]);
    f[4..8].copy_from_slice(&[0; 4]);
    assert!(matches!(whole(&f), Whole::NotYet(_)));
    assert!(matches!(
        compress(&f, Conversion::Dither),
        Err(CompressError::Decode(DecodeError::Truncated { .. }))
    ));
}

#[test]
fn plainly_invalid_files_are_complete() {
    // An empty directory, a bad version number: waiting cannot help.
    let empty_ifd = b"II*\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
    assert_eq!(whole(&empty_ifd), Whole::Complete);
    assert_eq!(whole(b"II\x07\0\x08\0\0\0\0\0"), Whole::Complete);
    // No StripOffsets.
    let mut f = tiny(2, 2, &[], &[0; 4]);
    let at = f.windows(2).position(|w| w == [0x11, 0x01]).unwrap();
    f[at] = 0x99; // tag 273 becomes an unknown tag
    assert_eq!(whole(&f), Whole::Complete);
    assert!(compress(&f, Conversion::Dither).is_err());
}

fn error(data: &[u8]) -> String {
    match compress(data, Conversion::Dither) {
        Ok(_) => panic!("decoded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn what_pillow_refuses_is_refused_with_the_reason() {
    let jpeg = tiny(2, 2, &[(259, 3, 7)], &[0; 4]);
    assert!(
        error(&jpeg).contains("JPEG-compressed TIFF"),
        "{}",
        error(&jpeg)
    );
    let three_bits = tiny(2, 2, &[(258, 3, 3)], &[0; 4]);
    assert!(error(&three_bits).contains("not read by Pillow"));
    let grey_assoc = tiny(2, 2, &[(277, 3, 2), (338, 3, 1)], &[0; 8]);
    assert!(error(&grey_assoc).contains("Pillow mode La"));
    let mut mm_bigtiff = b"MM\0\x2b\0\x08\0\0".to_vec();
    mm_bigtiff.extend_from_slice(&[0; 8]);
    let src: &dyn crate::bmp::Source = &mm_bigtiff.as_slice();
    match crate::formats::open(src, Format::Tiff, u64::MAX) {
        Err(e) => assert!(e.to_string().contains("big-endian BigTIFF"), "{e}"),
        Ok(_) => panic!("big-endian BigTIFF decoded"),
    }
    let ycbcr = tiny(2, 2, &[(262, 3, 6)], &[0; 4]);
    assert!(error(&ycbcr).contains("YCbCr"));
}

#[test]
fn strip_past_the_end_is_truncated() {
    let f = tiny(4, 4, &[], &[7; 16]);
    let cut = &f[..f.len() - 3];
    match compress(cut, Conversion::Threshold) {
        Err(CompressError::Decode(DecodeError::Truncated { format, .. })) => {
            assert_eq!(format, Format::Tiff)
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn pixel_limit_checked_before_decoding() {
    let f = tiny(60000, 60000, &[], &[]);
    let mut out = Vec::new();
    let opts = Options {
        max_pixels: 1 << 20,
        ..Options::default()
    };
    match compress::compress(f.as_slice(), &mut out, opts) {
        Err(CompressError::Decode(DecodeError::PixelLimit { .. })) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Uncompressed grey, every orientation, against the transforms written
/// out here (Pillow's `exif_transpose`, design §2.1) on a 3 × 2 image
/// whose pixels are its own indices, thresholded: the .rle rows show
/// where each pixel went. Orientation 5–8 uncompressed single strips are
/// Pillow's mapped case, so a second strip is given.
#[test]
fn every_orientation_moves_pixels_as_pillow_does() {
    // Pixels 0..6 as black (0) or white (255): a pattern with no symmetry.
    let px = [255u8, 0, 0, 255, 255, 0];
    let at = |x: usize, y: usize| px[y * 3 + x];
    let expect: [Vec<Vec<u8>>; 8] = [
        vec![
            vec![at(0, 0), at(1, 0), at(2, 0)],
            vec![at(0, 1), at(1, 1), at(2, 1)],
        ],
        vec![
            vec![at(2, 0), at(1, 0), at(0, 0)],
            vec![at(2, 1), at(1, 1), at(0, 1)],
        ],
        vec![
            vec![at(2, 1), at(1, 1), at(0, 1)],
            vec![at(2, 0), at(1, 0), at(0, 0)],
        ],
        vec![
            vec![at(0, 1), at(1, 1), at(2, 1)],
            vec![at(0, 0), at(1, 0), at(2, 0)],
        ],
        vec![
            vec![at(0, 0), at(0, 1)],
            vec![at(1, 0), at(1, 1)],
            vec![at(2, 0), at(2, 1)],
        ],
        vec![
            vec![at(0, 1), at(0, 0)],
            vec![at(1, 1), at(1, 0)],
            vec![at(2, 1), at(2, 0)],
        ],
        vec![
            vec![at(2, 1), at(2, 0)],
            vec![at(1, 1), at(1, 0)],
            vec![at(0, 1), at(0, 0)],
        ],
        vec![
            vec![at(2, 0), at(2, 1)],
            vec![at(1, 0), at(1, 1)],
            vec![at(0, 0), at(0, 1)],
        ],
    ];
    for (o, rows) in expect.iter().enumerate() {
        let o = o as u32 + 1;
        // Two strips of one row: not a single mapped tile.
        let mut f = tiny(3, 2, &[(274, 3, o), (278, 4, 1)], &px);
        // Both strips at the same offset table entry count 1 would be
        // wrong: give StripOffsets two values by pointing at a pair.
        let data_at = f.len() as u32 - 6;
        let pair_at = f.len() as u32;
        f.extend_from_slice(&data_at.to_le_bytes());
        f.extend_from_slice(&(data_at + 3).to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        patch_entry(&mut f, 273, 2, pair_at);
        patch_entry(&mut f, 279, 2, pair_at + 8);
        let (got, _) = compress(&f, Conversion::Threshold).unwrap();
        let mut want = vec![rows[0].len() as u8, 0, rows.len() as u8, 0];
        for r in rows {
            let mut run: Option<(u8, u8)> = None;
            for &p in r {
                match &mut run {
                    Some((v, n)) if *v == p => *n += 1,
                    _ => {
                        if let Some((v, n)) = run {
                            want.push(if v == 255 { 0x80 } else { 0 } | n);
                        }
                        run = Some((p, 1));
                    }
                }
            }
            if let Some((v, n)) = run {
                want.push(if v == 255 { 0x80 } else { 0 } | n);
            }
        }
        assert_eq!(got, want, "orientation {o}");
    }
}

/// Sets the count and value of the (LONG) entry `tag` of `tiny`'s
/// directory.
fn patch_entry(f: &mut [u8], tag: u16, count: u32, value: u32) {
    let n = u16::from_le_bytes([f[8], f[9]]) as usize;
    for i in 0..n {
        let e = 10 + 12 * i;
        if u16::from_le_bytes([f[e], f[e + 1]]) == tag {
            f[e + 4..e + 8].copy_from_slice(&count.to_le_bytes());
            f[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
            return;
        }
    }
    panic!("no tag {tag}");
}

/// An 8-bit grey TIFF of `entries` (tag, type 3 or 4, count 1, value;
/// `u32::MAX`: the pixels' offset) and `pixels`, little-endian.
fn grey_tiff(entries: &[(u16, u16, u32)], pixels: &[u8]) -> Vec<u8> {
    let data = 8 + 2 + 12 * entries.len() as u32 + 4;
    let mut f = b"II*\0\x08\0\0\0".to_vec();
    f.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for &(tag, kind, value) in entries {
        let value = if value == u32::MAX { data } else { value };
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&value.to_le_bytes());
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(pixels);
    f
}

/// The rows an 8-bit grey TIFF decodes to.
fn grey_rows(f: &[u8]) -> (u32, u32, Vec<u8>) {
    let src: &dyn crate::bmp::Source = &f;
    let mut d = crate::formats::open(src, Format::Tiff, u64::MAX).unwrap();
    let (w, h) = (d.header().width, d.header().height);
    let mut px = Vec::new();
    while let Some(row) = d.next_row().unwrap() {
        px.extend_from_slice(row);
    }
    (w, h, px)
}

/// Pillow keeps the first of two ImageWidth entries (8, then 5: it opens
/// 8×5), and reads RowsPerStrip 0 as one strip of the whole image.
#[test]
fn the_first_of_duplicated_tags_counts_and_rows_per_strip_0_is_one_strip() {
    let px: Vec<u8> = (0..40).map(|i| i * 5).collect();
    let tags = |width2: Option<u32>, rows: u32| {
        let mut t = vec![(256, 3, 8)];
        t.extend(width2.map(|w| (256, 3, w)));
        t.extend([
            (257, 3, 5),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, u32::MAX),
            (277, 3, 1),
            (278, 3, rows),
            (279, 4, 40),
        ]);
        t
    };
    assert_eq!(
        grey_rows(&grey_tiff(&tags(Some(5), 5), &px)),
        (8, 5, px.clone())
    );
    assert_eq!(
        grey_rows(&grey_tiff(&tags(None, 0), &px)),
        (8, 5, px.clone())
    );
}
