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

/// A running `rlewatch run` in its own temp folder (inbox, archive, done,
/// failed beside `config.toml`), logging to `daemon.log`. Killed on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    env: Vec<(String, String)>,
    confine: Confine,
}

/// How the daemon process is confined, to reproduce where it is deployed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Confine {
    /// A seccomp filter answers `openat2` with this errno (as systemd's
    /// `RestrictSUIDSGID=` does with ENOSYS).
    pub deny_openat2: Option<i32>,
    /// A seccomp filter answers `renameat2` with `RENAME_NOREPLACE` with
    /// this errno (EINVAL: a filesystem without it, as some network ones).
    pub deny_rename_noreplace: Option<i32>,
    /// Run as this (uid, gid) instead of the test's user (needs root); the
    /// daemon's folder is handed to it.
    pub user: Option<(u32, u32)>,
    /// Run in a user namespace of its own whose inotify watch limit
    /// (`/proc/sys/user/max_inotify_watches`, per namespace) is this.
    pub inotify_watches: Option<u32>,
}

/// The uid and gid of `nobody`, an unprivileged user every Linux has.
pub const NOBODY: (u32, u32) = (65534, 65534);

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

/// Moves the child about to exec into a user namespace of its own, mapped
/// to the test's own uid and gid, and sets that namespace's inotify watch
/// limit to `watches`.
fn limit_inotify_watches(cmd: &mut Command, watches: u32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Formatted before the fork: the child may only make plain syscalls.
    let uid_map = format!("{uid} {uid} 1");
    let gid_map = format!("{gid} {gid} 1");
    let limit = watches.to_string();
    let write = |path: &std::ffi::CStr, data: &[u8]| -> std::io::Result<()> {
        // SAFETY: a NUL-terminated path; the descriptor is closed below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: writes `data` from a live slice to our own descriptor.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        // SAFETY: closes the descriptor opened above.
        unsafe { libc::close(fd) };
        if n != data.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure makes only async-signal-safe syscalls (unshare,
    // open, write, close) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            write(c"/proc/self/setgroups", b"deny")?;
            write(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write(c"/proc/self/gid_map", gid_map.as_bytes())?;
            write(c"/proc/sys/user/max_inotify_watches", limit.as_bytes())
        });
    }
}

/// Installs, in the child about to exec, a seccomp filter that fails
/// `openat2` with `errno` and allows everything else.
fn deny_openat2(cmd: &mut Command, errno: i32) {
    let filter = [
        // A = seccomp_data.nr
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        bpf(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_openat2 as u32,
        ),
        bpf(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    install_seccomp(cmd, filter);
}

/// One classic BPF instruction.
fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Installs `filter` as a seccomp filter in the child `cmd` is about to
/// exec.
fn install_seccomp<const N: usize>(cmd: &mut Command, filter: [libc::sock_filter; N]) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; prctl with a filter
    // that lives until exec (the kernel copies it).
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Installs, in the child about to exec, a seccomp filter that fails
/// `renameat2` calls whose flags hold `RENAME_NOREPLACE` with `errno`, as
/// a filesystem without no-replace renames does, and allows everything
/// else (plain renames included).
fn deny_rename_noreplace(cmd: &mut Command, errno: i32) {
    // seccomp_data: nr at 0, arch at 4, ip at 8, args[6] (u64) from 16;
    // the low half of args[4] (the flags) at 48 on little-endian.
    let filter = [
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        bpf(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            3,
            libc::SYS_renameat2 as u32,
        ),
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 48),
        bpf(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0,
            1,
            libc::RENAME_NOREPLACE,
        ),
        bpf(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    install_seccomp(cmd, filter);
}

/// Config lines every test daemon gets unless it overrides the section.
pub const FAST: &str = "[watch]\nsettle_ms = 50\n";

impl Daemon {
    /// Writes `config` to `config.toml` and starts the daemon on it, waiting
    /// until it says it has started (watch set, backlog queued).
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_confined(config, env, Confine::default())
    }

    /// [`Daemon::start_with_env`], confined as `confine` says.
    pub fn start_confined(config: &str, env: &[(&str, &str)], confine: Confine) -> Daemon {
        let dir = tempdir();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some((uid, gid)) = confine.user {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut d = Daemon {
            dir,
            child: None,
            env,
            confine,
        };
        d.spawn();
        d
    }

    /// Replaces the extra environment variables for the next spawn.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// (Re)starts the process on the same folder.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemon.log"))
            .unwrap();
        // Counted before the spawn: a fast start must not be missed.
        let starts = self.log().matches(" started: ").count();
        let mut cmd = bin();
        if let Some(errno) = self.confine.deny_openat2 {
            deny_openat2(&mut cmd, errno);
        }
        if let Some(errno) = self.confine.deny_rename_noreplace {
            deny_rename_noreplace(&mut cmd, errno);
        }
        if let Some((uid, gid)) = self.confine.user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        if let Some(watches) = self.confine.inotify_watches {
            limit_inotify_watches(&mut cmd, watches);
        }
        let child = cmd
            .args(["run", "--config", "config.toml"])
            .current_dir(self.dir.path())
            .env("RUST_BACKTRACE", "1")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(20), || self
                .log()
                .matches(" started: ")
                .count()
                > starts
                || self.exited().is_some()),
            "daemon did not start:\n{}",
            self.log()
        );
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// Waits for `needle` to appear in the log `count` times in all.
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().matches(needle).count() >= count)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits for the process to end; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        status
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.log());
        }
    }
}

/// Every regular file below `dir`, relative, sorted.
/// Leaves out the daemon's bookkeeping (the ledger in the archive, the
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

/// Every ledger line under `archive`, from every host's files.
pub fn ledger_lines(archive: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(archive.join(".rlewatch/ledger"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        out.extend(
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    out
}
