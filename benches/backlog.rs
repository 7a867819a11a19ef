//! Cost as the work grows (`cargo bench --bench backlog`; issue 23, item
//! 3): a fresh daemon (the real binary, fsync and verify on) started on a
//! backlog of small pages already in the inbox, spread over subfolders of
//! 1,000, measured from outside: files/s from the start to the last
//! original filed, the daemon's peak RSS (`VmHWM`) and CPU time (utime +
//! stime from `/proc/PID/stat`), and each scan of the inbox as the daemon
//! logs it (time and CPU of the coordinator thread). The small backlog is
//! run before and after the large one, in the same run, so the ratio is
//! of figures taken minutes apart.
//!
//! - `RLEWATCH_BENCH_SMALL` (default 2000) and `RLEWATCH_BENCH_LARGE`
//!   (default 100000): the two backlogs;
//! - `RLEWATCH_BENCH_PAGE` (default `400x300`): the page, a 1-bit text
//!   page (`support/page.rs`);
//! - `RLEWATCH_BENCH_PER_FOLDER` (default 1000): files per subfolder;
//!   one folder holding the whole backlog with `0`;
//! - `RLEWATCH_BENCH_RESCAN_SECS` (default 10): `watch.rescan_secs`, so
//!   that periodic rescans of the large inbox happen while it drains;
//! - `RLEWATCH_BENCH_SKIP_SMALL_AFTER` (default 0): with 1, the small
//!   backlog is not run again after the large one (a large one that takes
//!   half an hour to stage and drain, say a million pages in one folder);
//! - `RLEWATCH_BENCH_BIN`: another build's binary, measured with this
//!   same harness; `RLEWATCH_BENCH_ROOT`: where the bench works (default
//!   under `target/tmp`).
//!
//! Each drain also reports the start (spawn to the first ledger entry
//! written, i.e. the first page archived) and checks that nothing was
//! missed: every staged page is in done/ under its name, has its archive
//! under its name in archive/, and the ledger holds one archived entry
//! per page.
//!
//! The small pages are reused: after a run the originals are moved back
//! from done/ into the inbox (folder renames), and archive/ removed.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/page.rs"]
mod page;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    std::env::var_os("RLEWATCH_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rlewatch")),
        PathBuf::from,
    )
}

/// Clock ticks per second, for `/proc/PID/stat`.
fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// A backlog staged on disk: `folders` subfolders of the inbox (or the
/// inbox itself), `files` pages in all.
struct Backlog {
    dir: PathBuf,
    folders: Vec<PathBuf>,
    files: usize,
    /// Pages per folder (all in one with 0).
    per_folder: usize,
}

impl Backlog {
    fn stage(dir: &Path, files: usize, per_folder: usize, bmp: &[u8]) -> Backlog {
        let inbox = dir.join("inbox");
        fs::create_dir_all(&inbox).unwrap();
        let per = if per_folder == 0 { files } else { per_folder };
        let mut folders = Vec::new();
        for (f, start) in (0..files).step_by(per.max(1)).enumerate() {
            let folder = if per_folder == 0 {
                inbox.clone()
            } else {
                inbox.join(format!("d{f:04}"))
            };
            fs::create_dir_all(&folder).unwrap();
            for i in start..(start + per).min(files) {
                fs::write(folder.join(format!("page{i:07}.bmp")), bmp).unwrap();
            }
            folders.push(folder);
        }
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        Backlog {
            dir: dir.to_path_buf(),
            folders,
            files,
            per_folder,
        }
    }

