//! The codec against the shared corpus (`../shared/corpus`): decoded pixels
//! against the BMP Suite's reference PNGs, `.rle` output against the
//! reference program's, refusals, bad and truncated files.

use std::collections::HashMap;
use std::fs;
use std::io::BufReader;
use std::path::Path;

use rlewatch::bilevel::{Conversion, rgba_row};
use rlewatch::bmp::{BmpInfo, Compression, Rows};
use rlewatch::compress::DEFAULT_MAX_PIXELS;

use crate::support::{compress_bytes, corpus};

type Rgba = Vec<[u8; 4]>;

/// Files design §3 allows to be refused, with the reason's wording.
const REFUSED: &[(&str, &str)] = &[
    ("q/pal1huffmsb.bmp", "Huffman 1D"),
    ("q/rgb24jpeg.bmp", "embedded JPEG"),
    ("q/rgb24png.bmp", "embedded PNG"),
    ("q/rgb24rle24.bmp", "RLE24"),
    ("q/rgba64.bmp", "64 bits per pixel"),
    ("x/ba-bm.bmp", "OS/2 bitmap array"),
];

/// Reference renderings that are not exact renderings of the stored values:
/// the file's channels are finer than the 8-bit original the PNG is, or the
/// PNG shows it through its ICC profile. `Some(t)`: channels within ±t;
/// `None`: not compared (rlewatch, like Pillow, does no colour management).
const APPROXIMATE: &[(&str, Option<u8>)] = &[
    // 11-bit channels; one 8-bit source level was stored as 1690/2047 = 210.53.
    ("q/rgb32-111110.bmp", Some(1)),
    ("q/rgb24prof2.bmp", None),
];

fn decode(bytes: &[u8]) -> Result<(u32, u32, Rgba), rlewatch::bmp::BmpError> {
    let info = BmpInfo::parse(&bytes, DEFAULT_MAX_PIXELS)?;
    let mut rows = Rows::new(&info, bytes)?;
    let mut pixels = Vec::new();
    while let Some(row) = rows.next_row()? {
        pixels.extend(rgba_row(&info, row));
    }
    Ok((info.width, info.height, pixels))
}

/// A reference PNG as 8-bit RGBA (16-bit samples rounded to 8 bits).
fn png_rgba(path: &Path) -> (u32, u32, Rgba) {
    let file = BufReader::new(fs::File::open(path).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let buf = &buf[..info.buffer_size()];
    let samples: Vec<u8> = match info.bit_depth {
        png::BitDepth::Sixteen => buf
            .chunks(2)
            .map(|c| ((u32::from(u16::from_be_bytes([c[0], c[1]])) * 255 + 32767) / 65535) as u8)
            .collect(),
        png::BitDepth::Eight => buf.to_vec(),
        other => panic!(
            "{}: unexpected bit depth {other:?} after EXPAND",
            path.display()
        ),
    };
    let pixels = match info.color_type {
        png::ColorType::Grayscale => samples.iter().map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => samples
            .chunks(2)
            .map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        png::ColorType::Rgb => samples.chunks(3).map(|c| [c[0], c[1], c[2], 255]).collect(),
        png::ColorType::Rgba => samples
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        png::ColorType::Indexed => panic!("EXPAND leaves no indexed PNG"),
    };
    (info.width, info.height, pixels)
}

/// Equal, where a pixel fully transparent in both compares by alpha only
/// (the PNGs store no colour for those).
fn same_pixels(ours: &Rgba, reference: &Rgba, tolerance: u8) -> bool {
    ours.len() == reference.len()
        && ours.iter().zip(reference).all(|(a, b)| {
            a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= tolerance) || (a[3] == 0 && b[3] == 0)
        })
}

