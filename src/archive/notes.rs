//! Error notes and the history of failures (design §4.4, "Retrying
//! failures"): the `NAME.error.txt` written beside a quarantined file, what
//! `rlewatch retry` and the daemon read back from it, and the history of a
//! file put back into the inbox. A file's failures are always in exactly
//! one place: its note in failed/ while it is there; the history
//! (`INBOX/.rlewatch/history/REL.error.txt`, [`crate::layout`]) while it is
//! back in the inbox; a new note (which takes the history in, under
//! `earlier:`) when it fails again. The history is removed once the file is
//! archived (the ledger keeps every quarantine and retry for good).
//!
//! Never removes a note whose file is still beside it.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::display::shown;
use crate::durable;
use crate::layout::InboxLayout;

/// The suffix of an error note: `failed/a.bmp` has `failed/a.bmp.error.txt`.
pub const NOTE_SUFFIX: &str = ".error.txt";

/// The note of the file named `name` in the folder `dir`.
pub fn note_path(dir: &Path, name: &OsStr) -> PathBuf {
    dir.join(durable::fit_name(name, NOTE_SUFFIX))
}

/// The note of the file at `file`.
pub fn note_of(file: &Path) -> PathBuf {
    note_path(
        file.parent().unwrap_or(Path::new("")),
        file.file_name().unwrap_or_default(),
    )
}

/// True for the name of an error note.
pub fn is_note_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().ends_with(NOTE_SUFFIX.as_bytes())
}

/// Where the history of the file dropped as `rel` (relative to the inbox)
/// is kept while it is back in the inbox.
pub fn history_path(inbox: &Path, rel: &Path) -> PathBuf {
    let dir = InboxLayout::new(inbox)
        .history()
        .join(rel.parent().unwrap_or(Path::new("")));
    note_path(&dir, rel.file_name().unwrap_or_default())
}

/// The fields of a note that matter to `retry` (every line is
/// `key: value`; `earlier:` starts the history, indented).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    /// The `file:` line: the path the file was dropped as, as shown in
    /// logs ([`shown`]).
    pub file: Option<String>,
    pub reason: Option<String>,
    pub time: Option<SystemTime>,
    pub attempts: Option<u32>,
}

impl Note {
    /// Reads the first-level fields of a note's text (the history under
    /// `earlier:` is left aside).
    pub fn parse(text: &str) -> Note {
        let mut note = Note::default();
        for line in text.lines() {
            if line.starts_with(' ') || line == "earlier:" {
                break;
            }
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            match key {
                "file" => note.file = Some(value.to_string()),
                "reason" => note.reason = Some(value.to_string()),
                "time" => note.time = humantime::parse_rfc3339(value).ok(),
                "attempts" => note.attempts = value.parse().ok(),
                _ => {}
            }
        }
        note
    }
}

