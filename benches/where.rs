//! `rlewatch where` over a year of ledger (`cargo bench --bench where`;
//! docs/performance.md, "Finding a file"). Synthesises what a daemon
//! archiving 100,000 files a day writes in a year — 365 day files, two
//! lines a file (the archived entry, ~380 bytes, and the line saying where
//! the original went, ~260 bytes) — then times, through the real binary:
//! building the index (`where --build-index`), `where NAME` and
//! `where DIGEST` with the page cache emptied of the ledger and its index
//! (cold) and warm, and the answer without an index (`--no-index`, what a
//! missing or damaged index costs). The goal (issue 21): ≤ 1 s for a name
//! or a digest. The synthetic ledger is removed at the end.
//!
//! Scale: `RLEWATCH_WHERE_DAYS` (default 365) day files of
//! `RLEWATCH_WHERE_PER_DAY` (default 100000) files; `RLEWATCH_WHERE_FILED=0`
//! leaves out the `filed` lines (a year then takes 14 GB of disk instead
//! of 23, and its index 3 GB instead of 6); `RLEWATCH_WHERE_DIR` the
//! folder to build it in (default: the system's temporary folder).

#[path = "support/measure.rs"]
mod measure;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use measure::{best_of, measure};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The day `d` days after 2025-01-01, as `YYYY-MM-DD`.
fn day(d: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600 + d * 86_400);
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

/// The source path and digests of file `i` of day `d`.
fn file_of(d: u64, i: u64) -> (String, u64, u64) {
    let source = format!("batches/{d:03}/{:04}/scan-{d:03}-{i:06}", i / 500);
    let h = xxhash_rust::xxh3::xxh3_64(&(d << 32 | i).to_le_bytes());
    (source, h, h.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15)
}

/// Writes the day file of day `d`: `per_day` archived entries, each
/// followed by its `filed` line, as the daemon writes them.
fn write_day(path: &Path, d: u64, per_day: u64, filed: bool) -> u64 {
    let mut w = BufWriter::with_capacity(8 << 20, File::create(path).unwrap());
    let date = day(d);
    for i in 0..per_day {
        let (source, sx, ax) = file_of(d, i);
        let secs = i * 86_400 / per_day;
        let time = format!(
            "{date}T{:02}:{:02}:{:02}.{:06}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            i % 1_000_000
        );
        writeln!(
            w,
            r#"{{"v":3,"time":"{time}","host":"scan-host-1","source":"{source}.png","source_size":{},"source_xxh3":"{sx:016x}","archive":"{source}.rle","archive_size":{},"archive_xxh3":"{ax:016x}","width":2480,"height":3508,"conversion":"dither","lossless":false,"format":"png"}}"#,
            400_000 + sx % 100_000,
            60_000 + ax % 10_000
        )
        .unwrap();
        if !filed {
            continue;
        }
        writeln!(
            w,
            r#"{{"kind":"filed","v":3,"time":"{time}","host":"scan-host-1","source":"{source}.png","source_xxh3":"{sx:016x}","archive":"{source}.rle","fate":"done","path":"{source}.png"}}"#
        )
        .unwrap();
    }
    w.flush().unwrap();
    fs::metadata(path).unwrap().len()
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Empties the page cache of every file below `dir` (written back first):
/// the next read comes from the disk.
fn evict(dir: &Path) {
    // SAFETY: sync(2) takes no arguments.
    unsafe { libc::sync() };
    for f in files(dir) {
        let file = File::open(&f).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor; offset 0, length 0 = the whole file.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}

fn size_of(dir: &Path) -> u64 {
    files(dir)
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum()
}

fn main() {
    if measure::serve() {
        return;
    }
    let days = env_or("RLEWATCH_WHERE_DAYS", 365);
    let per_day = env_or("RLEWATCH_WHERE_PER_DAY", 100_000);
    let filed = env_or("RLEWATCH_WHERE_FILED", 1) != 0;
    let per_file = if filed { 2 } else { 1 };
    let base = std::env::var_os("RLEWATCH_WHERE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = dir.path();
    for f in ["inbox", "archive", "done", "failed"] {
        fs::create_dir(root.join(f)).unwrap();
    }
    let config = root.join("config.toml");
    fs::write(
        &config,
        format!(
            "[paths]\ninbox = \"{0}/inbox\"\narchive = \"{0}/archive\"\ndone = \"{0}/done\"\n\
             failed = \"{0}/failed\"\n",
            root.display()
        ),
    )
    .unwrap();
    let ledger = root.join("archive/.rlewatch/ledger/scan-host-1");
    fs::create_dir_all(&ledger).unwrap();
    let started = Instant::now();
    let bytes: u64 = std::thread::scope(|s| {
        let threads = 2u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ledger = &ledger;
                s.spawn(move || {
                    (t..days)
                        .step_by(threads as usize)
                        .map(|d| {
                            write_day(&ledger.join(format!("{}.jsonl", day(d))), d, per_day, filed)
                        })
                        .sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!(
        "ledger: {days} day files, {} files archived ({} lines), {:.1} GB, written in {:.0} s",
        days * per_day,
        per_file * days * per_day,
        bytes as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );
    let bin = env!("CARGO_BIN_EXE_rlewatch");
    // Its output to /dev/null (the measurer prints its own figures on
    // its standard output).
    let cmd = |args: &[&str]| {
        let mut c = Command::new("sh");
        c.args(["-c", "exec \"$0\" \"$@\" >/dev/null", bin, "where", "-c"])
            .arg(&config)
            .args(args);
        c
    };
    // The file asked for: in the middle of the year.
    let (source, sx, ax) = file_of(days / 2, per_day / 2);
    let name = format!(
        "{}.png",
        Path::new(&source).file_name().unwrap().to_str().unwrap()
    );
    let (sx, ax) = (format!("{sx:016x}"), format!("{ax:016x}"));
    // Check the answer once, in full.
    let out = Command::new(bin)
        .args(["where", "-c"])
        .arg(&config)
        .arg(&name)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = root.join("archive/.rlewatch/index");
    let state = root.join("archive/.rlewatch");
    let _ = fs::remove_dir_all(&index);
    evict(&state);
    let (t, rss) = measure(&mut cmd(&["--build-index"]));
    println!(
        "index build (where --build-index, {} lines): {:.1} s, {:.2} GB of tables, peak RSS {} MiB",
        per_file * days * per_day,
        t.as_secs_f64(),
        size_of(&index) as f64 / 1e9,
        rss / 1024
    );
    for (what, q) in [
        ("NAME", name.as_str()),
        ("DIGEST (source)", &sx),
        ("DIGEST (archive)", &ax),
    ] {
        evict(&state);
        let (cold, _) = measure(&mut cmd(&[q]));
        let (warm, rss) = best_of(5, || cmd(&[q]));
        println!(
            "where {what}: cold {:.0} ms, warm {:.0} ms (best of 5), peak RSS {} MiB",
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            rss / 1024
        );
    }
    let out = Command::new(bin)
        .args(["where", "-c"])
        .arg(&config)
        .args(["--json", &sx])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][0]["source"], format!("{source}.png"));
    assert_eq!(
        v["files"][0]["events"].as_array().unwrap().len(),
        per_file as usize
    );
    evict(&state);
    let (t, _) = measure(&mut cmd(&["--no-index", &name]));
    println!(
        "where --no-index NAME (a missing or damaged index: every line read): {:.1} s",
        t.as_secs_f64()
    );
    drop(dir);
}
