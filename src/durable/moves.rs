//! Moving, unlinking and probing a file by its folder's descriptor and its
//! name, so that a folder swapped for a symlink cannot redirect the step;
//! each move is made durable (design §4.4, §4.7).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::beneath::c_path;
use super::{
    PublishError, create_dir_all, group, open_beneath, publish, split_name, stat_at, sync_dir,
    taken_as_exists, temp_in, with_numbered,
};

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
    create_dir_all(dir)?;
    let dest = File::open(dir)?;
    let c_name = c_path(Path::new(name))?;
    let moved = with_numbered(dir, stem, &ext, |to| {
        let c_to = c_path(Path::new(to.file_name().unwrap_or_default()))?;
        // Registered before the rename: a rename is atomic, but durable
        // only once both folders are fsynced, the destination first (design
        // §4.7, "Power loss"); without it, a power cut after the source
        // folder was fsynced for another reason (a later claim, a writer's
        // arrival) loses the file.
        let change = group::moving(from_dir, &dest)?;
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
            let _ = change.done().wait();
            return Ok(to.to_path_buf());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EEXIST) {
            drop(change);
            return same_file_there(from_dir, name, &dest, to, err);
        }
        if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(err);
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
            let err = taken_as_exists(io::Error::last_os_error(), to);
            if err.raw_os_error() == Some(libc::EEXIST) {
                drop(change);
                return same_file_there(from_dir, name, &dest, to, err);
            }
            return Err(err);
        }
        unlink_at(from_dir, name)?;
        let _ = change.done().wait();
        Ok(to.to_path_buf())
    });
    match moved {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_across_at(from_dir, name, dir, stem, &ext, mode)
        }
        other => other,
    }
}

/// After EEXIST moving `name` from the folder `from_dir` to `to` in the
/// folder `dest`: when `to` is the very same file (device and inode), the
/// move was made before and a power cut between the fsyncs of its two
/// folders brought the old name back (design §4.7, "Power loss"); the old
/// name is removed and the move is done. Otherwise `err` (EEXIST: the next
/// numbered name is tried).
pub fn same_file_there(
    from_dir: &File,
    name: &std::ffi::OsStr,
    dest: &File,
    to: &Path,
    err: io::Error,
) -> io::Result<PathBuf> {
    let to_name = to.file_name().unwrap_or_default();
    match (stat_at(from_dir, name), stat_at(dest, to_name)) {
        (Ok(a), Ok(b)) if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) => {
            let change = group::moving(from_dir, dest)?;
            unlink_at(from_dir, name)?;
            let _ = change.done().wait();
            Ok(to.to_path_buf())
        }
        _ => Err(err),
    }
}

fn copy_across_at(
    from_dir: &File,
    name: &std::ffi::OsStr,
    dir: &Path,
    stem: &std::ffi::OsStr,
    ext: &str,
    mode: u32,
) -> io::Result<PathBuf> {
    may_remove_at(from_dir, name)?;
    let mut src = open_beneath(from_dir, Path::new(name), libc::O_RDONLY | libc::O_NONBLOCK)?;
    with_numbered(dir, stem, ext, |to| {
        if fs::symlink_metadata(to).is_ok() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        // From the start for each name tried. A FIFO (quarantined: not a
        // regular file) cannot seek, and has nothing to read again.
        match io::Seek::rewind(&mut src) {
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => {}
            other => other?,
        }
        let mut temp = temp_in(dir, mode)?;
        io::copy(&mut src, temp.as_file_mut())?;
        match publish(temp, to, false) {
            Ok(()) => {
                let kept = after_copy(unlink_at(from_dir, name), to, dir)?;
                // The copy and its folder are durable (`publish`); now the
                // removal too, or a power cut brings the original back
                // beside its copy, and it is filed a second time (design
                // §4.7, "Power loss").
                group::sync(from_dir)?;
                Ok(kept)
            }
            Err(PublishError::Exists(_)) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(PublishError::Io { source, .. }) => Err(source),
        }
    })
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

/// Whether this process may remove the entry `name` from the open folder
/// `dir`: write and search permission on the folder for the effective ids
/// (`faccessat(AT_EACCESS)`, which also reports a read-only mount) and, in
/// a sticky folder, ownership of the entry or of the folder. Checked before
/// an original is copied across filesystems, so that a source that cannot
/// be removed is never copied (a copy per retry would pile up).
pub fn may_remove_at(dir: &File, name: &std::ffi::OsStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let dot = c_path(Path::new("."))?;
    // SAFETY: valid folder fd and NUL-terminated name.
    if unsafe {
        libc::faccessat(
            dir.as_raw_fd(),
            dot.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    let folder = dir.metadata()?;
    if folder.mode() & libc::S_ISVTX != 0 {
        let entry = stat_at(dir, name)?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if me != 0 && me != entry.st_uid && me != folder.uid() {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}

/// Whether any process on this host holds `file` open for writing, as the
/// kernel tells through a lease probe: a read lease (`F_SETLEASE,
/// F_RDLCK`) is refused with EAGAIN while the file is open for writing
/// anywhere, and granted otherwise, then released at once. An error when
/// the probe cannot answer: not the file's owner without `CAP_LEASE`
/// (EACCES), a filesystem without leases (EINVAL), leases disabled.
///
/// `file` must be open read-only. A writer opening the file during the
/// microseconds the lease is held makes the kernel signal the lease
/// holder with SIGIO, which the daemon ignores (`daemon::register_signals`).
pub fn has_writers(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) } == 0 {
        // SAFETY: as above; releasing the lease just taken.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
        return Ok(false);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) => Ok(true),
        _ => Err(e),
    }
}

/// After a cross-filesystem copy was published at `to` (in `dir`): the
/// source's unlink decides whether the copy stays. Unlinked, or removed by
/// someone else meanwhile: the copy is now the only one, and it stays. Any
/// other failure: the source stays (it could not be removed after all, say
/// its folder's mode changed meanwhile), so the copy is withdrawn, and a
/// retry does not leave a second one.
pub(super) fn after_copy(unlinked: io::Result<()>, to: &Path, dir: &Path) -> io::Result<PathBuf> {
    match unlinked {
        Ok(()) => Ok(to.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(to.to_path_buf()),
        Err(e) => {
            if let Err(undo) = fs::remove_file(to).and_then(|()| sync_dir(dir)) {
                tracing::warn!("{}: cannot withdraw the copy: {undo}", to.display());
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_copy_stays_only_when_its_source_is_gone() {
        let t = tempfile::tempdir().unwrap();
        let to = t.path().join("a.bmp");
        let copy = |bytes: &[u8]| fs::write(&to, bytes).unwrap();
        // Unlinked, or removed by someone else between copy and unlink: the
        // copy is the only one left and must stay.
        copy(b"one");
        assert_eq!(after_copy(Ok(()), &to, t.path()).unwrap(), to);
        assert_eq!(fs::read(&to).unwrap(), b"one");
        let gone = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(after_copy(Err(gone), &to, t.path()).unwrap(), to);
        assert_eq!(fs::read(&to).unwrap(), b"one");
        // The source could not be removed: it stays, so the copy goes (else
        // the retry would leave a second one), and the error is returned.
        let refused = io::Error::from_raw_os_error(libc::EPERM);
        let err = after_copy(Err(refused), &to, t.path()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(!to.exists(), "the copy of a source that stays is withdrawn");
    }
}
