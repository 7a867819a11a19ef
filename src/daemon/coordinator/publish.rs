//! What the coordinator publishes for readers outside the process
//! (docs/operations.md): the counts behind the `STATUS=` line, the
//! heartbeat with its state (`crate::heartbeat`, rewritten at every beat
//! and at most once a second when something changed) and the metrics
//! textfile (`[metrics]`, every `interval_secs` and at stop).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::Coordinator;
use crate::daemon::metrics::{self, Gauges};
use crate::daemon::stats::{IGNORED_MAX, Told};
use crate::display::shown;
use crate::heartbeat::{self, Heartbeat, IgnoredFile, LIST_MAX, Listed, RetryingFile, unix};

/// The least time between two heartbeats written for a change.
pub(super) const CHANGE_EVERY: Duration = Duration::from_secs(1);

/// The files the daemon knows, each counted once: a file being retried is
/// retrying whether it waits out its backoff or its attempt runs (so a
/// stuck file does not flip between "retrying" and "in progress").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Counts {
    pub(super) waiting: usize,
    pub(super) oldest_waiting: Duration,
    pub(super) retrying: usize,
    pub(super) in_progress: usize,
    pub(super) ignored: usize,
}

/// When the publishing is next due, and what failed (said once).
#[derive(Debug)]
pub(super) struct Publishing {
    pub(super) last_change: Instant,
    pub(super) next_metrics: Instant,
    pub(super) metrics_failing: bool,
    pub(super) state: &'static str,
    pub(super) boot_id: String,
    pub(super) machine: String,
}

impl Publishing {
    pub(super) fn new(now: Instant) -> Publishing {
        Publishing {
            last_change: now,
            next_metrics: now,
            metrics_failing: false,
            state: "running",
            boot_id: heartbeat::boot_id(),
            machine: crate::daemon::config::machine_name(),
        }
    }
}

impl Coordinator {
    /// The counts, with the retrying files pruned of those gone.
    pub(super) fn counts(&mut self, now: Instant) -> Counts {
        let schedule = &self.schedule;
        self.stats
            .retain_retrying(|p| schedule.is_waiting(p) || schedule.in_flight().has_path(p));
        let retrying = &self.stats.retrying;
        let mut c = Counts {
            retrying: retrying.len(),
            ignored: self.stats.ignored.len(),
            ..Counts::default()
        };
        for (path, since, retry) in self.schedule.waiting_files() {
            if retry || retrying.contains_key(path) {
                continue;
            }
            c.waiting += 1;
            c.oldest_waiting = c.oldest_waiting.max(now.saturating_duration_since(since));
        }
        c.in_progress = self
            .schedule
            .in_flight()
            .paths()
            .filter(|p| !retrying.contains_key(*p))
            .count();
        c
    }

    /// This host's heartbeat as it is now (`beat` filled in by the
    /// writer).
    pub(super) fn heartbeat(&mut self, now: Instant) -> Heartbeat {
        self.prune_ignored();
        let counts = self.counts(now);
        let wall = SystemTime::now();
        let s = &self.stats;
        let rel = |p: &Path| shown(crate::archive::relative(&self.settings, p).0);
        let mut in_progress: Vec<String> =
            self.schedule.in_flight().paths().map(|p| rel(p)).collect();
        in_progress.sort();
        let mut retrying: Vec<RetryingFile> = s
            .retrying
            .values()
            .map(|r| RetryingFile {
                path: shown(&r.rel),
                attempts: r.attempts,
                error: r.error.clone(),
                next_attempt: unix(r.next),
                since: unix(r.since),
            })
            .collect();
        // The longest-failing first: what to look at.
        retrying.sort_by(|a, b| a.since.total_cmp(&b.since));
        let ignored: Vec<IgnoredFile> = s
            .ignored
            .iter()
            .take(LIST_MAX)
            .map(|(p, why)| IgnoredFile {
                path: rel(p),
                why: why.clone(),
            })
            .collect();
        Heartbeat {
            format: heartbeat::FORMAT.into(),
            v: 1,
            host: self.config.host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            machine: self.publishing.machine.clone(),
            boot_id: self.publishing.boot_id.clone(),
            state: self.publishing.state.into(),
            started: unix(s.started),
            written: unix(wall),
            beat: 0,
            interval_secs: self.hosts.interval().as_secs_f64(),
            takeover_secs: self.config.takeover.map_or(0, |t| t.as_secs()),
            workers: self.config.threads,
            counts: heartbeat::Counts {
                archived: s.archived,
                failed: s.failed_total(),
                failed_by_reason: crate::archive::ReasonClass::ALL
                    .iter()
                    .map(|&c| (c.name().to_string(), s.failed_of(c)))
                    .collect(),
                retries: s.retries,
                ignored: s.ignored_total,
                removed_done: s.removed_done,
                removed_failed: s.removed_failed,
                bytes_read: s.bytes_in,
                bytes_written: s.bytes_out,
            },
            last_archived: s.last_archived.map(unix),
            waiting: heartbeat::Waiting {
                count: counts.waiting as u64,
                oldest_secs: counts.oldest_waiting.as_secs_f64(),
            },
            in_progress: Listed {
                count: in_progress.len() as u64,
                files: in_progress.into_iter().take(LIST_MAX).collect(),
            },
            retrying: Listed {
                count: retrying.len() as u64,
                files: retrying.into_iter().take(LIST_MAX).collect(),
            },
            ignored: Listed {
                count: counts.ignored as u64,
                files: ignored,
            },
        }
    }

