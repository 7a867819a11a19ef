//! The coordinator (design §4.1): one thread owning every piece of daemon
//! state — files waiting, timers, retries, what is in flight — fed by the
//! watcher, the workers and the signal thread through channels. This file
//! holds the state and the event loop; `intake` decides when files go,
//! `inbox` keeps the watch on the inbox (poll fallback, inbox gone or
//! back), `takeover` deals with other hosts' claims, `report` tells what
//! happened, `reload` applies a new configuration.

mod inbox;
mod intake;
mod reload;
mod report;
mod takeover;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use tracing::{info, warn};

use super::config::Config;
use super::filter::Filter;
use super::pipeline::{
    Finish, Finishers, InFlight, Job, JobReport, devices_of, settings_of, worker_loop,
};
use super::settle::{WaitList, jittered};
use super::signals::Control;
use super::watch::{Flags, Seen, Watch};
use super::{lock, logging, systemd};
use crate::archive::Settings;
use crate::display::shown;
use report::Stats;

/// The daemon's state, owned by one thread (the one that called
/// [`crate::daemon::run`]); everything else talks to it through channels.
pub(super) struct Coordinator {
    config_path: Option<PathBuf>,
    config: Arc<Config>,
    settings: Arc<Settings>,
    filter: Arc<Filter>,
    level: logging::LevelHandle,
    systemd: systemd::Systemd,
    _lock: lock::InboxLock,

    events_tx: Sender<Seen>,
    events: Receiver<Seen>,
    wake_tx: Sender<()>,
    wake: Receiver<()>,
    reports_tx: Sender<JobReport>,
    reports: Receiver<JobReport>,
    control: Receiver<Control>,
    flags: Arc<Flags>,
    watch: Option<Watch>,

    pool: threadpool::ThreadPool,
    /// Feeds the worker loops; `None` once shutting down.
    jobs_tx: Option<Sender<Job>>,
    jobs: Receiver<Job>,
    /// From workers to finishers; the coordinator's copy is for workers
    /// started by a reload and is dropped at shutdown.
    finish_tx: Option<Sender<Finish>>,
    /// `None` once joined.
    finishers: Option<Finishers>,
    pending: WaitList,
    /// The inbox was a mount point and is none now (said once).
    inbox_elsewhere: bool,
    /// Folders that appeared, to be scanned once more when due: notify
    /// adds the watch on a new folder (and its subfolders) only after
    /// reporting it, so a file created in between has no event and may
    /// not be there yet at the first scan.
    new_folders: VecDeque<(Instant, PathBuf)>,
    /// Originals archived and kept in the inbox (`keep`), with their
    /// identity then: not taken again while they are unchanged, so a
    /// rescan does not encode them again just to find them archived.
    kept: HashMap<PathBuf, crate::archive::SourceId>,
    timers: BinaryHeap<Reverse<(Instant, PathBuf)>>,
    in_flight: InFlight,
    next_rescan: Option<Instant>,
    next_watchdog: Option<Instant>,
    next_status: Instant,
    stopping: Option<Instant>,
    stats: Stats,
    /// This host's heartbeat and the other hosts' (design §4.8).
    hosts: super::hosts::Hosts,
}

