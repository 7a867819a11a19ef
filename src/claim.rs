//! Claims (design §4.7): before working on an inbox file the daemon takes
//! it into its private folder `INBOX/.rlewatch/claims/HOST/` (same
//! filesystem, mode 0700, never watched as work), keeping the file's
//! subfolder path below it: by a hard link made durable before the inbox
//! name is removed, or, where links cannot be used, by one rename. From
//! then on it works only on the claimed file: whatever appears later
//! under the old name is a new arrival. Of any number of daemons racing
//! for a file, exactly one gets it.
//!
//! While a daemon works on a file it holds an exclusive `flock` on it,
//! taken *before* the rename: a claim is therefore locked from the moment
//! it exists until its owner files it away or dies (the kernel drops the
//! lock with the process). Claims left by a dead daemon are found at the
//! next start (or by a live daemon's rescan) and taken over by locking
//! them; a locked claim belongs to a live daemon and is left alone.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::display::shown;
use crate::layout::InboxLayout;

/// Why the daemon's own folders in the inbox cannot be used. The message
/// includes the system's error, so no variant has a `source` of its own
/// and an error chain does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot create {}: {error}", shown(.path))]
    Create { path: PathBuf, error: io::Error },
    #[error("{}: {error}", shown(.path))]
    Stat { path: PathBuf, error: io::Error },
    #[error("{} is not a folder: rlewatch keeps its claims there; remove it", shown(.path))]
    NotAFolder { path: PathBuf },
    #[error(
        "{} belongs to uid {uid} with mode {mode:o}: rlewatch's own folder must belong to \
         its user (uid {me}) and be writable by no one else; remove it and let \
         rlewatch create it",
        shown(.path)
    )]
    NotOwn {
        path: PathBuf,
        /// The folder's owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
        /// This process's effective uid.
        me: u32,
    },
    #[error("{}: fsync: {error}", shown(.path))]
    Sync { path: PathBuf, error: io::Error },
}

/// Creates `INBOX/.rlewatch`, its `claims` folder and this host's claim
/// folder (mode 0700) and checks that each is a real folder owned by this
/// user and writable by no one else: a folder an inbox writer made or can
/// change would let them reach files the daemon owns. Returns the claim
/// folder.
pub fn prepare(inbox: &Path, host: &str) -> Result<PathBuf, PrepareError> {
    let layout = InboxLayout::new(inbox);
    let state = layout.state().to_path_buf();
    let claims = layout.claims_root();
    let mine = layout.claims(host);
    for dir in [&state, &claims, &mine] {
        let path = || dir.to_path_buf();
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(PrepareError::Create {
                    path: path(),
                    error,
                });
            }
        }
        let meta = fs::symlink_metadata(dir).map_err(|error| PrepareError::Stat {
            path: path(),
            error,
        })?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !meta.file_type().is_dir() {
            return Err(PrepareError::NotAFolder { path: path() });
        }
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err(PrepareError::NotOwn {
                path: path(),
                uid: meta.uid(),
                mode: meta.mode() & 0o7777,
                me,
            });
        }
    }
    // Durable before any claim goes in: each folder in its parent, from
    // the claim folder up to the inbox (design §4.7, "Power loss").
    for dir in [&mine, &claims, &state, &inbox.to_path_buf()] {
        crate::durable::sync_dir(dir).map_err(|error| PrepareError::Sync {
            path: dir.to_path_buf(),
            error,
        })?;
    }
    Ok(mine)
}

/// Opens (creating) the claim folder for files of the inbox subfolder
/// `rel_dir`.
pub fn open_dir(claims: &Path, rel_dir: &Path) -> io::Result<File> {
    let dir = claims.join(rel_dir);
    if let Ok(d) = File::open(&dir) {
        return Ok(d);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    // The new subfolders made durable in their parents, up to `claims`,
    // before a claim goes in (design §4.7, "Power loss").
    for d in dir.ancestors().take(rel_dir.components().count() + 1) {
        crate::durable::sync_dir(d)?;
    }
    File::open(dir)
}

/// Every claimed file below `claims` (claims left by a crash, or by
/// another daemon of this host); not the scratch names of inbox names
/// being removed ([`sweep`]).
pub fn list(claims: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(claims)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir() && !crate::durable::is_unclaim_name(e.file_name()))
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Whether a claim folder of another host id than `claims`' holds the
/// file `m` under the inbox path `rel_dir/name`: a claim linked there
/// whose inbox name was not removed yet (its daemon died between the two
/// halves of the claim, design §4.7). The file is that host's: its next
/// start, or a take-over, finishes the claim.
pub fn linked_elsewhere(claims: &Path, rel_dir: &Path, name: &OsStr, m: &fs::Metadata) -> bool {
    let Some(root) = claims.parent() else {
        return false;
    };
    let Ok(hosts) = fs::read_dir(root) else {
        return false;
    };
    hosts.flatten().any(|host| {
        let dir = host.path();
        dir != claims
            && File::open(&dir)
                .and_then(|d| {
                    crate::durable::open_beneath(&d, rel_dir, libc::O_RDONLY | libc::O_DIRECTORY)
                })
                .and_then(|d| crate::durable::name_holds(&d, name, m))
                .unwrap_or(false)
    })
}

/// Whether a claim in the folder `dir` is the file `m`.
fn claim_beside(dir: &Path, m: &fs::Metadata) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        !crate::durable::is_unclaim_name(&e.file_name())
            && e.metadata()
                .is_ok_and(|c| c.is_file() && (c.dev(), c.ino()) == (m.dev(), m.ino()))
    })
}

