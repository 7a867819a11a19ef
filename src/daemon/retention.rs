//! Retention (design §4.4, "Retention"), off by default: a thread of its
//! own that, at the start, after each reload and then hourly, removes
//!
//! - originals in done/ older than `originals.done_retention_days` (by
//!   mtime, and filed that long ago by the ledger), only when the ledger's `filed` line naming that done/ path
//!   leads to an archived entry whose source digest is the file's digest
//!   now, and its archive exists and decodes strictly to its recorded
//!   digest at that moment (what `rlewatch audit` checks). An original with
//!   no `filed` line (filed before ledger version 3) counts when an
//!   archived entry names its done/ path as its inbox path with the same
//!   digest; anything else is kept, and said so once;
//! - quarantined files in failed/ (and their notes) older than
//!   `failed.retention_days` (by the note's time), and notes left without
//!   their file that old.
//!
//! Each removal is logged (MESSAGE_ID "removed"), written to the ledger as
//! a `removed` line and counted. The work is bounded: candidates go in
//! batches, and the ledger is read once per batch from the day of the
//! batch's oldest mtime on (an original's archive is recorded after it was
//! last written), never per file. It never touches the inbox or the
//! archive, and stops between two files when the daemon stops.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tracing::{info, warn};

use crate::archive::notes::{self, Note};
use crate::display::shown;
use crate::ledger::{self, Fate, Ledger, Line, Record, Removed, RemovedWhat};

/// How often a pass runs after the first.
const PERIOD: Duration = Duration::from_secs(3600);

/// Candidates handled per read of the ledger.
const BATCH: usize = 10_000;

/// Candidates taken per pass (the oldest); a pass that had more is
/// followed at once by another.
const PASS_MAX: usize = 100_000;

/// What a pass needs to know: the folders, the ages, this host's ledger.
#[derive(Clone)]
pub struct Setup {
    pub archive: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub host: String,
    pub done_after: Option<Duration>,
    pub failed_after: Option<Duration>,
    pub ledger: Arc<Ledger>,
}

/// The retention thread, as the coordinator holds it.
pub struct Retention {
    setup: Arc<Mutex<Setup>>,
    wake: Option<Sender<()>>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    thread: Option<JoinHandle<()>>,
}

/// Removals since the start.
#[derive(Debug, Default)]
pub struct Counts {
    pub done: AtomicU64,
    pub failed: AtomicU64,
}

impl Retention {
    /// Starts the thread; its first pass runs at once (doing nothing while
    /// both ages are off).
    pub fn start(setup: Setup) -> io::Result<Retention> {
        let setup = Arc::new(Mutex::new(setup));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let thread = std::thread::Builder::new()
            .name("retention".into())
            .spawn({
                let (setup, stop, counts) = (setup.clone(), stop.clone(), counts.clone());
                move || run(&setup, &woken, &stop, &counts)
            })?;
        Ok(Retention {
            setup,
            wake: Some(wake),
            stop,
            counts,
            thread: Some(thread),
        })
    }

    /// A reloaded configuration: used from the next pass, which runs now.
    pub fn configure(&self, setup: Setup) {
        *self.setup.lock().unwrap_or_else(|p| p.into_inner()) = setup;
        if let Some(w) = &self.wake {
            let _ = w.try_send(());
        }
    }

