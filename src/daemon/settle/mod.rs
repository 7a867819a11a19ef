//! Settling and retrying (design §4.2, §4.4): a file waiting in the inbox,
//! the wait list (the files in the order they are due), and the durations
//! that decide when a file is looked at again. No I/O, and time is passed
//! in (only [`jittered`] reads the clock, for its jitter).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::completion::Declared;

/// The files waiting in the inbox (design §4.2), a bounded list: a new
/// path that finds it full is not kept — the file itself stays in the
/// inbox — and the list remembers it overflowed; once it has drained below
/// half, a rescan finds what was left out. Files put back for a retry or
/// found claimed are always kept (`insert`), never left out.
///
/// A file's due time is recorded once, in its [`Pending`]; the list keeps
/// the files in the order they are due as an index of that record, changed
/// only together with it (so no timer is ever stale). A file taken to be
/// looked at ([`WaitList::take_due`]) leaves the index until it is given a
/// new due time.
#[derive(Debug, Default)]
pub(super) struct WaitList {
    files: HashMap<PathBuf, Pending>,
    by_due: BTreeSet<(Instant, PathBuf)>,
    overflowed: bool,
}

impl WaitList {
    /// Whether `path` may wait: known already, or fewer than `cap` waiting.
    /// False marks the overflow.
    pub(super) fn room_for(&mut self, path: &Path, cap: usize) -> bool {
        if self.files.len() < cap || self.files.contains_key(path) {
            return true;
        }
        self.overflowed = true;
        false
    }

    /// An overflowed list has drained below half of `cap`: time to rescan.
    pub(super) fn rescan_due(&self, cap: usize) -> bool {
        self.overflowed && self.files.len() < cap / 2
    }

    /// A rescan starts: whatever it finds is taken in anew.
    pub(super) fn rescanning(&mut self) {
        self.overflowed = false;
    }

    /// Puts `path` on the list, due when `p` says, in place of whatever
    /// waited under that name.
    pub(super) fn insert(&mut self, path: PathBuf, p: Pending) {
        if let Some(old) = self.files.remove(&path) {
            self.by_due.remove(&(old.due, path.clone()));
        }
        self.by_due.insert((p.due, path.clone()));
        self.files.insert(path, p);
    }

    /// Takes `path` off the list.
    pub(super) fn remove(&mut self, path: &Path) -> Option<Pending> {
        let p = self.files.remove(path)?;
        self.by_due.remove(&(p.due, path.to_path_buf()));
        Some(p)
    }

    /// Makes a waiting file due at `due` (earlier or later than before).
    pub(super) fn set_due(&mut self, path: &Path, due: Instant) {
        let Some(p) = self.files.get_mut(path) else {
            return;
        };
        self.by_due.remove(&(p.due, path.to_path_buf()));
        p.due = due;
        self.by_due.insert((due, path.to_path_buf()));
    }

    /// The earliest due time on the list.
    pub(super) fn first_due(&self) -> Option<Instant> {
        self.by_due.first().map(|(due, _)| *due)
    }

    /// The earliest file due by `now`, taken out of the order (it stays on
    /// the list until it goes or is given a new due time).
    pub(super) fn take_due(&mut self, now: Instant) -> Option<PathBuf> {
        if self.first_due()? > now {
            return None;
        }
        self.by_due.pop_first().map(|(_, path)| path)
    }

    /// Forgets every waiting file (the inbox was replaced).
    pub(super) fn clear(&mut self) {
        self.files.clear();
        self.by_due.clear();
    }

    /// The file's record, to look at it (its due time changes only through
    /// [`WaitList::set_due`]).
    pub(super) fn get_mut(&mut self, path: &Path) -> Option<&mut Pending> {
        self.files.get_mut(path)
    }

