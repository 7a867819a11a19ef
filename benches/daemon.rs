//! End-to-end daemon figures (`cargo bench --bench daemon`): the real
//! binary on real files with fsync and verify on.
//!
//! 1. Throughput: N 2550×3300 1-bit text pages renamed into the inbox at
//!    once; files/s and MB/s from the first rename to the last original in
//!    done/.
//! 2. Latency, default configuration (settle_ms = 250): pages dropped one
//!    at a time at a moderate rate; time from the rename into the inbox,
//!    and from the close after writing the page in place, to the archive
//!    appearing (seen by inotify); p50 and p99. Completion is observed
//!    (design §4.2), so no settle wait is expected in either.
//! 3. Backlog: a fresh daemon started on a backlog of B pages; peak RSS
//!    (VmHWM) once it is through.
//! 4. The durable-write floor: write + fsync + rename + folder fsync of the
//!    same output sizes, same threads, same disk, no codec.
//!
//! Sizes: `RLEWATCH_BENCH_FILES` (default 2000), `RLEWATCH_BENCH_BACKLOG`
//! (default 10000). `RLEWATCH_BENCH_BIN`: another build's binary to measure
//! with this same harness. `RLEWATCH_BENCH_ROOT`: the folder the bench
//! works in (inbox, archive, done, staging), say a filesystem mounted to
//! measure it (`benches/fsmatrix.sh` runs it on each of the test matrix's);
//! by default under `target/tmp`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

#[path = "support/page.rs"]
mod page;

