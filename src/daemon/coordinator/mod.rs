//! The coordinator (design §4.1): one thread owning every piece of daemon
//! state, fed by the watcher, the workers and the signal thread through
//! channels. It is made of roles, each a struct with one job: the
//! [`Schedule`] (files waiting with their due times, in flight, kept, new
//! folders; pure), the [`Workers`] (pool, jobs, finishers), the
//! [`Channels`], the [`Deadlines`] (rescan, watchdog, status, shutdown),
//! the [`InboxWatch`] (lock and watch), the hosts and the counters. This
//! file holds them and the event loop; `intake` decides when files go,
//! `inbox` keeps the watch on the inbox (poll fallback, inbox gone or
//! back), `takeover` deals with other hosts' claims, `report` tells what
//! happened, `reload` applies a new configuration.

mod channels;
mod deadlines;
mod in_flight;
mod inbox;
mod intake;
mod publish;
mod reload;
mod report;
mod retry_now;
mod schedule;
mod takeover;
#[cfg(test)]
mod tests;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, select};
use tracing::{info, warn};

use super::config::Config;
use super::filter::Filter;
use super::pipeline::{Workers, devices_of, settings_of};
use super::signals::Control;
use super::{lock, logging, systemd};
use crate::archive::Settings;
use crate::daemon::stats::Stats;
use crate::display::shown;
use channels::Channels;
use deadlines::Deadlines;
use inbox::InboxWatch;
use publish::Publishing;
use retry_now::RetryRequest;
use schedule::Schedule;

/// What the retention thread needs of `config`, with this host's ledger.
fn retention_setup(
    config: &Config,
    ledger: &Arc<crate::ledger::Ledger>,
) -> super::retention::Setup {
    super::retention::Setup {
        archive: config.paths.archive.clone(),
        done: config.paths.done.clone(),
        failed: config.paths.failed.clone(),
        host: config.host.clone(),
        done_after: config.done_retention,
        failed_after: config.failed_retention,
        ledger: ledger.clone(),
    }
}

