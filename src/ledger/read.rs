//! Reading ledger files: every host's day files in order, a file's
//! entries from an offset, one line with its version and kind checked.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{Event, Line};
use super::{READS, Record};
use crate::layout::ArchiveLayout;

/// The entries of `dir` (name, path), sorted by name; empty when `dir`
/// does not exist.
pub(super) fn read_dir_sorted(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    out.push((name, e.path()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

/// Every ledger file under `archive`: (host, path), by host then day.
pub fn files(archive: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (host, dir) in read_dir_sorted(&ArchiveLayout::new(archive).ledger())? {
        if !dir.is_dir() {
            continue;
        }
        for (name, path) in read_dir_sorted(&dir)? {
            if name.ends_with(".jsonl") {
                out.push((host.clone(), path));
            }
        }
    }
    Ok(out)
}

/// The entries of the complete lines of `path` from byte `offset` on
/// (unreadable lines skipped), and the offset after the last complete
/// line.
pub(super) fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<Record>, u64)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let entries = bytes[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|line| match parse_line(line) {
            Ok(Line::Archived(e)) => Some(e),
            _ => None,
        })
        .collect();
    Ok((entries, offset + complete as u64))
}

/// The entries (archived lines) of the last `max` readable complete
/// archived lines of `path`, read
/// backwards from its end a 256 KiB block at a time (a day's file of
/// 100,000 entries is about 35 MB; the daemon's start needs only its
/// newest entries), and the offset after the last complete line, as
/// [`read_from`] gives it (with `max` 0, only that).
pub(super) fn read_tail(path: &Path, max: usize) -> io::Result<(Vec<Record>, u64)> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 256 * 1024;
    let file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    // Newest first.
    let mut entries = Vec::new();
    // The offset after the last complete line, once seen.
    let mut end = None;
    // The end of a line that begins in an earlier block (with its
    // newline), or, until `end` is known, the torn last line.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 && (entries.len() < max || end.is_none()) {
        let from = pos.saturating_sub(BLOCK);
        let mut buf = vec![0u8; (pos - from) as usize];
        file.read_exact_at(&mut buf, from)?;
        buf.extend_from_slice(&carry);
        pos = from;
        // buf is the file from `from` on; lines end within buf[..upto].
        let upto = match end {
            Some(_) => buf.len(),
            None => match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    end = Some(from + i as u64 + 1);
                    i + 1
                }
                None => {
                    carry = buf;
                    continue;
                }
            },
        };
        // The first line is whole only at the start of the file.
        let first = if from == 0 {
            0
        } else {
            match buf[..upto].iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    buf.truncate(upto);
                    carry = buf;
                    continue;
                }
            }
        };
        for line in buf[first..upto].split(|&b| b == b'\n').rev() {
            if entries.len() >= max {
                break;
            }
            // Event lines (ledger v3: filed, quarantined, …) are not
            // entries: they do not count towards `max`.
            if let Ok(Line::Archived(e)) = parse_line(line) {
                entries.push(e);
            }
        }
        buf.truncate(first);
        carry = buf;
    }
    entries.reverse();
    Ok((entries, end.unwrap_or(0)))
}

/// Why a ledger line cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not JSON, or not an entry of this version's shape.
    #[error("{0}")]
    Json(serde_json::Error),
    /// A version this build does not know (a later one).
    #[error("unknown ledger version {0}")]
    UnknownVersion(u64),
    #[error("no ledger version (\"v\")")]
    NoVersion,
    /// A `kind` in a line of a version before 3, or one this build does
    /// not know.
    #[error("a line of kind {kind:?} in ledger version {v}")]
    UnknownKind { kind: String, v: u64 },
}

/// Only what decides how a line that is not an archived entry is read.
#[derive(serde::Deserialize)]
struct Probe {
    v: Option<serde_json::Value>,
    kind: Option<serde_json::Value>,
}

