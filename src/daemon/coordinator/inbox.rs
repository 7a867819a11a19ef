//! The inbox as the coordinator watches it (design §4.1, §4.8): its lock
//! and watch ([`InboxWatch`]), starting the watch, falling back to polling
//! at the inotify limit, and the inbox gone, replaced, unmounted or back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use tracing::{error, info, warn};

use super::Coordinator;
use crate::daemon::config::Config;
use crate::daemon::lock;
use crate::daemon::watch::{self, Flags, Handler, Watch};
use crate::display::shown;

/// The hold on the inbox: its lock, its watch and what the watcher flags.
pub(super) struct InboxWatch {
    /// Held while the inbox is watched (never read).
    pub(super) _lock: lock::InboxLock,
    /// `None` while the inbox is gone, elsewhere or shutting down.
    pub(super) watch: Option<Watch>,
    /// Shared with the watcher's callback: the watch limit, errors,
    /// dropped events.
    pub(super) flags: Arc<Flags>,
    /// The inbox was a mount point and is none now (said once).
    pub(super) elsewhere: bool,
    /// The walk of the inbox under way, taken in batches.
    pub(super) walk: Option<super::walk::InboxWalk>,
}

impl InboxWatch {
    /// Holding `lock`, no watch yet.
    pub(super) fn new(lock: lock::InboxLock) -> InboxWatch {
        InboxWatch {
            _lock: lock,
            watch: None,
            flags: Arc::default(),
            elsewhere: false,
            walk: None,
        }
    }
}

impl Coordinator {
    /// The watcher's callback: events to the coordinator, flags shared.
    pub(super) fn handler(&self) -> Handler {
        Handler {
            tx: self.channels.events_tx.clone(),
            wake: self.channels.wake_tx.clone(),
            flags: self.inbox.flags.clone(),
            filter: self.filter.clone(),
            polling: false,
        }
    }

    pub(super) fn poll_interval(&self) -> Duration {
        poll_interval(&self.config)
    }

    /// Watches the inbox anew (the configured backend), replacing any watch.
    pub(super) fn start_watch(&mut self) -> Result<()> {
        // Drop the old watcher first: one inotify instance at a time.
        self.inbox.watch = None;
        let w = watch::start(
            self.config.backend,
            self.config.recursive,
            self.poll_interval(),
            &self.handler(),
        )?;
        log_watching(&self.config, &w);
        self.inbox.watch = Some(w);
        Ok(())
    }

    /// True when writers can be observed: the native backend on a local
    /// filesystem (the lease probe then says per file whether it can
    /// answer).
    pub(super) fn completion_observable(&self) -> bool {
        self.inbox
            .watch
            .as_ref()
            .is_some_and(|w| w.observes_writers)
    }

    /// At the inotify watch limit: the native watch gives way to polling.
    pub(super) fn fall_back_to_polling(&mut self) {
        if self.inbox.flags.watch_limit.swap(false, Ordering::SeqCst)
            && !self.inbox.watch.as_ref().is_some_and(|w| w.polling)
        {
            watch::log_watch_limit(&self.config.paths.inbox);
            self.inbox.watch = None;
            let mode = watch::mode(self.config.recursive);
            match watch::start_poll(mode, self.poll_interval(), &self.handler()) {
                Ok(w) => self.inbox.watch = Some(w),
                Err(e) => error!("{e}"),
            }
        }
    }

    /// The inbox gone, replaced by another folder, no longer the mount point
    /// it was, or back: the watch and lock follow it. False when the lock
    /// cannot be taken again (a shutdown has begun).
    pub(super) fn tend_inbox(&mut self) -> bool {
        let inbox_id = watch::folder_id(&self.config.paths.inbox);
        let inbox_there = inbox_id.is_some();
        // An inbox that was a mount point and is none now is the empty
        // mount point of a share that went away: not watched, locked or
        // written to until the share is mounted again.
        let elsewhere = inbox_there
            && self.settings.devices.inbox.mount
            && !crate::archive::mount_point(&self.config.paths.inbox);
        if let Some(w) = &self.inbox.watch
            && w.inbox_id != inbox_id
        {
            // Its watch died with it (or watches the old folder, moved
            // away): files arriving in the folder there now go unseen.
            if !elsewhere {
                warn!(
                    "{}: the inbox {}",
                    shown(&self.config.paths.inbox),
                    if inbox_there {
                        "was replaced by another folder; watching that one"
                    } else {
                        "disappeared; waiting for it to come back"
                    }
                );
            }
            self.inbox.watch = None;
            self.schedule.forget_waiting();
        }
        if elsewhere && !self.inbox.elsewhere {
            error!(
                "{}: the inbox is no longer the mount point it was when rlewatch started (a \
                 network share unmounted?); waiting for it to be mounted again",
                shown(&self.config.paths.inbox)
            );
        }
        self.inbox.elsewhere = elsewhere;
        if self.inbox.watch.is_none() && inbox_there && !elsewhere {
            // The lock file went with the old folder: take it again.
            match lock::lock(&self.config.paths.inbox, &self.config.host) {
                Ok(l) => self.inbox._lock = l,
                Err(e) => {
                    error!("{e}; stopping");
                    self.begin_shutdown();
                    return false;
                }
            }
            if let Err(e) = self.start_watch() {
                error!("{e:#}");
            } else {
                self.rescan("inbox is back");
            }
        }
        true
    }
}

/// The log line for a watch just started.
pub(super) fn log_watching(config: &Config, w: &Watch) {
    info!(
        "watching {} ({}{})",
        shown(&config.paths.inbox),
        if w.polling { "polling" } else { "inotify" },
        if config.recursive {
            ", with subfolders"
        } else {
            ""
        }
    );
}

/// How often the poll backend looks: settle_ms, within 0.1–1 s.
pub(super) fn poll_interval(config: &Config) -> Duration {
    config
        .settle
        .clamp(Duration::from_millis(100), Duration::from_secs(1))
}
