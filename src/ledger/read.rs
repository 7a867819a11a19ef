//! Reading ledger files: every host's day files in order, a file's
//! entries from an offset, one line with its version checked.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
        .filter_map(|line| parse_line(line).ok())
        .collect();
    Ok((entries, offset + complete as u64))
}

/// The entries of the last `max` readable complete lines of `path`, read
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
            if let Ok(e) = parse_line(line) {
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
}

/// One ledger line, or why it cannot be read.
fn parse_line(line: &[u8]) -> Result<Record, LineError> {
    // The version first: a later format may have other fields.
    let value = serde_json::from_slice::<serde_json::Value>(line).map_err(LineError::Json)?;
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if u32::try_from(v).is_ok_and(|v| READS.contains(&v)) => {
            serde_json::from_value::<Record>(value).map_err(LineError::Json)
        }
        Some(v) => Err(LineError::UnknownVersion(v)),
        None => Err(LineError::NoVersion),
    }
}

/// Calls `f` with (line number, entry or why the line is unreadable) for
/// every non-empty line of a ledger file.
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(usize, Result<Record, LineError>),
) -> io::Result<()> {
    let reader = BufReader::new(File::open(path)?);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = parse_line(&line);
        f(n + 1, parsed);
    }
    Ok(())
}