    pub(super) fn contains_key(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    pub(super) fn len(&self) -> usize {
        self.files.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PathBuf, &Pending)> {
        self.files.iter()
    }
}

/// A file waiting in the inbox.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    /// When it is looked at next: the one record of it (see [`WaitList`]).
    due: Instant,
    /// When size and mtime were first seen as they are now.
    pub(super) since: Instant,
    pub(super) attempts: u32,
    /// Waiting out a backoff after a transient failure.
    pub(super) retry: bool,
    /// Archived already by an earlier attempt whose original could not be
    /// filed away: the retry only files it.
    pub(super) published: Option<crate::archive::Published>,
}

impl Pending {
    /// A file first seen now with this size and mtime, due at `due`.
    pub(super) fn new(size: u64, mtime: (i64, i64), due: Instant, now: Instant) -> Pending {
        Pending {
            size,
            mtime,
            due,
            since: now,
            attempts: 0,
            retry: false,
            published: None,
        }
    }

    /// Takes note of the file's current size and mtime; when they changed,
    /// the file must settle again: returns its new due time (never earlier
    /// than the one it has), for [`WaitList::set_due`].
    pub(super) fn update(
        &mut self,
        size: u64,
        mtime: (i64, i64),
        now: Instant,
        settle: Duration,
    ) -> Option<Instant> {
        if (self.size, self.mtime) == (size, mtime) {
            return None;
        }
        self.size = size;
        self.mtime = mtime;
        self.since = now;
        Some(self.due.max(now + settle))
    }

    /// Until when a file just looked at (after [`Pending::update`]) must
    /// still wait, or `None` when it may go now. `writers`: whether a
    /// process on this host holds it open for writing (`None`: cannot
    /// tell); `declared`: whether it is as long as its header says.
    pub(super) fn wait_until(
        &mut self,
        writers: Option<bool>,
        declared: &Declared,
        now: Instant,
        settle: Duration,
    ) -> Option<Instant> {
        let grace_ends = self.since + truncation_grace(settle);
        match writers {
            // Being written: wait, however long the writer pauses. Its
            // close brings an event; the timer is only a safety net.
            Some(true) => {
                self.since = now;
                Some(now + recheck(settle).max(Duration::from_secs(1)))
            }
            // Observed: nobody writes it; no settle wait.
            Some(false) => None,
            // Cannot be observed: size and mtime stable for settle_ms.
            None => Some(self.since + settle).filter(|&t| t > now),
        }
        .or_else(|| match declared {
            // It may still be written (or its writer crashed): it gets
            // the grace, counted from its last change, before the
            // worker sees it (and likely quarantines it). Observed, a
            // new write brings an event; otherwise it is polled.
            Declared::NotYet(_) if !self.retry && now < grace_ends => Some(match writers {
                Some(false) => grace_ends,
                _ => now + recheck(settle),
            }),
            _ => None,
        })
    }
}

/// How often a file found incomplete is looked at again when no event
/// comes: settle_ms, but never a busy loop (settle_ms may be 0).
pub(super) fn recheck(settle: Duration) -> Duration {
    settle.max(Duration::from_millis(100))
}

/// How long a file that may still be written (empty, no header yet,
/// shorter than declared, no RLE end marker) is waited for, with no change
/// and no writer, before it is processed anyway (and most likely
/// quarantined).
pub(super) fn truncation_grace(settle: Duration) -> Duration {
    (settle * 40).max(Duration::from_secs(5))
}

/// Delay before retry number `attempts` (1 s doubling, at most 5 min).
pub(super) fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

/// A little jitter for periodic rescans, so that many daemons do not scan
/// in step: ±10 %, from the clock.
pub(super) fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    jittered_by(d, u64::from(nanos))
}

/// `d` moved by `noise` (any number) into the ±10 % around it, by the
/// millisecond.
fn jittered_by(d: Duration, noise: u64) -> Duration {
    let spread = d.as_millis() as u64 / 5;
    if spread == 0 {
        return d;
    }
    d - Duration::from_millis(spread / 2) + Duration::from_millis(noise % spread)
}

#[cfg(test)]
mod tests;
