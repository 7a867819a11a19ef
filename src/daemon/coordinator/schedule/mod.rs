//! The schedule (design §4.2): which files wait and when each is looked at
//! next, which are in flight, which originals were archived and kept, and
//! which new folders are to be scanned once more. Pure: it never touches
//! the filesystem and time is passed in, so its rules are tested with
//! instants made up by the test. The coordinator does the looking and
//! tells the schedule what it saw.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::in_flight::InFlight;
use crate::archive::{Published, SourceId};
use crate::daemon::completion::Completion;
use crate::daemon::settle::{Pending, WaitList, recheck};

/// How long after a new folder's first scan it is scanned again (see
/// [`Schedule::new_folder`]): notify adds its watch within microseconds
/// of reporting it; half a second covers a heavily loaded machine.
pub(super) const NEW_FOLDER_RESCAN: Duration = Duration::from_millis(500);

/// A file as its metadata shows it now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    /// (device, inode): the file, under whatever name.
    pub(super) key: (u64, u64),
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    /// A regular file (symlinks and other non-files are refused at once).
    pub(super) regular: bool,
    /// Its identity as the archive records it.
    pub(super) id: SourceId,
}

impl Stat {
    pub(super) fn of(m: &fs::Metadata) -> Stat {
        Stat {
            key: (m.dev(), m.ino()),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            regular: m.file_type().is_file(),
            id: crate::archive::source_id(m),
        }
    }
}

/// What [`Schedule::decide`] made of a file whose time has come.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not yet: it has a new due time.
    Wait,
    /// Archived and kept, unchanged since: off the list, nothing to do.
    Done,
    /// To be handed out ([`Schedule::hand_out`]).
    Ready,
}

/// Files waiting, in flight and kept, and new folders, with their times.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    /// The files waiting, each with its due time (the only record of it).
    waiting: WaitList,
    in_flight: InFlight,
    /// Originals archived and kept in the inbox (`keep`), with their
    /// identity then: not taken again while they are unchanged, so a
    /// rescan does not encode them again just to find them archived.
    kept: HashMap<PathBuf, SourceId>,
    /// Folders that appeared, to be scanned once more when due: notify
    /// adds the watch on a new folder (and its subfolders) only after
    /// reporting it, so a file created in between has no event and may
    /// not be there yet at the first scan.
    new_folders: VecDeque<(Instant, PathBuf)>,
}

impl Schedule {
    /// A file seen by the watcher or a scan, `stat` as it is now. Waiting
    /// already, it is due now when writers can be observed (`observable`:
    /// every event is a moment to look) unless it waits out a backoff;
    /// otherwise a change makes it settle again. New, it waits if there is
    /// room (fewer than `cap` waiting): a regular file that cannot be
    /// observed for `settle`, anything else not at all.
    pub(super) fn seen(
        &mut self,
        path: &Path,
        stat: &Stat,
        now: Instant,
        settle: Duration,
        observable: bool,
        cap: usize,
    ) {
        if let Some(p) = self.waiting.get_mut(path) {
            if observable && !p.retry {
                self.waiting.set_due(path, now);
            } else if let Some(due) = p.update(stat.size, stat.mtime, now, settle) {
                self.waiting.set_due(path, due);
            }
            return;
        }
        if !self.waiting.room_for(path, cap) {
            return;
        }
        let due = if stat.regular && !observable {
            now + settle
        } else {
            now
        };
        let p = Pending::new(stat.size, stat.mtime, due, now);
        self.waiting.insert(path.to_path_buf(), p);
    }

    /// Puts `path` on the list as `p` says, in place of whatever waited
    /// under that name (a claim, a retry, a file to look at again).
    pub(super) fn put(&mut self, path: PathBuf, p: Pending) {
        self.waiting.insert(path, p);
    }

    /// The earliest waiting file due by `now`, while fewer than
    /// `max_in_flight` are in flight; it stays waiting until
    /// [`Schedule::decide`] says what becomes of it.
    pub(super) fn take_due(&mut self, now: Instant, max_in_flight: usize) -> Option<PathBuf> {
        if self.in_flight.len() >= max_in_flight {
            return None;
        }
        self.waiting.take_due(now)
    }

    /// When the next waiting file is due, if one could be handed out then.
    pub(super) fn next_due(&self, max_in_flight: usize) -> Option<Instant> {
        (self.in_flight.len() < max_in_flight)
            .then(|| self.waiting.first_due())
            .flatten()
    }

