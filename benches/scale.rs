//! Several daemons on one inbox (`cargo bench --bench scale`), design §4.8:
//! N 2550×3300 1-bit text pages renamed at once into an inbox watched by
//! 1, 2 and 3 daemons with their own host ids (each with its default
//! worker count, one per CPU), fsync and verify on; files/s from the first
//! rename to the last original in done/. On one machine the daemons share
//! its CPUs and disk, so this shows the cost of sharing (claims, ledgers),
//! not the gain of a cluster, where each host brings its own.
//!
//! Size: `RLEWATCH_BENCH_FILES` (default 1000).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/page.rs"]
mod page;

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn start(dir: &Path, host: &str) -> Child {
    let config = dir.join(format!("{host}.toml"));
    fs::write(
        &config,
        format!(
            "[watch]\nsettle_ms = 20\nrescan_secs = 0\n[daemon]\nhost = \"{host}\"\n[log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rlewatch"))
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lock = dir.join(format!("inbox/.rlewatch/{host}.lock"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let files: usize = std::env::var("RLEWATCH_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (w, h) = (2550, 3300);
    let bmp = page::bmp_1bit(&page::ink(w, h), w, h);
    for daemons in 1..=3 {
        let root = tempfile::Builder::new()
            .prefix("rlewatch-scale")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let staging = root.path().join("staging");
        fs::create_dir_all(&staging).unwrap();
        for i in 0..files {
            fs::write(staging.join(format!("p{i:05}.bmp")), &bmp).unwrap();
        }
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let mut children: Vec<Child> = (1..=daemons)
            .map(|k| start(root.path(), &format!("h{k}")))
            .collect();
        std::thread::sleep(Duration::from_millis(200)); // watches settle in; a bench, not a test
        let started = Instant::now();
        for i in 0..files {
            let name = format!("p{i:05}.bmp");
            fs::rename(staging.join(&name), root.path().join("inbox").join(&name)).unwrap();
        }
        let deadline = started + Duration::from_secs(600);
        while count(&root.path().join("done")) < files && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let secs = started.elapsed().as_secs_f64();
        let done = count(&root.path().join("done"));
        for c in &mut children {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
        let archived = count(&root.path().join("archive")) - 1; // less .rlewatch/
        println!(
            "{daemons} daemon(s): {done} of {files} files in {secs:.2} s = {:.0} files/s ({archived} archives)",
            done as f64 / secs
        );
    }
}