    /// Between events: the heartbeat when something changed (at most once
    /// a second), the metrics file when due.
    pub(super) fn publish(&mut self, now: Instant) {
        self.sync_removed();
        if self.stats.dirty
            && now >= self.publishing.last_change + CHANGE_EVERY
            && !self.inbox.elsewhere
        {
            self.publishing.last_change = now;
            self.stats.dirty = false;
            let hb = self.heartbeat(now);
            self.hosts.write(hb);
        }
        if let Some(m) = &self.config.metrics
            && now >= self.publishing.next_metrics
        {
            self.publishing.next_metrics = now + m.interval;
            self.write_metrics(true);
        }
    }

    /// When [`Coordinator::publish`] has something to do next.
    pub(super) fn next_publish(&self) -> Option<Instant> {
        let change = self
            .stats
            .dirty
            .then_some(self.publishing.last_change + CHANGE_EVERY);
        let metrics = self
            .config
            .metrics
            .as_ref()
            .map(|_| self.publishing.next_metrics);
        change.into_iter().chain(metrics).min()
    }

    /// Writes the metrics file (`running`: false in the one written at
    /// stop); a failure is logged once until it works again.
    pub(super) fn write_metrics(&mut self, running: bool) {
        self.sync_removed();
        let Some(m) = self.config.metrics.clone() else {
            return;
        };
        self.prune_ignored();
        let c = self.counts(Instant::now());
        let g = Gauges {
            waiting: c.waiting as u64,
            oldest_waiting_secs: c.oldest_waiting.as_secs_f64(),
            retrying: c.retrying as u64,
            in_progress: c.in_progress as u64,
            ignored: c.ignored as u64,
            workers: self.config.threads as u64,
            running,
        };
        match metrics::write(&m.path, &metrics::render(&self.stats, &g)) {
            Ok(()) if self.publishing.metrics_failing => {
                self.publishing.metrics_failing = false;
                info!("{}: metrics written again", shown(&m.path));
            }
            Ok(()) => {}
            Err(e) if !self.publishing.metrics_failing => {
                self.publishing.metrics_failing = true;
                warn!(
                    "{}: cannot write the metrics file: {e} (under systemd its folder must be \
                     in ReadWritePaths=, see docs/service.md; said once until it works again)",
                    shown(&m.path)
                );
            }
            Err(_) => {}
        }
    }

    /// Forgets ignored names deleted or renamed away since they were seen,
    /// so the heartbeat's list and the `rlewatch_ignored_files` gauge drop
    /// with them, not only at the next rescan: one `lstat` each, and the
    /// list holds at most `IGNORED_MAX`. Only a name that is gone (not
    /// found) is forgotten; another error (an unmounted share) keeps it.
    fn prune_ignored(&mut self) {
        self.stats.retain_ignored(
            |p| !matches!(p.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound),
        );
    }

    /// At stop: the last heartbeat (state `stopped`) and metrics file.
    /// The retention thread's removal counts into the stats.
    fn sync_removed(&mut self) {
        let counts = self.retention.counts();
        let (done, failed) = (
            counts.done.load(std::sync::atomic::Ordering::Relaxed),
            counts.failed.load(std::sync::atomic::Ordering::Relaxed),
        );
        self.stats.set_removed(done, failed);
    }

    pub(super) fn publish_stopped(&mut self) {
        self.publishing.state = "stopped";
        if !self.inbox.elsewhere {
            let hb = self.heartbeat(Instant::now());
            self.hosts.write(hb);
        }
        self.write_metrics(false);
    }

    /// A name the filter leaves alone, seen: logged once with why, and
    /// counted.
    pub(super) fn note_ignored(&mut self, path: &Path) {
        let Some(why) = self.filter.ignored(path) else {
            return;
        };
        match self.stats.ignored(path, &why) {
            // The journal's MESSAGE_ID for "ignored" (docs/operations.md).
            Told::First => info!(
                message_id = "2274e75081c94cf5b7b18aef6b02cc41",
                rlewatch_source = %shown(path),
                "{}: left alone: {why}",
                shown(path)
            ),
            Told::Already => {}
            Told::TooMany => warn!(
                "{}: more than {IGNORED_MAX} names in the inbox are left alone; the others are \
                 not told one by one (rlewatch status lists what is there)",
                shown(&self.config.paths.inbox)
            ),
        }
    }
}