impl Coordinator {
    /// Sets up channels, the finisher threads and the pool; nothing runs
    /// until [`Coordinator::start`].
    pub(super) fn new(
        config_path: Option<&Path>,
        config: Config,
        level: logging::LevelHandle,
        the_lock: lock::InboxLock,
        ledger: Arc<crate::ledger::Ledger>,
        control: Receiver<Control>,
    ) -> Result<Coordinator> {
        let (events_tx, events) = bounded(config.queue);
        let (wake_tx, wake) = bounded(1);
        let (reports_tx, reports) = unbounded();
        let (jobs_tx, jobs) = unbounded();
        // The channel to the finishers is as deep as there are workers at
        // start (a reload resizes the finishers, not the channel).
        let (finish_tx, finish_rx) = bounded::<Finish>(config.threads);
        let finishers = Finishers::start(finish_rx, reports_tx.clone(), config.threads)
            .context("cannot start the finisher threads")?;
        let systemd = systemd::Systemd::new();
        let config = Arc::new(config);
        let hosts = super::hosts::Hosts::new(&config.paths.inbox, &config.host, config.takeover);
        Ok(Coordinator {
            config_path: config_path.map(Path::to_path_buf),
            settings: Arc::new(settings_of(&config, ledger, devices_of(&config))),
            filter: Arc::new(Filter::new(&config)),
            pool: threadpool::Builder::new()
                .num_threads(config.threads)
                .thread_name("worker".into())
                .build(),
            jobs_tx: Some(jobs_tx),
            jobs,
            finish_tx: Some(finish_tx),
            finishers: Some(finishers),
            next_rescan: config.rescan.map(|d| Instant::now() + jittered(d)),
            next_watchdog: systemd.watchdog.map(|d| Instant::now() + d),
            config,
            level,
            systemd,
            _lock: the_lock,
            events_tx,
            events,
            wake_tx,
            wake,
            reports_tx,
            reports,
            control,
            flags: Arc::default(),
            watch: None,
            pending: WaitList::default(),
            inbox_elsewhere: false,
            new_folders: VecDeque::new(),
            kept: HashMap::new(),
            timers: BinaryHeap::new(),
            in_flight: InFlight::default(),
            next_status: Instant::now(),
            stopping: None,
            stats: Stats::default(),
            hosts,
        })
    }

    /// Starts the worker loops and the watch, queues the backlog and tells
    /// systemd it is ready.
    pub(super) fn start(&mut self) -> Result<()> {
        self.start_workers(self.config.threads);
        // Watch first, then scan: a file arriving in between is seen twice at
        // worst, never missed.
        self.start_watch()?;
        // Claims a crash left are finished first (design §4.7).
        crate::claim::prune(&self.settings.claims);
        let claimed = self.adopt_claims();
        if claimed > 0 {
            info!("finishing {claimed} claimed file(s) left by an earlier run first");
        }
        self.warn_foreign_claims();
        self.rescan("startup backlog");
        info!(
            "rlewatch {} started: {} -> {} (host {}, {} workers, conversion {}, originals {})",
            env!("CARGO_PKG_VERSION"),
            shown(&self.config.paths.inbox),
            shown(&self.config.paths.archive),
            self.config.host,
            self.config.threads,
            self.config.conversion,
            self.config.originals
        );
        self.systemd.ready(&self.status());
        Ok(())
    }

    /// After the event loop: the summary line, and the threads joined when
    /// nothing was abandoned.
    pub(super) fn stop(&mut self) {
        let s = &self.stats;
        info!(
            "stopped: archived {} file(s), {} -> {} bytes, {} failed, {} retried attempt(s)",
            s.archived, s.bytes_in, s.bytes_out, s.failed, s.retries
        );
        if self.in_flight.is_empty() {
            self.pool.join();
            if let Some(f) = self.finishers.take() {
                f.join();
            }
        }
    }

