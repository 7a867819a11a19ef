//! Soak (`cargo bench --bench soak`): a steady stream of mixed files into a
//! running daemon for `RLEWATCH_SOAK_SECS` (default 600) seconds at
//! `RLEWATCH_SOAK_RATE` files/s (default 200), with SIGHUP every 30 s.
//! Reports files processed, errors, and the daemon's RSS, open file
//! descriptors and threads at the start and the end: none should grow.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/page.rs"]
mod page;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (RSS MB, open fds, threads) of a process.
fn vitals(pid: u32) -> (f64, usize, usize) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (field("VmRSS:") / 1024.0, fds, field("Threads:") as usize)
}

fn count(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = env_u64("RLEWATCH_SOAK_SECS", 600);
    let rate = env_u64("RLEWATCH_SOAK_RATE", 200).max(1);
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

    let mut child = Command::new(env!("CARGO_BIN_EXE_rlewatch"))
        .args(["run", "--config", "config.toml"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("inbox/.rlewatch/claims").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(1)); // warm-up before the baseline
    let start_vitals = vitals(pid);
    let staging = dir.join("staging");
    fs::create_dir(&staging).unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut bad_sent = 0u64;
    let mut next_hup = started + Duration::from_secs(30);
    let mut hups = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        // Pace to `rate` files per second.
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (kind, bytes) = &kinds[(sent as usize * 3) % kinds.len()];
        let name = format!("{sent:08}-{kind}.bmp");
        fs::write(staging.join(&name), bytes).unwrap();
        let sub = format!("s{}", sent % 4);
        fs::create_dir_all(dir.join("inbox").join(&sub)).unwrap();
        fs::rename(
            staging.join(&name),
            dir.join("inbox").join(&sub).join(&name),
        )
        .unwrap();
        if kind == "bad" {
            bad_sent += 1;
        }
        sent += 1;
        if Instant::now() >= next_hup {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
            hups += 1;
            next_hup += Duration::from_secs(30);
        }
    }
    let fed = started.elapsed().as_secs_f64();
    let drain = Instant::now();
    while count(&dir.join("done")) + count(&dir.join("failed")) / 2 < sent as usize
        && drain.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let end_vitals = vitals(pid);
    let done = count(&dir.join("done"));
    let failed = count(&dir.join("failed")) / 2;
    let left = walk(&dir.join("inbox"))
        .iter()
        .filter(|p| !p.to_string_lossy().contains("/."))
        .count();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    println!(
        "soak: {sent} files fed over {fed:.0} s ({:.0} files/s), {hups} SIGHUPs",
        sent as f64 / fed
    );
    println!(
        "soak: archived {done}, quarantined {failed} (expected {bad_sent} bad), left in inbox {left}, daemon exit {status}"
    );
    println!(
        "soak: RSS {:.1} -> {:.1} MB, open fds {} -> {}, threads {} -> {}",
        start_vitals.0, end_vitals.0, start_vitals.1, end_vitals.1, start_vitals.2, end_vitals.2
    );
}