/// The text of a new note: this failure, then the `history` (earlier
/// notes, each line indented under `earlier:`) when there is one.
pub fn note_text(
    file: &Path,
    reason: &str,
    time: SystemTime,
    attempts: u32,
    history: Option<&str>,
) -> String {
    let mut text = format!(
        "file: {}\nreason: {}\ntime: {}\nattempts: {attempts}\n",
        shown(file),
        one_line(reason),
        humantime::format_rfc3339_seconds(time),
    );
    if let Some(h) = history.map(str::trim_end).filter(|h| !h.is_empty()) {
        text.push_str("earlier:\n");
        for line in h.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// `s` on one line (a reason never spans lines, but a file name in it may
/// hold a newline).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The history kept for the file dropped as `rel`, if any (an unreadable
/// one is said in the log and left where it is: never lost).
pub fn read_history(inbox: &Path, rel: &Path) -> Option<(PathBuf, String)> {
    let path = history_path(inbox, rel);
    match fs::read(&path) {
        Ok(bytes) => Some((path, String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(
                "{}: cannot read the earlier failures of this file: {e}",
                shown(&path)
            );
            None
        }
    }
}

/// Adds `note` (the text of a note leaving failed/) to the history of
/// `rel`, durably, through a temporary file renamed over the history: a
/// crash leaves the old history or the new one, never a torn one.
pub fn add_to_history(inbox: &Path, rel: &Path, note: &str) -> io::Result<PathBuf> {
    let path = history_path(inbox, rel);
    let dir = path.parent().unwrap_or(Path::new("."));
    durable::create_dir_all(dir)?;
    let mut text = note.trim_end().to_string();
    text.push('\n');
    if let Ok(old) = fs::read(&path) {
        // The newest first, then what was there.
        text.push_str(String::from_utf8_lossy(&old).trim_end());
        text.push('\n');
    }
    let mut t = durable::temp_in(dir, super::FILE_MODE)?;
    t.write_all(text.as_bytes())?;
    durable::publish(t, &path, true).map_err(|e| match e {
        durable::PublishError::Io { source, .. } => source,
        exists => io::Error::new(io::ErrorKind::AlreadyExists, exists.to_string()),
    })?;
    Ok(path)
}

/// Removes the history of `rel`, if any; true when there was one.
pub fn remove_history(inbox: &Path, rel: &Path) -> io::Result<bool> {
    let path = history_path(inbox, rel);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// How old a note without its file must be before it is taken for an
/// orphan: a quarantine writes the note first and moves the file beside it
/// right after (a copy across filesystems may take a while), so a younger
/// one may be another daemon's quarantine in progress.
pub const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// After the file dropped as `rel` was archived: its note in failed/ left
/// behind when it was put back into the inbox by hand (a note without its
/// file, at least [`ORPHAN_AGE`] old) is removed, and its history too;
/// each is said in the log with the reason it held. A note whose file is
/// still there is never touched.
pub fn settle_after_archived(inbox: &Path, failed: &Path, rel: &Path, shown_src: &str) {
    let name = rel.file_name().unwrap_or_default();
    let dir = failed.join(rel.parent().unwrap_or(Path::new("")));
    let file = dir.join(name);
    let note = note_path(&dir, name);
    let orphan = fs::symlink_metadata(&file).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        && fs::symlink_metadata(&note).is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= ORPHAN_AGE)
        });
    if orphan {
        let said = fs::read(&note)
            .map(|b| Note::parse(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        match fs::remove_file(&note).and_then(|()| durable::sync_dir(&dir)) {
            Ok(()) => tracing::info!(
                "{shown_src}: archived, so its old error note {} was removed (it said: {})",
                shown(&note),
                said.reason.as_deref().unwrap_or("no reason")
            ),
            Err(e) => tracing::warn!(
                "{}: cannot remove this orphan error note (its file {shown_src} was archived): {e}",
                shown(&note)
            ),
        }
    }
    match remove_history(inbox, rel) {
        Ok(true) => tracing::info!(
            "{shown_src}: archived after being retried; its earlier failures stay in the ledger"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(
            "{}: cannot remove the earlier failures of this archived file: {e}",
            shown(&history_path(inbox, rel))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_its_fields_and_keeps_the_history_indented() {
        let t = humantime::parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        let first = note_text(Path::new("/in/a.bmp"), "bad header", t, 1, None);
        assert_eq!(
            first,
            "file: /in/a.bmp\nreason: bad header\ntime: 2026-01-02T03:04:05Z\nattempts: 1\n"
        );
        let second = note_text(Path::new("/in/a.bmp"), "truncated", t, 2, Some(&first));
        assert!(second.ends_with(
            "earlier:\n  file: /in/a.bmp\n  reason: bad header\n  time: 2026-01-02T03:04:05Z\n  attempts: 1\n"
        ));
        let n = Note::parse(&second);
        assert_eq!(n.reason.as_deref(), Some("truncated"));
        assert_eq!(n.attempts, Some(2));
        assert_eq!(n.time, Some(t));
        assert_eq!(n.file.as_deref(), Some("/in/a.bmp"));
    }

    #[test]
    fn a_name_with_a_newline_stays_on_one_line() {
        let t = SystemTime::UNIX_EPOCH;
        let text = note_text(Path::new("/in/a\nb.bmp"), "x\ny", t, 1, None);
        assert_eq!(text.lines().count(), 4);
        assert_eq!(Note::parse(&text).file.as_deref(), Some("/in/a\\nb.bmp"));
    }

    #[test]
    fn history_is_below_the_inbox_state_folder_by_inbox_path() {
        assert_eq!(
            history_path(Path::new("/in"), Path::new("sub/a.bmp")),
            Path::new("/in/.rlewatch/history/sub/a.bmp.error.txt")
        );
        assert_eq!(
            note_of(Path::new("/failed/sub/a-1.bmp")),
            Path::new("/failed/sub/a-1.bmp.error.txt")
        );
    }
}
