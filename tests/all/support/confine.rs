//! Confining a daemon as it is confined where it is deployed: a seccomp
//! filter refusing `openat2` or no-replace renames, another user, a user
//! namespace with its own inotify watch limit. Set up in the child between
//! fork and exec.

use std::process::Command;

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

impl Confine {
    /// Sets `cmd` up to run confined as this says.
    pub(super) fn apply(&self, cmd: &mut Command) {
        if let Some(errno) = self.deny_openat2 {
            deny_openat2(cmd, errno);
        }
        if let Some(errno) = self.deny_rename_noreplace {
            deny_rename_noreplace(cmd, errno);
        }
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        if let Some(watches) = self.inotify_watches {
            limit_inotify_watches(cmd, watches);
        }
    }
}
