//! The inbox walked in batches (design §4.2): a scan of the whole inbox
//! (at start, periodic, after dropped events) is a cursor over its
//! folders, not a list of what it found. The coordinator takes files from
//! it while fewer than [`scan_batch`] wait, and leaves it where it stopped
//! otherwise, so a backlog of any size costs the memory of one batch and
//! one open folder per level, and each file is listed once per walk
//! instead of once per refill. It never decides anything about a file:
//! the coordinator observes what it yields as it would an event.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::daemon::filter::Filter;

/// How many waiting files a walk keeps ahead of the workers: enough that
/// they never run dry between two turns of the event loop (at most
/// `max_in_flight` are handed out at once), and that files which must wait
/// out a settle or grace period (empty files, files still being written)
/// do not hold back the rest of a backlog (with 256, a backlog of empty
/// files drained at 256 per grace period); few enough that a waiting list
/// of this size stays small beside the daemon (about 300 bytes a file:
/// 1.2 MB at 4096).
pub(super) fn scan_batch(max_in_flight: usize) -> usize {
    (max_in_flight * 512).clamp(2048, 4096)
}

/// A walk of the inbox in progress.
pub(super) struct InboxWalk {
    entries: Box<dyn Iterator<Item = walkdir::Result<walkdir::DirEntry>> + Send>,
    filter: Arc<Filter>,
    /// The file the walk stopped at (the list was full): yielded first
    /// when it goes on.
    held: Option<PathBuf>,
    /// Why it was started, when, how long the coordinator spent in it
    /// (wall and CPU time, over its turns) and how many files it has
    /// listed (for the log line at its end).
    why: String,
    started: Instant,
    busy: Duration,
    cpu: Duration,
    listed: usize,
}

impl InboxWalk {
    /// A walk of `inbox` (its subfolders when `recursive`), skipping the
    /// folders `filter` does not want.
    pub(super) fn new(inbox: &Path, filter: Arc<Filter>, recursive: bool, why: &str) -> InboxWalk {
        let f = filter.clone();
        let entries = walkdir::WalkDir::new(inbox)
            .follow_links(false)
            .max_depth(if recursive { usize::MAX } else { 1 })
            .into_iter()
            .filter_entry(move |e| !e.file_type().is_dir() || f.wants_dir(e.path()));
        InboxWalk {
            entries: Box::new(entries),
            filter,
            held: None,
            why: why.to_string(),
            started: Instant::now(),
            busy: Duration::ZERO,
            cpu: Duration::ZERO,
            listed: 0,
        }
    }

    /// The next file the filter wants, or `None` at the end of the walk.
    pub(super) fn next_file(&mut self) -> Option<PathBuf> {
        if let Some(p) = self.held.take() {
            return Some(p);
        }
        for entry in self.entries.by_ref() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    debug!("scan: {e}");
                    continue;
                }
            };
            if entry.file_type().is_dir() || !self.filter.wants_file(entry.path()) {
                continue;
            }
            self.listed += 1;
            return Some(entry.into_path());
        }
        None
    }

    /// Gives back the file just yielded: the walk stops here for now.
    pub(super) fn hold(&mut self, path: PathBuf) {
        self.held = Some(path);
    }

    /// Adds one turn's wall and CPU time.
    pub(super) fn spent(&mut self, busy: Duration, cpu: Duration) {
        self.busy += busy;
        self.cpu += cpu;
    }

    /// The log line for a walk at its end (`how`: through, or cut short
    /// by a new walk): what it listed, over how long, and what it cost the
    /// coordinator.
    pub(super) fn summary(&self, inbox: &str, how: &str, waiting: usize) -> String {
        format!(
            "rescanned {inbox} ({}, {how}): {} file(s) listed over {:.2} s, {waiting} waiting; \
             the coordinator spent {:.1} ms in it (CPU {:.1} ms)",
            self.why,
            self.listed,
            self.started.elapsed().as_secs_f64(),
            self.busy.as_secs_f64() * 1e3,
            self.cpu.as_secs_f64() * 1e3
        )
    }
}

/// CPU time of the calling thread so far (zero if it cannot be read).
pub(super) fn thread_cpu() -> Duration {
    // SAFETY: an all-zero timespec is valid for clock_gettime to fill.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
