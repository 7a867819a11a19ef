//! Settling and retrying (design §4.2, §4.4): a file waiting in the inbox,
//! and the durations that decide when it is looked at again. Pure: no I/O,
//! time is passed in.

use std::time::{Duration, Instant};

/// A file waiting in the inbox.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) due: Instant,
    /// When size and mtime were first seen as they are now.
    pub(super) since: Instant,
    pub(super) attempts: u32,
    /// Waiting out a backoff after a transient failure.
    pub(super) retry: bool,
}

impl Pending {
    /// Takes note of the file's current size and mtime; when they changed,
    /// the file must settle again: returns its new due time.
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
        self.due = self.due.max(now + settle);
        Some(self.due)
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
    let spread = d.as_millis() as u64 / 5;
    if spread == 0 {
        return d;
    }
    d - Duration::from_millis(spread / 2) + Duration::from_millis(u64::from(nanos) % spread)
}