    /// Originals and quarantined files removed since the start.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Stops the thread (between two files) and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(setup: &Mutex<Setup>, woken: &Receiver<()>, stop: &AtomicBool, counts: &Counts) {
    // What was kept, and said so, by (path, size, mtime): not said again
    // nor looked at again while it is unchanged.
    let mut kept = HashSet::new();
    loop {
        let s = setup.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = SystemTime::now();
        let mut more = false;
        if let Some(age) = s.done_after {
            let known = kept.len();
            let (n, left) = done_pass(&s, age, now, stop, &mut kept);
            counts.done.fetch_add(n, Ordering::Relaxed);
            // Only if this pass got somewhere (removed or set aside).
            more = left && (n > 0 || kept.len() > known);
        }
        if let Some(age) = s.failed_after {
            let n = failed_pass(&s, age, now, stop);
            counts.failed.fetch_add(n, Ordering::Relaxed);
        }
        // A backlog larger than a pass: the next one at once.
        let wait = if more { Duration::ZERO } else { PERIOD };
        match woken.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// A file looked at: (relative path, size, mtime seconds, nanoseconds).
type Seen = (PathBuf, u64, i64, i64);

/// One pass over done/: the `PASS_MAX` oldest candidates (older than
/// `age`, not kept before), in batches by age. Returns how many originals
/// it removed and whether it left candidates for another pass.
fn done_pass(
    s: &Setup,
    age: Duration,
    now: SystemTime,
    stop: &AtomicBool,
    kept: &mut HashSet<Seen>,
) -> (u64, bool) {
    let Some(cutoff) = now.checked_sub(age) else {
        return (0, false);
    };
    // The oldest PASS_MAX, kept in a max-heap by mtime: memory stays
    // bounded whatever done/ holds.
    let mut oldest: BinaryHeap<(SystemTime, Seen)> = BinaryHeap::new();
    let mut more = false;
    for entry in walkdir::WalkDir::new(&s.done).min_depth(1) {
        if stop.load(Ordering::SeqCst) {
            return (0, false);
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warn!("{}: {e}", shown(e.path().unwrap_or(&s.done)));
                continue;
            }
        };
        if !entry.file_type().is_file() || crate::durable::is_temp_name(entry.file_name()) {
            continue;
        }
        let Ok(m) = entry.metadata() else { continue };
        let Ok(mtime) = m.modified() else { continue };
        if mtime >= cutoff {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&s.done)
            .expect("BUG: walkdir yields paths below its root")
            .to_path_buf();
        let seen = (rel, m.len(), m.mtime(), m.mtime_nsec());
        if kept.contains(&seen) {
            continue;
        }
        oldest.push((mtime, seen));
        if oldest.len() > PASS_MAX {
            oldest.pop();
            more = true;
        }
    }
    let candidates: Vec<(SystemTime, Seen)> = oldest.into_sorted_vec();
    let mut removed = 0;
    for batch in candidates.chunks(BATCH) {
        if stop.load(Ordering::SeqCst) {
            return (removed, false);
        }
        removed += done_batch(s, batch, stop, kept);
    }
    (removed, more)
}

/// One batch of candidates, oldest first.
fn done_batch(
    s: &Setup,
    batch: &[(SystemTime, Seen)],
    stop: &AtomicBool,
    kept: &mut HashSet<Seen>,
) -> u64 {
    let mut keep = |seen: &Seen, k: Keep| {
        let said = format!("kept {}: {}", shown(&s.done.join(&seen.0)), k.why);
        if k.warn {
            warn!("{said}");
        } else {
            info!("{said}");
        }
        kept.insert(seen.clone());
    };
    // Each file's digest now, read before the ledger is: what it must
    // match.
    let mut files = Vec::with_capacity(batch.len());
    for (mtime, seen) in batch {
        match digest_of(&s.done.join(&seen.0)) {
            Ok(d) => files.push((*mtime, seen, ledger::hex(d))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => keep(
                seen,
                Keep {
                    warn: true,
                    why: format!("cannot read it: {e}"),
                },
            ),
        }
    }
    let Some(&(first, _, _)) = files.first() else {
        return 0;
    };
    let found = Found::read(s, first, &files);
    let mut removed = 0;
    let mut touched = HashSet::new();
    for (_, seen, digest) in &files {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match judge(s, &found, seen, digest) {
            Ok(Some(v)) if remove_done(s, &seen.0, &v) => {
                removed += 1;
                touched.insert(s.done.join(seen.0.parent().unwrap_or(Path::new(""))));
            }
            Ok(_) => {}
            Err(k) => keep(seen, k),
        }
    }
    for dir in touched {
        if let Err(e) = crate::durable::sync_dir(&dir) {
            warn!("fsync of {}: {e}", shown(&dir));
        }
    }
    removed
}

/// Why an original is kept (`warn`: something is wrong, not only
/// unknown).
struct Keep {
    warn: bool,
    why: String,
}

/// What the ledger says of a batch of done/ files.
#[derive(Default)]
struct Found {
    /// Done path → the digest of every `filed` line naming it, with the
    /// archive it names and when it was written (in ledger order).
    filed: HashMap<PathBuf, Vec<(String, PathBuf, String)>>,
    /// (archive path, source digest) → its archived entry, for the digests
    /// of the batch.
    archived: HashMap<(PathBuf, String), Record>,
    /// (inbox path, source digest) → archived entry: the done/ path of an
    /// original filed before version 3 is its inbox path.
    legacy: HashMap<(PathBuf, String), Record>,
}

impl Found {
    /// Reads every host's ledger day files from the day of `oldest` (the
    /// batch's oldest mtime: a file is recorded after it was last written)
    /// on, in day order, until every file of the batch is accounted for: a
    /// `filed` line naming it with its digest and that archive's entry, or
    /// an archived entry naming it as its inbox path with its digest. In
    /// the usual case that is the day or two after the files were written;
    /// a file the ledger does not account for makes it read to the end.
    fn read(s: &Setup, oldest: SystemTime, files: &[(SystemTime, &Seen, String)]) -> Found {
        let mut f = Found::default();
        let day = humantime::format_rfc3339_seconds(oldest).to_string();
        let day = day[..10].to_string();
        let mut days: Vec<(String, PathBuf)> = match ledger::files(&s.archive) {
            Ok(list) => list
                .into_iter()
                .filter_map(|(_, p)| {
                    let d = p.file_stem()?.to_str()?.to_string();
                    (d >= day).then_some((d, p))
                })
                .collect(),
            Err(e) => {
                warn!(
                    "{}: cannot read the ledger: {e}; nothing removed from done/",
                    shown(&crate::layout::ArchiveLayout::new(&s.archive).ledger())
                );
                return f;
            }
        };
        days.sort();
        let wanted: HashMap<&Path, &str> = files
            .iter()
            .map(|(_, seen, d)| (seen.0.as_path(), d.as_str()))
            .collect();
        let digests: HashSet<&str> = wanted.values().copied().collect();
        for (_, file) in &days {
            let read = ledger::for_each_line_in(file, |_, line| match line {
                Ok(Line::Filed(l)) if l.fate == Fate::Done => {
                    if let Some(p) = l.done_path().filter(|p| wanted.contains_key(p.as_path())) {
                        let archive = l.archive_path();
                        let entry = (l.source_xxh3, archive, l.time);
                        f.filed.entry(p).or_default().push(entry);
                    }
                }
                Ok(Line::Archived(r)) if digests.contains(r.source_xxh3.as_str()) => {
                    let src = r.source_path();
                    if wanted.contains_key(src.as_path()) {
                        f.legacy.insert((src, r.source_xxh3.clone()), r.clone());
                    }
                    f.archived
                        .insert((r.archive_path(), r.source_xxh3.clone()), r);
                }
                _ => {}
            });
            if let Err(e) = read {
                warn!(
                    "cannot read {}: {e}; originals it may name are kept",
                    shown(file)
                );
            }
            if wanted.iter().all(|(p, d)| f.entry(p, d).is_some()) {
                break;
            }
        }
        f
    }

    /// The archived entry that accounts for the done/ file `rel` whose
    /// digest is `digest`, with when the original was filed: through its
    /// latest `filed` line with that digest (its time), or (filed before
    /// version 3) an archived entry naming it as its inbox path (the
    /// entry's time).
    fn entry(&self, rel: &Path, digest: &str) -> Option<(&Record, &str)> {
        let filed = self.filed.get(rel).and_then(|lines| {
            lines
                .iter()
                .rev()
                .filter(|(d, _, _)| d == digest)
                .find_map(|(d, a, time)| {
                    let r = self.archived.get(&(a.clone(), d.clone()))?;
                    Some((r, time.as_str()))
                })
        });
        filed.or_else(|| {
            self.legacy
                .get(&(rel.to_path_buf(), digest.to_string()))
                .map(|r| (r, r.time.as_str()))
        })
    }
}

/// An original found safe to remove: its archive (as the ledger names it)
/// verified, and its digest.
struct Verified {
    /// Its path relative to the archive folder, exactly.
    archive: PathBuf,
    digest: String,
}

/// Whether the done/ file `seen` (digest `digest` when read) may go:
/// `Ok(Some(_))` yes, `Ok(None)` not now (it changed or went meanwhile),
/// `Err` kept.
fn judge(s: &Setup, found: &Found, seen: &Seen, digest: &str) -> Result<Option<Verified>, Keep> {
    let rel = seen.0.as_path();
    let path = s.done.join(rel);
    let Some((entry, filed)) = found.entry(rel, digest) else {
        let why = match found.filed.get(rel).and_then(|l| l.last()) {
            Some((recorded, _, _)) if recorded != digest => format!(
                "its content is not what was archived (digest {digest}, the ledger says \
                 {recorded}: replaced or changed since)"
            ),
            Some((_, archive, _)) => format!(
                "the ledger says it was filed for {}, but no archived entry with its digest \
                 names that archive",
                shown(&s.archive.join(archive))
            ),
            None => "no ledger line says which archive holds it (filed before ledger version \
                     3 under another name, or not by rlewatch)"
                .into(),
        };
        let warn = found.filed.contains_key(rel);
        return Err(Keep { warn, why });
    };
    // Old by the ledger too: a copy that kept an old mtime was filed just
    // now, and its days in done/ count from then (not yet: looked at again
    // at a later pass).
    let filed_at = humantime::parse_rfc3339_weak(filed).ok();
    let days = s.done_after.unwrap_or_default();
    if filed_at.is_none_or(|t| t + days > SystemTime::now()) {
        return Ok(None);
    }
    let archive = s.archive.join(entry.archive_path());
    if let Err(e) = crate::fixity::check(&archive, entry) {
        return Err(Keep {
            warn: true,
            why: format!("its archive {} is damaged or missing: {e}", shown(&archive)),
        });
    }
    // Unchanged since it was digested (size and mtime as when listed, and
    // not written since: its ctime is older than the digest's read).
    let still = fs::symlink_metadata(&path)
        .is_ok_and(|n| (n.len(), n.mtime(), n.mtime_nsec()) == (seen.1, seen.2, seen.3));
    if !still || digest_of(&path).map(ledger::hex).ok().as_deref() != Some(digest) {
        return Ok(None);
    }
    Ok(Some(Verified {
        archive: entry.archive_path(),
        digest: digest.to_string(),
    }))
}

/// Removes the done/ file `rel` whose archive `v` verified: logged,
/// recorded, made durable. True when removed.
fn remove_done(s: &Setup, rel: &Path, v: &Verified) -> bool {
    let days = s.done_after.map_or(0, |d| d.as_secs() / 86_400);
    let why = format!(
        "older than {days} day(s); its archive {} verified",
        shown(&s.archive.join(&v.archive))
    );
    let (archive, archive_raw) = super::journal::path(&v.archive);
    let path = s.done.join(rel);
    // Not fsynced one by one: a power cut that brings a removed original
    // back is harmless (it is removed again); the folders are fsynced once
    // a batch is done.
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != io::ErrorKind::NotFound {
            warn!("cannot remove {}: {e}", shown(&path));
        }
        return false;
    }
    info!(
        message_id = super::journal::REMOVED,
        rlewatch_source = %shown(&path),
        rlewatch_archive = %archive,
        rlewatch_archive_raw = archive_raw.as_deref(),
        rlewatch_host = %s.host,
        "removed {}: {why}",
        shown(&path)
    );
    record(s, RemovedWhat::Done, rel, Some(v.digest.clone()), &why);
    true
}

/// The `removed` ledger line (without its own fsync, design §4.7).
fn record(s: &Setup, what: RemovedWhat, rel: &Path, digest: Option<String>, why: &str) {
    let (path, path_raw) = ledger::path_fields(rel);
    let line = Line::Removed(Removed {
        v: ledger::VERSION,
        time: ledger::now(),
        host: s.host.clone(),
        what,
        path,
        path_raw,
        source_xxh3: digest,
        why: why.to_string(),
    });
    if let Err(e) = s.ledger.append_event(&line) {
        warn!("the removal of {} is not in the ledger: {e}", shown(rel));
    }
}

/// XXH3-64 of a file's bytes.
fn digest_of(path: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
    }
}