/// The daemon's state, owned by one thread (the one that called
/// [`crate::daemon::run`]); everything else talks to it through channels.
pub(super) struct Coordinator {
    config_path: Option<PathBuf>,
    config: Arc<Config>,
    /// The workers' snapshot of the configuration.
    settings: Arc<Settings>,
    filter: Arc<Filter>,
    level: logging::LevelHandle,
    systemd: systemd::Systemd,
    channels: Channels,
    inbox: InboxWatch,
    workers: Workers,
    schedule: Schedule,
    deadlines: Deadlines,
    stats: Stats,
    /// When the heartbeat and metrics are next written.
    publishing: Publishing,
    /// This host's heartbeat and the other hosts' (design §4.8).
    hosts: super::hosts::Hosts,
    /// `rlewatch retry --now` from any host.
    retry_request: RetryRequest,
    /// Removes old originals and quarantined files (design §4.4,
    /// "Retention"), on its own thread.
    retention: super::retention::Retention,
    /// Removals of stale temporary files under way (design §4.4): the
    /// start's, and a takeover's.
    sweeps: Vec<super::startup::Sweep>,
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
        let channels = Channels::new(config.queue, control);
        let workers = Workers::new(config.threads, channels.reports_tx.clone())
            .context("cannot start the finisher threads")?;
        let systemd = systemd::Systemd::new();
        let config = Arc::new(config);
        let retry_request = RetryRequest::new(&config.paths.inbox);
        let retention = super::retention::Retention::start(retention_setup(&config, &ledger))
            .context("cannot start the retention thread")?;
        let hosts = super::hosts::Hosts::new(&config.paths.inbox, &config.host, config.takeover);
        Ok(Coordinator {
            config_path: config_path.map(Path::to_path_buf),
            settings: Arc::new(settings_of(&config, ledger, devices_of(&config))),
            filter: Arc::new(Filter::new(&config)),
            workers,
            deadlines: Deadlines::new(Instant::now(), config.rescan, systemd.watchdog),
            config,
            level,
            systemd,
            inbox: InboxWatch::new(the_lock),
            channels,
            schedule: Schedule::default(),
            stats: Stats::default(),
            publishing: Publishing::new(Instant::now()),
            hosts,
            retry_request,
            retention,
            sweeps: Vec::new(),
        })
    }

    /// Starts the worker loops and the watch, queues the backlog and tells
    /// systemd it is ready.
    pub(super) fn start(&mut self) -> Result<()> {
        self.workers.start_loops(self.config.threads);
        // Watch first, then scan: a file arriving in between is seen twice at
        // worst, never missed.
        self.start_watch()?;
        // Claims a crash left are finished first (design §4.7).
        crate::claim::sweep(&self.settings.claims, &self.settings.inbox);
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
        let status = self.status();
        self.systemd.ready(&status);
        // Earlier runs' temporary files, on a thread: a walk of the whole
        // archive must not hold up the start (design §4.4). The token is
        // this process's (made by `daemon::run` already; here too for a
        // coordinator started without it, so that its own files are
        // tagged and never swept).
        let instance = crate::durable::set_temp_owner(&self.config.host).to_string();
        self.sweep(super::startup::Stale::Earlier { instance });
        Ok(())
    }

    /// Starts removing the stale temporary files `whose` says, beside the
    /// sweeps still under way.
    fn sweep(&mut self, whose: super::startup::Stale) {
        self.sweeps.retain(|s| !s.finished());
        self.sweeps
            .push(super::startup::Sweep::start(&self.config, whose));
    }

    /// After the event loop: the summary line, and the threads joined when
    /// nothing was abandoned.
    pub(super) fn stop(&mut self) {
        self.publish_stopped();
        self.retention.stop();
        for sweep in &mut self.sweeps {
            sweep.stop();
        }
        let s = &self.stats;
        let counts = self.retention.counts();
        let removed = match (
            counts.done.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed),
        ) {
            (0, 0) => String::new(),
            (d, f) => format!("; retention removed {d} original(s) and {f} failed file(s)"),
        };
        info!(
            "stopped: archived {} file(s), {} -> {} bytes, {} failed, {} retried attempt(s), \
             {} name(s) ignored{removed}",
            s.archived,
            s.bytes_in,
            s.bytes_out,
            s.failed_total(),
            s.retries,
            s.ignored.len()
        );
        if self.schedule.in_flight().is_empty() {
            self.workers.join();
        }
    }

    /// What the retention thread needs of the configuration in effect.
    fn retention_setup(&self) -> super::retention::Setup {
        retention_setup(&self.config, &self.settings.ledger)
    }

    /// Files handed out at most: per worker, about one ready, one being
    /// encoded and two with the finishers.
    fn max_in_flight(&self) -> usize {
        self.config.threads * 4
    }
    /// How many files may wait at once (design §4.2).
    fn wait_cap(&self) -> usize {
        (self.config.queue.max(1024)) * 4
    }
    fn begin_shutdown(&mut self) {
        if self.deadlines.stopping().is_some() {
            return;
        }
        self.systemd.stopping();
        self.publishing.state = "stopping";
        self.stats.dirty = true;
        let c = self.counts(Instant::now());
        let ignored = if c.ignored > 0 {
            format!(", and {} ignored name(s) no pattern takes", c.ignored)
        } else {
            String::new()
        };
        info!(
            "shutting down: finishing {} file(s) in progress (at most {}s); {} waiting and {} \
             retrying file(s) stay in the inbox{ignored}",
            self.schedule.in_flight().len(),
            self.config.shutdown_timeout.as_secs(),
            c.waiting,
            c.retrying
        );
        self.inbox.watch = None;
        self.deadlines
            .stop_by(Instant::now() + self.config.shutdown_timeout);
        // Files handed out but not started stay in the inbox; closing the
        // channel ends each worker loop after its current file.
        for key in self.workers.close() {
            self.schedule.returned(key);
        }
    }
    /// How long the event loop may wait for a message.
    fn sleep(&self, now: Instant) -> std::time::Duration {
        let due = match self.deadlines.stopping() {
            None => self.schedule.next_due(self.max_in_flight()),
            Some(_) => None,
        };
        let others = [
            due,
            Some(self.hosts.next),
            self.schedule.next_folder(),
            self.next_publish(),
        ];
        self.deadlines.sleep(now, &others)
    }
    /// Between events: the watcher's flags (watch limit, errors, dropped
    /// events), rescans that are due, the inbox gone or back, and files
    /// whose time has come. False when it began a shutdown.
    fn tend(&mut self, now: Instant) -> bool {
        self.fall_back_to_polling();
        let flags = self.inbox.flags.clone();
        if let Some(e) = flags.error.lock().ok().and_then(|mut e| e.take()) {
            warn!("watcher: {e}; rescanning");
        }
        if flags.rescan.swap(false, Ordering::SeqCst) {
            self.rescan("events were dropped");
        }
        if self.schedule.rescan_due(self.wait_cap()) {
            self.rescan("backlog larger than the waiting list");
        }
        while let Some(dir) = self.schedule.folder_due(now) {
            if dir.is_dir() {
                self.scan(&dir);
            }
        }
        if self.deadlines.rescan_due(now, self.config.rescan) {
            self.rescan("periodic");
        }
        if self.walk_wants_more() {
            self.advance_walk();
        }
        if !self.tend_inbox() {
            return false;
        }
        if now >= self.hosts.next && !self.inbox.elsewhere {
            self.tend_retry_request();
            self.tend_hosts(now);
        }
        self.dispatch_due();
        true
    }

    /// The event loop, until shutdown is complete.
    pub(super) fn run(&mut self) {
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.deadlines.stopping() {
                if self.schedule.in_flight().is_empty() {
                    break;
                }
                if now >= deadline {
                    self.abandon_in_flight();
                    break;
                }
            } else if !self.tend(now) {
                continue;
            }
            if self.deadlines.watchdog_due(now, self.systemd.watchdog) {
                self.systemd.watchdog();
            }
            if self.deadlines.status_due(now) {
                let status = self.status();
                self.systemd.status(&status);
            }
            self.publish(now);
            let timeout = self.sleep(now);
            self.wait_for_message(timeout);
        }
    }

    /// The shutdown's grace is over: what is still in flight is left.
    fn abandon_in_flight(&self) {
        let left: Vec<String> = self
            .schedule
            .in_flight()
            .paths()
            .map(|p| shown(p))
            .collect();
        warn!(
            "shutdown timeout: abandoning {} file(s) in progress (they are finished at the next start): {}",
            left.len(),
            left.join(", ")
        );
    }

    /// Waits up to `timeout` for one message and handles it (and, for the
    /// watcher's, whatever else it sent meanwhile).
    fn wait_for_message(&mut self, timeout: std::time::Duration) {
        let events = self.channels.events.clone();
        select! {
            recv(events) -> seen => {
                if let Ok(seen) = seen {
                    self.on_seen(seen);
                    // Drain what is there without waiting.
                    for _ in 0..4096 {
                        match self.channels.events.try_recv() {
                            Ok(seen) => self.on_seen(seen),
                            Err(_) => break,
                        }
                    }
                }
            }
            recv(self.channels.reports) -> report => {
                if let Ok(report) = report {
                    self.on_report(report);
                }
            }
            recv(self.channels.control) -> msg => match msg {
                Ok(Control::Reload) if self.deadlines.stopping().is_none() => self.reload(),
                Ok(Control::Reload) => {}
                Ok(Control::RetryNow) if self.deadlines.stopping().is_none() => {
                    self.retry_now("asked by SIGUSR1");
                }
                Ok(Control::RetryNow) => {}
                Ok(Control::Shutdown) | Err(_) => self.begin_shutdown(),
            },
            recv(self.channels.wake) -> _ => {}
            default(timeout) => {}
        }
    }
}
