//! The one reader of the ledger (`ARCHIVE/.rlewatch/ledger/HOST/…`, one
//! JSON object per line): every test that looks at what was recorded
//! reads it here.

use std::path::{Path, PathBuf};

/// Every ledger file under `archive`, from every host's folder, in the
/// order the walk finds them.
pub fn files(archive: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(archive.join(".rlewatch/ledger"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Every archived entry's line under `archive`, from every host's files
/// (a last line still being written included): the version-3 event lines
/// (those with a `kind`: where the original went, quarantines, …) are
/// left out, see [`events`].
pub fn lines(archive: &Path) -> Vec<String> {
    all_lines(archive)
        .into_iter()
        .filter(|l| !is_event(l))
        .collect()
}

/// Every line under `archive`, of every kind.
pub fn all_lines(archive: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for file in files(archive) {
        out.extend(
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    out
}

/// A whole line with a `kind` field (an event line of version 3).
fn is_event(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.get("kind").is_some())
}

/// Every event line (`filed`, `quarantined`, `removed`, `retried`) under
/// `archive`, parsed.
pub fn events(archive: &Path) -> Vec<serde_json::Value> {
    all_lines(archive)
        .iter()
        .filter(|l| is_event(l))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every ledger entry under `archive`, parsed; a line that is not JSON
/// fails the test.
pub fn entries(archive: &Path) -> Vec<serde_json::Value> {
    lines(archive)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}")))
        .collect()
}

/// Every ledger entry under `archive` whose line is whole (ends with its
/// newline), parsed: after a power cut the last line of a file may be
/// torn, and a torn line records nothing.
pub fn whole_entries(archive: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for file in files(archive) {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && !is_event(l.trim_end()))
        {
            out.push(
                serde_json::from_str(line.trim_end())
                    .unwrap_or_else(|err| panic!("{}: {line:?}: {err}", file.display())),
            );
        }
    }
    out
}
