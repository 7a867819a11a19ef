use super::*;
use crate::bilevel::Conversion;
use crate::compress::{self, Options};
use std::path::PathBuf;

/// The vectors of `tests/data/formats/DIR/` (made by Pillow, see the
/// README there): every image compressed in both modes equals Pillow's
/// `.rle`; returns each file's name, bytes and lossless verdict.
pub(in crate::formats) fn check_vectors(dir: &str) -> Vec<(String, Vec<u8>, bool)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/formats")
        .join(dir);
    let mut seen = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("vectors folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".rle") && !p.ends_with("README.md"))
        .collect();
    names.sort();
    for path in names {
        let data = std::fs::read(&path).expect("vector");
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let mut lossless = None;
        for (conversion, mode) in [
            (Conversion::Dither, "dither"),
            (Conversion::Threshold, "threshold"),
        ] {
            let want = std::fs::read(root.join(format!("{stem}.{mode}.rle"))).expect("expected");
            let mut out = Vec::new();
            let outcome = compress::compress(
                &data[..],
                &mut out,
                Options {
                    conversion,
                    max_pixels: 1 << 24,
                    formats: crate::formats::FormatSet::DECODED,
                },
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                out == want,
                "{} {mode}: differs from Pillow's",
                path.display()
            );
            lossless = Some(outcome.lossless);
        }
        seen.push((stem, data, lossless.expect("two modes")));
    }
    assert!(!seen.is_empty());
    seen
}

/// Every proper prefix of `data` is refused or decoded without a panic,
/// and `whole` never calls a prefix cut before `complete_from` complete.
pub(in crate::formats) fn check_prefixes(data: &[u8], complete_from: usize, format: Format) {
    // Every cut near either end, a sample of those between (debug builds
    // are slow).
    let step = (data.len() / 150).max(1);
    let cuts = (0..data.len()).filter(|&k| k < 64 || k + 64 > data.len() || k % step == 0);
    for k in cuts {
        let cut = &data[..k];
        let mut out = Vec::new();
        let _ = compress::compress(cut, &mut out, Options::default());
        if k < complete_from && Format::sniff(cut) == Some(format) {
            assert!(
                matches!(crate::formats::whole(&cut, format), Whole::NotYet(_)),
                "{format} cut at {k} of {} taken as complete",
                data.len()
            );
        }
    }
    assert_eq!(crate::formats::whole(&data, format), Whole::Complete);
}

fn decode(data: &[u8]) -> Result<(Header, Vec<Vec<u8>>, bool), DecodeError> {
    let mut d = open(&data, 1 << 24)?;
    let mut rows = Vec::new();
    while let Some(r) = d.next_row()? {
        rows.push(r.to_vec());
    }
    Ok((d.header().clone(), rows, d.source_pure()))
}

#[test]
fn vectors_match_pillow() {
    for (name, data, lossless) in check_vectors("pnm") {
        // Bits are lossless; the others hold greys.
        assert_eq!(
            lossless,
            name.starts_with("p1") || name.starts_with("p4"),
            "{name}"
        );
        let plain = name.starts_with("p1") || name.starts_with("p2") || name.starts_with("p3");
        // Plain files are complete once their samples are there (the
        // trailing newline and comment may be missing): only cuts in
        // the header are checked.
        check_prefixes(&data, if plain { 20 } else { data.len() }, Format::Pnm);
    }
}

#[test]
fn raw_files_are_whole_when_the_raster_is() {
    let data = b"P5 3 2 255\n\x00\x01\x02\x03\x04\x05";
    check_prefixes(data, data.len(), Format::Pnm);
    let p6 = b"P6\n1 1\n65535\n\x00\x01\x00\x02\x00\x03";
    check_prefixes(p6, p6.len(), Format::Pnm);
}

#[test]
fn python_int() {
    assert_eq!(py_int(b"+5"), Some(5));
    assert_eq!(py_int(b"1_0"), Some(10));
    assert_eq!(py_int(b"-0"), Some(0));
    assert_eq!(py_int(b"007"), Some(7));
    assert_eq!(py_int(b"1__0"), None);
    assert_eq!(py_int(b"_1"), None);
    assert_eq!(py_int(b"1_"), None);
    assert_eq!(py_int(b"0x1"), None);
    assert_eq!(py_int(b""), None);
    assert_eq!(py_int(b"+"), None);
}

#[test]
fn scaling_rounds_half_to_even() {
    // design §2.1: maxval 10, 7 → 178 (177.5 → 178).
    assert_eq!(scale(7, 10, 255), 178);
    // 127.5 → 128, 0.5 → 0 (even), 1.5 → 2
    assert_eq!(scale(1, 2, 255), 128);
    assert_eq!(scale(1, 510, 255), 0);
    assert_eq!(scale(3, 510, 255), 2);
    // mode I: 300 of 65535 → 300, clamped to 255
    assert_eq!(scale(300, 65535, 65535), 255);
}

#[test]
fn header_quirks_are_pillows() {
    // A comment inside a token does not end it: width "1" + "2" = 12.
    let (h, rows, _) = decode(b"P5 1#x\n2 1 255\n............").expect("decodes");
    assert_eq!((h.width, h.height), (12, 1));
    assert_eq!(rows[0], b"............");
    // Plain samples past maxval are refused; raw ones are clamped.
    assert!(matches!(
        decode(b"P2 1 1 10 11\n"),
        Err(DecodeError::Invalid { .. })
    ));
    let (_, rows, pure) = decode(b"P5 2 1 10\n\x0b\x0a").expect("decodes");
    assert_eq!(rows[0], [255, 255]);
    assert!(!pure, "11 of 10 shows white but is no white sample");
    // Plain P1: every token of a block is checked, even past the last
    // sample needed.
    assert!(matches!(
        decode(b"P1 2 1 01 x"),
        Err(DecodeError::Invalid { .. })
    ));
    assert_eq!(decode(b"P1 2 1 0 1").expect("decodes").1[0], [0x80]);
    for bad in [
        &b"P7 1 1\n"[..],
        b"P5 0 1 255\n",
        b"P5 1 1 0\n",
        b"P5 1 1 65536\n",
        b"P5 123456789012 1 255\n",
    ] {
        assert!(decode(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        decode(b"P5 2 2 255\n\x00\x00\x00"),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode(b"P2 2 1 255\n7"),
        Err(DecodeError::Truncated { .. })
    ));
}
