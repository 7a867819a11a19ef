//! SIGHUP (design §4.5): re-read and validate the whole configuration,
//! keep the running one when it is invalid, otherwise apply it and log
//! what changed.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::bounded;
use tracing::{error, info, warn};

use super::Coordinator;
use crate::daemon::config::{self, Config};
use crate::daemon::filter::Filter;
use crate::daemon::lock;
use crate::daemon::pipeline::{Job, settings_of};
use crate::daemon::settle::jittered;
use crate::daemon::startup::make_folders;

impl Coordinator {
    pub(super) fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            info!("SIGHUP: running on built-in defaults, no config file to reload");
            return;
        };
        self.systemd.reloading();
        match config::load(&path) {
            Err(e) => error!("reload failed, keeping the running configuration: {e}"),
            Ok(new) => {
                if let Err(e) = self.apply(new) {
                    error!("reload: {e:#}");
                }
            }
        }
        self.systemd.ready(&self.status());
    }
    pub(super) fn apply(&mut self, new: Config) -> Result<()> {
        let old = self.config.clone();
        let mut changed = Vec::new();
        let mut rewatch = false;
        if new.log_level != old.log_level {
            match self.level.set(&new.log_level) {
                Ok(()) => changed.push(format!("log level {:?}", new.log_level)),
                Err(e) => warn!("reload: log level {:?}: {e}", new.log_level),
            }
        }
        if new.log_format != old.log_format {
            warn!(
                "reload: log.format changes need a restart; keeping {:?}",
                old.log_format
            );
        }
        if new.paths != old.paths {
            make_folders(&new)?;
            if new.paths.inbox != old.paths.inbox {
                self._lock = lock::lock(&new.paths.inbox)?;
                self.pending.clear();
                self.timers.clear();
            }
            changed.push("folders".into());
            rewatch = true;
        }
        if new.conversion != old.conversion {
            changed.push(format!("conversion {}", new.conversion));
        }
        if (new.verify, new.max_pixels) != (old.verify, old.max_pixels) {
            changed.push("compress settings".into());
        }
        if new.originals != old.originals {
            changed.push(format!("originals {}", new.originals));
        }
        if new.ignore_patterns != old.ignore_patterns || new.recursive != old.recursive {
            changed.push("ignore rules".into());
            rewatch = true;
        }
        if new.backend != old.backend {
            changed.push("watch backend".into());
            rewatch = true;
        }
        if new.queue != old.queue {
            let (tx, rx) = bounded(new.queue);
            self.events_tx = tx;
            self.events = rx;
            changed.push(format!("queue {}", new.queue));
            rewatch = true;
        }
        if new.threads != old.threads {
            // Every pool thread runs exactly one worker loop for its whole
            // life, so the pool never has an idle thread: growing spawns
            // threads that each take one new loop; shrinking lowers the
            // pool's limit *first*, so a thread whose loop was stopped sees
            // it and exits instead of idling (an idle thread would be
            // counted again at the next growth, and leak).
            if new.threads > old.threads {
                self.pool.set_num_threads(new.threads);
                self.start_workers(new.threads - old.threads);
            } else if let Some(tx) = &self.jobs_tx {
                self.pool.set_num_threads(new.threads);
                for _ in new.threads..old.threads {
                    let _ = tx.send(Job::Stop);
                }
            }
            changed.push(format!("workers {}", new.threads));
        }
        if (new.settle, new.rescan, new.shutdown_timeout)
            != (old.settle, old.rescan, old.shutdown_timeout)
        {
            changed.push("timing".into());
        }
        self.settings = Arc::new(settings_of(&new));
        self.filter = Arc::new(Filter::new(&new));
        self.next_rescan = new.rescan.map(|d| Instant::now() + jittered(d));
        self.config = Arc::new(new);
        if rewatch {
            self.start_watch()?;
            self.rescan("configuration reloaded");
        }
        if changed.is_empty() {
            info!("configuration reloaded: nothing changed");
        } else {
            info!("configuration reloaded: {}", changed.join(", "));
        }
        Ok(())
    }
}
