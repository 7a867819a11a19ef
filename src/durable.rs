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
/// Ends the host id in a temporary file's name (`.rlewatch-HOST~XXXXXX.tmp`);
/// host ids never contain it.
const OWNER_END: char = '~';

/// The host id the daemon tags its temporary files with, set once at start
/// ([`set_temp_owner`]). Process-wide, as the host id is (changing it needs
/// a restart); unset (the CLI), temporary files carry no tag.
static TEMP_OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Tags this process's temporary files with `host`, so that on shared
/// storage, where one host's `flock` is not seen by another, a host's
/// clean-up removes only its own or a dead host's (design §4.8). The first
/// call wins.
pub fn set_temp_owner(host: &str) {
    let _ = TEMP_OWNER.set(host.to_string());
}

/// Whose temporary file `name` is: `Some(Some(host))` for a tagged one,
/// `Some(None)` for an untagged one (the CLI's, or an earlier version's),
/// `None` if it is not one of rlewatch's temporary files.
pub fn temp_owner(name: &std::ffi::OsStr) -> Option<Option<&str>> {
    let rest = name
        .to_str()?
        .strip_prefix(TEMP_PREFIX)?
        .strip_suffix(TEMP_SUFFIX)?;
    Some(rest.rsplit_once(OWNER_END).map(|(host, _)| host))
}

/// Creates a hidden temporary file in `dir` with the given mode (before the
/// umask), holding an exclusive `flock` on it for as long as it is open: a
/// start-up cleanup removes only temporary files nobody holds (a daemon
/// that died), never those another live daemon is writing.
pub fn temp_in(dir: &Path, mode: u32) -> io::Result<NamedTempFile> {
    let prefix = match TEMP_OWNER.get() {
        Some(host) => format!("{TEMP_PREFIX}{host}{OWNER_END}"),
        None => TEMP_PREFIX.to_string(),
    };
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    crate::claim::lock(temp.as_file())?;
    Ok(temp)
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
    let _moving = crate::claim::moving();
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
    let mut suffix = if n > 0 {
        format!("-{n}")
    } else {
        String::new()
    };
    if !ext.is_empty() {
        suffix.push('.');
        suffix.push_str(ext);
    }
    dir.join(fit_name(stem, &suffix))
}

/// The longest file name Linux filesystems take (NAME_MAX), in bytes.
pub const NAME_MAX: usize = 255;

