//! `rlewatch reload --config FILE PID`: validates FILE, then makes sure,
//! through `/proc`, that PID is an `rlewatch run` daemon running on FILE,
//! and only then sends it SIGHUP. It must never signal another process
//! (SIGHUP kills most programs) nor report a reload that cannot happen (a
//! daemon on its built-in defaults, or on another file, does not read
//! FILE).

use std::ffi::{OsStr, OsString};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::*;

/// The arguments of `rlewatch reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The configuration file the daemon runs on.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// The daemon's process id (in the unit: $MAINPID).
    #[arg(value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: i32,
}

/// `rlewatch reload`: validates the file exactly as `check-config` does and
/// only then sends SIGHUP, so the unit's `ExecReload=` fails, with the reason
/// in `systemctl status` and the journal, when the file is broken. The daemon
/// re-reads and re-validates the file itself on SIGHUP; this check exists to
/// make the failure visible to `systemctl reload`, and it needs no `kill`
/// binary (procps is missing on minimal Debian). Before signalling, PID must
/// be an `rlewatch run` whose `--config` is FILE (`check_daemon`).
///
/// Under the journal (the unit's `ExecReload=`) a refusal is one journal
/// entry with the daemon's `MESSAGE_ID` for a refused reload, so that
/// `journalctl -u rlewatch MESSAGE_ID=…` lists every refused reload
/// (docs/operations.md); returns `Ok(false)` then, the line being said.
pub fn reload_cmd(args: &ReloadArgs) -> Result<bool> {
    if let Err(e) = crate::daemon::check_config(&args.config)
        .context("not reloaded, the daemon keeps its running configuration")
    {
        let line = format!("rlewatch: {}", super::error_line(&e));
        let logged = crate::daemon::logging::to_journal(|| {
            tracing::error!(
                message_id = crate::daemon::journal::RELOAD_REFUSED,
                "{line}"
            );
        });
        return if logged { Ok(false) } else { Err(e) };
    }
    let pid = args.pid;
    // The pidfd pins the process: if PID ends and its number is reused
    // between the check and the signal, the signal fails instead of
    // reaching the newcomer.
    let pidfd = pidfd_open(pid)?;
    check_daemon(pid, &args.config)?;
    send_sighup(pid, pidfd.as_ref())?;
    println!(
        "{}: valid; asked process {pid} to reload it",
        args.config.display()
    );
    Ok(true)
}

/// The error kill(2) would give for a process that does not exist.
fn no_such_process(pid: i32) -> anyhow::Error {
    anyhow!(
        "cannot signal process {pid}: {}",
        io::Error::from_raw_os_error(libc::ESRCH)
    )
}

/// A pidfd for `pid`; `None` where the kernel lacks pidfd_open (before
/// 5.3) or a seccomp filter refuses it (EPERM), then plain kill(2) is used.
fn pidfd_open(pid: i32) -> Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and is owned by no one else.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM) => Ok(None),
        Some(libc::ESRCH) => Err(no_such_process(pid)),
        _ => Err(anyhow!("cannot signal process {pid}: {e}")),
    }
}

