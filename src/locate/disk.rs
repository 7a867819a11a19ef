//! The folders half of `where`: a file still waiting in the inbox, claimed
//! by a host (`INBOX/.rlewatch/claims/HOST/…`, since the claim's ctime:
//! the rename into the claim folder sets it), or in the failed folder with
//! its `NAME.error.txt` note. Only reads.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::daemon::config::Paths;
use crate::layout::{InboxLayout, is_state_dir};

/// What to look for on disk.
pub enum Look<'a> {
    /// This path relative to the inbox (and to the failed folder).
    Path(&'a Path),
    /// Any file of this name.
    Name(&'a OsStr),
    /// Any file whose relative path or name matches.
    Glob(&'a globset::GlobMatcher),
}

impl Look<'_> {
    pub fn matches(&self, rel: &Path) -> bool {
        match self {
            Look::Path(p) => rel == *p,
            Look::Name(n) => rel.file_name() == Some(n),
            Look::Glob(g) => g.is_match(rel) || rel.file_name().is_some_and(|n| g.is_match(n)),
        }
    }
}

/// A file found in one of the folders.
#[derive(Debug, Clone)]
pub enum Seen {
    /// In the inbox, at `rel`, last modified at `since`.
    Waiting {
        rel: PathBuf,
        since: SystemTime,
        size: u64,
    },
    /// In `host`'s claim folder since `since`; `heartbeat` is the age of
    /// that host's heartbeat (none: it has none).
    Claimed {
        rel: PathBuf,
        host: String,
        since: SystemTime,
        heartbeat: Option<std::time::Duration>,
    },
    /// In the failed folder at `path` (relative to it); `source` is where
    /// its note says it was dropped (relative to the inbox) when it says.
    Failed {
        path: PathBuf,
        source: Option<PathBuf>,
        note: Option<Note>,
    },
}

impl Seen {
    /// The inbox-relative path it is about.
    pub fn source(&self) -> PathBuf {
        match self {
            Seen::Waiting { rel, .. } | Seen::Claimed { rel, .. } => rel.clone(),
            Seen::Failed { path, source, .. } => source.clone().unwrap_or_else(|| path.clone()),
        }
    }
}

/// A quarantined file's `NAME.error.txt`.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub reason: String,
    pub time: String,
    pub attempts: String,
}

/// Files of the inbox, the claim folders and the failed folder `look`
/// matches; `warn` hears of folders that cannot be read.
pub fn look(paths: &Paths, look: &Look, warn: &mut dyn FnMut(String)) -> Vec<Seen> {
    let mut out = Vec::new();
    let inbox = InboxLayout::new(&paths.inbox);
    for (rel, m) in files(&paths.inbox, look, true, warn) {
        out.push(Seen::Waiting {
            since: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            size: m.len(),
            rel,
        });
    }
    let root = inbox.claims_root();
    if let Ok(hosts) = fs::read_dir(&root) {
        for host in hosts.flatten() {
            let host = host.file_name().to_string_lossy().into_owned();
            let heartbeat = fs::metadata(inbox.heartbeat(&host))
                .and_then(|m| m.modified())
                .ok()
                .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
            for (rel, m) in files(&inbox.claims(&host), look, false, warn) {
                use std::os::unix::fs::MetadataExt;
                let since = SystemTime::UNIX_EPOCH
                    + std::time::Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32);
                out.push(Seen::Claimed {
                    rel,
                    host: host.clone(),
                    since,
                    heartbeat,
                });
            }
        }
    }
    for (path, _) in failed_files(&paths.failed, warn) {
        let text = fs::read(paths.failed.join(note_name(&path))).ok();
        let note = text.as_deref().map(parse_note);
        let source = text
            .as_deref()
            .and_then(file_line)
            .and_then(|f| f.strip_prefix(&paths.inbox).ok().map(Path::to_path_buf));
        let found = look.matches(&path) || source.as_deref().is_some_and(|s| look.matches(s));
        if found {
            out.push(Seen::Failed { path, source, note });
        }
    }
    out
}

/// The files below `dir` (relative paths) that `look` matches, rlewatch's
/// own folder left out; a path is looked up directly, not walked.
fn files(
    dir: &Path,
    look: &Look,
    skip_state: bool,
    warn: &mut dyn FnMut(String),
) -> Vec<(PathBuf, fs::Metadata)> {
    if let Look::Path(p) = look {
        return match fs::symlink_metadata(dir.join(p)) {
            Ok(m) if !m.is_dir() => vec![(p.to_path_buf(), m)],
            _ => Vec::new(),
        };
    }
    walk(dir, skip_state, warn)
        .into_iter()
        .filter(|(rel, _)| look.matches(rel))
        .collect()
}

/// Every file below `dir` but rlewatch's own folder (when `skip_state`);
/// nothing when `dir` does not exist.
fn walk(
    dir: &Path,
    skip_state: bool,
    warn: &mut dyn FnMut(String),
) -> Vec<(PathBuf, fs::Metadata)> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(skip_state && e.depth() == 1 && is_state_dir(e.file_name())));
    for e in walker {
        match e {
            Ok(e) if !e.file_type().is_dir() => {
                let Ok(m) = e.metadata() else { continue };
                let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf();
                out.push((rel, m));
            }
            Ok(_) => {}
            Err(e) => warn(format!("{}: {e}", crate::display::shown(dir))),
        }
    }
    out
}

/// The quarantined files of the failed folder (their notes left out).
fn failed_files(failed: &Path, warn: &mut dyn FnMut(String)) -> Vec<(PathBuf, fs::Metadata)> {
    walk(failed, false, warn)
        .into_iter()
        .filter(|(rel, _)| !is_note(rel))
        .collect()
}

fn is_note(rel: &Path) -> bool {
    rel.file_name()
        .is_some_and(|n| n.as_encoded_bytes().ends_with(b".error.txt"))
}

/// `NAME.error.txt` beside `rel` (as `archive::dispose` names it).
pub fn note_name(rel: &Path) -> PathBuf {
    let name = rel.file_name().unwrap_or_default();
    rel.with_file_name(crate::durable::fit_name(name, ".error.txt"))
}

/// The fields of a note (`reason:`, `time:`, `attempts:`).
fn parse_note(text: &[u8]) -> Note {
    let text = String::from_utf8_lossy(text);
    let mut note = Note::default();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("reason: ") {
            note.reason = v.to_string();
        } else if let Some(v) = line.strip_prefix("time: ") {
            note.time = v.to_string();
        } else if let Some(v) = line.strip_prefix("attempts: ") {
            note.attempts = v.to_string();
        }
    }
    note
}

/// The `file:` line of a note: where the file was dropped.
fn file_line(bytes: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let line = bytes.split(|&b| b == b'\n').next()?;
    line.strip_prefix(b"file: ")
        .map(|p| PathBuf::from(OsStr::from_bytes(p)))
}

/// A time as the output shows it: RFC 3339, UTC, whole seconds.
pub fn time_of(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
