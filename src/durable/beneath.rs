//! Opening beneath a folder's descriptor without following symlinks
//! (design §4.3): `openat2`, or a walk with `openat(O_NOFOLLOW)` where a
//! seccomp filter refuses it.

use std::fs::File;
use std::io;
use std::path::Path;

pub(super) fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Set once `openat2` has been refused (ENOSYS: an old kernel, or a
/// seccomp filter such as the one systemd's `RestrictSUIDSGID=` installs,
/// which cannot inspect `openat2`'s flags and so denies the call).
static NO_OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Opens `rel` below the folder `base` without following a symlink
/// anywhere on the way and without ever resolving outside `base`: a
/// symlink gives `ELOOP` (or `ENOTDIR` for a folder), an escape `EXDEV`.
/// Checking and opening are one step, so a folder swapped for a symlink
/// between a check and the use cannot redirect it. An empty `rel` opens
/// `base` itself.
///
/// Uses `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; where that
/// system call is refused (ENOSYS or EPERM, as under a seccomp filter) it
/// walks the path one component at a time with `openat(O_NOFOLLOW)` from
/// `base`'s descriptor instead, which gives the same guarantees
/// (design §4.3, docs/design.md).
pub fn open_beneath(base: &File, rel: &Path, flags: libc::c_int) -> io::Result<File> {
    use std::sync::atomic::Ordering;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(base, rel, flags) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
                tracing::info!(
                    "openat2 is not available ({e}); opening sources component by component"
                );
            }
            other => return other,
        }
    }
    open_beneath_walk(base, rel, flags)
}

pub(super) fn openat2_beneath(base: &File, rel: &Path, flags: libc::c_int) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = c_path(rel)?;
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid fd, NUL-terminated path, open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a new file descriptor that we now own.
    Ok(unsafe { File::from_raw_fd(fd as libc::c_int) })
}

/// The fallback of [`open_beneath`]: every folder on the way is opened
/// with `openat(O_DIRECTORY | O_NOFOLLOW)` relative to the previous one, and
/// the last component with `O_NOFOLLOW`. No component is ever resolved by
/// the kernel as a path, so no symlink is followed at any depth; `..` is
/// refused outright (`EXDEV`, as `RESOLVE_BENEATH` would for an escape).
pub fn open_beneath_walk(base: &File, rel: &Path, flags: libc::c_int) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Component;
    let openat = |dir: libc::c_int, name: &std::ffi::OsStr, flags: libc::c_int| {
        let c = c_path(Path::new(name))?;
        // SAFETY: valid folder fd and NUL-terminated single-component name.
        let fd =
            unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat returned a new descriptor that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
        }
    }
    let Some((last, folders)) = names.split_last() else {
        // `base` itself: a fresh descriptor of the same folder.
        return openat(base.as_raw_fd(), std::ffi::OsStr::new("."), flags).map(File::from);
    };
    let mut dir: Option<OwnedFd> = None;
    for name in folders {
        let at = dir.as_ref().map_or(base.as_raw_fd(), |d| d.as_raw_fd());
        dir = Some(openat(at, name, libc::O_RDONLY | libc::O_DIRECTORY)?);
    }
    let at = dir.as_ref().map_or(base.as_raw_fd(), |d| d.as_raw_fd());
    openat(at, last, flags).map(File::from)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn stat_at(dir: &File, name: &std::ffi::OsStr) -> io::Result<libc::stat> {
    use std::os::fd::AsRawFd;
    let c = c_path(Path::new(name))?;
    // SAFETY: stat is plain data, filled in by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid folder fd, NUL-terminated name, a stat buffer.
    if unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Whether `name` in `dir` is (not followed if a symlink) the very file `m`
/// describes: same device and inode. The error is `stat_at`'s (NotFound:
/// nothing has the name now).
pub fn name_holds(dir: &File, name: &std::ffi::OsStr, m: &std::fs::Metadata) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    stat_at(dir, name).map(|st| (st.st_dev, st.st_ino) == (m.dev(), m.ino()))
}
