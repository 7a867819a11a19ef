//! `rlewatch compress` on the 7200×5600 text page in every input format:
//! wall time and peak RSS (best of 5, warm page cache), beside `cat FILE
//! >/dev/null` and beside the reference program (Pillow's
//! `Image.open(f).convert('1')` and a run-length coder written from design
//! §1, timed once per file) in the same run; the outputs are compared with
//! the reference's. The files are made from the page's 1-bit and 24-bit
//! BMPs by Pillow (TIFF G4, G3, PackBits, LZW, Deflate, raw; PNG 1-bit,
//! grey, RGB; PBM, PGM, PPM; GIF), so the bench needs `python3` with
//! Pillow 13.0.0 (`pip install pillow==13.0.0`).
//!
//! Run: `cargo bench --bench formats`; `RLEWATCH_BENCH_ONLY=g4,png` keeps
//! the files whose names contain one of those words.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/measure.rs"]
mod measure;
#[path = "support/page.rs"]
mod page;

use measure::{best_of, cat};

/// Writes each format's file from `page1.bmp` (mode 1) and `page24.bmp`
/// (RGB) in the folder given as argv[1].
const MAKE: &str = r#"
import sys, os
from PIL import Image
d = sys.argv[1]
one = Image.open(os.path.join(d, "page1.bmp")); one.load()
rgb = Image.open(os.path.join(d, "page24.bmp")).convert("RGB")
grey = rgb.convert("L")
for comp in ["group4", "group3", "packbits", "tiff_lzw", "raw"]:
    one.save(os.path.join(d, f"1bit-{comp}.tif"), compression=comp)
one.save(os.path.join(d, "1bit.png"))
one.save(os.path.join(d, "1bit-p4.pbm"))
one.convert("P").save(os.path.join(d, "1bit.gif"))
rgb.save(os.path.join(d, "rgb-tiff_lzw.tif"), compression="tiff_lzw")
grey.save(os.path.join(d, "grey-tiff_adobe_deflate.tif"), compression="tiff_adobe_deflate")
grey.save(os.path.join(d, "grey.png"))
rgb.save(os.path.join(d, "rgb.png"))
grey.save(os.path.join(d, "grey-p5.pgm"))
rgb.save(os.path.join(d, "rgb-p6.ppm"))
grey.save(os.path.join(d, "grey.gif"))
"#;

/// The reference program (design §1): the book's compressor as it is
/// written there, per-bit loops over `image.convert('1').getdata()` with
/// the rows spread over a process pool, its `bitarray` replaced by a list
/// of 0/1 (the module may not be installed). argv[1] in, argv[2] out.
const REFERENCE: &str = r#"
import sys, warnings
from concurrent.futures import ProcessPoolExecutor
from PIL import Image
warnings.simplefilter("ignore", DeprecationWarning)  # getdata, as the book wrote it

def split_bits(bits, width):
    for i in range(0, len(bits), width):
        yield bits[i:i + width]

def compress_chunk(chunk):
    compressed = bytearray()
    count = 1
    last = chunk[0]
    for bit in chunk[1:]:
        if bit != last:
            compressed.append(count | (128 * last))
            count = 0
            last = bit
        count += 1
    compressed.append(count | (128 * last))
    return compressed

def compress_row(row):
    compressed = bytearray()
    for chunk in split_bits(row, 127):
        compressed.extend(compress_chunk(chunk))
    return compressed

def compress_in_executor(executor, bits, width):
    row_compressors = [executor.submit(compress_row, row) for row in split_bits(bits, width)]
    compressed = bytearray()
    for compressor in row_compressors:
        compressed.extend(compressor.result())
    return compressed

if __name__ == "__main__":
    with Image.open(sys.argv[1]) as image:
        bits = [1 if p else 0 for p in image.convert("1").getdata()]
        width, height = image.size
    with ProcessPoolExecutor() as executor:
        compressed = compress_in_executor(executor, bits, width)
    with open(sys.argv[2], "wb") as f:
        f.write(width.to_bytes(2, "little"))
        f.write(height.to_bytes(2, "little"))
        f.write(compressed)
