//! Claims (design §4.7): before working on an inbox file the daemon takes
//! it by renaming it into its private folder `INBOX/.rlewatch/claims/HOST/`
//! (same filesystem, mode 0700, never watched as work), keeping the
//! file's subfolder path below it. From then on it works only on the
//! claimed file: whatever appears later under the old name is a new
//! arrival. Of any number of daemons racing for a file, exactly one rename
//! succeeds.
//!
//! While a daemon works on a file it holds an exclusive `flock` on it,
//! taken *before* the rename: a claim is therefore locked from the moment
//! it exists until its owner files it away or dies (the kernel drops the
//! lock with the process). Claims left by a dead daemon are found at the
//! next start (or by a live daemon's rescan) and taken over by locking
//! them; a locked claim belongs to a live daemon and is left alone.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::display::shown;
use crate::ledger::STATE_DIR;

/// `INBOX/.rlewatch/claims/HOST`.
pub fn root(inbox: &Path, host: &str) -> PathBuf {
    inbox.join(STATE_DIR).join("claims").join(host)
}

/// Creates `INBOX/.rlewatch`, its `claims` folder and this host's claim
/// folder (mode 0700) and checks that each is a real folder owned by this
/// user and writable by no one else: a folder an inbox writer made or can
/// change would let them reach files the daemon owns. Returns the claim
/// folder.
pub fn prepare(inbox: &Path, host: &str) -> Result<PathBuf, String> {
    let state = inbox.join(STATE_DIR);
    let claims = state.join("claims");
    let mine = claims.join(host);
    for dir in [&state, &claims, &mine] {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", shown(dir))),
        }
        let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", shown(dir)))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !meta.file_type().is_dir() {
            return Err(format!(
                "{} is not a folder: rlewatch keeps its claims there; remove it",
                shown(dir)
            ));
        }
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} belongs to uid {} with mode {:o}: rlewatch's own folder must belong to \
                 its user (uid {me}) and be writable by no one else; remove it and let \
                 rlewatch create it",
                shown(dir),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
    }
    // Durable before any claim goes in: each folder in its parent, from
    // the claim folder up to the inbox (design §4.7, "Power loss").
    for dir in [&mine, &claims, &state, &inbox.to_path_buf()] {
        crate::durable::sync_dir(dir).map_err(|e| format!("{}: fsync: {e}", shown(dir)))?;
    }
    Ok(mine)
}

