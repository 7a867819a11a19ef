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
