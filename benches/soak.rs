//! Soak (`cargo bench --bench soak`): a steady stream of mixed files into a
//! running daemon at `RLEWATCH_SOAK_RATE` files/s (default 200) for
//! `RLEWATCH_SOAK_SECS` seconds in all (default 600), with SIGHUP every
//! 30 s. The first `RLEWATCH_SOAK_WARMUP_SECS` (default 10) are warm-up:
//! then the feed pauses until the inbox is empty and the daemon's RSS, open
//! file descriptors and threads are read as the baseline; they are read
//! again once the inbox is empty at the end.
//!
//! It exits 1, naming each broken criterion, when
//! - RSS grew by more than `RLEWATCH_SOAK_RSS_TOLERANCE_MB` (default 1.0),
//!   open fds by more than `RLEWATCH_SOAK_FD_TOLERANCE` (default 0), or
//!   threads by more than `RLEWATCH_SOAK_THREAD_TOLERANCE` (default 0);
//! - any file fed is not accounted for: every BMP archived exactly once
//!   under its own name with the bytes the codec gives, its original
//!   byte-identical in `done/`; every non-BMP byte-identical in `failed/`
//!   with its `.error.txt`; nothing else in archive, done or failed (no
//!   numbered duplicate, no temporary file); one ledger entry per archive;
//!   nothing but the daemon's lock and heartbeat left in the inbox (no
//!   claim);
//! - the daemon died, or did not exit 0 on SIGTERM.
//!
//! Each idle reading is the lowest of five taken 0.2 s apart, so a rescan
//! in flight (which holds a folder open) is not counted as growth.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rlewatch::compress::{self, Options};

#[path = "support/page.rs"]
mod page;

/// An environment variable's value, or `default` when it is unset; a value
/// that does not parse stops the run (a pass criterion is never guessed).
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("soak: {name}={v:?} is not a number");
            std::process::exit(2)
        }),
    }
}

/// What is read of the daemon at idle.
#[derive(Clone, Copy)]
struct Vitals {
    rss_mb: f64,
    fds: usize,
    threads: usize,
}

/// A number field of `/proc/PID/status` ("VmRSS:" and the like; sizes in
/// kB), or None if the process is gone.
fn status_field(pid: u32, name: &str) -> Option<f64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// RSS, open fds and threads of a process, or None if it is gone.
fn vitals(pid: u32) -> Option<Vitals> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Vitals {
        rss_mb: status_field(pid, "VmRSS:")? / 1024.0,
        fds,
        threads: status_field(pid, "Threads:")? as usize,
    })
}

/// The lowest of five readings 0.2 s apart (see the module doc).
fn idle_vitals(pid: u32) -> Option<Vitals> {
    let mut low: Option<Vitals> = None;
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        let v = vitals(pid)?;
        low = Some(match low {
            None => v,
            Some(l) => Vitals {
                rss_mb: l.rss_mb.min(v.rss_mb),
                fds: l.fds.min(v.fds),
                threads: l.threads.min(v.threads),
            },
        });
    }
    low
}

