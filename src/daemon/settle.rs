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

    pub(super) fn values(&self) -> impl Iterator<Item = &Pending> {
        self.files.values()
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
mod tests {
    use super::*;

    #[test]
    fn a_full_wait_list_leaves_new_paths_out_and_asks_for_a_rescan_once_half_drained() {
        let now = Instant::now();
        let mut w = WaitList::default();
        let cap = 4;
        for i in 0..cap {
            let p = PathBuf::from(format!("/in/{i}.bmp"));
            assert!(w.room_for(&p, cap));
            w.insert(p, Pending::new(1, (0, 0), now, now));
        }
        assert!(!w.rescan_due(cap));
        // Full: a known path still has room, a new one does not.
        assert!(w.room_for(Path::new("/in/0.bmp"), cap));
        assert!(!w.rescan_due(cap));
        assert!(!w.room_for(Path::new("/in/new.bmp"), cap));
        assert_eq!(w.len(), cap);
        // Drained to half: not yet; below half: rescan.
        w.remove(Path::new("/in/0.bmp"));
        w.remove(Path::new("/in/1.bmp"));
        assert!(!w.rescan_due(cap));
        w.remove(Path::new("/in/2.bmp"));
        assert!(w.rescan_due(cap));
        w.rescanning();
        assert!(!w.rescan_due(cap));
        assert!(w.room_for(Path::new("/in/new.bmp"), cap));
    }

    /// First seen at `since`, due at `due`.
    fn pending(since: Instant, due: Instant) -> Pending {
        Pending {
            size: 10,
            mtime: (1, 0),
            due,
            since,
            attempts: 0,
            retry: false,
            published: None,
        }
    }

    #[test]
    fn a_change_restarts_settling_and_no_change_keeps_it() {
        let t0 = Instant::now();
        let settle = Duration::from_millis(250);
        let mut p = pending(t0, t0 + settle);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(p.update(10, (1, 0), t1, settle), None);
        assert_eq!(p.since, t0);
        // Size or mtime moved: stable from now, due a full settle later.
        assert_eq!(p.update(11, (1, 0), t1, settle), Some(t1 + settle));
        assert_eq!(p.since, t1);
        let t2 = t1 + Duration::from_millis(10);
        assert_eq!(p.update(11, (1, 5), t2, settle), Some(t2 + settle));
        // A due time already later (a backoff) is never brought forward.
        let mut q = pending(t0, t0 + Duration::from_secs(60));
        assert_eq!(
            q.update(12, (1, 0), t1, settle),
            Some(t0 + Duration::from_secs(60))
        );
    }

    #[test]
    fn a_file_waits_for_its_writer_its_settle_time_or_its_grace_and_no_longer() {
        let t0 = Instant::now();
        let settle = Duration::from_millis(250);
        let ms = Duration::from_millis;
        let complete = Declared::Complete;
        let short = Declared::NotYet("shorter than its header says");
        // Held open for writing: waits at least a second, and counts its
        // stable time from now (a paused writer is still a writer).
        let mut p = pending(t0, t0);
        let now = t0 + Duration::from_secs(30);
        assert_eq!(
            p.wait_until(Some(true), &complete, now, settle),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(p.since, now);
        // Observed and nobody writes it: goes at once, settle or not.
        let mut p = pending(t0, t0);
        assert_eq!(p.wait_until(Some(false), &complete, t0, settle), None);
        // Cannot be observed: size and mtime stable for settle_ms first.
        let mut p = pending(t0, t0);
        assert_eq!(
            p.wait_until(None, &complete, t0 + ms(100), settle),
            Some(t0 + settle)
        );
        assert_eq!(p.wait_until(None, &complete, t0 + settle, settle), None);
        // Shorter than declared: the grace (40 settles, at least 5 s) from
        // its last change. Observed, one wake-up at its end; unobserved,
        // looked at every settle_ms.
        let grace = Duration::from_secs(10);
        let mut p = pending(t0, t0);
        assert_eq!(
            p.wait_until(Some(false), &short, t0 + ms(300), settle),
            Some(t0 + grace)
        );
        assert_eq!(
            p.wait_until(None, &short, t0 + ms(300), settle),
            Some(t0 + ms(300) + settle)
        );
        // Once the grace is over it goes (to be quarantined, most likely).
        assert_eq!(p.wait_until(Some(false), &short, t0 + grace, settle), None);
        assert_eq!(p.wait_until(None, &short, t0 + grace, settle), None);
        // A retry after a failure gets no second grace.
        let mut p = pending(t0, t0);
        p.retry = true;
        assert_eq!(
            p.wait_until(Some(false), &short, t0 + ms(300), settle),
            None
        );
    }

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes() {
        // README and design §4.4: 1 s doubling, capped at 5 min. Whole
        // Durations, so a sub-second error cannot hide behind as_secs.
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300];
        let got: Vec<Duration> = (1..=12).map(backoff).collect();
        let want: Vec<Duration> = expected.iter().map(|&s| Duration::from_secs(s)).collect();
        assert_eq!(got, want);
        // The cap holds however many attempts there were (no overflow of
        // the shift), and the schedule never shrinks.
        for n in [13, 31, 32, 33, 64, 1_000, u32::MAX] {
            assert_eq!(backoff(n), Duration::from_secs(300), "attempt {n}");
        }
        for n in 1..100 {
            assert!(backoff(n + 1) >= backoff(n), "attempt {n}");
        }
    }

    #[test]
    fn the_grace_is_forty_settles_but_at_least_five_seconds() {
        assert_eq!(truncation_grace(Duration::ZERO), Duration::from_secs(5));
        assert_eq!(
            truncation_grace(Duration::from_millis(50)),
            Duration::from_secs(5)
        );
        assert_eq!(
            truncation_grace(Duration::from_millis(250)),
            Duration::from_secs(10)
        );
        // Rechecks never spin, even with settle_ms = 0.
        assert_eq!(recheck(Duration::ZERO), Duration::from_millis(100));
        assert_eq!(
            recheck(Duration::from_millis(250)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(300);
        for _ in 0..100 {
            let j = jittered(d);
            assert!(
                j >= Duration::from_secs(270) && j <= Duration::from_secs(330),
                "{j:?}"
            );
        }
        assert_eq!(jittered(Duration::from_millis(3)), Duration::from_millis(3));
        // The whole ±10 % is used, by the millisecond, whatever the noise.
        let ms = Duration::from_millis;
        assert_eq!(jittered_by(d, 0), ms(270_000));
        assert_eq!(jittered_by(d, 59_999), ms(329_999));
        assert_eq!(jittered_by(d, 60_000 + 30_000), ms(300_000));
    }
}
