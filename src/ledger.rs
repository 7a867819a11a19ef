//! The ledger (design §4.7): an append-only record in the archive of every
//! file archived, one JSON object per line, fsynced before the original is
//! filed away. It answers "was this very file archived already?" after a
//! crash (by the source's relative path, size and digest — never by names
//! or modification times) and is what `rlewatch audit` checks the archive
//! against.
//!
//! Layout: `ARCHIVE/.rlewatch/ledger/HOST/YYYY-MM-DD.jsonl`, one file per
//! host (no two hosts ever append to one file, which network filesystems
//! would not keep atomic) and per UTC day, so no file grows without bound:
//! at 100,000 files a day a day's file is about 40 MB, and a year is 365
//! files per host that can be compressed or moved once audited.
//!
//! The daemon remembers the newest [`INDEX_MAX`] entries of each host in
//! memory for the "already archived?" question: a file whose archive was
//! published just before a crash is among them, because claims left by a
//! crash are finished first at the next start, before anything new is
//! recorded.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The folder, inside the archive (and the inbox), that holds rlewatch's
/// own state; hidden, so never work.
pub const STATE_DIR: &str = ".rlewatch";

/// The ledger format's version, the `v` of every entry.
pub const VERSION: u32 = 1;

/// How many of each host's newest entries the daemon keeps in memory.
pub const INDEX_MAX: usize = 100_000;

/// One archived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// When the entry was written, RFC 3339, UTC.
    pub time: String,
    /// The host id of the daemon that archived the file.
    pub host: String,
    /// The source's path relative to the inbox.
    pub source: String,
    pub source_size: u64,
    /// XXH3-64 of the source's bytes, 16 hex digits.
    pub source_xxh3: String,
    /// The archive's path relative to the archive folder.
    pub archive: String,
    pub archive_size: u64,
    /// XXH3-64 of the archive's bytes, 16 hex digits.
    pub archive_xxh3: String,
    pub width: u32,
    pub height: u32,
    /// `dither` or `threshold`.
    pub conversion: String,
    /// Every source pixel was pure black or white.
    pub lossless: bool,
}

/// 16 lowercase hex digits.
pub fn hex(digest: u64) -> String {
    format!("{digest:016x}")
}

/// What identifies a source for "already archived?": its relative path,
/// size and digest.
type Key = (String, u64, String);

fn key_of(e: &Entry) -> Key {
    (e.source.clone(), e.source_size, e.source_xxh3.clone())
}

/// `ARCHIVE/.rlewatch/ledger`.
pub fn root(archive: &Path) -> PathBuf {
    archive.join(STATE_DIR).join("ledger")
}

/// The ledger of one archive folder as one daemon writes it.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    host: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Today's file, open for appending, and its day.
    file: Option<(String, File)>,
    index: HashMap<Key, String>,
    /// The archives the remembered entries name.
    archives: HashMap<String, u32>,
    order: VecDeque<Key>,
}

impl State {
    fn remember(&mut self, e: &Entry) {
        let key = key_of(e);
        *self.archives.entry(e.archive.clone()).or_default() += 1;
        if let Some(old) = self.index.insert(key.clone(), e.archive.clone()) {
            self.forget_archive(&old);
        } else {
            self.order.push_back(key);
        }
        while self.order.len() > INDEX_MAX {
            if let Some(old) = self.order.pop_front()
                && let Some(archive) = self.index.remove(&old)
            {
                self.forget_archive(&archive);
            }
        }
    }

    fn forget_archive(&mut self, archive: &str) {
        if let Some(n) = self.archives.get_mut(archive) {
            *n -= 1;
            if *n == 0 {
                self.archives.remove(archive);
            }
        }
    }
}

