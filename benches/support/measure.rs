//! Timing a command from outside: wall time, CPU time (user + system) and
//! peak RSS from `wait4`, in a fresh small copy of the bench (see
//! [`measure`]). Shared by the command benches (`cli`, `formats`).

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// In the copy of the bench that [`measure`] starts: measures the command
/// given after `--measure`, prints "NANOS RSS_KIB CPU_NANOS", and returns
/// true (the bench's `main` then returns). False in the bench itself.
pub fn serve() -> bool {
    if std::env::var_os("RLEWATCH_BENCH_MEASURE").is_none() {
        return false;
    }
    let args: Vec<String> = std::env::args()
        .skip_while(|a| a != "--measure")
        .skip(1)
        .collect();
    let m = measure_direct(Command::new(&args[0]).args(&args[1..]));
    println!("{} {} {}", m.wall.as_nanos(), m.rss_kib, m.cpu.as_nanos());
    true
}

/// What one run of a command cost.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    /// User + system time of the command (its children included).
    pub cpu: Duration,
    pub rss_kib: i64,
}

impl Measured {
    /// The best of two runs by wall time, and the lower CPU time of the two.
    pub fn best(self, other: Measured) -> Measured {
        let (mut best, worse) = if other.wall < self.wall {
            (other, self)
        } else {
            (self, other)
        };
        best.cpu = best.cpu.min(worse.cpu);
        best
    }
}

/// Runs a command, returns (wall time, peak RSS in KiB) from wait4.
///
/// A child's peak RSS counts the memory of the process it was forked from
/// (Linux copies the high-water mark with the address space), so the
/// measuring is done by a fresh, small copy of this program; see `main`.
pub fn measure(cmd: &mut Command) -> (Duration, i64) {
    let m = measure_all(cmd);
    (m.wall, m.rss_kib)
}

/// [`measure`], with the CPU time.
pub fn measure_all(cmd: &mut Command) -> Measured {
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
    let (ns, rss, cpu) = (
        fields.next().expect("ns"),
        fields.next().expect("rss"),
        fields.next().expect("cpu"),
    );
    Measured {
        wall: Duration::from_nanos(ns as u64),
        cpu: Duration::from_nanos(cpu as u64),
        rss_kib: rss,
    }
}

/// Measures one command directly with wait4 (which also reaps it).
#[allow(clippy::zombie_processes)]
fn measure_direct(cmd: &mut Command) -> Measured {
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
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        wall: elapsed,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        rss_kib: usage.ru_maxrss,
    }
}

pub fn best_of(n: usize, make: impl FnMut() -> Command) -> (Duration, i64) {
    let m = best_of_all(n, make);
    (m.wall, m.rss_kib)
}

/// [`best_of`] with the CPU time: the best wall time's run, and the lowest
/// CPU time of the `n` runs.
pub fn best_of_all(n: usize, mut make: impl FnMut() -> Command) -> Measured {
    (0..n)
        .map(|_| measure_all(&mut make()))
        .reduce(Measured::best)
        .expect("n > 0")
}

/// `cat PATHS... >/dev/null` through the shell.
pub fn cat(paths: &[&std::path::Path]) -> Command {
    let list: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("cat {} >/dev/null", list.join(" ")));
    c
}