/// Sends SIGHUP through the pidfd if there is one; through kill(2) if not,
/// or if a seccomp filter refuses pidfd_send_signal alone (EPERM, ENOSYS).
fn send_sighup(pid: i32, pidfd: Option<&OwnedFd>) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut rc = match pidfd {
        // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
        Some(fd) => unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGHUP,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        },
        None => -1,
    };
    let refused = || {
        matches!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EPERM | libc::ENOSYS)
        )
    };
    if pidfd.is_none() || (rc != 0 && refused()) {
        // SAFETY: kill has no memory effects; the pid range excludes 0 and
        // negative values, which would signal whole process groups.
        rc = i64::from(unsafe { libc::kill(pid, libc::SIGHUP) });
    }
    if rc != 0 {
        bail!(
            "cannot signal process {pid}: {}",
            io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Refuses, with one line naming `pid` and the reason, unless `pid` is an
/// `rlewatch run` process whose configuration file is `file`: its
/// executable (or argv[0]) has this binary's name, its first argument is
/// `run`, and its `-c`/`--config` argument, resolved against its working
/// folder and canonicalized, is `file` canonicalized.
fn check_daemon(pid: i32, file: &Path) -> Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = match std::fs::read(proc_dir.join("cmdline")) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_such_process(pid)),
        Err(e) => return Err(unreadable(pid, "cmdline", &e)),
    };
    let argv = split_cmdline(&cmdline);
    let ours = own_name();
    let argv0 = argv.first().and_then(|a| Path::new(a).file_name());
    let exe = std::fs::read_link(proc_dir.join("exe")).ok();
    let exe_name = exe.as_deref().and_then(Path::file_name).map(|n| {
        // A replaced binary reads as "NAME (deleted)".
        let n = n.as_bytes();
        OsStr::from_bytes(n.strip_suffix(b" (deleted)").unwrap_or(n)).to_os_string()
    });
    let is_ours = |name: Option<&OsStr>| name.is_some_and(|n| n == ours || n == "rlewatch");
    if !is_ours(argv0) && !is_ours(exe_name.as_deref()) {
        let what = match argv0 {
            Some(name) => name.to_string_lossy().into_owned(),
            // A kernel thread or a zombie has no command line.
            None => std::fs::read_to_string(proc_dir.join("comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_else(|_| "unknown".into()),
        };
        bail!("process {pid} is not an rlewatch daemon (it is `{what}`)");
    }
    if argv.get(1).map(OsString::as_os_str) != Some(OsStr::new("run")) {
        let shown: Vec<String> = argv
            .iter()
            .take(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        bail!(
            "process {pid} is not an rlewatch daemon (it is `{}`, not `rlewatch run`)",
            shown.join(" ")
        );
    }
    let Some(theirs) = config_arg(&argv[2..]) else {
        bail!(
            "process {pid} runs on its built-in defaults, not on {}: it cannot reload a file",
            file.display()
        );
    };
    // Through the magic link /proc/PID/cwd: the daemon's working folder as
    // it is now, even if it was renamed since.
    let resolved = proc_dir.join("cwd").join(&theirs);
    let theirs_real = match std::fs::canonicalize(&resolved) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(unreadable(pid, "cwd", &e));
        }
        Err(e) => bail!(
            "process {pid} runs on {}, which cannot be found ({e}), not on {}",
            theirs.display(),
            file.display()
        ),
    };
    let ours_real = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
    if theirs_real != ours_real {
        bail!(
            "process {pid} runs on {}, not on {}: it would not reload {}",
            theirs_real.display(),
            file.display(),
            file.display()
        );
    }
    Ok(())
}

fn unreadable(pid: i32, what: &str, e: &io::Error) -> anyhow::Error {
    anyhow!(
        "cannot read /proc/{pid}/{what} ({e}): cannot tell whether process {pid} is an \
         rlewatch daemon on this file, so it is not signalled"
    )
}

/// This binary's file name (`rlewatch` unless renamed).
fn own_name() -> OsString {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(OsStr::to_os_string))
        .unwrap_or_else(|| "rlewatch".into())
}

/// `/proc/PID/cmdline`: arguments each ended by a NUL.
fn split_cmdline(raw: &[u8]) -> Vec<OsString> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The configuration file among `run`'s arguments, in every spelling clap
/// accepts for it: `-c FILE`, `-cFILE`, `-c=FILE`, `--config FILE`,
/// `--config=FILE`; `None` when there is none (built-in defaults).
fn config_arg(args: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let a = arg.as_bytes();
        if a == b"--" {
            break;
        }
        let value = if a == b"-c" || a == b"--config" {
            it.next().map(|v| v.as_bytes())
        } else if let Some(v) = a.strip_prefix(b"--config=") {
            Some(v)
        } else if let Some(v) = a.strip_prefix(b"-c").filter(|_| !a.starts_with(b"--")) {
            Some(v.strip_prefix(b"=").unwrap_or(v))
        } else {
            None
        };
        if let Some(v) = value {
            found = Some(PathBuf::from(OsStr::from_bytes(v)));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_spelling_of_the_config_option_is_found() {
        for spelling in [
            &["--config", "/etc/rlewatch/rlewatch.toml"][..],
            &["-c", "/etc/rlewatch/rlewatch.toml"],
            &["--config=/etc/rlewatch/rlewatch.toml"],
            &["-c/etc/rlewatch/rlewatch.toml"],
            &["-c=/etc/rlewatch/rlewatch.toml"],
        ] {
            assert_eq!(
                config_arg(&args(spelling)),
                Some(PathBuf::from("/etc/rlewatch/rlewatch.toml")),
                "{spelling:?}"
            );
        }
        assert_eq!(config_arg(&args(&[])), None);
        assert_eq!(config_arg(&args(&["--", "-c", "x.toml"])), None);
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(
            split_cmdline(b"/usr/bin/rlewatch\0run\0--config\0/etc/r.toml\0"),
            args(&["/usr/bin/rlewatch", "run", "--config", "/etc/r.toml"])
        );
        assert!(split_cmdline(b"").is_empty());
    }
}
