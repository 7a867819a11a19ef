//! One ledger line: what was archived, under which names, with which
//! digests; names that are not UTF-8 kept exactly. Since version 3 a file
//! also holds event lines, told apart by their `kind` (design §4.7): where
//! the original went (`filed`), a quarantine, a removal by retention, a
//! retry. A line without `kind` is an archived entry, a [`Record`].

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

/// One parsed ledger line, of any kind (design §4.7, "Version 3").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A file archived (no `kind` field): durable before the original is
    /// filed.
    Archived(Record),
    /// Where the original went, written after it was filed.
    Filed(Filed),
    /// A file moved to the failed folder.
    Quarantined(Quarantined),
    /// An original or a quarantined file removed by retention.
    Removed(Removed),
    /// A quarantined file put back into the inbox by `rlewatch retry`.
    Retried(Retried),
}

/// The lines that carry a `kind`, as written: `{"kind":"filed","v":3,…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Filed(Filed),
    Quarantined(Quarantined),
    Removed(Removed),
    Retried(Retried),
}

impl From<Event> for Line {
    fn from(e: Event) -> Line {
        match e {
            Event::Filed(x) => Line::Filed(x),
            Event::Quarantined(x) => Line::Quarantined(x),
            Event::Removed(x) => Line::Removed(x),
            Event::Retried(x) => Line::Retried(x),
        }
    }
}

impl Line {
    /// When the line was written (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        match self {
            Line::Archived(x) => &x.time,
            Line::Filed(x) => &x.time,
            Line::Quarantined(x) => &x.time,
            Line::Removed(x) => &x.time,
            Line::Retried(x) => &x.time,
        }
    }

    /// The host that wrote it.
    pub fn host(&self) -> &str {
        match self {
            Line::Archived(x) => &x.host,
            Line::Filed(x) => &x.host,
            Line::Quarantined(x) => &x.host,
            Line::Removed(x) => &x.host,
            Line::Retried(x) => &x.host,
        }
    }

    /// The line's `kind` (`archived` for an entry without one).
    pub fn kind(&self) -> &'static str {
        match self {
            Line::Archived(_) => "archived",
            Line::Filed(_) => "filed",
            Line::Quarantined(_) => "quarantined",
            Line::Removed(_) => "removed",
            Line::Retried(_) => "retried",
        }
    }

    /// The line as written, without its newline.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Line::Archived(x) => serde_json::to_vec(x),
            Line::Filed(x) => serde_json::to_vec(&Event::Filed(x.clone())),
            Line::Quarantined(x) => serde_json::to_vec(&Event::Quarantined(x.clone())),
            Line::Removed(x) => serde_json::to_vec(&Event::Removed(x.clone())),
            Line::Retried(x) => serde_json::to_vec(&Event::Retried(x.clone())),
        }
    }
}

/// Where an archived file's original went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Moved into the done folder (`path` says where in it).
    Done,
    /// Deleted (`originals.action = "delete"`).
    Deleted,
    /// Left in the inbox (`originals.action = "keep"`).
    Kept,
    /// Gone before it could be filed: someone removed it first.
    Vanished,
    /// Its name held another file by then; that file was left alone.
    Replaced,
}

impl Fate {
    pub fn name(self) -> &'static str {
        match self {
            Fate::Done => "done",
            Fate::Deleted => "deleted",
            Fate::Kept => "kept",
            Fate::Vanished => "vanished",
            Fate::Replaced => "replaced",
        }
    }
}

/// `kind: "filed"`: the original of an archived file was filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filed {
    pub v: u32,
    pub time: String,
    pub host: String,
    /// The source's path relative to the inbox (as [`Record::source`]).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_raw: Option<String>,
    pub source_xxh3: String,
    /// The archive's path relative to the archive folder.
    pub archive: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_raw: Option<String>,
    pub fate: Fate,
    /// With `done`: the path relative to the done folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_raw: Option<String>,
}

/// Why a file was quarantined, in a few fixed classes: also the `reason`
/// label of the `rlewatch_files_failed_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// Not an image of any format rlewatch knows.
    NotAnImage,
    /// Damaged, truncated, a bad header.
    Invalid,
    /// A valid image of a variant not decoded.
    Unsupported,
    /// Over `compress.max_pixels`.
    TooLarge,
    /// JPEG, or a format left out of `compress.formats`.
    RefusedFormat,
    Other,
}

impl ReasonClass {
    /// Every class, in a fixed order (the metric lists them all).
    pub const ALL: [ReasonClass; 6] = [
        ReasonClass::NotAnImage,
        ReasonClass::Invalid,
        ReasonClass::Unsupported,
        ReasonClass::TooLarge,
        ReasonClass::RefusedFormat,
        ReasonClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReasonClass::NotAnImage => "not_an_image",
            ReasonClass::Invalid => "invalid",
            ReasonClass::Unsupported => "unsupported",
            ReasonClass::TooLarge => "too_large",
            ReasonClass::RefusedFormat => "refused_format",
            ReasonClass::Other => "other",
        }
    }
}

/// `kind: "quarantined"`: a file moved into the failed folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quarantined {
    pub v: u32,
    pub time: String,
    pub host: String,
    /// The source's path relative to the inbox.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_raw: Option<String>,
    pub source_size: u64,
    /// Absent when the file could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_xxh3: Option<String>,
    /// Its path relative to the failed folder.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_raw: Option<String>,
    /// The full one-line reason (as in `NAME.error.txt`).
    pub reason: String,
    pub class: ReasonClass,
    /// Attempts made, this one included.
    pub attempts: u32,
}

/// What a retention removal removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedWhat {
    /// An original from the done folder.
    Done,
    /// A quarantined file (and its note) from the failed folder.
    Failed,
}

/// `kind: "removed"`: retention removed a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    pub v: u32,
    pub time: String,
    pub host: String,
    pub what: RemovedWhat,
    /// Relative to the done or failed folder (`what`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_xxh3: Option<String>,
    /// Why (e.g. "older than 30 days; archive a/x.rle verified").
    pub why: String,
}

/// `kind: "retried"`: `rlewatch retry` put a quarantined file back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retried {
    pub v: u32,
    pub time: String,
    pub host: String,
    /// Its path relative to the failed folder.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_raw: Option<String>,
    /// The path relative to the inbox it went back to.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_raw: Option<String>,
}

impl Filed {
    pub fn source_path(&self) -> PathBuf {
        path_of(&self.source, self.source_raw.as_deref())
    }
    pub fn archive_path(&self) -> PathBuf {
        path_of(&self.archive, self.archive_raw.as_deref())
    }
    /// With `done`: the exact path relative to the done folder.
    pub fn done_path(&self) -> Option<PathBuf> {
        self.path
            .as_deref()
            .map(|p| path_of(p, self.path_raw.as_deref()))
    }
}

impl Quarantined {
    pub fn source_path(&self) -> PathBuf {
        path_of(&self.source, self.source_raw.as_deref())
    }
    /// The exact path relative to the failed folder.
    pub fn failed_path(&self) -> PathBuf {
        path_of(&self.path, self.path_raw.as_deref())
    }
}

impl Removed {
    pub fn removed_path(&self) -> PathBuf {
        path_of(&self.path, self.path_raw.as_deref())
    }
}

impl Retried {
    pub fn failed_path(&self) -> PathBuf {
        path_of(&self.path, self.path_raw.as_deref())
    }
    pub fn source_path(&self) -> PathBuf {
        path_of(&self.source, self.source_raw.as_deref())
    }
}

/// Now, as the ledger writes times: RFC 3339, UTC, microseconds.
pub fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}
