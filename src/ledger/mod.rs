//! The ledger (design §4.7): an append-only record in the archive of every
//! file archived, one JSON object per line, fsynced before the original is
//! filed away. It answers "was this very file archived already?" after a
//! crash (by the source's relative path, size and digest — never by names
//! or modification times) and is what `rlewatch audit` checks the archive
//! against.
//!
//! Layout ([`crate::layout`]): `ARCHIVE/.rlewatch/ledger/HOST/YYYY-MM-DD.jsonl`, one file per
//! host (no two hosts ever append to one file, which network filesystems
//! would not keep atomic) and per UTC day, so no file grows without bound:
//! at 100,000 files a day a day's file is about 40 MB, and a year is 365
//! files per host that can be compressed or moved once audited.
//!
//! The daemon remembers the newest [`INDEX_MAX`] entries of each host in
//! memory, as hashes (about 60 bytes an entry), for the "already
//! archived?" question: a file whose archive was
//! published just before a crash is among them, because claims left by a
//! crash are finished first at the next start, before anything new is
//! recorded.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::layout::ArchiveLayout;

pub mod index;
mod read;
mod record;
#[cfg(test)]
mod tests;

pub use read::{
    AuditLine, Checked, LineAt, LineError, files, for_each_line, for_each_line_in,
    for_each_raw_line_in, for_each_record, parse_for_audit, parse_line, read_line_at,
};
pub use record::{
    Event, Fate, Filed, Line, Quarantined, ReasonClass, Record, Removed, RemovedWhat, Retried, hex,
    now, path_fields, path_hash,
};

use read::{read_dir_sorted, read_from, read_tail};
use record::{Key, key, key_of};

/// The ledger format's version, the `v` of every line written. Version 2
/// added `format` (the source's image format); version 3 added the event
/// lines (`kind`: where the original went, quarantines, removals,
/// retries); versions 1 (all of BMP sources) and 2 are read alongside
/// (design §4.7).
pub const VERSION: u32 = 3;

/// The versions this build reads.
pub const READS: std::ops::RangeInclusive<u32> = 1..=VERSION;

/// How many of each host's newest entries the daemon keeps in memory
/// (about 60 bytes each). A crash's leftover claims are finished before
/// anything new is recorded, so their entries are always among them.
pub const INDEX_MAX: usize = 4096;

/// The ledger of one archive folder as one daemon writes it.
#[derive(Debug)]
pub struct Ledger {
    root: PathBuf,
    dir: PathBuf,
    host: String,
    state: Mutex<State>,
    syncs: Mutex<Syncs>,
    synced: std::sync::Condvar,
}

/// Group commit: the finishers append concurrently, and one fdatasync
/// makes every line written before it started durable, so a thread whose
/// line an fdatasync in progress (or just finished) covers waits for it
/// instead of issuing its own.
#[derive(Debug, Default)]
struct Syncs {
    /// Lines written, and lines known durable, counted in write order.
    written: u64,
    durable: u64,
    /// An fdatasync is in progress.
    busy: bool,
    /// The file the lines not yet durable were written to.
    file: Option<std::sync::Arc<File>>,
}

#[derive(Debug, Default)]
struct State {
    /// Today's file, open for appending: its day, path and handle.
    file: Option<(String, PathBuf, std::sync::Arc<File>)>,
    /// Source → hash of its archive's path.
    index: HashMap<Key, u64>,
    /// How far each ledger file has been read (to the end of its last
    /// complete line).
    offsets: HashMap<PathBuf, u64>,
    /// The archives the remembered entries name.
    archives: HashMap<u64, u32>,
    order: VecDeque<Key>,
}

impl State {
    fn remember(&mut self, e: &Record) {
        let key = key_of(e);
        let archive = path_hash(&e.archive_path());
        *self.archives.entry(archive).or_default() += 1;
        if let Some(old) = self.index.insert(key, archive) {
            self.forget_archive(old);
        } else {
            self.order.push_back(key);
        }
        while self.order.len() > INDEX_MAX {
            if let Some(old) = self.order.pop_front()
                && let Some(archive) = self.index.remove(&old)
            {
                self.forget_archive(archive);
            }
        }
    }

    fn forget_archive(&mut self, archive: u64) {
        if let Some(n) = self.archives.get_mut(&archive) {
            *n -= 1;
            if *n == 0 {
                self.archives.remove(&archive);
            }
        }
    }
}