"#;

fn main() {
    if measure::serve() {
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks every bench target for its names
    }
    let pillow = Command::new("python3")
        .args(["-c", "import PIL; print(PIL.__version__)"])
        .output();
    match pillow {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v != "13.0.0" {
                println!("note: Pillow {v}, not the reference's 13.0.0");
            }
        }
        _ => {
            println!("skipped: this bench needs python3 with Pillow (pip install pillow==13.0.0)");
            return;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let (w, h) = (page::WIDTH, page::HEIGHT);
    let ink = page::ink(w, h);
    std::fs::write(d.join("page1.bmp"), page::bmp_1bit(&ink, w, h)).expect("write page");
    std::fs::write(d.join("page24.bmp"), page::bmp_24bit(&ink, w, h)).expect("write page");
    drop(ink);
    let made = Command::new("python3")
        .args(["-c", MAKE])
        .arg(d)
        .status()
        .expect("python3");
    assert!(made.success(), "making the files failed");
    let only: Vec<String> = std::env::var("RLEWATCH_BENCH_ONLY")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(d)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            only.is_empty() || only.iter().any(|o| name.contains(o.as_str()))
        })
        .collect();
    // The BMPs first: the other 1-bit files are compared with page1.bmp.
    files.sort_by_key(|p| (p.extension().is_none_or(|e| e != "bmp"), p.clone()));
    let bin = env!("CARGO_BIN_EXE_rlewatch");
    println!(
        "rlewatch compress (dither) on the {w}x{h} text page in each format: best of 5, warm \
         page cache; cat and the reference (Pillow + a run-length coder) in the same run"
    );
    let mut bmp_1bit = None;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let len = std::fs::metadata(path).expect("file").len();
        let (cat_t, _) = best_of(5, || cat(&[path]));
        let out = d.join("out.rle");
        let _ = std::fs::remove_file(&out);
        let trial = Command::new(bin)
            .args(["compress", "-o"])
            .arg(&out)
            .arg(path)
            .output()
            .expect("rlewatch");
        if !trial.status.success() {
            println!(
                "{name:>28}: refused: {}",
                String::from_utf8_lossy(&trial.stderr).trim()
            );
            continue;
        }
        let (t, rss) = best_of(5, || {
            let _ = std::fs::remove_file(&out);
            let mut c = Command::new(bin);
            c.args(["compress", "-o"]).arg(&out).arg(path);
            c
        });
        let reference_out = d.join("reference.rle");
        let started = Instant::now();
        let ok = Command::new("python3")
            .args(["-c", REFERENCE])
            .arg(path)
            .arg(&reference_out)
            .status()
            .expect("python3")
            .success();
        let reference_t = started.elapsed();
        let same = ok && std::fs::read(&out).ok() == std::fs::read(&reference_out).ok();
        if name == "page1.bmp" {
            bmp_1bit = Some(t);
        }
        let vs_bmp = match (bmp_1bit, name.starts_with("1bit")) {
            (Some(b), true) => format!(", {:.2}x the 1-bit BMP", ratio(t, b)),
            _ => String::new(),
        };
        println!(
            "{name:>28}: {:>7.1} ms, peak RSS {:>5.1} MB, {len} bytes; cat {:.1} ms ({:.1}x){vs_bmp}; \
             reference {:.2} s ({:.0}x faster), output {}",
            t.as_secs_f64() * 1e3,
            rss as f64 / 1024.0,
            cat_t.as_secs_f64() * 1e3,
            ratio(t, cat_t),
            reference_t.as_secs_f64(),
            ratio(reference_t, t),
            if same {
                "= the reference's"
            } else {
                "DIFFERS from the reference's"
            },
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