/// At start, before the claims are listed: the scratch names a crash left
/// while an inbox name was being removed (design §4.7). One that is a
/// second name of the claim beside it is removed; any other is a file a
/// writer put under the inbox name during the claim, and goes back into
/// the inbox under its name (or a numbered one if that is taken).
pub fn sweep(claims: &Path, inbox: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let scratch: Vec<PathBuf> = walkdir::WalkDir::new(claims)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && crate::durable::is_unclaim_name(e.file_name()))
        .map(walkdir::DirEntry::into_path)
        .collect();
    for path in scratch {
        let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let name = OsStr::from_bytes(&file.as_bytes()[crate::durable::UNCLAIM_PREFIX.len()..]);
        let result = (|| -> io::Result<()> {
            let claim_dir = File::open(dir)?;
            let m = fs::symlink_metadata(&path)?;
            if m.nlink() > 1 && claim_beside(dir, &m) {
                let change = crate::durable::group::changing(&claim_dir)?;
                crate::durable::unlink_at(&claim_dir, file)?;
                return change.done().wait();
            }
            let rel_dir = dir.strip_prefix(claims).unwrap_or(Path::new(""));
            let inbox_dir = File::open(inbox).and_then(|i| {
                crate::durable::open_beneath(&i, rel_dir, libc::O_RDONLY | libc::O_DIRECTORY)
            })?;
            let (stem, ext) = crate::durable::split_name(name);
            let dest = inbox.join(rel_dir);
            crate::durable::with_numbered(&dest, stem, &ext, |to| {
                let to = to.file_name().unwrap_or_default();
                crate::durable::put_back(&claim_dir, file, &inbox_dir, to)
            })
        })();
        if let Err(e) = result {
            tracing::warn!("{}: {e}", shown(&path));
        }
    }
}

/// Removes empty claim subfolders (best effort; at start, when they are
/// not in use by this daemon).
pub fn prune(claims: &Path) {
    for e in walkdir::WalkDir::new(claims)
        .min_depth(1)
        .contents_first(true)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_folder_made_by_someone_else_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let claims = prepare(d.path(), "h").unwrap();
        assert_eq!(claims, d.path().join(".rlewatch/claims/h"));
        let mode = fs::metadata(&claims).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        // Made writable by others (as a writer's folder would be).
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            d.path().join(".rlewatch"),
            fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let e = prepare(d.path(), "h").unwrap_err().to_string();
        assert!(e.contains("writable by no one else"), "{e}");
        // A symlink in its place.
        let d2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d.path(), d2.path().join(".rlewatch")).unwrap();
        let e = prepare(d2.path(), "h").unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    /// A crash in the middle of removing a claim's inbox name (design
    /// §4.7) leaves a scratch name: a second name of the claim beside it
    /// is removed; a newer file moved there on its way back to the inbox
    /// goes back. Neither is ever listed as a claim.
    #[test]
    fn scratch_names_left_by_a_crash_are_swept() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let claims = prepare(d.path(), "h").unwrap();
        fs::create_dir_all(claims.join("sub")).unwrap();
        fs::create_dir_all(d.path().join("sub")).unwrap();
        fs::write(claims.join("sub/a.bmp"), b"claimed").unwrap();
        let scratch = |n: &str| {
            claims.join("sub").join(OsStr::from_bytes(
                crate::durable::unclaim_name(OsStr::new(n)).as_bytes(),
            ))
        };
        fs::hard_link(claims.join("sub/a.bmp"), scratch("a.bmp")).unwrap();
        fs::write(scratch("b.bmp"), b"newer").unwrap();
        assert_eq!(list(&claims), vec![claims.join("sub/a.bmp")]);
        sweep(&claims, d.path());
        assert!(!scratch("a.bmp").exists() && !scratch("b.bmp").exists());
        assert_eq!(fs::read(claims.join("sub/a.bmp")).unwrap(), b"claimed");
        assert_eq!(fs::metadata(claims.join("sub/a.bmp")).unwrap().nlink(), 1);
        assert_eq!(fs::read(d.path().join("sub/b.bmp")).unwrap(), b"newer");
    }
}
