//! A year's ledger (`cargo bench --bench ledger`; issue 23, item 3): a
//! ledger of `DAYS` day files of `PER_DAY` entries each is synthesised
//! (lines shaped as the daemon writes them, each naming its own source
//! and archive), then the real daemon is measured against it and against
//! an empty ledger, in the same run: the time from its start to its first
//! file archived (one page waiting in the inbox at start), the drain of a
//! backlog of small pages (files/s, CPU per file) and its peak RSS. Then
//! `rlewatch audit` is timed with `cat` of the same ledger files.
//!
//! - `RLEWATCH_BENCH_LEDGER_DAYS` (default 365) and
//!   `RLEWATCH_BENCH_LEDGER_PER_DAY` (default 100000): 36.5 M entries,
//!   about 11 GB; a smaller scale for a smaller disk;
//! - `RLEWATCH_BENCH_FILES` (default 1000): the backlog drained;
//! - `RLEWATCH_BENCH_AUDIT_BASE`: another build's binary whose `audit` is
//!   timed too, alternating with this build's, but only on a ledger of at
//!   most `RLEWATCH_BENCH_AUDIT_MAX` (default 2000000) entries (builds
//!   before the streamed audit held every entry in memory, about 1.6 KB
//!   each); `RLEWATCH_BENCH_AUDIT_RUNS` (default 1) rounds;
//! - `RLEWATCH_BENCH_SKIP_DAEMON=1`: the audit only, not the daemon's
//!   start and drain;
//! - `RLEWATCH_BENCH_ARCHIVE_FILES` (default 0): that many empty files
//!   planted in archive/ (1000 a folder), as a year of archives would be,
//!   to show what the daemon's start costs with them;
//! - `RLEWATCH_BENCH_BIN`, `RLEWATCH_BENCH_ROOT` as in the daemon bench.
//!
//! Everything synthesised is deleted at the end.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/measure.rs"]
mod measure;
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

const HOST: &str = "bench";

