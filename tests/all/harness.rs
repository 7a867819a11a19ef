//! Small test harness: temp folders, running the real binary, polling with
//! a deadline, the shared corpus and the bundled vectors.

#![allow(dead_code)]

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

/// The shared corpus beside the checkout, if present. When it is missing the
/// corpus tests are skipped with a message, unless `RLEWATCH_REQUIRE_CORPUS`
/// is set (CI sets it), in which case they fail.
pub fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.join("bmpsuite").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("RLEWATCH_REQUIRE_CORPUS").is_none(),
        "RLEWATCH_REQUIRE_CORPUS is set but {} is missing",
        dir.display()
    );
    eprintln!("skipped: shared corpus not found at {}", dir.display());
    None
}
