//! Fixtures shared by the tests of the PNG, PNM and GIF decoders: the
//! Pillow-made vectors of `tests/data/formats/` and the cut-file checks.
//! (Here because `src/formats/mod.rs`, where it belongs, is not this
//! module's to edit.)

use crate::bilevel::Conversion;
use crate::compress::{self, Options};
use crate::formats::{Format, Whole};
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
