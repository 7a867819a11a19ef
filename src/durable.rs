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

/// Removes a file if it is there.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames `from` to `to` unless `to` exists (`renameat2` with
/// `RENAME_NOREPLACE`; where the filesystem lacks it, a hard link and an
/// unlink, which fail the same way on an existing name).
pub fn rename_noclobber(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD is a valid dirfd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        _ => Err(err),
    }
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

/// Moves `from` into `dir` under its own name, or a numbered one if that is
/// taken; never overwrites. Across filesystems the file is copied to a
/// temporary file, fsynced and published (folder fsynced) before the source
/// is removed. Returns the new path.
pub fn move_into(from: &Path, dir: &Path, mode: u32) -> io::Result<PathBuf> {
    let name = from
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    let ext = as_path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::create_dir_all(dir)?;
    for n in 0..MAX_NUMBERED {
        let to = numbered(dir, stem, &ext, n);
        match rename_noclobber(from, &to) {
            Ok(()) => {
                // No folder fsync: a rename is atomic, so a crash can only
                // leave the file where it was or where it went, never lose
                // it; a file found back in the inbox is recognised as
                // already archived. (Copies across filesystems are synced.)
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                return copy_across(from, dir, stem, &ext, mode);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_NUMBERED} numbered names taken"),
    ))
}

fn copy_across(
    from: &Path,
    dir: &Path,
    stem: &std::ffi::OsStr,
    ext: &str,
    mode: u32,
) -> io::Result<PathBuf> {
    let mut src = File::open(from)?;
    for n in 0..MAX_NUMBERED {
        let to = numbered(dir, stem, ext, n);
        if to.exists() {
            continue;
        }
        let mut temp = temp_in(dir, mode)?;
        io::copy(&mut src, temp.as_file_mut())?;
        match publish(temp, &to, false) {
            Ok(()) => {
                fs::remove_file(from)?;
                sync_dir(from.parent().unwrap_or(Path::new(".")))?;
                return Ok(to);
            }
            Err(PublishError::Exists(_)) => {
                io::Seek::rewind(&mut src)?;
                continue;
            }
            Err(PublishError::Io { source, .. }) => return Err(source),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_NUMBERED} numbered names taken"),
    ))
}
