//! Names in a destination folder: `NAME.rle`, `NAME-1.rle`, … up to the
//! first free one, fitted to the filesystem's name limit.

use std::io;
use std::path::{Path, PathBuf};

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

/// `err`, from linking or renaming a file to `to` without replacing
/// anything, as EEXIST when a file is now at `to` though `err` says
/// something else. sshfs reports a name taken on the server as EPERM (the
/// SFTP server's link fails with a generic failure, which sshfs maps so),
/// when its own cache had not yet seen another host's file there: without
/// this, a lost race for a name on a shared archive (design §4.8) would be
/// taken for a refusal instead of a cue to try the next name. A link or a
/// no-replace rename never replaces a file, so with one at `to` it could
/// not have succeeded anyway.
pub fn taken_as_exists(err: io::Error, to: &Path) -> io::Error {
    if err.kind() != io::ErrorKind::AlreadyExists && std::fs::symlink_metadata(to).is_ok() {
        return io::Error::from_raw_os_error(libc::EEXIST);
    }
    err
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
