//! Durable file publication: write to a hidden temporary file in the
//! destination folder, fsync it, rename it into place without clobbering,
//! fsync the folder. A reader never sees a partial file under a final name,
//! and after a crash the final name holds either nothing or the whole file.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Prefix of every temporary file rlewatch creates; files with it are
/// rlewatch's own and may be removed when stale.
pub const TEMP_PREFIX: &str = ".rlewatch-";
/// Suffix of temporary files.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Creates a hidden temporary file in `dir` with the given mode (before the
/// umask).
pub fn temp_in(dir: &Path, mode: u32) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
}

/// True for names of rlewatch's temporary files.
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(TEMP_SUFFIX.as_bytes())
}

/// Fsyncs a folder so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Why publishing failed; `Exists` only without `overwrite`.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Fsyncs `temp`, renames it to `dest` (failing if `dest` exists unless
/// `overwrite`), then fsyncs the folder.
pub fn publish(temp: NamedTempFile, dest: &Path, overwrite: bool) -> Result<(), PublishError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io { path, source }
    };
    temp.as_file().sync_all().map_err(io_err(temp.path()))?;
    let result = if overwrite {
        temp.persist(dest).map(drop)
    } else {
        temp.persist_noclobber(dest).map(drop)
    };
    if let Err(e) = result {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            return Err(PublishError::Exists(dest.to_path_buf()));
        }
        return Err(PublishError::Io {
            path: dest.to_path_buf(),
            source: e.error,
        });
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(dir).map_err(io_err(dir))
}

/// `dir/stem.ext`, then `dir/stem-1.ext`, `dir/stem-2.ext`, …: the `n`th
/// candidate name for a file that must not overwrite another.
pub fn numbered(dir: &Path, stem: &std::ffi::OsStr, ext: &str, n: u32) -> PathBuf {
    let mut name = stem.to_os_string();
    if n > 0 {
        name.push(format!("-{n}"));
    }
    if !ext.is_empty() {
        name.push(".");
        name.push(ext);
    }
    dir.join(name)
}

/// How many numbered names are tried before giving up.
pub const MAX_NUMBERED: u32 = 10_000;

/// Tries `attempt` on `dir/stem.ext`, `dir/stem-1.ext`, … in turn: an
/// `AlreadyExists` error moves on to the next name, anything else ends the
/// search. The one place numbered names are chosen.
pub fn with_numbered<T>(
    dir: &Path,
    stem: &std::ffi::OsStr,
    ext: &str,
    mut attempt: impl FnMut(&Path) -> io::Result<T>,
) -> io::Result<T> {
    for n in 0..MAX_NUMBERED {
        match attempt(&numbered(dir, stem, ext, n)) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_NUMBERED} numbered names taken"),
    ))
}

/// A file name's stem and extension, for [`numbered`].
pub fn split_name(name: &std::ffi::OsStr) -> (&std::ffi::OsStr, String) {
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    let ext = as_path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    (stem, ext)
}

fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Opens `rel` below the folder `base` without following a symlink
/// anywhere on the way and without ever resolving outside `base`
/// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): a symlink gives
/// `ELOOP`, an escape `EXDEV`. Checking and opening are one step, so a
/// folder swapped for a symlink between a check and the use cannot redirect
/// it. An empty `rel` opens `base` itself.
pub fn open_beneath(base: &File, rel: &Path, flags: libc::c_int) -> io::Result<File> {
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

/// Moves the entry `name` of the open folder `from_dir` into `dir` under
/// its own name, or a numbered one if that is taken; never overwrites, never
/// follows a symlink (a symlink is moved as itself). Across filesystems a
/// regular file is copied to a temporary file, fsynced and published before
/// the source is unlinked. Returns the new path.
pub fn move_at(
    from_dir: &File,
    name: &std::ffi::OsStr,
    dir: &Path,
    mode: u32,
) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let (stem, ext) = split_name(name);
    fs::create_dir_all(dir)?;
    let dest = File::open(dir)?;
    let c_name = c_path(Path::new(name))?;
    let moved = with_numbered(dir, stem, &ext, |to| {
        let c_to = c_path(Path::new(to.file_name().unwrap_or_default()))?;
        // SAFETY: valid folder fds and NUL-terminated names.
        let rc = unsafe {
            libc::renameat2(
                from_dir.as_raw_fd(),
                c_name.as_ptr(),
                dest.as_raw_fd(),
                c_to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            // No folder fsync: a rename is atomic, so a crash leaves the
            // file where it was or where it went, never loses it; a file
            // found back in the inbox is recognised as already archived.
            return Ok(to.to_path_buf());
        }
        let err = io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(err); // EEXIST moves on to the next name
        }
        // No RENAME_NOREPLACE here: link + unlink fail the same way.
        // SAFETY: as above.
        if unsafe {
            libc::linkat(
                from_dir.as_raw_fd(),
                c_name.as_ptr(),
                dest.as_raw_fd(),
                c_to.as_ptr(),
                0,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        unlink_at(from_dir, name)?;
        Ok(to.to_path_buf())
    });
    match moved {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_across_at(from_dir, name, dir, stem, &ext, mode)
        }
        other => other,
    }
}

/// Removes the entry `name` of the open folder `dir`.
pub fn unlink_at(dir: &File, name: &std::ffi::OsStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = c_path(Path::new(name))?;
    // SAFETY: valid folder fd and NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn copy_across_at(
    from_dir: &File,
    name: &std::ffi::OsStr,
    dir: &Path,
    stem: &std::ffi::OsStr,
    ext: &str,
    mode: u32,
) -> io::Result<PathBuf> {
    let mut src = open_beneath(from_dir, Path::new(name), libc::O_RDONLY | libc::O_NONBLOCK)?;
    with_numbered(dir, stem, ext, |to| {
        if fs::symlink_metadata(to).is_ok() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        io::Seek::rewind(&mut src)?;
        let mut temp = temp_in(dir, mode)?;
        io::copy(&mut src, temp.as_file_mut())?;
        match publish(temp, to, false) {
            Ok(()) => {
                unlink_at(from_dir, name)?;
                Ok(to.to_path_buf())
            }
            Err(PublishError::Exists(_)) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(PublishError::Io { source, .. }) => Err(source),
        }
    })
}
