//! The small things every test uses: temp folders, running the real
//! binary, polling with a deadline, the shared corpus and the bundled
//! vectors, listing what a folder holds, skipping what needs root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The built `rlewatch` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rlewatch"))
}

/// Runs the binary with `args` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn rlewatch")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary folder, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bundled test vectors (`tests/data`).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The shared corpus beside the checkout. Tests that use it are marked
/// `#[cfg_attr(no_corpus, ignore = …)]`: the build script (`src/build.rs`)
/// sets `no_corpus` when the corpus is missing, so they show as ignored in
/// the summary, never as a silent pass; with `RLEWATCH_REQUIRE_CORPUS` set
/// (CI sets it) they run, and fail here if it is missing.
pub fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(
        dir.join("bmpsuite").is_dir(),
        "the shared corpus is missing at {}",
        dir.display()
    );
    dir
}

/// Skips a test that needs root (or a mount root may be refused in a
/// container): says "skipped: REASON" so the output shows it. With
/// `RLEWATCH_REQUIRE_ROOT` set (CI sets it, and runs as root) such a skip
/// fails the test instead, as `RLEWATCH_REQUIRE_CORPUS` does for the
/// corpus tests: a root-only test must never pass silently where it is
/// meant to run.
pub fn skip_without_root(reason: &str) {
    assert!(
        std::env::var_os("RLEWATCH_REQUIRE_ROOT").is_none(),
        "RLEWATCH_REQUIRE_ROOT is set but this test cannot run: {reason}"
    );
    println!("skipped: {reason}");
}

/// True when the tests run as root (needed to switch users or mount).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// True when this process may make a user namespace (some systems forbid
/// it to unprivileged users).
pub fn can_make_user_namespaces() -> bool {
    Command::new("unshare")
        .args(["-U", "-r", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Every regular file below `dir`, relative, sorted.
/// Leaves out the daemon's bookkeeping (the ledger and its index in the archive, the
/// lock and heartbeats in the inbox) but not its claims: a file left claimed is a file
/// not finished.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_path_buf())
        .filter(|p| {
            !(p.starts_with(".rlewatch/ledger")
                || p.starts_with(".rlewatch/index")
                || p.starts_with(".rlewatch/hosts")
                || p.starts_with(".rlewatch") && p.extension().is_some_and(|x| x == "lock"))
        })
        .collect();
    out.sort();
    out
}

/// Compresses BMP bytes in memory with the default pixel limit.
pub fn compress_bytes(
    bytes: &[u8],
    conversion: rlewatch::bilevel::Conversion,
) -> Result<Vec<u8>, rlewatch::compress::CompressError> {
    let mut out = Vec::new();
    let opts = rlewatch::compress::Options {
        conversion,
        max_pixels: rlewatch::compress::DEFAULT_MAX_PIXELS,
        formats: rlewatch::formats::FormatSet::DECODED,
    };
    rlewatch::compress::compress(bytes, &mut out, opts)?;
    Ok(out)
}

/// Inodes of the files process `pid` holds an `flock` on, from
/// `/proc/locks` (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`;
/// waiters, shown with `->`, hold nothing). The daemon locks what it is
/// working on: its claims and temporary files (design §4.7, §4.3).
pub fn flocked_inodes(pid: i32) -> std::collections::HashSet<u64> {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1) != Some(&"FLOCK") || f.get(4) != Some(&pid.to_string().as_str()) {
                return None;
            }
            f.get(5)?.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

/// Stops process `pid` (SIGSTOP) and waits until every one of its threads
/// is stopped, so that what it has on disk can be looked at as it is at
/// that instant. False if it did not stop within `timeout`.
pub fn stop_process(pid: i32, timeout: Duration) -> bool {
    // SAFETY: kill(2) on a child of ours.
    if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
        return false;
    }
    let task = PathBuf::from(format!("/proc/{pid}/task"));
    wait_until(timeout, || {
        let Ok(threads) = std::fs::read_dir(&task) else {
            return false;
        };
        threads.filter_map(Result::ok).all(|t| {
            // `PID (comm) STATE …`: the state follows the last ')'.
            std::fs::read_to_string(t.path().join("stat")).is_ok_and(|s| {
                s.rsplit_once(')').is_some_and(|(_, rest)| {
                    matches!(rest.trim_start().chars().next(), Some('T' | 't'))
                })
            })
        })
    })
}

/// A small deterministic generator (kill and cut moments from a seed).
pub struct Lcg(pub u64);
impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// How long a test waits for something the daemon should do soon: far
/// longer than it takes, so that only a failure runs into it.
pub const LONG: Duration = Duration::from_secs(60);

/// The bytes of the bundled vector `name` (for a `.rle`: the reference
/// program's output).
pub fn expected(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// True when no rlewatch temporary file (`.rlewatch-*`) is left below
/// `dir`.
pub fn no_temp_files(dir: &Path) -> bool {
    files_below(dir)
        .iter()
        .all(|p| !p.to_string_lossy().contains(".rlewatch-"))
}

/// A 24-bit BMP big enough that compressing it takes a while.
pub fn big_bmp(w: usize, h: usize) -> Vec<u8> {
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
    for y in 0..h {
        for x in 0..stride {
            out.push(((x * 7 + y * 13) % 256) as u8);
        }
    }
    out
}