    /// Files handed out at most: per worker, about one ready, one being
    /// encoded and two with the finishers.
    fn max_in_flight(&self) -> usize {
        self.config.threads * 4
    }
    fn start_workers(&self, n: usize) {
        let Some(finish) = &self.finish_tx else {
            return;
        };
        for _ in 0..n {
            let (jobs, reports, finish) =
                (self.jobs.clone(), self.reports_tx.clone(), finish.clone());
            self.pool
                .execute(move || worker_loop(jobs, reports, finish));
        }
    }
    /// How many files may wait at once (design §4.2).
    fn wait_cap(&self) -> usize {
        (self.config.queue.max(1024)) * 4
    }
    fn schedule(&mut self, path: PathBuf, due: Instant) {
        self.timers.push(Reverse((due, path)));
    }
    fn begin_shutdown(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.systemd.stopping();
        info!(
            "shutting down: finishing {} file(s) in progress (at most {}s); {} waiting file(s) stay in the inbox",
            self.in_flight.len(),
            self.config.shutdown_timeout.as_secs(),
            self.pending.len()
        );
        self.watch = None;
        self.stopping = Some(Instant::now() + self.config.shutdown_timeout);
        // Files handed out but not started stay in the inbox; closing the
        // channel ends each worker loop after its current file.
        self.jobs_tx = None;
        self.finish_tx = None;
        while let Ok(job) = self.jobs.try_recv() {
            if let Job::Archive { key, .. } = job {
                self.in_flight.finish(key);
            }
        }
    }
    fn next_wakeup(&self, now: Instant) -> Duration {
        let mut next = now + Duration::from_secs(1);
        if self.stopping.is_none()
            && self.in_flight.len() < self.max_in_flight()
            && let Some(Reverse((due, _))) = self.timers.peek()
        {
            next = next.min(*due);
        }
        let new_folder = self.new_folders.front().map(|(due, _)| *due);
        for t in [
            Some(self.hosts.next),
            self.next_rescan,
            self.next_watchdog,
            self.stopping,
            new_folder,
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        next.saturating_duration_since(now)
    }
    /// Between events: the watcher's flags (watch limit, errors, dropped
    /// events), rescans that are due, the inbox gone or back, and files
    /// whose time has come. False when it began a shutdown.
    fn tend(&mut self, now: Instant) -> bool {
        self.fall_back_to_polling();
        if let Some(e) = self.flags.error.lock().ok().and_then(|mut e| e.take()) {
            warn!("watcher: {e}; rescanning");
        }
        if self.flags.rescan.swap(false, Ordering::SeqCst) {
            self.rescan("events were dropped");
        }
        if self.pending.rescan_due(self.wait_cap()) {
            self.rescan("backlog larger than the waiting list");
        }
        while let Some((due, _)) = self.new_folders.front()
            && *due <= now
        {
            if let Some((_, dir)) = self.new_folders.pop_front()
                && dir.is_dir()
            {
                self.scan(&dir);
            }
        }
        if let Some(t) = self.next_rescan
            && now >= t
        {
            self.rescan("periodic");
            self.next_rescan = self.config.rescan.map(|d| now + jittered(d));
        }
        if !self.tend_inbox() {
            return false;
        }
        if now >= self.hosts.next && !self.inbox_elsewhere {
            self.tend_hosts(now);
        }
        self.dispatch_due();
        true
    }

    /// The event loop, until shutdown is complete.
    pub(super) fn run(&mut self) {
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.stopping {
                if self.in_flight.is_empty() {
                    break;
                }
                if now >= deadline {
                    let left: Vec<String> = self.in_flight.paths().map(|p| shown(p)).collect();
                    warn!(
                        "shutdown timeout: abandoning {} file(s) in progress (they stay in the inbox): {}",
                        left.len(),
                        left.join(", ")
                    );
                    break;
                }
            } else if !self.tend(now) {
                continue;
            }
            if let Some(t) = self.next_watchdog
                && now >= t
            {
                self.systemd.watchdog();
                self.next_watchdog = self.systemd.watchdog.map(|d| now + d);
            }
            if now >= self.next_status {
                self.systemd.status(&self.status());
                self.next_status = now + Duration::from_secs(5);
            }
            let timeout = self.next_wakeup(now);
            let events = self.events.clone();
            select! {
                recv(events) -> seen => {
                    if let Ok(seen) = seen {
                        self.on_seen(seen);
                        // Drain what is there without waiting.
                        for _ in 0..4096 {
                            match self.events.try_recv() {
                                Ok(seen) => self.on_seen(seen),
                                Err(_) => break,
                            }
                        }
                    }
                }
                recv(self.reports) -> report => {
                    if let Ok(report) = report {
                        self.finished(report);
                    }
                }
                recv(self.control) -> msg => match msg {
                    Ok(Control::Reload) if self.stopping.is_none() => self.reload(),
                    Ok(Control::Reload) => {}
                    Ok(Control::Shutdown) | Err(_) => self.begin_shutdown(),
                },
                recv(self.wake) -> _ => {}
                default(timeout) => {}
            }
        }
    }
}