    /// True once no page is left in the inbox's folders (checked from the
    /// first folder not yet seen empty: the daemon drains them roughly in
    /// order, so a poll lists one folder or two).
    fn drained(&self, first: &mut usize) -> bool {
        while *first < self.folders.len() {
            let left = fs::read_dir(&self.folders[*first]).map_or(0, |d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".bmp"))
                    .count()
            });
            if left > 0 {
                return false;
            }
            *first += 1;
        }
        true
    }

    /// Pages filed in done/.
    fn done(&self) -> usize {
        walk_count(&self.dir.join("done"))
    }

    /// True once the ledger holds an entry (the first page archived).
    fn first_recorded(&self) -> bool {
        walk_sizes(&self.dir.join("archive/.rlewatch/ledger")) > 0
    }

    /// What was missed: pages without their original in done/ or their
    /// archive in archive/ (each under its own name), and the ledger's
    /// archived entries against the pages (lines without a `kind`:
    /// ledger version 3 writes filed, quarantined … lines beside them).
    fn missed(&self) -> Vec<String> {
        let mut missed = Vec::new();
        let mut lacking = (0, 0);
        for i in 0..self.files {
            let folder = i
                .checked_div(self.per_folder)
                .map_or_else(PathBuf::new, |f| PathBuf::from(format!("d{f:04}")));
            let stem = format!("page{i:07}");
            if !self
                .dir
                .join("done")
                .join(&folder)
                .join(format!("{stem}.bmp"))
                .is_file()
            {
                lacking.0 += 1;
            }
            if !self
                .dir
                .join("archive")
                .join(&folder)
                .join(format!("{stem}.rle"))
                .is_file()
            {
                lacking.1 += 1;
            }
        }
        if lacking.0 > 0 {
            missed.push(format!("{} page(s) not in done/", lacking.0));
        }
        if lacking.1 > 0 {
            missed.push(format!("{} page(s) without an archive", lacking.1));
        }
        let archives =
            walk_count(&self.dir.join("archive")) - walk_count(&self.dir.join("archive/.rlewatch"));
        if archives != self.files {
            missed.push(format!("{archives} archives for {} pages", self.files));
        }
        let ledger = self.dir.join("archive/.rlewatch/ledger");
        let mut entries = 0;
        for host in fs::read_dir(&ledger).into_iter().flatten().flatten() {
            for day in fs::read_dir(host.path()).into_iter().flatten().flatten() {
                if let Ok(f) = fs::File::open(day.path()) {
                    entries += BufReader::new(f)
                        .lines()
                        .map_while(Result::ok)
                        .filter(|l| !l.contains("\"kind\":"))
                        .count();
                }
            }
        }
        if entries != self.files {
            missed.push(format!("{entries} ledger entries for {} pages", self.files));
        }
        missed
    }

    /// Moves the originals back from done/ and removes archive/ (and the
    /// ledger in it) and the daemon's state: the backlog as staged.
    fn reset(&self) {
        let done = self.dir.join("done");
        let inbox = self.dir.join("inbox");
        if let Ok(entries) = fs::read_dir(&done) {
            for e in entries.filter_map(Result::ok) {
                let to = inbox.join(e.file_name());
                if e.file_type().is_ok_and(|t| t.is_dir()) && to.is_dir() {
                    for f in fs::read_dir(e.path()).unwrap().filter_map(Result::ok) {
                        fs::rename(f.path(), to.join(f.file_name())).unwrap();
                    }
                } else {
                    fs::rename(e.path(), to).unwrap();
                }
            }
        }
        let _ = fs::remove_dir_all(&done);
        let _ = fs::remove_dir_all(self.dir.join("archive"));
        let _ = fs::remove_dir_all(self.dir.join("failed"));
        let _ = fs::remove_dir_all(inbox.join(".rlewatch"));
        // SAFETY: as above.
        unsafe { libc::sync() };
    }
}

/// Bytes in the files below `dir`.
fn walk_sizes(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += walk_sizes(&e.path()),
                Ok(m) => n += m.len(),
                Err(_) => {}
            }
        }
    }
    n
}

fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n += walk_count(&e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

/// What one drain measured.
struct Drain {
    files: usize,
    /// Spawn to the first page archived (its ledger entry written).
    first_secs: f64,
    secs: f64,
    cpu_secs: f64,
    peak_rss_mb: f64,
    scans: Vec<String>,
}

impl Drain {
    fn rate(&self) -> f64 {
        self.files as f64 / self.secs
    }
}

/// Starts the daemon on the staged backlog and waits for it to be through.
fn drain(b: &Backlog, threads: usize, rescan_secs: u64) -> Drain {
    fs::write(
        b.dir.join("config.toml"),
        format!(
            "[workers]\nthreads = {threads}\n[watch]\nsettle_ms = 20\nrescan_secs = {rescan_secs}\n\
             [log]\nlevel = \"warn,rlewatch::daemon::coordinator::intake=debug\"\n"
        ),
    )
    .unwrap();
    let start = Instant::now();
    let mut child: Child = Command::new(binary())
        .args(["run", "--config", "config.toml"])
        .current_dir(&b.dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scans = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let scans = scans.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("rescanned") {
                    scans.lock().unwrap().push(line);
                } else if !line.contains("rescanning") {
                    eprintln!("{line}");
                }
            }
        })
    };
    let mut first = 0;
    let deadline = start + Duration::from_secs(3600);
    // Polling from outside, a bench. A listing of a folder of a million
    // files takes a good part of a second: the pause after each poll is 20
    // times what the poll took (at least 20 ms), so that the polls take at
    // most 5 % of a core from the daemon; the drain's time is then known
    // to within that pause (printed).
    let mut pause = Duration::from_millis(20);
    let mut poll = |check: &mut dyn FnMut() -> bool| loop {
        let t = Instant::now();
        if check() {
            return;
        }
        assert!(Instant::now() < deadline, "backlog not filed in an hour");
        pause = (t.elapsed() * 20).max(Duration::from_millis(20));
        std::thread::sleep(pause);
    };
    poll(&mut || b.first_recorded());
    let first_secs = start.elapsed().as_secs_f64();
    poll(&mut || b.drained(&mut first));
    poll(&mut || b.done() >= b.files);
    let secs = start.elapsed().as_secs_f64();
    if pause > Duration::from_millis(100) {
        println!(
            "  (polled every {:.1} s at the end: the drain's time is within that)",
            pause.as_secs_f64()
        );
    }
    let pid = child.id();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_rss_mb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are
    // the 14th and 15th of the line, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let cpu_secs = (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = reader.join();
    let scans = std::mem::take(&mut *scans.lock().unwrap());
    Drain {
        files: b.files,
        first_secs,
        secs,
        cpu_secs,
        peak_rss_mb,
        scans,
    }
}

