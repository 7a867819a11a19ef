//! The PNG, PNM and GIF decoders through the whole conversion: the
//! Pillow-made vectors of `tests/data/formats/` in both modes with their
//! lossless verdicts, and every cut of each refused or converted without a
//! panic and never taken as whole early. (Here, in `compress`, which uses
//! `formats`, not the other way round.)

use crate::bilevel::Conversion;
use crate::compress::{self, Options};
use crate::formats::{Format, Whole};
use std::path::PathBuf;

/// The vectors of `tests/data/formats/DIR/` (made by Pillow, see the
/// README there): every image compressed in both modes equals Pillow's
/// `.rle`; returns each file's name, bytes and lossless verdict.
fn check_vectors(dir: &str) -> Vec<(String, Vec<u8>, bool)> {
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
fn check_prefixes(data: &[u8], complete_from: usize, format: Format) {
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

#[test]
fn png_vectors_match_pillow() {
    for (name, data, lossless) in check_vectors("png") {
        // Only the bit images and the black-and-white grey one are pure.
        let pure = matches!(name.as_str(), "grey1" | "adam7-grey1" | "bw-grey8");
        assert_eq!(lossless, pure, "{name}");
        check_prefixes(&data, data.len(), Format::Png);
    }
}

#[test]
fn gif_vectors_match_pillow() {
    for (name, data, lossless) in check_vectors("gif") {
        // Pure: black and white only (indices past a palette's end are
        // black).
        assert_eq!(
            lossless,
            name == "bw" || name == "local-ramp-global",
            "{name}"
        );
        // The trailer is the last byte: every shorter cut is not whole.
        check_prefixes(&data, data.len(), Format::Gif);
    }
}

#[test]
fn pnm_vectors_match_pillow() {
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
fn raw_pnm_files_are_whole_when_the_raster_is() {
    let data = b"P5 3 2 255\n\x00\x01\x02\x03\x04\x05";
    check_prefixes(data, data.len(), Format::Pnm);
    let p6 = b"P6\n1 1\n65535\n\x00\x01\x00\x02\x00\x03";
    check_prefixes(p6, p6.len(), Format::Pnm);
}