fn map_tsv(corpus: &Path) -> Vec<(String, Vec<String>)> {
    fs::read_to_string(corpus.join("bmpsuite/reference-png/MAP.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, pngs)| *pngs != "-")
        .map(|(bmp, pngs)| {
            (
                bmp.to_string(),
                pngs.split(',').map(str::to_string).collect(),
            )
        })
        .collect()
}

/// MANIFEST.tsv: file → whether Pillow read it.
fn manifest(corpus: &Path) -> Vec<(String, bool)> {
    fs::read_to_string(corpus.join("expected-bmpsuite/MANIFEST.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut cols = l.split('\t');
            (
                cols.next().unwrap().to_string(),
                cols.next().unwrap() == "ok",
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn good_and_questionable_files_decode_to_their_reference_png() {
    let corpus = corpus();
    let refused: HashMap<_, _> = REFUSED.iter().copied().collect();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (bmp, pngs) in map_tsv(&corpus) {
        if refused.contains_key(bmp.as_str()) {
            continue;
        }
        let tolerance = match APPROXIMATE.iter().find(|(f, _)| *f == bmp) {
            Some((_, None)) => continue,
            Some((_, Some(t))) => *t,
            None => 0,
        };
        let bytes = fs::read(corpus.join("bmpsuite").join(&bmp)).unwrap();
        let (w, h, ours) = match decode(&bytes) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{bmp}: {e}"));
                continue;
            }
        };
        let matched = pngs.iter().any(|png| {
            let (pw, ph, reference) = png_rgba(&corpus.join("bmpsuite/reference-png").join(png));
            (pw, ph) == (w, h) && same_pixels(&ours, &reference, tolerance)
        });
        if !matched {
            failures.push(format!(
                "{bmp}: pixels differ from every rendering in {pngs:?}"
            ));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 64, "only {checked} files checked");
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn every_file_pillow_reads_compresses_byte_identical_in_both_modes() {
    let corpus = corpus();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, pillow_ok) in manifest(&corpus) {
        if !pillow_ok {
            continue;
        }
        let bytes = fs::read(corpus.join("bmpsuite").join(&file)).unwrap();
        for (conversion, dir) in [
            (Conversion::Dither, "dither"),
            (Conversion::Threshold, "threshold"),
        ] {
            let expected = fs::read(
                corpus
                    .join("expected-bmpsuite")
                    .join(dir)
                    .join(&file)
                    .with_extension("rle"),
            )
            .unwrap();
            match compress_bytes(&bytes, conversion) {
                Ok(ours) if ours == expected => checked += 1,
                Ok(ours) => failures.push(format!(
                    "{file} ({dir}): {} bytes, expected {}",
                    ours.len(),
                    expected.len()
                )),
                Err(e) => failures.push(format!("{file} ({dir}): {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 2 * 60, "only {checked} comparisons");
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn unsupported_variants_are_refused_by_name() {
    let corpus = corpus();
    for (file, what) in REFUSED {
        let bytes = fs::read(corpus.join("bmpsuite").join(file)).unwrap();
        let err = compress_bytes(&bytes, Conversion::Dither)
            .expect_err(file)
            .to_string();
        assert!(
            err.starts_with("unsupported BMP variant: "),
            "{file}: {err}"
        );
        assert!(err.contains(what), "{file}: {err}");
    }
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn bad_files_fail_cleanly_or_match_pillow() {
    let corpus = corpus();
    let pillow: HashMap<String, bool> = manifest(&corpus).into_iter().collect();
    let mut errors = 0;
    for entry in fs::read_dir(corpus.join("bmpsuite/b")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("b/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = fs::read(&path).unwrap();
        for (conversion, dir) in [
            (Conversion::Dither, "dither"),
            (Conversion::Threshold, "threshold"),
        ] {
            match compress_bytes(&bytes, conversion) {
                Ok(ours) => {
                    if pillow.get(&name) == Some(&true) {
                        let expected = fs::read(
                            corpus
                                .join("expected-bmpsuite")
                                .join(dir)
                                .join(&name)
                                .with_extension("rle"),
                        )
                        .unwrap();
                        assert!(
                            ours == expected,
                            "{name} ({dir}): differs from Pillow's result"
                        );
                    }
                }
                Err(e) => {
                    assert!(e.is_bad_input(), "{name}: {e} is not classed as bad input");
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
            }
        }
    }
    // Pillow refuses 7 of them; so do we, except rgb16-880, which we decode.
    assert_eq!(errors, 2 * 6);
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn truncated_good_files_fail_cleanly() {
    let corpus = corpus();
    let mut cuts = 0;
    for entry in fs::read_dir(corpus.join("bmpsuite/g")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let info = BmpInfo::parse(&bytes.as_slice(), DEFAULT_MAX_PIXELS).unwrap();
        for k in 1..=20 {
            let cut = bytes.len() * k / 21;
            let short = &bytes[..cut];
            match compress_bytes(short, Conversion::Dither) {
                Err(e) => {
                    assert!(e.is_bad_input(), "{} cut at {cut}: {e}", path.display());
                    let msg = e.to_string();
                    assert!(
                        msg.contains("truncated"),
                        "{} cut at {cut}: {msg}",
                        path.display()
                    );
                }
                // An RLE stream that ends early is decoded with the missing
                // pixels as index 0 (design §2); only the headers must be whole.
                Ok(_) => assert!(
                    info.compression != Compression::None && cut as u64 >= info.data_offset,
                    "{} cut at {cut} of {} was accepted",
                    path.display(),
                    bytes.len()
                ),
            }
            cuts += 1;
        }
    }
    assert!(cuts >= 20 * 27);
}

#[test]
#[cfg_attr(
    no_corpus,
    ignore = "needs the shared corpus at ../shared/corpus, which is not there"
)]
fn every_run_finder_reencodes_the_reference_rle_files_byte_identical() {
    use rlewatch::rle::{self, RowLayout, RunFinder};
    let corpus = corpus();
    let mut files = Vec::new();
    for mode in ["dither", "threshold"] {
        for dir in fs::read_dir(corpus.join("expected-bmpsuite").join(mode)).unwrap() {
            for f in fs::read_dir(dir.unwrap().path()).unwrap() {
                let path = f.unwrap().path();
                if path.extension().is_some_and(|e| e == "rle") {
                    files.push(path);
                }
            }
        }
    }
    let mut rows_checked = 0;
    for path in &files {
        // The reference program's output: its rows, decoded, must encode
        // back to the same bytes with every run finder this CPU runs.
        let reference = fs::read(path).unwrap();
        let (header, rows) = rle::decode_image(&reference).unwrap();
        let width = usize::from(header.width);
        let wpr = rle::words_for(width);
        for finder in RunFinder::available() {
            let layout = RowLayout::with_finder(width, finder);
            let mut ours = header.to_bytes().to_vec();
            let mut ours_bytes = ours.clone();
            let mut buf = vec![0u8; width];
            for row in rows.chunks(wpr) {
                let n = layout.encode_into(row, &mut buf);
                ours.extend_from_slice(&buf[..n]);
                // The same row as a BMP stores it, padded to 4 bytes.
                let mut bytes: Vec<u8> = row.iter().flat_map(|w| w.to_be_bytes()).collect();
                bytes.truncate(width.div_ceil(32) * 4);
                let m = layout.encode_bytes_into(&bytes, &mut buf);
                ours_bytes.extend_from_slice(&buf[..m]);
                rows_checked += 1;
            }
            assert!(
                ours == reference,
                "{} re-encoded by {finder:?} differs",
                path.display()
            );
            assert!(
                ours_bytes == reference,
                "{} re-encoded by {finder:?} from BMP rows differs",
                path.display()
            );
        }
    }
    assert!(files.len() >= 120, "only {} reference files", files.len());
    assert!(rows_checked > 0);
}