/// One ledger line, or why it cannot be read. An archived entry, by far
/// the most common line, takes one serde pass; the version and `kind` are
/// looked at only when that fails.
pub fn parse_line(line: &[u8]) -> Result<Line, LineError> {
    let first = match serde_json::from_slice::<Record>(line) {
        Ok(e) if READS.contains(&e.v) => {
            return Ok(Line::Archived(e));
        }
        Ok(e) => return Err(LineError::UnknownVersion(e.v.into())),
        Err(e) => e,
    };
    // The version first: a later format may have other fields.
    let probe = match serde_json::from_slice::<Probe>(line) {
        Ok(p) => p,
        Err(_) => return Err(LineError::Json(first)),
    };
    let v = match probe.v.as_ref().map(|v| v.as_u64()) {
        None => return Err(LineError::NoVersion),
        Some(Some(v)) => v,
        Some(None) => {
            return Err(LineError::Json(serde::de::Error::custom(
                "\"v\" is not a version number",
            )));
        }
    };
    if !u32::try_from(v).is_ok_and(|v| READS.contains(&v)) {
        return Err(LineError::UnknownVersion(v));
    }
    let Some(kind) = probe.kind else {
        return Err(LineError::Json(first));
    };
    const KINDS: [&str; 4] = ["filed", "quarantined", "removed", "retried"];
    match kind.as_str() {
        Some(k) if v >= 3 && KINDS.contains(&k) => serde_json::from_slice::<Event>(line)
            .map(Line::from)
            .map_err(LineError::Json),
        _ => Err(LineError::UnknownKind {
            kind: kind.to_string().trim_matches('"').to_string(),
            v,
        }),
    }
}

/// Calls `f` with (line number, entry or why the line is unreadable) for
/// every non-empty line of a ledger file that is not an event line (a
/// `filed`, `quarantined`, … line of version 3, skipped).
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(usize, Result<Record, LineError>),
) -> io::Result<()> {
    for_each_line_in(path, |at, line| match line {
        Ok(Line::Archived(e)) => f(at.number, Ok(e)),
        Ok(_) => {}
        Err(e) => f(at.number, Err(e)),
    })
}

/// Where a line is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAt {
    /// 1-based line number.
    pub number: usize,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// Its length in bytes, without the newline.
    pub len: usize,
}

/// Calls `f` with (where, the line or why it is unreadable) for every
/// non-empty line of a ledger file, of every kind. A last line without
/// its newline (torn by a crash, or still being written) is included:
/// a reader that must not see half a line checks `LineError`.
pub fn for_each_line_in(
    path: &Path,
    mut f: impl FnMut(LineAt, Result<Line, LineError>),
) -> io::Result<()> {
    for_each_raw_line_in(path, |at, text| f(at, parse_line(text)))
}

/// Calls `f` with (where, its bytes without the newline) for every
/// non-empty line of a ledger file, as [`for_each_line_in`] reads them,
/// without parsing them.
pub fn for_each_raw_line_in(path: &Path, mut f: impl FnMut(LineAt, &[u8])) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut line = Vec::new();
    let (mut number, mut offset) = (0usize, 0u64);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let at = LineAt {
            number,
            offset,
            len: line.len() - usize::from(line.last() == Some(&b'\n')),
        };
        offset += n as u64;
        let text = &line[..at.len];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(at, text);
    }
}

/// Calls `f` with (host, file, where, the line or why it is unreadable)
/// for every line of every ledger file under `archive`, by host then day.
/// An error names the file or folder that could not be read.
pub fn for_each_line(
    archive: &Path,
    mut f: impl FnMut(&str, &Path, LineAt, Result<Line, LineError>),
) -> io::Result<()> {
    let root = ArchiveLayout::new(archive).ledger();
    let list =
        files(archive).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
    for (host, file) in list {
        for_each_line_in(&file, |at, line| f(&host, &file, at, line))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

/// Reads the one line at `at` of `path` (a hit of an index, confirmed by
/// the ledger itself): `None` when the bytes there are not a whole line.
pub fn read_line_at(file: &File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len + 1];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    if got != len + 1 || buf[len] != b'\n' || buf[..len].contains(&b'\n') {
        return Ok(None);
    }
    // The byte before must end the previous line (or be the file's start).
    if offset > 0 {
        let mut b = [0u8];
        file.read_at(&mut b, offset - 1)?;
        if b[0] != b'\n' {
            return Ok(None);
        }
    }
    buf.truncate(len);
    Ok(Some(buf))
}

/// What `rlewatch audit` needs of an archived entry (design §4.7): its
/// archive and what [`crate::fixity`] checks it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The archive's exact relative path.
    pub archive: PathBuf,
    pub archive_size: u64,
    /// `archive_xxh3`, or its text when it is not hexadecimal.
    pub archive_xxh3: Result<u64, String>,
    pub source_size: u64,
    pub width: u32,
    pub height: u32,
    pub lossless: bool,
    /// `format`, BMP when unknown (as [`crate::fixity::check`] reads it).
    pub format: crate::formats::Format,
}