const W: usize = 2550;
const H: usize = 3300;
const SETTLE_MS: u64 = 20;
/// The configuration's default, for the latency figures.
const DEFAULT_SETTLE_MS: u64 = 250;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// The daemon measured: this build's, or `RLEWATCH_BENCH_BIN` (another
/// build's binary, to compare two versions with the same harness in the
/// same minutes).
fn binary() -> PathBuf {
    std::env::var_os("RLEWATCH_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rlewatch")),
        PathBuf::from,
    )
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, threads: usize) -> Daemon {
        Daemon::start_settling(dir, threads, SETTLE_MS)
    }

    fn start_settling(dir: &Path, threads: usize, settle_ms: u64) -> Daemon {
        fs::write(
            dir.join("config.toml"),
            format!("[workers]\nthreads = {threads}\n[watch]\nsettle_ms = {settle_ms}\nrescan_secs = 0\n[log]\nlevel = \"warn\"\n"),
        )
        .unwrap();
        let child = Command::new(binary())
            .args(["run", "--config", "config.toml"])
            .current_dir(dir)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Ready once its claim folder (made with the lock) and the folders
        // are there.
        assert!(wait_until(Duration::from_secs(10), || dir
            .join("inbox/.rlewatch/claims")
            .exists()
            && dir.join("failed").exists()));
        std::thread::sleep(Duration::from_millis(200)); // let the watch settle in; a bench, not a test
        Daemon {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// User + system CPU seconds the daemon has used so far.
    fn cpu_secs(&self) -> f64 {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        // SAFETY: sysconf takes no pointers.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        f.iter().sum::<f64>() / ticks
    }

    fn peak_rss_mb(&self) -> f64 {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(self.dir.join("archive"));
        let _ = fs::remove_dir_all(self.dir.join("done"));
    }
}

/// Writes `n` copies of the page, then syncs: measuring starts with the
/// sources on disk, as in steady operation, not with gigabytes of their
/// dirty pages waiting to be flushed by the daemon's fsyncs.
fn stage(dir: &Path, prefix: &str, bmp: &[u8], n: usize) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let staged = (0..n)
        .map(|i| {
            let p = dir.join(format!("{prefix}{i:05}.bmp"));
            fs::write(&p, bmp).unwrap();
            p
        })
        .collect();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    staged
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// write + fsync + rename + folder fsync of `sizes`, on `threads` threads.
fn durable_floor(dir: &Path, sizes: &[usize], threads: usize) -> f64 {
    fs::create_dir_all(dir).unwrap();
    let data = vec![0x55u8; sizes.iter().copied().max().unwrap_or(0)];
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let data = &data;
            s.spawn(move || {
                for (i, &size) in sizes.iter().enumerate().skip(t).step_by(threads) {
                    let tmp = dir.join(format!(".tmp{i}"));
                    let mut f = fs::File::create(&tmp).unwrap();
                    f.write_all(&data[..size]).unwrap();
                    f.sync_all().unwrap();
                    fs::rename(&tmp, dir.join(format!("{i}.rle"))).unwrap();
                    fs::File::open(dir).unwrap().sync_all().unwrap();
                }
            });
        }
    });
    sizes.len() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let files = env_usize("RLEWATCH_BENCH_FILES", 2000);
    let backlog = env_usize("RLEWATCH_BENCH_BACKLOG", 10_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = tempfile::Builder::new()
        .prefix("rlewatch-bench")
        .tempdir_in(
            std::env::var_os("RLEWATCH_BENCH_ROOT")
                .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from),
        )
        .unwrap();
    let bmp = page::bmp_1bit(&page::ink(W, H), W, H);
    println!(
        "daemon bench: {W}x{H} 1-bit pages of {} bytes, {threads} workers, fsync + verify on",
        bmp.len()
    );

    // 1. Throughput.
    let dir = root.path().join("run");
    fs::create_dir_all(&dir).unwrap();
    let staged = stage(&root.path().join("staging"), "burst", &bmp, files);
    let d = Daemon::start(&dir, threads);
    let cpu_before = d.cpu_secs();
    let start = Instant::now();
    for p in &staged {
        fs::rename(p, dir.join("inbox").join(p.file_name().unwrap())).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(600), || count(&dir.join("done"))
            == files),
        "not all files done"
    );
    let secs = start.elapsed().as_secs_f64();
    let cpu = d.cpu_secs() - cpu_before;
    // The archives (not the ledger's folder beside them).
    let out_sizes: Vec<usize> = fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "rle"))
        .map(|e| e.metadata().unwrap().len() as usize)
        .collect();
    println!(
        "throughput: {files} files in {secs:.2} s = {:.0} files/s, {:.0} MB/s of BMP in ({} bytes of .rle each); daemon CPU {:.0} µs a file ({:.0} % of {threads} CPUs)",
        files as f64 / secs,
        (files * bmp.len()) as f64 / secs / 1e6,
        out_sizes[0],
        cpu * 1e6 / files as f64,
        100.0 * cpu / secs / threads as f64
    );
    let floor = durable_floor(&root.path().join("floor"), &out_sizes, threads);
    println!(
        "durable-write floor (write+fsync+rename+dir fsync of the same {} outputs, {threads} threads): {floor:.0} files/s; daemon at {:.0}% of it",
        out_sizes.len(),
        100.0 * (files as f64 / secs) / floor
    );

    println!("peak RSS after the run above: {:.1} MB", d.peak_rss_mb());
    d.stop();

    // 2. Latency, at a rate well below capacity, default settle_ms.
    let dir = root.path().join("latency");
    fs::create_dir_all(&dir).unwrap();
    let d = Daemon::start_settling(&dir, threads, DEFAULT_SETTLE_MS);
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
        if let Ok(e) = r
            && matches!(
                e.kind,
                EventKind::Create(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
            )
        {
            for p in e.paths {
                if p.extension().is_some_and(|x| x == "rle") {
                    let _ = tx.send((p, Instant::now()));
                }
            }
        }
    })
    .unwrap();
    watcher
        .watch(&dir.join("archive"), RecursiveMode::NonRecursive)
        .unwrap();
    let samples = 200.min(files);
    let staged = stage(&root.path().join("staging2"), "renamed", &bmp, samples);
    let wait_for = |name: &std::ffi::OsStr, since: Instant| loop {
        let (path, at) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("archive event");
        if path.file_stem() == Some(name) {
            return (at - since).as_secs_f64() * 1e3;
        }
    };
    let mut renamed = Vec::new();
    for p in &staged {
        let name = p.file_stem().unwrap().to_owned();
        let dropped = Instant::now();
        fs::rename(p, dir.join("inbox").join(p.file_name().unwrap())).unwrap();
        renamed.push(wait_for(&name, dropped));
        std::thread::sleep(Duration::from_millis(10)); // pacing the load, not synchronisation
    }
    let mut closed = Vec::new();
    for i in 0..samples {
        let name = format!("written-{i:05}");
        let mut f = fs::File::create(dir.join("inbox").join(format!("{name}.bmp"))).unwrap();
        f.write_all(&bmp).unwrap();
        drop(f);
        let closed_at = Instant::now();
        closed.push(wait_for(std::ffi::OsStr::new(&name), closed_at));
        std::thread::sleep(Duration::from_millis(10)); // pacing the load, not synchronisation
    }
    drop(watcher);
    for (how, mut latencies) in [
        ("rename into the inbox", renamed),
        ("close after writing", closed),
    ] {
        latencies.sort_by(f64::total_cmp);
        println!(
            "latency from {how} to the archive, settle_ms = {DEFAULT_SETTLE_MS}, {samples} files one at a time: p50 {:.1} ms, p99 {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    d.stop();

    // 3. Backlog.
    let dir = root.path().join("backlog");
    fs::create_dir_all(dir.join("inbox")).unwrap();
    let staged = stage(&dir.join("inbox"), "backlog", &bmp, backlog);
    drop(staged);
    let start = Instant::now();
    let d = Daemon::start(&dir, threads);
    assert!(
        wait_until(Duration::from_secs(1800), || count(&dir.join("done"))
            == backlog),
        "backlog not done"
    );
    let secs = start.elapsed().as_secs_f64();
    println!(
        "backlog: {backlog} files present at start, done in {secs:.1} s ({:.0} files/s), peak RSS {:.1} MB",
        backlog as f64 / secs,
        d.peak_rss_mb()
    );
    d.stop();
}
