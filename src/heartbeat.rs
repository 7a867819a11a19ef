//! The heartbeat file `INBOX/.rlewatch/hosts/HOST` (design §4.8): one JSON
//! object a running daemon rewrites at every beat and, at most once a
//! second, when its state changes; `rlewatch status` reads every host's.
//! Written to a temporary name in the same folder and renamed over the
//! old one, so a reader never sees a torn object. Its bytes change at
//! every beat (`beat`, `written`): other hosts judge it alive by that
//! alone, whatever its content, so an old or corrupt one still takes part
//! in takeover. The fields are documented in docs/operations.md.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The value of `format`: what the file is.
pub const FORMAT: &str = "rlewatch-heartbeat";

/// How many files each bounded list holds at most (the newest); the
/// `count` beside it is the whole number.
pub const LIST_MAX: usize = 100;

/// One heartbeat. Fields a reader does not find take their defaults
/// (a later version may add some; `format` and `v` are checked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Heartbeat {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format's version (1).
    pub v: u32,
    pub host: String,
    pub pid: u32,
    /// rlewatch's version.
    pub version: String,
    /// The machine's hostname and boot id: a reader on the same boot can
    /// also ask the kernel whether `pid` lives.
    pub machine: String,
    pub boot_id: String,
    /// `running`, `stopping` (draining after SIGTERM) or `stopped`
    /// (written last, at a clean exit).
    pub state: String,
    /// Unix time (seconds) the process started and this was written.
    pub started: f64,
    pub written: f64,
    /// Counts up at every write.
    pub beat: u64,
    /// How often it is rewritten at the least, and the writer's
    /// `takeover_secs` (0: never takes over).
    pub interval_secs: f64,
    pub takeover_secs: u64,
    pub workers: usize,
    pub counts: Counts,
    /// Unix time of the last archive this process wrote.
    pub last_archived: Option<f64>,
    pub waiting: Waiting,
    pub in_progress: Listed<String>,
    pub retrying: Listed<RetryingFile>,
    pub ignored: Listed<IgnoredFile>,
}

/// Counts since the process started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub archived: u64,
    pub failed: u64,
    /// Per reason class (`not_an_image`, `invalid`, …).
    pub failed_by_reason: std::collections::BTreeMap<String, u64>,
    /// Failed attempts retried.
    pub retries: u64,
    pub ignored: u64,
    pub removed_done: u64,
    pub removed_failed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// The files this daemon has waiting (not retrying).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Waiting {
    pub count: u64,
    /// Seconds the longest-waiting one has waited unchanged.
    pub oldest_secs: f64,
}

/// A bounded list and the whole count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Listed<T> {
    pub count: u64,
    pub files: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            count: 0,
            files: Vec::new(),
        }
    }
}

/// A file failing and retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryingFile {
    /// Relative to the inbox, as dropped.
    pub path: String,
    pub attempts: u32,
    pub error: String,
    /// Unix times: the next attempt, the first failure.
    pub next_attempt: f64,
    pub since: f64,
}

/// A name in the inbox the daemon leaves alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredFile {
    pub path: String,
    pub why: String,
}

/// Why a heartbeat file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", crate::display::shown(.path))]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
    /// The one-line text of rlewatch before 0.2 (`BEAT PID`).
    #[error(
        "{}: an old-format heartbeat (pid {pid}, from an rlewatch before this one); it says only \
         that the daemon beats",
        crate::display::shown(.path)
    )]
    Old { path: std::path::PathBuf, pid: u32 },
    #[error("{}: corrupt heartbeat: {reason}", crate::display::shown(.path))]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl ReadError {
    /// The pid an old-format heartbeat names.
    pub fn old_pid(&self) -> Option<u32> {
        match self {
            ReadError::Old { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

/// Reads and checks the heartbeat at `path`.
pub fn read(path: &Path) -> Result<Heartbeat, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// A heartbeat's bytes checked (`path` names it in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Heartbeat, ReadError> {
    let corrupt = |reason: String| ReadError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(pid) = old_format(bytes) {
        return Err(ReadError::Old {
            path: path.to_path_buf(),
            pid,
        });
    }
    let hb: Heartbeat = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if hb.format != FORMAT {
        return Err(corrupt(format!(
            "\"format\" is {:?}, not {FORMAT:?}",
            hb.format
        )));
    }
    if hb.v != 1 {
        return Err(corrupt(format!(
            "heartbeat version {} (this rlewatch reads 1; a newer rlewatch wrote it?)",
            hb.v
        )));
    }
    Ok(hb)
}

/// `BEAT PID\n`, as rlewatch wrote it before heartbeats carried state.
fn old_format(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut words = text.split_ascii_whitespace();
    let _beat: u64 = words.next()?.parse().ok()?;
    let pid = words.next()?.parse().ok()?;
    words.next().is_none().then_some(pid)
}

/// Writes `hb` as `path`: a temporary name in the same folder, then a
/// rename over it (readers see the old or the new, never a mix). No fsync:
/// a heartbeat lost in a power cut is rewritten at the next beat.
pub fn write(path: &Path, hb: &Heartbeat) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Hidden, so never mistaken for another host's heartbeat.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut text = serde_json::to_vec(hb).map_err(io::Error::other)?;
    text.push(b'\n');
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut f| f.write_all(&text))
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), empty when unknown.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, as a float.
pub fn unix(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_corrupt_heartbeats_are_told_apart_naming_the_file() {
        let p = Path::new("/in/.rlewatch/hosts/b");
        let e = parse(p, b"17 4242\n").unwrap_err();
        assert_eq!(e.old_pid(), Some(4242));
        assert!(
            e.to_string()
                .starts_with("/in/.rlewatch/hosts/b: an old-format")
        );
        let e = parse(p, b"{\"format\":").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/in/.rlewatch/hosts/b: corrupt heartbeat: "),
            "{e}"
        );
        let e = parse(p, b"").unwrap_err();
        assert!(e.to_string().contains("corrupt heartbeat"), "{e}");
    }
}
