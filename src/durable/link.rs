//! The two halves of a claim by a hard link (design §4.7, "Power loss"):
//! a second name for the file in the claim folder, made durable before
//! the inbox name is removed, so that at every instant the file has a
//! durable name. The inbox name is removed by a rename into the claim
//! folder under a scratch name, never by an unlink of the name: a rename
//! moves whichever file the name holds at that instant, so a file a
//! writer put under the name meanwhile is moved (and put back), never
//! destroyed, and of several racing renames exactly one succeeds.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::group;
use super::rename::{c_name, sync_moved, unsupported};
use super::{fit_name, stat_at, unlink_at};

/// Starts the scratch name a claim's inbox name is renamed to while it is
/// removed; never a claim's name, which the claim scanner skips
/// ([`is_unclaim_name`]).
pub const UNCLAIM_PREFIX: &str = ".rlewatch-unclaim~";

/// `linkat(from/name, to/name)` without `AT_SYMLINK_FOLLOW`: a second
/// name for the entry itself (a symlink would be linked as itself, never
/// followed), failing with EEXIST when `to` has the name already.
pub fn link_at(from: &File, name: &OsStr, to: &File) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: valid folder fds and a NUL-terminated name.
    if unsafe { libc::linkat(from.as_raw_fd(), c.as_ptr(), to.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True for the errors of `linkat` where the filesystem, the mount or the
/// file has no hard links (EPERM: vfat, a protected-hardlinks refusal;
/// EOPNOTSUPP/ENOSYS: some FUSE filesystems; EMLINK: too many links;
/// EXDEV: the two folders on different mounts): the claim is then one
/// rename.
pub fn no_links(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM)
            | Some(libc::EOPNOTSUPP)
            | Some(libc::ENOSYS)
            | Some(libc::EMLINK)
            | Some(libc::EXDEV)
    )
}

/// The scratch name `name` takes while it is removed from the inbox.
pub fn unclaim_name(name: &OsStr) -> OsString {
    let mut stem = OsString::from(UNCLAIM_PREFIX);
    stem.push(name);
    fit_name(&stem, "")
}

/// True for a scratch name of [`unclaim_name`]; the name it stands for
/// (shortened with a hash if the whole would not fit) follows the prefix.
pub fn is_unclaim_name(name: &OsStr) -> bool {
    name.as_encoded_bytes()
        .starts_with(UNCLAIM_PREFIX.as_bytes())
}

/// What [`unlink_twin`] found under the name.
#[derive(Debug, PartialEq, Eq)]
pub enum Twin {
    /// It was the claimed file: the name is gone.
    Removed,
    /// The name was gone already (removed by someone else).
    Gone,
    /// Another file had been put under the name: it is back there (or, if
    /// the name was taken once more meanwhile, left under its scratch name
    /// in `to` for the next start to put back).
    Replaced,
}

/// Removes the name `name` from the folder `from` if it still names the
/// file `m`, which the folder `to` already holds, durably, under `name`
/// (the second half of a claim, or its completion after a crash between
/// the halves). Registered with the group commit as a move from `from` to
/// `to` ([`group::moving`]), the name is renamed into `to` under its
/// scratch name; if that is `m`, the scratch name is removed,
/// otherwise the file is made durable in `to` and put back under `name`.
/// The caller fsyncs the folders then ([`sync_moved`]): `m` needs no
/// fsync to survive, only so that a cut does not bring the name back.
pub fn unlink_twin(
    from: &File,
    name: &OsStr,
    to: &File,
    m: &std::fs::Metadata,
) -> io::Result<Twin> {
    use std::os::unix::fs::MetadataExt;
    let scratch = unclaim_name(name);
    let (c, c_scratch) = (c_name(name)?, c_name(&scratch)?);
    let change = group::moving(from, to)?;
    // SAFETY: valid folder fds and NUL-terminated names.
    let rc = unsafe {
        libc::renameat(
            from.as_raw_fd(),
            c.as_ptr(),
            to.as_raw_fd(),
            c_scratch.as_ptr(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(Twin::Gone),
            _ => Err(e),
        };
    }
    let st = stat_at(to, &scratch)?;
    if (st.st_dev, st.st_ino) == (m.dev(), m.ino()) {
        unlink_at(to, &scratch)?;
        return Ok(Twin::Removed);
    }
    // A file put under the name after the claim was linked: durable in
    // `to` before anything else (the move's fsyncs: `to`, then `from`),
    // then back where it was.
    let _ = change.done().wait();
    match put_back(to, &scratch, from, name) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            tracing::warn!(
                "{}: a new file of this name arrived while the last one was claimed, and then \
                 another: the first of them waits under {} in the claim folder until the next \
                 start puts it back",
                name.to_string_lossy(),
                scratch.to_string_lossy()
            );
        }
        Err(e) => return Err(e),
    }
    Ok(Twin::Replaced)
}

/// Renames `scratch` in the folder `from` to `name` in the folder `to`,
/// never replacing anything there (EEXIST), and makes the move durable
/// ([`sync_moved`]). Where `RENAME_NOREPLACE` is missing, link + unlink
/// stand in for it: only this daemon renames names out of its claim folder.
pub fn put_back(from: &File, scratch: &OsStr, to: &File, name: &OsStr) -> io::Result<()> {
    let (c_from, c_to) = (c_name(scratch)?, c_name(name)?);
    let change = group::moving(from, to)?;
    // SAFETY: valid folder fds and NUL-terminated names.
    let rc = unsafe {
        libc::renameat2(
            from.as_raw_fd(),
            c_from.as_ptr(),
            to.as_raw_fd(),
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    let renamed = if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    };
    match renamed {
        Ok(()) => {}
        Err(e) if unsupported(&e) => {
            // SAFETY: valid folder fds and NUL-terminated names.
            if unsafe {
                libc::linkat(
                    from.as_raw_fd(),
                    c_from.as_ptr(),
                    to.as_raw_fd(),
                    c_to.as_ptr(),
                    0,
                )
            } != 0
            {
                return Err(io::Error::last_os_error());
            }
            unlink_at(from, scratch)?;
        }
        Err(e) => return Err(e),
    }
    let _ = change.done().wait();
    Ok(())
}

/// [`unlink_twin`], then the folders fsynced ([`sync_moved`]).
pub fn unlink_twin_durably(
    from: &File,
    name: &OsStr,
    to: &File,
    m: &std::fs::Metadata,
) -> io::Result<Twin> {
    let twin = unlink_twin(from, name, to, m)?;
    sync_moved(from, to);
    Ok(twin)
}

/// Removes the scratch name of `name` in the claim folder `dir` when it is
/// a second name of the claimed file `m`: what is left when removing a
/// claim's inbox name was cut short after its rename into the claim folder
/// (a crash, or the scratch name's unlink refused, as in a folder made
/// append-only). Left there, it would outlive the claim and be taken at the
/// next start for a newer file and archived a second time. Nothing when
/// there is none, or it names another file (a newer arrival, which the
/// next start puts back).
pub fn remove_scratch_twin(dir: &File, name: &OsStr, m: &std::fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let scratch = unclaim_name(name);
    match stat_at(dir, &scratch) {
        Ok(st) if (st.st_dev, st.st_ino) == (m.dev(), m.ino()) => {
            let change = group::changing(dir)?;
            unlink_at(dir, &scratch)?;
            change.done().wait()
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
