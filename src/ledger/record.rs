//! One ledger line: what was archived, under which names, with which
//! digests; names that are not UTF-8 kept exactly.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One ledger entry (one line): one archived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version ([`VERSION`](super::VERSION)).
    pub v: u32,
    /// When the entry was written, RFC 3339, UTC.
    pub time: String,
    /// The host id of the daemon that archived the file.
    pub host: String,
    /// The source's path relative to the inbox (a name that is not UTF-8
    /// shown with U+FFFD, and given exactly in `source_raw`).
    pub source: String,
    /// The source's path bytes in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_raw: Option<String>,
    pub source_size: u64,
    /// XXH3-64 of the source's bytes, 16 hex digits.
    pub source_xxh3: String,
    /// The archive's path relative to the archive folder (as `source`).
    pub archive: String,
    /// The archive's path bytes in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_raw: Option<String>,
    pub archive_size: u64,
    /// XXH3-64 of the archive's bytes, 16 hex digits.
    pub archive_xxh3: String,
    pub width: u32,
    pub height: u32,
    /// `dither` or `threshold`.
    pub conversion: String,
    /// Every source pixel was pure black or white.
    pub lossless: bool,
    /// The source's format (`bmp`, `tiff`, `png`, `pnm`, `gif`); absent in
    /// version 1 entries, which are all BMP.
    #[serde(default = "bmp")]
    pub format: String,
}

fn bmp() -> String {
    crate::formats::Format::Bmp.name().into()
}

/// 16 lowercase hex digits.
pub fn hex(digest: u64) -> String {
    format!("{digest:016x}")
}

/// What identifies a source for "already archived?": a hash of its
/// relative path, size and digest (8 bytes a remembered entry, not its
/// paths).
pub(super) type Key = u64;

pub(super) fn key(source: &Path, size: u64, xxh3: u64) -> Key {
    use std::os::unix::ffi::OsStrExt;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(source.as_os_str().as_bytes());
    h.update(&[0]);
    h.update(&size.to_le_bytes());
    h.update(&xxh3.to_le_bytes());
    h.digest()
}

pub(super) fn key_of(e: &Record) -> Key {
    key(
        &e.source_path(),
        e.source_size,
        u64::from_str_radix(&e.source_xxh3, 16).unwrap_or(0),
    )
}

/// A hash of an archive's relative path, as remembered.
pub fn path_hash(p: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    xxhash_rust::xxh3::xxh3_64(p.as_os_str().as_bytes())
}

/// A relative path as the ledger writes it: text, and its bytes in hex
/// when they are not UTF-8.
pub fn path_fields(p: &Path) -> (String, Option<String>) {
    use std::os::unix::ffi::OsStrExt;
    match p.to_str() {
        Some(text) => (text.to_string(), None),
        None => (
            p.to_string_lossy().into_owned(),
            Some(
                p.as_os_str()
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            ),
        ),
    }
}

/// The path `text`/`raw` describe (see [`path_fields`]).
pub(super) fn path_of(text: &str, raw: Option<&str>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = raw.and_then(|h| {
        (0..h.len())
            .step_by(2)
            .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect::<Option<Vec<u8>>>()
    });
    match bytes {
        Some(b) => PathBuf::from(std::ffi::OsString::from_vec(b)),
        None => PathBuf::from(text),
    }
}

impl Record {
    /// The source's exact relative path.
    pub fn source_path(&self) -> PathBuf {
        path_of(&self.source, self.source_raw.as_deref())
    }
    /// The archive's exact relative path.
    pub fn archive_path(&self) -> PathBuf {
        path_of(&self.archive, self.archive_raw.as_deref())
    }
}