/// One pass over failed/: quarantined files whose note is older than
/// `age` (its `time:` line, else its mtime; a file without a note by its
/// own mtime), with their notes, and notes without a file that old.
/// Returns how many files (or lone notes) it removed.
fn failed_pass(s: &Setup, age: Duration, now: SystemTime, stop: &AtomicBool) -> u64 {
    let Some(cutoff) = now.checked_sub(age) else {
        return 0;
    };
    let days = age.as_secs() / 86_400;
    let mut removed = 0;
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(&s.failed).min_depth(1) {
        match entry {
            Ok(e) if !e.file_type().is_dir() && !crate::durable::is_temp_name(e.file_name()) => {
                entries.push(e.into_path());
            }
            Ok(_) => {}
            Err(e) => warn!("{}: {e}", shown(e.path().unwrap_or(&s.failed))),
        }
    }
    // The notes that have their file beside them: handled with it.
    let owned: HashSet<PathBuf> = entries
        .iter()
        .filter(|p| !notes::is_note_name(p.file_name().unwrap_or_default()))
        .map(|p| notes::note_of(p))
        .collect();
    for path in &entries {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (file, note) = if notes::is_note_name(path.file_name().unwrap_or_default()) {
            if owned.contains(path) {
                continue;
            }
            (None, path.clone())
        } else {
            (Some(path.clone()), notes::note_of(path))
        };
        let text = fs::read(&note).ok();
        let when = text
            .as_ref()
            .and_then(|t| Note::parse(&String::from_utf8_lossy(t)).time)
            .or_else(|| fs::symlink_metadata(&note).and_then(|m| m.modified()).ok())
            .or_else(|| {
                file.as_ref()
                    .and_then(|f| fs::symlink_metadata(f).and_then(|m| m.modified()).ok())
            });
        if when.is_none_or(|t| t >= cutoff) {
            continue;
        }
        let target = file.as_ref().unwrap_or(&note);
        let rel = target.strip_prefix(&s.failed).unwrap_or(target);
        let reason = text
            .as_ref()
            .and_then(|t| Note::parse(&String::from_utf8_lossy(t)).reason)
            .unwrap_or_else(|| "no reason recorded".into());
        // The file first: a crash in between leaves a lone note (removed
        // at the next pass), never a file without its reason. Gone
        // meanwhile (another host's retention, a `rlewatch retry`): not
        // this pass's removal, not recorded.
        let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        let first = file.as_ref().unwrap_or(&note);
        match fs::remove_file(first) {
            Ok(()) => {}
            Err(e) if gone(&e) => continue,
            Err(e) => {
                warn!("cannot remove {}: {e}", shown(first));
                continue;
            }
        }
        // Whether a note went with the file (said so in the log line).
        let mut note_there = false;
        if file.is_some() {
            match fs::remove_file(&note) {
                Ok(()) => note_there = true,
                Err(e) if gone(&e) => {}
                Err(e) => warn!("cannot remove {}: {e}", shown(&note)),
            }
        }
        if let Some(dir) = target.parent() {
            let _ = crate::durable::sync_dir(dir);
        }
        let why = format!("quarantined more than {days} day(s) ago ({reason})");
        info!(
            message_id = super::journal::REMOVED,
            rlewatch_source = %shown(target),
            rlewatch_host = %s.host,
            "removed {}{}: {why}",
            shown(target),
            match (&file, note_there) {
                (Some(_), true) => " and its note",
                (Some(_), false) => " (it had no note)",
                (None, _) => " (a note without its file)",
            }
        );
        record(s, RemovedWhat::Failed, rel, None, &why);
        removed += 1;
    }
    removed
}