impl State {
    /// The host's two newest files (`files`, sorted) that the start did
    /// not need to read: known from their end, so that [`Ledger::refresh`],
    /// which reads each host's two newest files, reads what is appended
    /// to them from now on, not a day's 40 MB older than every entry
    /// remembered.
    fn skip_newest_unread(&mut self, files: &[(String, PathBuf)]) {
        for (_, file) in files.iter().rev().take(2) {
            if !self.offsets.contains_key(file)
                && let Ok((_, end)) = read_tail(file, 0)
            {
                self.offsets.insert(file.clone(), end);
            }
        }
    }
}

impl Ledger {
    /// The ledger of `archive` for `host`, with the newest entries of every
    /// host's ledger remembered.
    pub fn open(archive: &Path, host: &str) -> io::Result<Ledger> {
        let root = ArchiveLayout::new(archive).ledger();
        let named = |p: &Path| {
            let p = p.to_path_buf();
            move |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()))
        };
        // Sized for its cap at once: no rehashing as it fills, so its
        // memory stays flat in a long run.
        let mut state = State {
            index: HashMap::with_capacity(INDEX_MAX + 1),
            archives: HashMap::with_capacity(INDEX_MAX + 1),
            order: VecDeque::with_capacity(INDEX_MAX + 1),
            ..State::default()
        };
        for (_, files) in read_dir_sorted(&root).map_err(named(&root))? {
            if !files.is_dir() {
                continue;
            }
            // Newest files first, until INDEX_MAX entries of this host.
            let mut entries = Vec::new();
            let sorted = read_dir_sorted(&files).map_err(named(&files))?;
            for (_, file) in sorted.iter().rev() {
                let want = INDEX_MAX - entries.len();
                let (lines, end) = read_tail(file, want).map_err(named(file))?;
                state.offsets.insert(file.clone(), end);
                entries.splice(0..0, lines);
                if entries.len() >= INDEX_MAX {
                    break;
                }
            }
            state.skip_newest_unread(&sorted);
            let skip = entries.len().saturating_sub(INDEX_MAX);
            for e in &entries[skip..] {
                state.remember(e);
            }
        }
        let dir = ArchiveLayout::new(archive).ledger_of(host);
        // The ledger's folders exist from the start, so that `audit` tells
        // an archive nothing was archived into yet from a folder that is
        // none (design §4.7). Not the archive folder itself (a share not
        // mounted); a failure here is met again, and reported, at the
        // first entry.
        if archive.is_dir()
            && let Err(e) = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(&dir)
        {
            tracing::debug!("{}: {e}", dir.display());
        }
        Ok(Ledger {
            dir,
            root,
            host: host.to_string(),
            state: Mutex::new(state),
            syncs: Mutex::default(),
            synced: std::sync::Condvar::new(),
        })
    }

    /// Reads what was appended since last looked at — by other daemons,
    /// other hosts — to the ledger files already known and to each host's
    /// two newest files: called before deciding that a file whose name is
    /// taken in the archive was not archived yet.
    pub fn refresh(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(hosts) = read_dir_sorted(&self.root) else {
            return;
        };
        for (_, dir) in hosts {
            let Ok(files) = read_dir_sorted(&dir) else {
                continue;
            };
            let newest = files.len().saturating_sub(2);
            for (i, (_, file)) in files.into_iter().enumerate() {
                let known = state.offsets.get(&file).copied();
                if known.is_none() && i < newest {
                    continue;
                }
                if let Ok((lines, end)) = read_from(&file, known.unwrap_or(0)) {
                    for e in &lines {
                        state.remember(e);
                    }
                    state.offsets.insert(file, end);
                }
            }
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The hash ([`path_hash`]) of the archive recorded for this source,
    /// if any.
    pub fn find(&self, source: &Path, size: u64, xxh3: u64) -> Option<u64> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.index.get(&key(source, size, xxh3)).copied()
    }

    /// True when a remembered entry names the archive `archive` (relative
    /// path).
    pub fn records_archive(&self, archive: &Path) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.archives.contains_key(&path_hash(archive))
    }

    /// Appends `entry` and makes it durable (fdatasync; the folder too when
    /// the day's file is new).
    pub fn append(&self, entry: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.write_locked(&mut state, &entry.time, &line)?;
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        state.remember(entry);
        let seq = {
            let mut g = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
            g.written += 1;
            g.written
        };
        drop(state);
        self.make_durable(seq).map_err(named)
    }

    /// Appends an event line (`filed`, `quarantined`, `removed`,
    /// `retried`) to this host's file of the line's day, in one write (never
    /// torn by another writer), without waiting for it to be durable: a
    /// power cut may lose the newest of them (design §4.7). An archived
    /// entry given here goes through [`Ledger::append`].
    pub fn append_event(&self, event: &Line) -> io::Result<()> {
        if let Line::Archived(e) = event {
            return self.append(e);
        }
        let mut line = event.to_json().map_err(io::Error::other)?;
        line.push(b'\n');
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.write_locked(&mut state, event.time(), &line)
            .map(|_| ())
    }

    /// Writes `line` (with its newline) to this host's file of the day of
    /// `time` in one write, opening it first when needed; returns its path.
    fn write_locked(&self, state: &mut State, time: &str, line: &[u8]) -> io::Result<PathBuf> {
        let day = time.get(..10).unwrap_or("unknown").to_string();
        // Reopened for a new day, and when the file was removed or replaced
        // since it was opened (entries appended to a deleted file would be
        // lost).
        if state
            .file
            .as_ref()
            .is_none_or(|(d, path, f)| *d != day || !same_inode(path, f))
        {
            // Lines written to the old file are made durable before lines
            // go to the new one: a group commit then covers one file.
            if let Some((_, _, old)) = state.file.take() {
                old.sync_data()?;
                let mut g = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
                g.durable = g.written;
            }
            let (path, file) = self.open_day(&day)?;
            let file = std::sync::Arc::new(file);
            self.syncs.lock().unwrap_or_else(|p| p.into_inner()).file = Some(file.clone());
            state.file = Some((day.clone(), path, file));
        }
        let (_, path, file) = state.file.as_ref().expect("BUG: opened above");
        let (path, file) = (path.clone(), file.clone());
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let before = file.metadata().map_err(named)?.len();
        // One write with O_APPEND: even a second daemon appending to the
        // same file cannot interleave within a line.
        if let Err(e) = (&*file).write_all(line) {
            // A partial line (disk full) is taken back, so the ledger never
            // keeps half an entry.
            let _ = withdraw(&file, before, line);
            state.file = None;
            return Err(named(e));
        }
        Ok(path)
    }

    /// Returns once line `seq` is durable: an fdatasync started after it
    /// was written has finished, this thread's own or another's.
    fn make_durable(&self, seq: u64) -> io::Result<()> {
        let mut g = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if g.durable >= seq {
                return Ok(());
            }
            if g.busy {
                g = self.synced.wait(g).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            g.busy = true;
            let target = g.written;
            let file = g.file.clone();
            drop(g);
            let result = file.map_or(Ok(()), |f| -> io::Result<()> {
                f.sync_data()?;
                #[cfg(test)]
                crate::durable::tests::synced(&f);
                Ok(())
            });
            g = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
            g.busy = false;
            if result.is_ok() {
                g.durable = g.durable.max(target);
            }
            self.synced.notify_all();
            result?;
        }
    }

    /// Opens (creating) the file of `day`; a last line torn by a crash is
    /// closed with a newline so that the next entry starts a line of its
    /// own.
    fn open_day(&self, day: &str) -> io::Result<(PathBuf, File)> {
        // The archive folder itself is not made again (a share unmounted):
        // only the ledger's folders in it.
        if let Some(archive) = self.dir.ancestors().nth(3)
            && !archive.is_dir()
        {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is missing", archive.display()),
            ));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&self.dir)?;
        let path = self.dir.join(format!("{day}.jsonl"));
        let existed = path.exists();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)
            .map_err(named)?;
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
            // The file, then each folder in its parent, up to the archive
            // folder: `ledger/HOST`, `ledger`, `.rlewatch` may all be new,
            // and a folder is durable in its parent only once the parent
            // is fsynced (design §4.7, "Power loss").
            file.sync_all()?;
            for dir in self.dir.ancestors().take(4) {
                crate::durable::sync_dir(dir)?;
            }
        }
        Ok((path, file))
    }
}

/// True when `path` still names the file open as `file`.
fn same_inode(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// After a failed append: when the file ends with a prefix of `line`
/// starting at `before` (this append's partial write, nothing appended
/// after it), cuts it off.
fn withdraw(mut file: &File, before: u64, line: &[u8]) -> io::Result<()> {
    let now = file.metadata()?.len();
    if now <= before || now - before > line.len() as u64 {
        return Ok(());
    }
    let mut tail = vec![0u8; (now - before) as usize];
    file.seek(SeekFrom::Start(before))?;
    file.read_exact(&mut tail)?;
    if line.starts_with(&tail) {
        file.set_len(before)?;
        file.sync_data()?;
    }
    Ok(())
}