/// Files below `dir`, as paths relative to it.
fn files_below(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// Files in the inbox that are not the daemon's bookkeeping (its lock and
/// heartbeat; claims count: a claimed file is not finished).
fn inbox_files(inbox: &Path) -> BTreeSet<PathBuf> {
    let mut files = files_below(inbox);
    files.retain(|p| {
        !(p.starts_with(".rlewatch/hosts")
            || p.starts_with(".rlewatch") && p.extension().is_some_and(|x| x == "lock"))
    });
    files
}

/// Polls until the inbox holds no file the daemon would take (hidden ones
/// it ignores; the accounting at the end reports them); false on timeout
/// or if the daemon exited.
fn drain(inbox: &Path, child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let waiting = inbox_files(inbox).iter().any(|p| {
            !p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        });
        if !waiting {
            return true;
        }
        if Instant::now() >= deadline || !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// "1 file", "2 files".
fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

/// Compares what is in `dir` with what should be: by name, and by bytes
/// where they are given.
fn check_folder(dir: &Path, expected: &[(PathBuf, Option<&[u8]>)], failures: &mut Vec<String>) {
    // The ledger is checked on its own (one archived entry per archive).
    let mut found = files_below(dir);
    found.retain(|p| !p.starts_with(".rlewatch/ledger"));
    let wanted: BTreeSet<&PathBuf> = expected.iter().map(|(p, _)| p).collect();
    let missing = wanted.iter().filter(|p| !found.contains(**p)).copied();
    let extra = found.iter().filter(|p| !wanted.contains(p));
    let wrong = expected
        .iter()
        .filter(|(p, bytes)| {
            bytes.is_some_and(|b| {
                found.contains(p) && fs::read(dir.join(p)).ok().as_deref() != Some(b)
            })
        })
        .map(|(p, _)| p);
    let label = dir.file_name().unwrap().to_string_lossy();
    for (what, list) in [
        ("missing", missing.collect::<Vec<_>>()),
        ("unexpected", extra.collect()),
        ("with the wrong bytes", wrong.collect()),
    ] {
        if !list.is_empty() {
            let first: Vec<_> = list
                .iter()
                .take(5)
                .map(|p| p.display().to_string())
                .collect();
            failures.push(format!(
                "{label}/: {} {what} (first: {})",
                files(list.len()),
                first.join(", ")
            ));
        }
    }
}

/// Waits for the daemon to exit, killing it after `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let failures = soak();
    if failures.is_empty() {
        println!("soak: PASS");
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        std::process::exit(1);
    }
}

/// Runs the soak and returns the broken criteria (the temporary folder is
/// gone by the time it returns).
fn soak() -> Vec<String> {
    let secs: u64 = env_or("RLEWATCH_SOAK_SECS", 600);
    let warmup: u64 = env_or("RLEWATCH_SOAK_WARMUP_SECS", 10);
    let rate: u64 = env_or("RLEWATCH_SOAK_RATE", 200u64).max(1);
    let rss_tolerance: f64 = env_or("RLEWATCH_SOAK_RSS_TOLERANCE_MB", 1.0);
    let fd_tolerance: usize = env_or("RLEWATCH_SOAK_FD_TOLERANCE", 0);
    let thread_tolerance: usize = env_or("RLEWATCH_SOAK_THREAD_TOLERANCE", 0);
    if warmup >= secs {
        eprintln!(
            "soak: RLEWATCH_SOAK_WARMUP_SECS ({warmup}) must be below RLEWATCH_SOAK_SECS ({secs})"
        );
        std::process::exit(2);
    }
    println!(
        "soak: {secs} s at {rate} files/s ({warmup} s warm-up); tolerances: RSS +{rss_tolerance} MB, fds +{fd_tolerance}, threads +{thread_tolerance}"
    );

    let root = tempfile::Builder::new()
        .prefix("rlewatch-soak")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dir = root.path();
    fs::write(
        dir.join("config.toml"),
        "[watch]\nsettle_ms = 100\nrescan_secs = 20\n[log]\nlevel = \"warn\"\n",
    )
    .unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut kinds: Vec<(String, Vec<u8>)> = ["pal1", "pal4rle", "pal8", "rgb16", "rgb24"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                fs::read(vectors.join(format!("{k}.bmp"))).unwrap(),
            )
        })
        .collect();
    let ink = page::ink(1275, 1650);
    kinds.push(("page".into(), page::bmp_1bit(&ink, 1275, 1650)));
    kinds.push(("bad".into(), b"BM this is not a bitmap".to_vec()));
    // What the daemon (default configuration: dither) must archive for each
    // kind; None for the one it must refuse.
    let archives: Vec<Option<Vec<u8>>> = kinds
        .iter()
        .map(|(_, bytes)| {
            let mut out = Vec::new();
            compress::compress(bytes.as_slice(), &mut out, Options::default())
                .ok()
                .map(|_| out)
        })
        .collect();
    assert!(
        archives.last().unwrap().is_none()
            && archives.iter().filter(|a| a.is_some()).count() == kinds.len() - 1
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_rlewatch"))
        .args(["run", "--config", "config.toml"])
        .current_dir(dir)
        .stderr(fs::File::create(dir.join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let inbox = dir.join("inbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !inbox.join(".rlewatch/claims").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let idle_start = vitals(pid);
    let staging = dir.join("staging");
    fs::create_dir(&staging).unwrap();

    let mut failures = Vec::new();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut bad_sent = 0u64;
    let mut next_hup = started + Duration::from_secs(30);
    let mut hups = 0;
    let mut baseline: Option<Vitals> = None;
    let mut paused = Duration::ZERO;
    let mut died = false;
    // The inbox did not empty after the warm-up.
    let mut stuck = false;
    // Feeding time: `secs` in all, the pause for the baseline not counted.
    while started.elapsed() - paused < Duration::from_secs(secs) {
        if baseline.is_none() && started.elapsed() >= Duration::from_secs(warmup) {
            let pause = Instant::now();
            if !drain(&inbox, &mut child, Duration::from_secs(120)) {
                died = !matches!(child.try_wait(), Ok(None));
                stuck = !died;
                break;
            }
            baseline = idle_vitals(pid);
            paused = pause.elapsed();
            if baseline.is_none() {
                died = true;
                break;
            }
        }
        // Pace to `rate` files per second.
        let due = started + paused + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let k = (sent as usize * 3) % kinds.len();
        let (kind, bytes) = &kinds[k];
        let name = format!("{sent:08}-{kind}.bmp");
        fs::write(staging.join(&name), bytes).unwrap();
        let sub = inbox.join(format!("s{}", sent % 4));
        fs::create_dir_all(&sub).unwrap();
        fs::rename(staging.join(&name), sub.join(&name)).unwrap();
        if kind == "bad" {
            bad_sent += 1;
        }
        sent += 1;
        if Instant::now() >= next_hup {
            if !matches!(child.try_wait(), Ok(None)) {
                died = true;
                break;
            }
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
            hups += 1;
            next_hup += Duration::from_secs(30);
        }
        if sent.is_multiple_of(200) && !matches!(child.try_wait(), Ok(None)) {
            died = true;
            break;
        }
    }
    let fed = started.elapsed() - paused;
    let drained = !died && !stuck && drain(&inbox, &mut child, Duration::from_secs(120));
    let end = if drained { idle_vitals(pid) } else { None };
    // Once reaped, the pid may be another process's: read and signal it
    // only while the daemon runs.
    let running = matches!(child.try_wait(), Ok(None));
    died |= !running;
    let peak = running.then(|| status_field(pid, "VmHWM:")).flatten();
    if running {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let status = wait_exit(&mut child, Duration::from_secs(60));

    println!(
        "soak: {sent} files fed over {:.0} s ({:.0} files/s), {hups} SIGHUPs; baseline after {warmup} s, then {:.1} s paused for it",
        fed.as_secs_f64(),
        sent as f64 / fed.as_secs_f64(),
        paused.as_secs_f64()
    );
    let show = |v: Option<Vitals>| {
        v.map_or("(gone)".to_string(), |v| {
            format!(
                "RSS {:.2} MB, open fds {}, threads {}",
                v.rss_mb, v.fds, v.threads
            )
        })
    };
    println!("soak: idle at start:      {}", show(idle_start));
    println!("soak: idle after warm-up: {}", show(baseline));
    println!(
        "soak: idle at the end:    {}; peak RSS {}",
        show(end),
        peak.map_or("(gone)".into(), |kb| format!("{:.2} MB", kb / 1024.0))
    );

    if died {
        let how = status.map_or("?".to_string(), |s| s.to_string());
        failures.push(format!("the daemon exited during the run ({how})"));
    } else if !drained {
        failures.push(format!(
            "the inbox did not empty within 120 s {} ({} left)",
            if stuck {
                "after the warm-up"
            } else {
                "of the last file"
            },
            files(inbox_files(&inbox).len())
        ));
    }
    match status {
        _ if died => {}
        Some(s) if s.success() => {}
        Some(s) => failures.push(format!("the daemon's exit on SIGTERM: {s}")),
        None => failures.push("the daemon did not exit within 60 s of SIGTERM".into()),
    }
    if let (Some(b), Some(e)) = (baseline, end) {
        let rss = e.rss_mb - b.rss_mb;
        if rss > rss_tolerance {
            failures.push(format!(
                "RSS grew by {rss:.2} MB ({:.2} -> {:.2}), more than the {rss_tolerance} MB allowed (RLEWATCH_SOAK_RSS_TOLERANCE_MB)",
                b.rss_mb, e.rss_mb
            ));
        }
        if e.fds > b.fds + fd_tolerance {
            failures.push(format!(
                "open fds grew by {} ({} -> {}), more than the {fd_tolerance} allowed (RLEWATCH_SOAK_FD_TOLERANCE)",
                e.fds - b.fds,
                b.fds,
                e.fds
            ));
        }
        if e.threads > b.threads + thread_tolerance {
            failures.push(format!(
                "threads grew by {} ({} -> {}), more than the {thread_tolerance} allowed (RLEWATCH_SOAK_THREAD_TOLERANCE)",
                e.threads - b.threads,
                b.threads,
                e.threads
            ));
        }
    } else if !died {
        failures.push("no idle reading to compare (see above)".into());
    }

    // Accounting: every file fed, where it belongs and nowhere else.
    let (mut archived, mut filed, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..sent {
        let k = (n as usize * 3) % kinds.len();
        let (kind, bytes) = &kinds[k];
        let name = PathBuf::from(format!("s{}", n % 4)).join(format!("{n:08}-{kind}"));
        let bmp = name.with_extension("bmp");
        match &archives[k] {
            Some(rle) => {
                archived.push((name.with_extension("rle"), Some(rle.as_slice())));
                filed.push((bmp, Some(bytes.as_slice())));
            }
            None => {
                // The reason's text varies (time, attempts): only its name.
                refused.push((name.with_extension("bmp.error.txt"), None));
                refused.push((bmp, Some(bytes.as_slice())));
            }
        }
    }
    check_folder(&dir.join("archive"), &archived, &mut failures);
    check_folder(&dir.join("done"), &filed, &mut failures);
    check_folder(&dir.join("failed"), &refused, &mut failures);
    let ledger_lines: usize = files_below(&dir.join("archive/.rlewatch/ledger"))
        .iter()
        .map(|p| {
            fs::read_to_string(dir.join("archive/.rlewatch/ledger").join(p))
                // Archived entries: the lines without a `kind` (ledger
                // version 3 adds filed, quarantined, … lines beside them).
                .map_or(0, |t| {
                    t.lines().filter(|l| !l.contains("\"kind\":")).count()
                })
        })
        .sum();
    if ledger_lines != archived.len() {
        failures.push(format!(
            "ledger: {ledger_lines} entries for {} archives",
            archived.len()
        ));
    }
    let left = inbox_files(&inbox);
    if !left.is_empty() {
        failures.push(format!(
            "inbox: {} left (first: {})",
            files(left.len()),
            left.iter()
                .take(5)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    println!(
        "soak: expected {} archived and {bad_sent} quarantined; found {} files in archive/, {} in done/, {} in failed/ (with the reasons), {} left in the inbox; daemon {}",
        archived.len(),
        files_below(&dir.join("archive"))
            .iter()
            .filter(|p| !p.starts_with(".rlewatch"))
            .count(),
        files_below(&dir.join("done")).len(),
        files_below(&dir.join("failed")).len(),
        left.len(),
        status.map_or("(killed)".to_string(), |s| s.to_string())
    );
    if !failures.is_empty() {
        let log = fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        // The expected quarantines left out.
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("-bad.bmp: ")).collect();
        println!(
            "soak: the daemon's last {} log lines (level warn; the expected quarantines left out):",
            lines.len().min(10)
        );
        for l in &lines[lines.len().saturating_sub(10)..] {
            println!("  {l}");
        }
    }
    drop(root);
    failures
}
