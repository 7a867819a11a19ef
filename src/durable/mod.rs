//! Durable file publication: write to a hidden temporary file in the
//! destination folder, fsync it, rename it into place without clobbering,
//! fsync the folder. A reader never sees a partial file under a final name,
//! and after a crash the final name holds either nothing or the whole file.
//! Here: temporary files, publishing, durable folders; beside it
//! `names.rs` (numbered names that fit), `beneath.rs` (opening beneath a
//! folder without following symlinks), `flock.rs` (a file's `flock`),
//! `group.rs` (the group commit of folder fsyncs), `rename.rs` (no-clobber renames between open
//! folders, made durable), `link.rs` (the two halves of a claim by a hard
//! link) and `moves.rs` (moves and unlinks by a folder's
//! descriptor, the lease probe). It builds on nothing else in the crate.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

mod beneath;
mod flock;
pub mod group;
mod link;
mod moves;
mod names;
mod rename;
#[cfg(test)]
pub(crate) mod tests;

pub use beneath::{name_holds, open_beneath, open_beneath_walk, stat_at};
pub use flock::try_lock;
pub use link::{
    Twin, UNCLAIM_PREFIX, is_unclaim_name, link_at, no_links, put_back, remove_scratch_twin,
    unclaim_name, unlink_twin, unlink_twin_durably,
};
pub use moves::{has_writers, may_remove_at, move_at, same_file_there, unlink_at};
pub use names::{
    MAX_NUMBERED, NAME_MAX, fit_name, numbered, split_name, taken_as_exists, with_numbered,
};
pub use rename::{rename_confirmed, rename_into_own, rename_noreplace, sync_moved};

/// Prefix of every temporary file rlewatch creates; files with it are
/// rlewatch's own and may be removed when stale.
pub const TEMP_PREFIX: &str = ".rlewatch-";
/// Suffix of temporary files.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Ends the host id, and then this daemon instance's token, in a temporary
/// file's name (`.rlewatch-HOST~INSTANCE~XXXXXX.tmp`); host ids and tokens
/// never contain it, nor do the random characters after it.
const OWNER_END: char = '~';

/// The tag the daemon puts in its temporary files' names, set once at
/// start ([`set_temp_owner`]): `HOST~INSTANCE~`. Process-wide, as the host
/// id is (changing it needs a restart); unset (the CLI), temporary files
/// carry no tag.
static TEMP_OWNER: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Tags this process's temporary files with `host` and a token of this
/// process (random, made here), so that on shared storage, where one
/// host's `flock` is not seen by another, a host's clean-up removes only
/// its own or a dead host's (design §4.8), and so that the start-up sweep,
/// which runs beside the workers, never removes this process's own files
/// (design §4.4). The first call wins; returns the token.
pub fn set_temp_owner(host: &str) -> &'static str {
    &TEMP_OWNER
        .get_or_init(|| (host.to_string(), instance_token()))
        .1
}

/// 16 hex digits from the kernel's random source (`getrandom(2)`); should
/// it fail, the process id and the time, unique among the processes alive
/// on this machine, which is what the token must tell apart.
fn instance_token() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    let value = if n == bytes.len() as isize {
        u64::from_ne_bytes(bytes)
    } else {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (u64::from(std::process::id()) << 40) ^ nanos
    };
    format!("{value:016x}")
}

/// Whose temporary file a name says it is: see [`temp_tag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempTag<'a> {
    /// The host id; `None` for an untagged file (the CLI's, or an earlier
    /// version's).
    pub host: Option<&'a str>,
    /// The daemon instance's token; `None` for a file untagged or tagged
    /// with the host only (an earlier version's).
    pub instance: Option<&'a str>,
}

/// Whose temporary file `name` is, or `None` if it is not one of
/// rlewatch's temporary files.
pub fn temp_tag(name: &std::ffi::OsStr) -> Option<TempTag<'_>> {
    let rest = name
        .to_str()?
        .strip_prefix(TEMP_PREFIX)?
        .strip_suffix(TEMP_SUFFIX)?;
    let Some((host, rest)) = rest.split_once(OWNER_END) else {
        return Some(TempTag {
            host: None,
            instance: None,
        });
    };
    Some(TempTag {
        host: Some(host),
        instance: rest.split_once(OWNER_END).map(|(instance, _)| instance),
    })
}

/// Whose temporary file `name` is: `Some(Some(host))` for a tagged one,
/// `Some(None)` for an untagged one (the CLI's, or an earlier version's),
/// `None` if it is not one of rlewatch's temporary files.
pub fn temp_owner(name: &std::ffi::OsStr) -> Option<Option<&str>> {
    temp_tag(name).map(|t| t.host)
}

/// Creates a hidden temporary file in `dir` with the given mode (before the
/// umask), holding an exclusive `flock` on it for as long as it is open: a
/// start-up cleanup removes only temporary files nobody holds (a daemon
/// that died), never those another live daemon is writing.
pub fn temp_in(dir: &Path, mode: u32) -> io::Result<NamedTempFile> {
    let prefix = match TEMP_OWNER.get() {
        Some((host, instance)) => format!("{TEMP_PREFIX}{host}{OWNER_END}{instance}{OWNER_END}"),
        None => TEMP_PREFIX.to_string(),
    };
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    try_lock(temp.as_file())?;
    Ok(temp)
}

/// True for names of rlewatch's temporary files.
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(TEMP_SUFFIX.as_bytes())
}

/// Fsyncs a folder so a change of its names already made (a new name, a
/// rename within it, an unlink) is durable; the fsync is shared with every
/// other change waiting then ([`group`]).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    group::sync(&File::open(dir)?)
}

/// `fs::create_dir_all`, made durable: each folder it creates is fsynced
/// into its parent, so that a file later made durable in it does not
/// vanish with the folder at a power cut (design §4.7, "Power loss").
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .collect();
    fs::create_dir_all(dir)?;
    for d in missing {
        let parent = d
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
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
        let error = if overwrite {
            e.error
        } else {
            taken_as_exists(e.error, dest)
        };
        if error.kind() == io::ErrorKind::AlreadyExists {
            return Err(PublishError::Exists(dest.to_path_buf()));
        }
        return Err(PublishError::Io {
            path: dest.to_path_buf(),
            source: error,
        });
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(dir).map_err(io_err(dir))
}