/// Takes an exclusive `flock` on `file` without waiting: false when
/// another process (another daemon) holds it.
pub fn lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// `renameat2(from/name, to/name, RENAME_NOREPLACE)`.
fn renameat2_noreplace(from: &File, name: &CStr, to: &File) -> io::Result<()> {
    // SAFETY: valid folder fds and a NUL-terminated name.
    let rc = unsafe {
        libc::renameat2(
            from.as_raw_fd(),
            name.as_ptr(),
            to.as_raw_fd(),
            name.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True for the errors of a filesystem without `RENAME_NOREPLACE` (NFS,
/// SMB, sshfs and other FUSE filesystems).
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Renames `name` from the open folder `from` to the same name in the open
/// folder `to`, never replacing anything there (EEXIST instead), and makes
/// the move durable ([`sync_moved`]). For a source only this daemon
/// renames (its own claim, its temporary file): where `RENAME_NOREPLACE` is
/// missing, link + unlink stand in for it, and the link fails with EEXIST
/// as the rename would.
pub fn rename_noreplace(from: &File, name: &OsStr, to: &File) -> io::Result<()> {
    rename_durably(from, name, to, |c| {
        // SAFETY: valid folder fds and a NUL-terminated name.
        if unsafe { libc::linkat(from.as_raw_fd(), c.as_ptr(), to.as_raw_fd(), c.as_ptr(), 0) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        crate::durable::unlink_at(from, name)
    })
}

/// Under the move lock: `renameat2(RENAME_NOREPLACE)`, or `fallback` where
/// the filesystem has none; then the move made durable ([`sync_moved`]).
fn rename_durably(
    from: &File,
    name: &OsStr,
    to: &File,
    fallback: impl FnOnce(&CStr) -> io::Result<()>,
) -> io::Result<()> {
    let c = c_name(name)?;
    let _moving = moving();
    match renameat2_noreplace(from, &c, to) {
        Ok(()) => {}
        Err(e) if unsupported(&e) => fallback(&c)?,
        Err(e) => return Err(e),
    }
    sync_moved(from, to);
    Ok(())
}

/// Held across each move between folders and its folder fsyncs (and a
/// delete and its fsync), so that no other worker of this daemon fsyncs a
/// move's source folder between the rename and the fsync of its
/// destination: that would make the file durably gone from the one before
/// it is durably in the other (design §4.7, "Power loss").
pub fn moving() -> std::sync::MutexGuard<'static, ()> {
    static MOVES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MOVES.lock().unwrap_or_else(|p| p.into_inner())
}

/// After a file moved from the folder `from` to the folder `to`: fsyncs
/// `to`, then `from` (design §4.7, "Power loss"). A rename is durable only
/// once the folders it changed are: the destination first, so that at no
/// moment is the file durably in neither (the source folder can be fsynced
/// at any time by someone else, an inbox writer making its own arrival
/// durable); then the source, so that a power cut does not bring the file
/// back under its old name as well. The move is done either way: a
/// failure is logged, not returned.
pub fn sync_moved(from: &File, to: &File) {
    for dir in [to, from] {
        if let Err(e) = dir.sync_all() {
            tracing::warn!(
                "fsync of a folder after a move: {e}; the move may not survive a power cut"
            );
        }
    }
}

/// Renames `name` from the shared folder `from` (the inbox, a silent
/// host's claims) into `to`, a folder only this host writes to (its own
/// claims), never replacing anything there: exactly one of the hosts
/// racing for a file gets it (design §4.8). Where `RENAME_NOREPLACE` is
/// missing, link + unlink would not do: each host could link the file into
/// its own folder before either unlinks it, and both would think they had
/// it. A plain rename moves the file exactly once (the others get ENOENT);
/// that it replaces nothing is checked first, which holds because no one
/// else creates names in `to`.
pub fn rename_into_own(from: &File, name: &OsStr, to: &File) -> io::Result<()> {
    rename_durably(from, name, to, |c| {
        match crate::durable::stat_at(to, name) {
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // SAFETY: valid folder fds and a NUL-terminated name.
        if unsafe { libc::renameat(from.as_raw_fd(), c.as_ptr(), to.as_raw_fd(), c.as_ptr()) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
}

/// [`rename_into_own`] (made durable), for the open file `file`: an ENOENT or EEXIST
/// that comes with `file` itself under `name` in `to` is a success — on
/// NFS a retransmitted rename reports one of them although it was done.
pub fn rename_confirmed(from: &File, name: &OsStr, to: &File, file: &File) -> io::Result<()> {
    match rename_into_own(from, name, to) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EEXIST)) => {
            let m = file.metadata()?;
            let ours = crate::durable::name_holds(to, name, &m).unwrap_or(false);
            if ours {
                let _moving = moving();
                sync_moved(from, to);
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
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
    let _moving = moving();
    for d in dir.ancestors().take(rel_dir.components().count() + 1) {
        crate::durable::sync_dir(d)?;
    }
    File::open(dir)
}

/// Every claimed file below `claims` (claims left by a crash, or by
/// another daemon of this host).
pub fn list(claims: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(claims)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect()
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
    fn one_of_two_renames_wins_and_nothing_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        for p in [&a, &b, &c] {
            fs::create_dir(p).unwrap();
        }
        fs::write(a.join("x.bmp"), b"first").unwrap();
        fs::write(c.join("x.bmp"), b"already claimed").unwrap();
        let (fa, fb, fc) = (
            File::open(&a).unwrap(),
            File::open(&b).unwrap(),
            File::open(&c).unwrap(),
        );
        // Into a folder that holds that name already: refused.
        let e = rename_noreplace(&fa, OsStr::new("x.bmp"), &fc).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(fs::read(c.join("x.bmp")).unwrap(), b"already claimed");
        rename_noreplace(&fa, OsStr::new("x.bmp"), &fb).unwrap();
        // The loser finds the source gone.
        let e = rename_noreplace(&fa, OsStr::new("x.bmp"), &fb).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"first");
    }

    /// Design §4.8: on NFS a retransmitted rename reports ENOENT or EEXIST
    /// although it was done. Only the file itself found under the name at
    /// the target confirms it; another file there never does (taking that
    /// for a claim would let two daemons work on one file).
    #[test]
    fn a_rename_is_confirmed_only_by_the_file_itself_at_the_target() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for p in [&a, &b] {
            fs::create_dir(p).unwrap();
        }
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        let name = OsStr::new("x.bmp");

        // ENOENT: the rename was done already (by the first transmission).
        fs::write(a.join("x.bmp"), b"mine").unwrap();
        let mine = File::open(a.join("x.bmp")).unwrap();
        fs::rename(a.join("x.bmp"), b.join("x.bmp")).unwrap();
        rename_confirmed(&fa, name, &fb, &mine).unwrap();
        // ENOENT with another file under the name at the target: refused.
        fs::write(a.join("y.bmp"), b"other").unwrap();
        let other = File::open(a.join("y.bmp")).unwrap();
        let e = rename_confirmed(&fa, name, &fb, &other).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

        // EEXIST: the file is at both names (a retransmitted link, or a
        // rename seen half done) — it is the target: confirmed.
        fs::hard_link(b.join("x.bmp"), a.join("x.bmp")).unwrap();
        rename_confirmed(&fa, name, &fb, &mine).unwrap();
        // EEXIST with another file at the target: refused, both kept.
        fs::remove_file(a.join("x.bmp")).unwrap();
        fs::write(a.join("x.bmp"), b"newer").unwrap();
        let newer = File::open(a.join("x.bmp")).unwrap();
        let e = rename_confirmed(&fa, name, &fb, &newer).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(fs::read(a.join("x.bmp")).unwrap(), b"newer");
        assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"mine");
    }

    #[test]
    fn a_lock_is_exclusive_between_open_files_and_ends_with_them() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        fs::write(&p, b"x").unwrap();
        let first = File::open(&p).unwrap();
        assert!(lock(&first).unwrap());
        let second = File::open(&p).unwrap();
        assert!(!lock(&second).unwrap());
        drop(first);
        assert!(lock(&second).unwrap());
    }

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
        let e = prepare(d.path(), "h").unwrap_err();
        assert!(e.contains("writable by no one else"), "{e}");
        // A symlink in its place.
        let d2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d.path(), d2.path().join(".rlewatch")).unwrap();
        let e = prepare(d2.path(), "h").unwrap_err();
        assert!(e.contains("not a folder"), "{e}");
    }
}
