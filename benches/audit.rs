//! `rlewatch audit` throughput (`cargo bench --bench audit`): an archive of
//! N noise images (large `.rle` files, since dithered noise has short
//! runs) with their ledger, then the real binary's audit run twice — the
//! first run reads from the disk or the page cache as it happens to be,
//! the second from the page cache — and MB/s of `.rle` checked printed
//! for each. The goal (design §4.7): bound by the disk, at least 1 GB/s
//! from the page cache.
//!
//! Size: `RLEWATCH_BENCH_AUDIT_MB` (default 1000) MB of `.rle` in all.

use std::fs;
use std::process::Command;
use std::time::Instant;

use rlewatch::bilevel::Conversion;
use rlewatch::compress::{self, Options};
use rlewatch::ledger::{self, Ledger};

/// A 24-bit BMP of noise, `w`×`h`.
fn noise_bmp(w: usize, h: usize, seed: u64) -> Vec<u8> {
    let stride = (w * 3).div_ceil(4) * 4;
    let mut out = Vec::with_capacity(54 + stride * h);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&((54 + stride * h) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(w as i32).to_le_bytes());
    out.extend_from_slice(&(h as i32).to_le_bytes());
    out.extend_from_slice(&[1, 0, 24, 0]);
    out.extend_from_slice(&[0; 24]);
    let mut x = seed | 1;
    for _ in 0..stride * h {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

fn main() {
    let mb: u64 = std::env::var("RLEWATCH_BENCH_AUDIT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    fs::create_dir(&archive).unwrap();
    let ledger = Ledger::open(&archive, "bench").unwrap();
    let started = Instant::now();
    // One source image, encoded once; its archive copied under N names
    // (the audit reads every copy in full either way).
    let bmp = noise_bmp(2000, 2000, 7);
    let mut rle = Vec::new();
    fs::write(dir.path().join("noise.bmp"), &bmp).unwrap();
    let source = fs::File::open(dir.path().join("noise.bmp")).unwrap();
    let o = compress::compress(
        &source,
        &mut rle,
        Options {
            conversion: Conversion::Dither,
            max_pixels: compress::DEFAULT_MAX_PIXELS,
            formats: rlewatch::formats::FormatSet::DECODED,
        },
    )
    .unwrap();
    let n = (mb * 1_000_000).div_ceil(rle.len() as u64);
    for i in 0..n {
        let name = format!("{i:05}.rle");
        fs::write(archive.join(&name), &rle).unwrap();
        ledger
            .append(&ledger::Record {
                v: ledger::VERSION,
                time: "2026-11-26T00:00:00Z".into(),
                host: "bench".into(),
                source: format!("{i:05}.bmp"),
                source_raw: None,
                source_size: bmp.len() as u64,
                source_xxh3: ledger::hex(i),
                archive: name,
                archive_raw: None,
                archive_size: o.bytes_out,
                archive_xxh3: ledger::hex(o.digest),
                width: o.width,
                height: o.height,
                conversion: "dither".into(),
                lossless: o.lossless,
                format: o.format.name().into(),
            })
            .unwrap();
    }
    println!(
        "archive: {n} files of {} bytes ({:.0} MB) written in {:.1} s",
        rle.len(),
        (n * rle.len() as u64) as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    for run in ["first run", "second run (page cache)"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rlewatch"))
            .args(["audit", archive.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{run}: {}", text.trim_end());
    }
}
