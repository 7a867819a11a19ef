//! End-to-end figures for `rlewatch compress` on the 7200×5600 text page
//! (1-bit and 24-bit BMP files on disk, page cache warm): wall time, peak
//! RSS, and `cat FILE >/dev/null` on the same file for scale.
//! Run: `cargo bench --bench cli`.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/page.rs"]
mod page;

/// Runs a command, returns (wall time, peak RSS in KiB) from wait4.
///
/// A child's peak RSS counts the memory of the process it was forked from
/// (Linux copies the high-water mark with the address space), so the
/// measuring is done by a fresh, small copy of this program; see `main`.
fn measure(cmd: &mut Command) -> (Duration, i64) {
    let mut outer = Command::new(std::env::current_exe().expect("own path"));
    outer
        .env("RLEWATCH_BENCH_MEASURE", "1")
        .arg("--measure")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = outer.output().expect("spawn measurer");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<i64>().expect("measurer output"));
    let (ns, rss) = (fields.next().expect("ns"), fields.next().expect("rss"));
    (Duration::from_nanos(ns as u64), rss)
}

/// Measures one command directly with wait4 (which also reaps it).
#[allow(clippy::zombie_processes)]
fn measure_direct(cmd: &mut Command) -> (Duration, i64) {
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (elapsed, usage.ru_maxrss)
}

fn best_of(n: usize, mut make: impl FnMut() -> Command) -> (Duration, i64) {
    (0..n)
        .map(|_| measure(&mut make()))
        .min_by_key(|(t, _)| *t)
        .expect("n > 0")
}

fn main() {
    if std::env::var_os("RLEWATCH_BENCH_MEASURE").is_some() {
        let args: Vec<String> = std::env::args()
            .skip_while(|a| a != "--measure")
            .skip(1)
            .collect();
        let (t, rss) = measure_direct(Command::new(&args[0]).args(&args[1..]));
        println!("{} {rss}", t.as_nanos());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks every bench target for its names
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ink = page::ink(page::WIDTH, page::HEIGHT);
    let files = [
        ("1-bit", dir.path().join("page1.bmp")),
        ("24-bit", dir.path().join("page24.bmp")),
    ];
    std::fs::write(&files[0].1, page::bmp_1bit(&ink, page::WIDTH, page::HEIGHT))
        .expect("write page");
    std::fs::write(
        &files[1].1,
        page::bmp_24bit(&ink, page::WIDTH, page::HEIGHT),
    )
    .expect("write page");
    // Children's peak RSS includes what they inherit before exec: stay small.
    drop(ink);
    let bin = env!("CARGO_BIN_EXE_rlewatch");
    println!(
        "rlewatch compress on a {}x{} text page (best of 5, warm page cache)",
        page::WIDTH,
        page::HEIGHT
    );
    for (name, path) in &files {
        let len = std::fs::metadata(path).expect("page").len();
        let (cat, _) = best_of(5, || {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("cat '{}' >/dev/null", path.display()));
            c
        });
        for mode in ["dither", "threshold"] {
            let out = dir.path().join(format!("out-{mode}.rle"));
            let (t, rss) = best_of(5, || {
                let _ = std::fs::remove_file(&out);
                let mut c = Command::new(bin);
                c.args(["compress", "-o"]).arg(&out).arg(path);
                if mode == "threshold" {
                    c.arg("--threshold");
                }
                c
            });
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            println!(
                "{name:>6} {mode:<9}: {:>7.1} ms, {:>6.0} MB/s, peak RSS {:>5.1} MB, {} → {} bytes; cat: {:.1} ms ({:.1}x)",
                t.as_secs_f64() * 1e3,
                len as f64 / t.as_secs_f64() / 1e6,
                rss as f64 / 1024.0,
                len,
                size,
                cat.as_secs_f64() * 1e3,
                t.as_secs_f64() / cat.as_secs_f64(),
            );
        }
    }
}