impl Ledger {
    /// The ledger of `archive` for `host`, with the newest entries of every
    /// host's ledger remembered.
    pub fn open(archive: &Path, host: &str) -> io::Result<Ledger> {
        let root = root(archive);
        let mut state = State::default();
        for (_, files) in read_dir_sorted(&root)? {
            // Newest files first, until INDEX_MAX entries of this host.
            let mut entries = Vec::new();
            for file in read_dir_sorted(&files)?.into_iter().rev() {
                let mut lines = Vec::new();
                for_each_entry(&file.1, |_, e| {
                    if let Ok(e) = e {
                        lines.push(e);
                    }
                })?;
                entries.splice(0..0, lines);
                if entries.len() >= INDEX_MAX {
                    break;
                }
            }
            let skip = entries.len().saturating_sub(INDEX_MAX);
            for e in &entries[skip..] {
                state.remember(e);
            }
        }
        Ok(Ledger {
            dir: root.join(host),
            host: host.to_string(),
            state: Mutex::new(state),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The archive (relative path) recorded for this source, if any.
    pub fn find(&self, source: &str, size: u64, xxh3: u64) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .index
            .get(&(source.to_string(), size, hex(xxh3)))
            .cloned()
    }

    /// True when a remembered entry names the archive `archive` (relative
    /// path).
    pub fn records_archive(&self, archive: &str) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.archives.contains_key(archive)
    }

    /// Appends `entry` and makes it durable (fdatasync; the folder too when
    /// the day's file is new).
    pub fn append(&self, entry: &Entry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let day = entry.time.get(..10).unwrap_or("unknown").to_string();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.file.as_ref().is_none_or(|(d, _)| *d != day) {
            state.file = None;
            state.file = Some((day.clone(), self.open_day(&day)?));
        }
        let (_, file) = state.file.as_mut().expect("opened above");
        // One write with O_APPEND: even a second daemon appending to the
        // same file cannot interleave within a line.
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        if let Err(e) = written {
            state.file = None;
            return Err(e);
        }
        state.remember(entry);
        Ok(())
    }

    /// Opens (creating) the file of `day`; a last line torn by a crash is
    /// closed with a newline so that the next entry starts a line of its
    /// own.
    fn open_day(&self, day: &str) -> io::Result<File> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&self.dir)?;
        let path = self.dir.join(format!("{day}.jsonl"));
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        if !existed {
            file.sync_all()?;
            crate::durable::sync_dir(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                crate::durable::sync_dir(parent)?;
            }
        }
        Ok(file)
    }
}

use std::os::unix::fs::DirBuilderExt;

/// The entries of `dir` (name, path), sorted by name; empty when `dir`
/// does not exist.
fn read_dir_sorted(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
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
    for (host, dir) in read_dir_sorted(&root(archive))? {
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

/// Calls `f` with (line number, entry or why the line is unreadable) for
/// every non-empty line of a ledger file.
pub fn for_each_entry(
    path: &Path,
    mut f: impl FnMut(usize, Result<Entry, String>),
) -> io::Result<()> {
    let reader = BufReader::new(File::open(path)?);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<Entry>(&line)
            .map_err(|e| e.to_string())
            .and_then(|e| {
                if e.v == VERSION {
                    Ok(e)
                } else {
                    Err(format!("unknown ledger version {}", e.v))
                }
            });
        f(n + 1, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &str, digest: u64, archive: &str, time: &str) -> Entry {
        Entry {
            v: VERSION,
            time: time.into(),
            host: "h".into(),
            source: source.into(),
            source_size: 10,
            source_xxh3: hex(digest),
            archive: archive.into(),
            archive_size: 5,
            archive_xxh3: hex(7),
            width: 1,
            height: 1,
            conversion: "dither".into(),
            lossless: true,
        }
    }

    #[test]
    fn entries_are_found_by_path_size_and_digest_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), "h").unwrap();
        l.append(&entry("a/x.bmp", 1, "a/x.rle", "2026-11-25T23:59:59Z"))
            .unwrap();
        l.append(&entry("a/x.bmp", 2, "a/x-1.rle", "2026-11-26T00:00:01Z"))
            .unwrap();
        // A day per file.
        let files = files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].1.ends_with("h/2026-11-25.jsonl"));
        let again = Ledger::open(dir.path(), "other").unwrap();
        assert_eq!(again.find("a/x.bmp", 10, 1).as_deref(), Some("a/x.rle"));
        assert_eq!(again.find("a/x.bmp", 10, 2).as_deref(), Some("a/x-1.rle"));
        assert_eq!(again.find("a/x.bmp", 10, 3), None);
        assert_eq!(again.find("b/x.bmp", 10, 1), None);
        assert_eq!(again.find("a/x.bmp", 11, 1), None);
        assert!(again.records_archive("a/x-1.rle"));
        assert!(!again.records_archive("a/x-2.rle"));
    }

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_entry() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), "h").unwrap();
        l.append(&entry("x.bmp", 1, "x.rle", "2026-11-26T10:00:00Z"))
            .unwrap();
        drop(l);
        let path = root(dir.path()).join("h/2026-11-26.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":1,\"time\":\"2026-").unwrap();
        let l = Ledger::open(dir.path(), "h").unwrap();
        l.append(&entry("y.bmp", 2, "y.rle", "2026-11-26T10:00:01Z"))
            .unwrap();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for_each_entry(&path, |n, e| match e {
            Ok(e) => good.push(e.source),
            Err(_) => bad.push(n),
        })
        .unwrap();
        assert_eq!(good, ["x.bmp", "y.bmp"]);
        assert_eq!(bad, [2]);
    }

    #[test]
    fn only_the_newest_entries_are_remembered() {
        let mut s = State::default();
        for i in 0..INDEX_MAX + 3 {
            s.remember(&entry(&format!("{i}.bmp"), 1, "x.rle", "t"));
        }
        assert_eq!(s.index.len(), INDEX_MAX);
        assert!(!s.index.contains_key(&("0.bmp".into(), 10, hex(1))));
        assert!(
            s.index
                .contains_key(&(format!("{}.bmp", INDEX_MAX + 2), 10, hex(1)))
        );
    }
}