/// Writes `days` day files of `per_day` entries under `archive`'s ledger;
/// returns their paths and bytes.
fn synthesise(archive: &Path, days: usize, per_day: usize) -> (Vec<PathBuf>, u64) {
    let dir = archive.join(".rlewatch/ledger").join(HOST);
    fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut bytes = 0;
    // Days ending the day before yesterday, so the daemon's own entries
    // go to a file of their own.
    let first = 20_000 - days as i64;
    for d in 0..days {
        let day = civil(first + d as i64);
        let path = dir.join(format!("{day}.jsonl"));
        let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(&path).unwrap());
        for i in 0..per_day {
            let n = d * per_day + i;
            let line = format!(
                "{{\"v\":2,\"time\":\"{day}T{:02}:{:02}:{:02}.{:06}Z\",\"host\":\"{HOST}\",\
                 \"source\":\"scans/d{:05}/page{n:09}.bmp\",\"source_size\":15662,\
                 \"source_xxh3\":\"{:016x}\",\"archive\":\"scans/d{:05}/page{n:09}.rle\",\
                 \"archive_size\":2230,\"archive_xxh3\":\"{:016x}\",\"width\":400,\"height\":300,\
                 \"conversion\":\"dither\",\"lossless\":true,\"format\":\"bmp\"}}\n",
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i % 1_000_000,
                n / 1000,
                (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                n / 1000,
                (n as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
            );
            bytes += line.len() as u64;
            w.write_all(line.as_bytes()).unwrap();
        }
        w.flush().unwrap();
        files.push(path);
    }
    (files, bytes)
}

/// YYYY-MM-DD of day `z` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The daemon on `dir` (its archive/ holding the ledger under test):
/// (seconds from spawn to the first page archived, files/s of the
/// backlog, CPU µs per file, peak RSS MB).
fn run(dir: &Path, bmp: &[u8], files: usize, threads: usize) -> (f64, f64, f64, f64) {
    let inbox = dir.join("inbox");
    let staging = dir.join("staging");
    fs::create_dir_all(&inbox).unwrap();
    fs::create_dir_all(&staging).unwrap();
    for i in 0..files {
        fs::write(staging.join(format!("p{i:06}.bmp")), bmp).unwrap();
    }
    fs::write(inbox.join("first.bmp"), bmp).unwrap();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    fs::write(
        dir.join("config.toml"),
        format!(
            "[workers]\nthreads = {threads}\n[watch]\nsettle_ms = 20\nrescan_secs = 0\n\
             [daemon]\nhost = \"{HOST}\"\n[log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(["run", "--config", "config.toml"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let first_done = dir.join("done/first.bmp");
    assert!(wait_until(Duration::from_secs(600), || first_done.exists()));
    let first = started.elapsed().as_secs_f64();
    let pid = child.id();
    let cpu = || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a).to_string();
        let f: Vec<f64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / hz
    };
    let cpu0 = cpu();
    let t = Instant::now();
    for i in 0..files {
        let name = format!("p{i:06}.bmp");
        fs::rename(staging.join(&name), inbox.join(&name)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(1800), || count(
        &dir.join("done")
    ) > files));
    let rate = files as f64 / t.elapsed().as_secs_f64();
    let cpu_per_file = (cpu() - cpu0) * 1e6 / files as f64;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = fs::remove_dir_all(dir.join("done"));
    let _ = fs::remove_dir_all(dir.join("inbox"));
    (first, rate, cpu_per_file, rss)
}

/// `BIN audit ARCHIVE`: (wall time, CPU time, peak RSS KiB) from wait4;
/// it exits 1 here (every archive is missing), so not through `measure`.
#[allow(clippy::zombie_processes)]
fn audit(bin: &Path, archive: &Path) -> (Duration, Duration, i64) {
    let start = Instant::now();
    let child = Command::new(bin)
        .arg("audit")
        .arg(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let secs = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        start.elapsed(),
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_maxrss,
    )
}

fn main() {
    if measure::serve() || std::env::args().any(|a| a == "--list") {
        return;
    }
    let days = env_usize("RLEWATCH_BENCH_LEDGER_DAYS", 365);
    let per_day = env_usize("RLEWATCH_BENCH_LEDGER_PER_DAY", 100_000);
    let files = env_usize("RLEWATCH_BENCH_FILES", 1000);
    let audit_max = env_usize("RLEWATCH_BENCH_AUDIT_MAX", 2_000_000);
    let planted = env_usize("RLEWATCH_BENCH_ARCHIVE_FILES", 0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = tempfile::Builder::new()
        .prefix("rlewatch-ledger")
        .tempdir_in(
            std::env::var_os("RLEWATCH_BENCH_ROOT")
                .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from),
        )
        .unwrap();
    let (w, h) = (400, 300);
    let bmp = page::bmp_1bit(&page::ink(w, h), w, h);

    let big = root.path().join("big");
    let t = Instant::now();
    let (ledger_files, bytes) = synthesise(&big.join("archive"), days, per_day);
    for i in 0..planted {
        let d = big.join(format!("archive/planted/d{:05}", i / 1000));
        if i % 1000 == 0 {
            fs::create_dir_all(&d).unwrap();
        }
        fs::File::create(d.join(format!("a{i:09}.rle"))).unwrap();
    }
    // SAFETY: as above.
    unsafe { libc::sync() };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ledger bench: {days} day file(s) of {per_day} entries = {} entries, {:.2} GB, written in {secs:.1} s ({:.0} MB/s){}",
        days * per_day,
        bytes as f64 / 1e9,
        bytes as f64 / 1e6 / secs,
        if planted > 0 {
            format!("; {planted} empty files planted in archive/")
        } else {
            String::new()
        }
    );
    let empty = root.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let daemon_runs = if std::env::var_os("RLEWATCH_BENCH_SKIP_DAEMON").is_some() {
        vec![]
    } else {
        vec![
            ("empty ledger", &empty),
            ("year's ledger", &big),
            ("empty ledger", &empty),
            ("year's ledger", &big),
        ]
    };
    for (label, dir) in daemon_runs {
        let (first, rate, cpu, rss) = run(dir, &bmp, files, threads);
        println!(
            "{label}: start to first page archived {:.0} ms; {files} small pages {rate:.0} files/s, \
             daemon CPU {cpu:.0} µs/file; peak RSS {rss:.1} MB",
            first * 1e3
        );
        if dir == &empty {
            let _ = fs::remove_dir_all(empty.join("archive"));
        } else {
            // Take back the daemon's own entries: keep only the synthesised files.
            let own = big.join("archive/.rlewatch/ledger").join(HOST);
            fs::create_dir_all(&own).unwrap();
            for e in fs::read_dir(&own).unwrap().filter_map(Result::ok) {
                if !ledger_files.contains(&e.path()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    let entries = days * per_day;
    let paths: Vec<&Path> = ledger_files.iter().map(PathBuf::as_path).collect();
    // This build's audit, and another build's (`RLEWATCH_BENCH_AUDIT_BASE`,
    // a binary) alternating with it, each after a `cat` of the ledger.
    let base = std::env::var_os("RLEWATCH_BENCH_AUDIT_BASE").map(PathBuf::from);
    let mut builds = vec![("this build", binary())];
    if let Some(b) = base {
        if entries <= audit_max {
            builds.insert(0, ("base build", b));
        } else {
            println!(
                "base build's audit: skipped ({entries} entries > RLEWATCH_BENCH_AUDIT_MAX = {audit_max})"
            );
        }
    }
    for round in 0..env_usize("RLEWATCH_BENCH_AUDIT_RUNS", 1) {
        for (label, bin) in &builds {
            let (cat, _) = measure::best_of(1, || measure::cat(&paths));
            let (t, cpu, rss) = audit(bin, &big.join("archive"));
            println!(
                "round {}: cat of the ledger files {:.2} s ({:.0} MB/s); {label}'s rlewatch audit \
                 (every archive missing: the ledger's reading only): {:.2} s ({:.0} MB/s of ledger, \
                 {:.1}× cat), CPU {:.2} s, peak RSS {:.1} MB; load {}",
                round + 1,
                cat.as_secs_f64(),
                bytes as f64 / 1e6 / cat.as_secs_f64(),
                t.as_secs_f64(),
                bytes as f64 / 1e6 / t.as_secs_f64(),
                t.as_secs_f64() / cat.as_secs_f64(),
                cpu.as_secs_f64(),
                rss as f64 / 1024.0,
                fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .split(' ')
                    .next()
                    .unwrap_or("?")
            );
        }
    }
}