/// `stem` + `suffix`, shortened to fit NAME_MAX when it would not: the stem
/// is cut on a UTF-8 boundary and followed by `~` and 16 hex digits of a
/// hash of the whole stem, so different long names stay different and the
/// same name always gives the same result (design §4.3).
pub fn fit_name(stem: &std::ffi::OsStr, suffix: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = stem.as_bytes();
    if bytes.len() + suffix.len() <= NAME_MAX {
        let mut name = stem.to_os_string();
        name.push(suffix);
        return name;
    }
    let mut cut = NAME_MAX.saturating_sub(suffix.len() + 17).min(bytes.len());
    // Back off to a character boundary (at most 3 bytes for UTF-8; a stem
    // that is not UTF-8 is cut where it is).
    if let Err(e) = std::str::from_utf8(&bytes[..cut])
        && cut - e.valid_up_to() <= 3
        && std::str::from_utf8(&bytes[..e.valid_up_to()]).is_ok()
    {
        cut = e.valid_up_to();
    }
    let mut name = bytes[..cut].to_vec();
    name.extend_from_slice(
        format!("~{:016x}{suffix}", xxhash_rust::xxh3::xxh3_64(bytes)).as_bytes(),
    );
    std::ffi::OsString::from_vec(name)
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

fn openat2_beneath(base: &File, rel: &Path, flags: libc::c_int) -> io::Result<File> {
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
        let moving = crate::claim::moving();
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
            // A rename is atomic, but durable only once both folders are
            // fsynced (design §4.7, "Power loss"): without it, a power cut
            // after the source folder was fsynced for another reason (a
            // later claim, a writer's arrival) loses the file.
            crate::claim::sync_moved(from_dir, &dest);
            return Ok(to.to_path_buf());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EEXIST) {
            drop(moving);
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
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                drop(moving);
                return same_file_there(from_dir, name, &dest, to, err);
            }
            return Err(err);
        }
        unlink_at(from_dir, name)?;
        crate::claim::sync_moved(from_dir, &dest);
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
            let _moving = crate::claim::moving();
            unlink_at(from_dir, name)?;
            crate::claim::sync_moved(from_dir, dest);
            Ok(to.to_path_buf())
        }
        _ => Err(err),
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
        io::Seek::rewind(&mut src)?;
        let mut temp = temp_in(dir, mode)?;
        io::copy(&mut src, temp.as_file_mut())?;
        match publish(temp, to, false) {
            Ok(()) => {
                match unlink_at(from_dir, name) {
                    // Removed by someone else meanwhile: the copy is now
                    // the only one, and it stays.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        // The source stays (it could not be removed after all,
                        // say its folder's mode changed meanwhile), so the copy
                        // is withdrawn: a retry must not leave a second one.
                        if let Err(undo) = fs::remove_file(to).and_then(|()| sync_dir(dir)) {
                            tracing::warn!("{}: cannot withdraw the copy: {undo}", to.display());
                        }
                        return Err(e);
                    }
                    Ok(()) => {}
                }
                Ok(to.to_path_buf())
            }
            Err(PublishError::Exists(_)) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(PublishError::Io { source, .. }) => Err(source),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_temporary_files_name_says_whose_it_is() {
        fn owner(n: &str) -> Option<Option<&str>> {
            temp_owner(std::ffi::OsStr::new(n))
        }
        assert_eq!(
            owner(".rlewatch-host-1.b~Ab12Zx.tmp"),
            Some(Some("host-1.b"))
        );
        assert_eq!(owner(".rlewatch-Ab12Zx.tmp"), Some(None));
        assert_eq!(owner(".rlewatch-Ab12Zx.rle"), None);
        assert_eq!(owner("x.rlewatch-a~b.tmp"), None);
    }

    /// The same file under the source and the destination name (a power
    /// cut between a move's two folder fsyncs): the move completes by
    /// removing the source name, not by filing a second copy; a different
    /// file under the name still gets a numbered name.
    #[test]
    fn moving_a_file_already_at_its_destination_removes_the_old_name() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("x.bmp"), b"x").unwrap();
        fs::hard_link(a.join("x.bmp"), b.join("x.bmp")).unwrap();
        let from = File::open(&a).unwrap();
        let to = move_at(&from, std::ffi::OsStr::new("x.bmp"), &b, 0o644).unwrap();
        assert_eq!(to, b.join("x.bmp"));
        assert!(!a.join("x.bmp").exists());
        assert_eq!(fs::read_dir(&b).unwrap().count(), 1);
        fs::write(a.join("x.bmp"), b"other").unwrap();
        let to = move_at(&from, std::ffi::OsStr::new("x.bmp"), &b, 0o644).unwrap();
        assert_eq!(to, b.join("x-1.bmp"));
        assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"x");
    }

    /// inbox/a/b/f.bmp, inbox/link -> a, inbox/a/b/flink -> f.bmp, and an
    /// outside folder the links may point at.
    fn tree() -> (tempfile::TempDir, File) {
        let t = tempfile::tempdir().unwrap();
        let inbox = t.path().join("inbox");
        fs::create_dir_all(inbox.join("a/b")).unwrap();
        fs::write(inbox.join("a/b/f.bmp"), b"inside").unwrap();
        fs::create_dir(t.path().join("outside")).unwrap();
        fs::write(t.path().join("outside/f.bmp"), b"outside").unwrap();
        symlink(inbox.join("a"), inbox.join("link")).unwrap();
        symlink("f.bmp", inbox.join("a/b/flink")).unwrap();
        symlink(t.path().join("outside"), inbox.join("a/out")).unwrap();
        let base = File::open(&inbox).unwrap();
        (t, base)
    }

    fn read(mut f: File) -> Vec<u8> {
        let mut v = Vec::new();
        io::Read::read_to_end(&mut f, &mut v).unwrap();
        v
    }

    fn errno(r: io::Result<File>) -> i32 {
        r.expect_err("must be refused").raw_os_error().unwrap()
    }

    #[test]
    fn the_walk_opens_plain_paths_and_the_base_itself() {
        let (_t, base) = tree();
        let f = open_beneath_walk(&base, Path::new("a/b/f.bmp"), libc::O_RDONLY).unwrap();
        assert_eq!(read(f), b"inside");
        let f = open_beneath_walk(&base, Path::new("./a/./b/f.bmp"), libc::O_RDONLY).unwrap();
        assert_eq!(read(f), b"inside");
        let d = open_beneath_walk(&base, Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(d.unwrap().metadata().unwrap().is_dir());
    }

    #[test]
    fn the_walk_follows_no_symlink_at_any_depth_and_never_climbs() {
        let (_t, base) = tree();
        let ro = libc::O_RDONLY;
        // A symlinked folder on the way, a symlink as the last component,
        // a symlink leading outside, and `..`.
        for (rel, expected) in [
            ("link/b/f.bmp", [libc::ELOOP, libc::ENOTDIR]),
            ("a/b/flink", [libc::ELOOP, libc::ELOOP]),
            ("a/out/f.bmp", [libc::ELOOP, libc::ENOTDIR]),
            ("../outside/f.bmp", [libc::EXDEV, libc::EXDEV]),
            ("a/../../outside/f.bmp", [libc::EXDEV, libc::EXDEV]),
        ] {
            let got = errno(open_beneath_walk(&base, Path::new(rel), ro));
            assert!(expected.contains(&got), "{rel}: errno {got}");
        }
        let got = errno(open_beneath_walk(
            &base,
            Path::new("link"),
            ro | libc::O_DIRECTORY,
        ));
        assert!([libc::ELOOP, libc::ENOTDIR].contains(&got), "errno {got}");
    }

    #[test]
    fn the_walk_refuses_what_openat2_refuses() {
        let (_t, base) = tree();
        for rel in [
            "link/b/f.bmp",
            "a/b/flink",
            "a/out/f.bmp",
            "../outside/f.bmp",
        ] {
            let walk = open_beneath_walk(&base, Path::new(rel), libc::O_RDONLY);
            let kernel = openat2_beneath(&base, Path::new(rel), libc::O_RDONLY);
            if kernel
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::ENOSYS))
            {
                return; // no openat2 to compare with here
            }
            assert!(walk.is_err() && kernel.is_err(), "{rel}");
        }
    }

    #[test]
    fn derived_names_never_exceed_name_max() {
        use std::os::unix::ffi::OsStrExt;
        let short = fit_name(std::ffi::OsStr::new("page"), "-1.rle");
        assert_eq!(short, "page-1.rle");
        // 250 bytes of 'é' (2 bytes each) cut on a character boundary.
        let long = "é".repeat(125);
        for suffix in [".rle", "-1.rle", "-9999.bmp", ".bmp.error.txt"] {
            let fitted = fit_name(std::ffi::OsStr::new(&long), suffix);
            let b = fitted.as_bytes();
            assert!(b.len() <= NAME_MAX, "{} bytes", b.len());
            assert!(std::str::from_utf8(b).is_ok());
            assert!(b.ends_with(suffix.as_bytes()));
            // Deterministic, and distinct for distinct stems.
            assert_eq!(fitted, fit_name(std::ffi::OsStr::new(&long), suffix));
            let other = format!("{long}x");
            assert_ne!(fitted, fit_name(std::ffi::OsStr::new(&other), suffix));
        }
    }

    /// Design §4.3: a name that fits NAME_MAX is kept as it is, however
    /// long; one that does not is cut to exactly NAME_MAX bytes (the
    /// stem's first bytes, `~`, 16 hex digits of its hash, the suffix),
    /// backing off at most 3 bytes to a UTF-8 boundary, and a stem that
    /// is not UTF-8 is cut where it is.
    #[test]
    fn names_that_fit_are_kept_and_the_others_cut_to_exactly_name_max() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        // 64 to 251 bytes + ".rle": fits, unchanged.
        for len in [64, 100, 200, NAME_MAX - 4] {
            let stem = "a".repeat(len);
            let fitted = fit_name(std::ffi::OsStr::new(&stem), ".rle");
            assert_eq!(
                fitted,
                std::ffi::OsString::from(format!("{stem}.rle")),
                "{len}"
            );
        }
        // One byte more: cut, to exactly NAME_MAX bytes.
        let stem = "a".repeat(NAME_MAX - 3);
        let fitted = fit_name(std::ffi::OsStr::new(&stem), ".rle");
        let b = fitted.as_bytes();
        assert_eq!(b.len(), NAME_MAX);
        let kept = NAME_MAX - ".rle".len() - 17;
        assert_eq!(&b[..kept], &stem.as_bytes()[..kept]);
        assert_eq!(b[kept], b'~');
        assert!(b[kept + 1..kept + 17].iter().all(u8::is_ascii_hexdigit));
        // Not UTF-8 from byte 100 on: cut where it is, not backed off to
        // the last valid UTF-8 boundary 134 bytes before the cut.
        let mut raw = vec![b'a'; 100];
        raw.push(0xff);
        raw.extend(std::iter::repeat_n(b'b', 300));
        let fitted = fit_name(&std::ffi::OsString::from_vec(raw.clone()), ".rle");
        assert_eq!(fitted.as_bytes().len(), NAME_MAX);
        assert_eq!(&fitted.as_bytes()[..kept], &raw[..kept]);
    }

    #[test]
    fn may_remove_at_follows_the_folders_write_permission() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), b"x").unwrap();
        let dir = File::open(t.path()).unwrap();
        may_remove_at(&dir, std::ffi::OsStr::new("f")).unwrap();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o500)).unwrap();
        // Root may write anyway (the daemon's own tests as `nobody` cover
        // the refusal: tests/all/deployed.rs).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(may_remove_at(&dir, std::ffi::OsStr::new("f")).is_err());
        }
    }
}
