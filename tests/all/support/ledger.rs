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

/// Every ledger line under `archive`, from every host's files (a last
/// line still being written included).
pub fn lines(archive: &Path) -> Vec<String> {
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
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            out.push(
                serde_json::from_str(line.trim_end())
                    .unwrap_or_else(|err| panic!("{}: {line:?}: {err}", file.display())),
            );
        }
    }
    out
}