impl Checked {
    pub fn of(e: &Record) -> Checked {
        Checked {
            archive: e.archive_path(),
            archive_size: e.archive_size,
            archive_xxh3: u64::from_str_radix(&e.archive_xxh3, 16)
                .map_err(|_| e.archive_xxh3.clone()),
            source_size: e.source_size,
            width: e.width,
            height: e.height,
            lossless: e.lossless,
            format: crate::formats::Format::from_name(&e.format)
                .unwrap_or(crate::formats::Format::Bmp),
        }
    }
}

/// A ledger line as `rlewatch audit` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLine {
    Archived(Checked),
    /// A `filed` line: the archive it names.
    Filed(PathBuf),
    /// Quarantines, removals and retries, which name no archive.
    Other,
}

/// [`Record`] field for field, its text borrowed from the line: a line
/// with an escape in a string fails here and is read by [`parse_line`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Fields read only for their types, as Record checks them.
struct RecordView<'a> {
    v: u32,
    time: &'a str,
    host: &'a str,
    source: &'a str,
    #[serde(default)]
    source_raw: Option<&'a str>,
    source_size: u64,
    source_xxh3: &'a str,
    archive: &'a str,
    #[serde(default)]
    archive_raw: Option<&'a str>,
    archive_size: u64,
    archive_xxh3: &'a str,
    width: u32,
    height: u32,
    conversion: &'a str,
    lossless: bool,
    #[serde(default = "bmp_name")]
    format: &'a str,
}

fn bmp_name<'a>() -> &'a str {
    crate::formats::Format::Bmp.name()
}

/// A `filed` line ([`super::Filed`] and its `kind`), borrowed likewise.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FiledView<'a> {
    kind: &'a str,
    v: u32,
    time: &'a str,
    host: &'a str,
    source: &'a str,
    #[serde(default)]
    source_raw: Option<&'a str>,
    source_xxh3: &'a str,
    archive: &'a str,
    #[serde(default)]
    archive_raw: Option<&'a str>,
    fate: super::Fate,
    #[serde(default)]
    path: Option<&'a str>,
    #[serde(default)]
    path_raw: Option<&'a str>,
}

/// One ledger line as `rlewatch audit` reads it, in one serde pass over
/// the line and no allocation but the archive's path for the two common
/// kinds (an archived entry, a `filed` line); anything else, or a line
/// these borrowed views do not take (an escape in a string, an error), is
/// read by [`parse_line`], whose answer (and error) it then is.
pub fn parse_for_audit(line: &[u8]) -> Result<AuditLine, LineError> {
    use super::record::path_of;
    if let Ok(r) = serde_json::from_slice::<RecordView>(line)
        && READS.contains(&r.v)
    {
        return Ok(AuditLine::Archived(Checked {
            archive: path_of(r.archive, r.archive_raw),
            archive_size: r.archive_size,
            archive_xxh3: u64::from_str_radix(r.archive_xxh3, 16)
                .map_err(|_| r.archive_xxh3.to_string()),
            source_size: r.source_size,
            width: r.width,
            height: r.height,
            lossless: r.lossless,
            format: crate::formats::Format::from_name(r.format)
                .unwrap_or(crate::formats::Format::Bmp),
        }));
    }
    if let Ok(f) = serde_json::from_slice::<FiledView>(line)
        && f.kind == "filed"
        && f.v >= 3
        && READS.contains(&f.v)
    {
        return Ok(AuditLine::Filed(path_of(f.archive, f.archive_raw)));
    }
    Ok(match parse_line(line)? {
        Line::Archived(e) => AuditLine::Archived(Checked::of(&e)),
        Line::Filed(f) => AuditLine::Filed(f.archive_path()),
        _ => AuditLine::Other,
    })
}