fn print(label: &str, d: &Drain) {
    println!(
        "{label}: first page archived {:.0} ms after the spawn; {} files in {:.2} s = {:.0} files/s; daemon CPU {:.2} s ({:.0} µs/file); peak RSS {:.1} MB; {} scan(s)",
        d.first_secs * 1e3,
        d.files,
        d.secs,
        d.rate(),
        d.cpu_secs,
        d.cpu_secs * 1e6 / d.files as f64,
        d.peak_rss_mb,
        d.scans.len()
    );
    for s in d.scans.iter().take(3) {
        println!(
            "  {}",
            s.split_once("rescanned").map_or(s.as_str(), |(_, r)| r)
        );
    }
    if d.scans.len() > 3 {
        let periodic: Vec<&String> = d.scans.iter().filter(|s| s.contains("periodic")).collect();
        println!("  … {} more; periodic ones:", d.scans.len() - 3);
        for s in periodic.iter().take(10) {
            println!(
                "  {}",
                s.split_once("rescanned").map_or(s.as_str(), |(_, r)| r)
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let small = env_usize("RLEWATCH_BENCH_SMALL", 2000);
    let large = env_usize("RLEWATCH_BENCH_LARGE", 100_000);
    let per_folder = env_usize("RLEWATCH_BENCH_PER_FOLDER", 1000);
    let rescan = env_usize("RLEWATCH_BENCH_RESCAN_SECS", 10) as u64;
    let (w, h) = std::env::var("RLEWATCH_BENCH_PAGE")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((400usize, 300usize));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = tempfile::Builder::new()
        .prefix("rlewatch-backlog")
        .tempdir_in(
            std::env::var_os("RLEWATCH_BENCH_ROOT")
                .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from),
        )
        .unwrap();
    let bmp = page::bmp_1bit(&page::ink(w, h), w, h);
    println!(
        "backlog bench: {w}x{h} 1-bit pages of {} bytes, {} per folder, {threads} workers, \
         fsync + verify on, rescan_secs = {rescan}",
        bmp.len(),
        if per_folder == 0 {
            "all".to_string()
        } else {
            per_folder.to_string()
        }
    );
    let t = Instant::now();
    let s = Backlog::stage(&root.path().join("small"), small, per_folder, &bmp);
    let l = Backlog::stage(&root.path().join("large"), large, per_folder, &bmp);
    println!("staged in {:.1} s", t.elapsed().as_secs_f64());

    let skip_after = env_usize("RLEWATCH_BENCH_SKIP_SMALL_AFTER", 0) == 1;
    let checked = |label: &str, b: &Backlog, d: &Drain| {
        print(label, d);
        let missed = b.missed();
        if missed.is_empty() {
            println!(
                "  nothing missed: {} pages each in done/ and archived, {} ledger entries",
                b.files, b.files
            );
        } else {
            println!("  MISSED: {}", missed.join("; "));
        }
    };
    let before = drain(&s, threads, rescan);
    checked("small backlog (before)", &s, &before);
    s.reset();
    let big = drain(&l, threads, rescan);
    checked("large backlog", &l, &big);
    let after = if skip_after {
        None
    } else {
        l.reset();
        let after = drain(&s, threads, rescan);
        checked("small backlog (after)", &s, &after);
        Some(after)
    };
    let after = after.as_ref().unwrap_or(&before);
    let best = before.rate().max(after.rate());
    println!(
        "large/small: {:.2} of the rate (best small {best:.0} files/s), CPU/file {:.2}×, peak RSS {:.1} MB against {:.1} MB, first page archived after {:.0} ms against {:.0} ms",
        big.rate() / best,
        (big.cpu_secs / big.files as f64) / (before.cpu_secs.min(after.cpu_secs) / small as f64),
        big.peak_rss_mb,
        before.peak_rss_mb.max(after.peak_rss_mb),
        big.first_secs * 1e3,
        before.first_secs.max(after.first_secs) * 1e3
    );
}
