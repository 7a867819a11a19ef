//! End-to-end figures for `rlewatch compress` on 7200×5600 pages (the text
//! page as 1-bit, noisy 24-bit and pure black-and-white 24-bit BMP, and a
//! photo-like 24-bit page; files on disk, page cache warm): wall time, CPU
//! time (user + system), peak RSS, and `cat FILE >/dev/null` on the same
//! file, measured in the same run, for scale (the ratios × `cat`).
//! Run: `cargo bench --bench cli`; `RLEWATCH_BENCH_FOLDER=32 cargo bench
//! --bench cli` adds `rlewatch compress DIR` on a folder of 32 pure
//! black-and-white 24-bit pages beside `cat DIR/* >/dev/null`.
//! `RLEWATCH_BENCH_BASELINE=/path/to/an/older/rlewatch` also times that
//! binary on the same files, its runs interleaved with this one's, for a
//! before/after comparison on a shared (noisy) machine.

use std::process::Command;
use std::time::Duration;

#[path = "support/measure.rs"]
mod measure;
#[path = "support/page.rs"]
mod page;

use measure::{Measured, best_of, best_of_all, cat, measure_all};

fn main() {
    if measure::serve() {
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks every bench target for its names
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // RLEWATCH_BENCH_PAGES=DIR: write the pages there and stop (to profile).
    let keep = std::env::var_os("RLEWATCH_BENCH_PAGES").map(std::path::PathBuf::from);
    let pages = keep.as_deref().unwrap_or(dir.path());
    let ink = page::ink(page::WIDTH, page::HEIGHT);
    let (w, h) = (page::WIDTH, page::HEIGHT);
    let files = [
        ("1-bit", pages.join("page1.bmp")),
        ("24-bit", pages.join("page24.bmp")),
        ("24-bit B/W", pages.join("page24bw.bmp")),
        ("24-bit photo", pages.join("photo24.bmp")),
    ];
    let write =
        |path: &std::path::Path, bytes: Vec<u8>| std::fs::write(path, bytes).expect("write page");
    write(&files[0].1, page::bmp_1bit(&ink, w, h));
    write(&files[1].1, page::bmp_24bit(&ink, w, h));
    write(&files[2].1, page::bmp_24bit_bw(&ink, w, h));
    write(&files[3].1, page::bmp_24bit_photo(w, h));
    if keep.is_some() {
        return;
    }
    // Children's peak RSS includes what they inherit before exec: stay small.
    drop(ink);
    let bin = env!("CARGO_BIN_EXE_rlewatch");
    println!(
        "rlewatch compress on {w}x{h} pages: text (1-bit, noisy 24-bit scan, pure black-and-white 24-bit) and a photo-like 24-bit page (best of 5 by wall time, lowest CPU time of the 5, warm page cache)"
    );
    let baseline = std::env::var("RLEWATCH_BENCH_BASELINE").ok();
    for (name, path) in &files {
        let len = std::fs::metadata(path).expect("page").len();
        let cat = best_of_all(5, || cat(&[path]));
        for mode in ["dither", "threshold"] {
            let out = dir.path().join(format!("out-{mode}.rle"));
            let compress = |bin: &str| {
                let _ = std::fs::remove_file(&out);
                let mut c = Command::new(bin);
                c.args(["compress", "-o"]).arg(&out).arg(path);
                if mode == "threshold" {
                    c.arg("--threshold");
                }
                c
            };
            let mut before: Option<Measured> = None;
            let mut new: Option<Measured> = None;
            // Five runs of each, the baseline's interleaved with this one's.
            for _ in 0..5 {
                let m = measure_all(&mut compress(bin));
                new = Some(new.map_or(m, |b| b.best(m)));
                if let Some(old) = &baseline {
                    let m = measure_all(&mut compress(old));
                    before = Some(before.map_or(m, |b| b.best(m)));
                }
            }
            let new = new.expect("five runs");
            let (t, cpu) = (new.wall, new.cpu);
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
            let before = before.map_or(String::new(), |b| {
                format!(
                    "; baseline: {:.1} ms, CPU {:.1} ms ({:.2}x, CPU {:.2}x of it)",
                    ms(b.wall),
                    ms(b.cpu),
                    ratio(t, b.wall),
                    ratio(cpu, b.cpu),
                )
            });
            println!(
                "{name:>12} {mode:<9}: {:>7.1} ms, CPU {:>6.1} ms, {:>6.0} MB/s, peak RSS {:>5.1} MB, {} → {} bytes; cat: {:.1} ms, CPU {:.1} ms ({:.2}x, CPU {:.2}x){before}",
                ms(t),
                ms(cpu),
                len as f64 / t.as_secs_f64() / 1e6,
                new.rss_kib as f64 / 1024.0,
                len,
                size,
                ms(cat.wall),
                ms(cat.cpu),
                ratio(t, cat.wall),
                ratio(cpu, cat.cpu),
            );
        }
    }
    for path in files.iter().map(|(_, p)| p) {
        let _ = std::fs::remove_file(path);
    }
    // The book's experiment: a folder of pure black-and-white 24-bit pages.
    // Opt in (it writes pages × 121 MB): RLEWATCH_BENCH_FOLDER=32.
    if let Some(n) = std::env::var("RLEWATCH_BENCH_FOLDER")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        folder(bin, dir.path(), n);
    }
}

/// `rlewatch compress DIR` on `n` copies of the pure black-and-white 24-bit
/// page, beside `cat DIR/* >/dev/null` (best of 3, warm page cache).
fn folder(bin: &str, tmp: &std::path::Path, n: usize) {
    let pages = tmp.join("pages");
    let out = tmp.join("out");
    std::fs::create_dir_all(&pages).expect("pages dir");
    let ink = page::ink(page::WIDTH, page::HEIGHT);
    let bmp = page::bmp_24bit_bw(&ink, page::WIDTH, page::HEIGHT);
    drop(ink);
    let paths: Vec<std::path::PathBuf> = (0..n)
        .map(|i| {
            let p = pages.join(format!("page{i:03}.bmp"));
            std::fs::write(&p, &bmp).expect("write page");
            p
        })
        .collect();
    let total = bmp.len() as u64 * n as u64;
    drop(bmp);
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let (cat_t, _) = best_of(3, || cat(&refs));
    println!(
        "folder of {n} pure black-and-white 24-bit pages ({:.2} GB, best of 3, warm page cache): cat: {:.2} s",
        total as f64 / 1e9,
        cat_t.as_secs_f64()
    );
    for mode in ["dither", "threshold"] {
        let (t, rss) = best_of(3, || {
            let _ = std::fs::remove_dir_all(&out);
            let mut c = Command::new(bin);
            c.args(["compress", "-o"]).arg(&out).arg(&pages);
            if mode == "threshold" {
                c.arg("--threshold");
            }
            c
        });
        println!(
            "{:>12} {mode:<9}: {:>7.2} s, {:>6.0} MB/s, peak RSS {:>5.1} MB; cat: {:.2} s ({:.1}x)",
            "folder",
            t.as_secs_f64(),
            total as f64 / t.as_secs_f64() / 1e6,
            rss as f64 / 1024.0,
            cat_t.as_secs_f64(),
            t.as_secs_f64() / cat_t.as_secs_f64(),
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&pages);
}
