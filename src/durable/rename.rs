//! Renaming a file between two open folders without replacing anything,
//! and making the move durable: the destination folder fsynced, then the
//! source, in a group commit (design §4.7, "Power loss" and "Group
//! commit"; §4.8 for renames between hosts on shared storage).

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::group;

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
pub(super) fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

pub(super) fn c_name(name: &OsStr) -> io::Result<CString> {
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
        super::unlink_at(from, name)
    })
}

/// `renameat2(RENAME_NOREPLACE)`, or `fallback` where the filesystem has
/// none, registered with the group commit before it is made; then the
/// move made durable (its destination folder fsynced, then its source).
fn rename_durably(
    from: &File,
    name: &OsStr,
    to: &File,
    fallback: impl FnOnce(&CStr) -> io::Result<()>,
) -> io::Result<()> {
    let c = c_name(name)?;
    let change = group::moving(from, to)?;
    match renameat2_noreplace(from, &c, to) {
        Ok(()) => {}
        Err(e) if unsupported(&e) => fallback(&c)?,
        Err(e) => return Err(e),
    }
    // Failures of the folders' fsyncs are logged, not returned: the move
    // is done either way.
    let _ = change.done().wait();
    Ok(())
}

/// After a file moved from the folder `from` to the folder `to`: fsyncs
/// `to`, then `from` (design §4.7, "Power loss"). A rename is durable only
/// once the folders it changed are: the destination first, so that at no
/// moment is the file durably in neither (the source folder can be fsynced
/// at any time by someone else, an inbox writer making its own arrival
/// durable); then the source, so that a power cut does not bring the file
/// back under its old name as well. For a move registered with the group
/// commit before it was made ([`group::moving`]) whose fsyncs are to be
/// made again, or one whose order no longer matters. The move is done
/// either way: a failure is logged, not returned.
pub fn sync_moved(from: &File, to: &File) {
    group::sync_moved(from, to);
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
        match super::stat_at(to, name) {
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
            let ours = super::name_holds(to, name, &m).unwrap_or(false);
            if ours {
                // The rename was registered before it was made (above).
                sync_moved(from, to);
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
}