    /// A waiting file taken by [`Schedule::take_due`], `stat` as it is now
    /// and `look` what looking at a regular file found: it waits on, is
    /// done with, or is ready. The same file under another name in flight
    /// makes it wait a recheck (never `now + settle`: with settle_ms = 0
    /// that would spin).
    pub(super) fn decide(
        &mut self,
        path: &Path,
        stat: &Stat,
        look: Option<&Completion>,
        now: Instant,
        settle: Duration,
    ) -> Verdict {
        let p = self
            .waiting
            .get_mut(path)
            .expect("BUG: considered file is pending");
        if let Some(c) = look {
            // Only its stable time counts here: it is given a due time
            // below, or goes.
            let _ = p.update(stat.size, stat.mtime, now, settle);
            if let Some(due) = p.wait_until(c.writers, &c.declared, now, settle) {
                self.waiting.set_due(path, due);
                return Verdict::Wait;
            }
        }
        if self.kept.get(path) == Some(&stat.id) {
            self.waiting.remove(path);
            return Verdict::Done;
        }
        if self.in_flight.has_file(stat.key) {
            self.waiting.set_due(path, now + recheck(settle));
            return Verdict::Wait;
        }
        Verdict::Ready
    }

    /// Hands out a file [`Schedule::decide`] found ready: off the list and
    /// in flight. Returns its attempts so far and what an earlier attempt
    /// published.
    pub(super) fn hand_out(&mut self, path: &Path, key: (u64, u64)) -> (u32, Option<Published>) {
        let p = self.waiting.remove(path);
        self.in_flight.start(key, path);
        p.map_or((0, None), |p| (p.attempts, p.published))
    }

    /// The file `key` is back from the pipeline (or was never started):
    /// its path, no longer in flight.
    pub(super) fn returned(&mut self, key: (u64, u64)) -> Option<PathBuf> {
        self.in_flight.release(key)
    }

    /// The file is gone: it waits no more.
    pub(super) fn forget(&mut self, path: &Path) {
        self.waiting.remove(path);
    }

    /// Forgets every waiting file (the inbox was replaced or moved).
    pub(super) fn forget_waiting(&mut self) {
        self.waiting.clear();
    }

    /// An original archived and kept, with its identity now.
    pub(super) fn keep(&mut self, path: PathBuf, id: SourceId) {
        self.kept.insert(path, id);
    }

    /// Forgets the kept originals for which `still_there` is false.
    pub(super) fn retain_kept(&mut self, still_there: impl FnMut(&PathBuf) -> bool) {
        let mut still_there = still_there;
        self.kept.retain(|p, _| still_there(p));
    }

    /// A folder that appeared and was scanned: scanned again at `due`.
    pub(super) fn new_folder(&mut self, path: PathBuf, due: Instant) {
        self.new_folders.push_back((due, path));
    }

    /// The next new folder due by `now` for its second scan.
    pub(super) fn folder_due(&mut self, now: Instant) -> Option<PathBuf> {
        let (due, _) = self.new_folders.front()?;
        if *due > now {
            return None;
        }
        self.new_folders.pop_front().map(|(_, dir)| dir)
    }

    /// When the next new folder is due for its second scan.
    pub(super) fn next_folder(&self) -> Option<Instant> {
        self.new_folders.front().map(|(due, _)| *due)
    }

    /// Whether `path` may wait (see [`WaitList::room_for`]).
    pub(super) fn room_for(&mut self, path: &Path, cap: usize) -> bool {
        self.waiting.room_for(path, cap)
    }

    /// The list overflowed and has drained: time to rescan.
    pub(super) fn rescan_due(&self, cap: usize) -> bool {
        self.waiting.rescan_due(cap)
    }

    /// A rescan starts.
    pub(super) fn rescanning(&mut self) {
        self.waiting.rescanning();
    }

    pub(super) fn is_waiting(&self, path: &Path) -> bool {
        self.waiting.contains_key(path)
    }

    /// Makes every file waiting out a backoff due `now` (`rlewatch retry
    /// --now`); returns how many.
    pub(super) fn retry_now(&mut self, now: Instant) -> usize {
        let due: Vec<PathBuf> = self
            .waiting
            .iter()
            .filter(|(_, p)| p.retry)
            .map(|(path, _)| path.clone())
            .collect();
        for path in &due {
            self.waiting.set_due(path, now);
        }
        due.len()
    }

    /// How many files wait, and how many of those wait out a backoff.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> (usize, usize) {
        let all = self.waiting_files().count();
        let retrying = self.waiting_files().filter(|(_, _, r)| *r).count();
        (all, retrying)
    }

    /// Every waiting file: its path, since when it has been unchanged,
    /// and whether it waits out a backoff.
    pub(super) fn waiting_files(&self) -> impl Iterator<Item = (&PathBuf, Instant, bool)> {
        self.waiting.iter().map(|(p, w)| (p, w.since, w.retry))
    }

    /// How many files wait (in constant time, unlike [`Schedule::waiting`]).
    pub(super) fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }
}

#[cfg(test)]
mod tests;
