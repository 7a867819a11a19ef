//! SIGHUP (design §4.5): re-read and validate the whole configuration,
//! keep the running one when it is invalid, otherwise apply it and log
//! what changed.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, bounded};
use tracing::{error, info, warn};

use super::Coordinator;
use super::inbox::{log_watching, poll_interval};
use crate::daemon::config::{self, Config};
use crate::daemon::filter::Filter;
use crate::daemon::journal;
use crate::daemon::lock;
use crate::daemon::pipeline::{devices_of, settings_of};
use crate::daemon::startup::make_folders;
use crate::daemon::watch::{self, Seen, Watch};
use crate::display::shown;
use crate::ledger::Ledger;

/// What [`Coordinator::prepare`] made for a new configuration, to be put
/// in place by [`Coordinator::switch`].
struct Prepared {
    /// The new inbox's lock, when the inbox changed.
    lock: Option<lock::InboxLock>,
    ledger: Arc<Ledger>,
    filter: Arc<Filter>,
    /// A new events channel, when its capacity changed.
    events: Option<(Sender<Seen>, Receiver<Seen>)>,
    /// The new watch, when the watch changed.
    watch: Option<Watch>,
}

impl Coordinator {
    pub(super) fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            info!("SIGHUP: running on built-in defaults, no config file to reload");
            return;
        };
        self.systemd.reloading();
        let host = self.config.host.clone();
        match config::load(&path) {
            Err(e) => error!(
                message_id = journal::RELOAD_REFUSED,
                rlewatch_host = %host,
                "reload failed, keeping the running configuration: {e}"
            ),
            Ok(new) => {
                if let Err(e) = self.apply(new) {
                    error!(
                        message_id = journal::RELOAD_REFUSED,
                        rlewatch_host = %host,
                        "reload failed, keeping the running configuration: {e:#}"
                    );
                }
            }
        }
        let status = self.status();
        self.systemd.ready(&status);
    }
    /// Applies a valid configuration all or nothing: what can fail — the
    /// folders, the new inbox's lock, the new watch — is done first, while
    /// the running configuration is still wholly in place; only then is
    /// anything switched.
    pub(super) fn apply(&mut self, mut new: Config) -> Result<()> {
        let old = self.config.clone();
        if new.host != old.host {
            warn!("daemon.host changes need a restart; keeping {:?}", old.host);
            new.host = old.host.clone();
        }
        let d = diff(&old, &new);
        if new.log_format != old.log_format {
            warn!(
                "log.format changes need a restart; keeping {:?}",
                old.log_format
            );
        }
        // 1. What can fail, with nothing switched yet.
        let ready = self.prepare(&old, &new, d.rewatch)?;
        // 2. Switch.
        self.switch(&old, new, ready);
        if d.rewatch {
            self.rescan("configuration reloaded");
        }
        let host = &self.config.host;
        if d.changed.is_empty() {
            info!(
                message_id = journal::RELOADED,
                rlewatch_host = %host,
                "configuration reloaded: nothing changed"
            );
        } else {
            info!(
                message_id = journal::RELOADED,
                rlewatch_host = %host,
                "configuration reloaded: {}",
                d.changed.join(", ")
            );
        }
        Ok(())
    }

    /// The parts of a new configuration that can fail, made while the
    /// running one is wholly in place: its folders, the new inbox's lock,
    /// the new archive's ledger, the new watch.
    fn prepare(&self, old: &Config, new: &Config, rewatch: bool) -> Result<Prepared> {
        if new.paths != old.paths {
            make_folders(new)?;
        }
        let new_lock = if new.paths.inbox != old.paths.inbox {
            Some(lock::lock(&new.paths.inbox, &new.host)?)
        } else {
            None
        };
        let ledger = if new.paths.archive != old.paths.archive {
            Arc::new(
                Ledger::open(&new.paths.archive, &new.host)
                    .with_context(|| format!("{}: the ledger", shown(&new.paths.archive)))?,
            )
        } else {
            self.settings.ledger.clone()
        };
        let filter = Arc::new(Filter::new(new));
        let events = (new.queue != old.queue).then(|| bounded(new.queue));
        let mut watch = None;
        if rewatch {
            let mut handler = self.handler();
            handler.filter = filter.clone();
            if let Some((tx, _)) = &events {
                handler.tx = tx.clone();
            }
            let started = watch::start(new.backend, new.recursive, poll_interval(new), &handler);
            // On failure the old watch still runs.
            let w = started?;
            log_watching(new, &w);
            watch = Some(w);
        }
        Ok(Prepared {
            lock: new_lock,
            ledger,
            filter,
            events,
            watch,
        })
    }

    /// Puts a prepared configuration in place. Nothing here fails the
    /// reload: a finisher thread that cannot be started is logged, and the
    /// ones running go on.
    fn switch(&mut self, old: &Config, new: Config, ready: Prepared) {
        let Prepared {
            lock: new_lock,
            ledger,
            filter,
            events,
            watch,
        } = ready;
        if watch.is_some() {
            self.inbox.watch = watch;
        }
        if new.log_level != old.log_level
            && let Err(e) = self.level.set(&new.log_level)
        {
            warn!("log level {:?}: {e}", new.log_level);
        }
        if let Some(l) = new_lock {
            self.inbox._lock = l;
            self.schedule.forget_waiting();
        }
        if let Some((tx, rx)) = events {
            self.channels.events_tx = tx;
            self.channels.events = rx;
        }
        if new.threads != old.threads {
            self.workers.resize(old.threads, new.threads);
        }
        // The filesystems the folders are on are taken anew only for
        // folders that changed.
        let devices = if new.paths == old.paths {
            self.settings.devices
        } else {
            devices_of(&new)
        };
        self.settings = Arc::new(settings_of(&new, ledger, devices));
        self.filter = filter;
        self.deadlines.rescan_from(Instant::now(), new.rescan);
        if new.metrics != old.metrics {
            // The new file (or interval) at once, not an old interval on.
            self.publishing.next_metrics = Instant::now();
        }
        if new.paths.inbox != old.paths.inbox {
            self.hosts =
                crate::daemon::hosts::Hosts::new(&new.paths.inbox, &new.host, new.takeover);
        } else {
            self.hosts.set_timeout(new.takeover);
        }
        self.config = Arc::new(new);
        self.retention.configure(self.retention_setup());
    }
}

/// What a reload changes, for the log line, and whether the inbox must be
/// watched anew.
#[derive(Debug, Default, PartialEq, Eq)]
struct Diff {
    changed: Vec<String>,
    rewatch: bool,
}

/// Compares two configurations (pure).
fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    let mut change = |what: String, rewatch: bool| {
        d.changed.push(what);
        d.rewatch |= rewatch;
    };
    if new.log_level != old.log_level {
        change(format!("log level {:?}", new.log_level), false);
    }
    if new.paths != old.paths {
        change("folders".into(), true);
    }
    if new.conversion != old.conversion {
        change(format!("conversion {}", new.conversion), false);
    }
    if (new.verify, new.max_pixels) != (old.verify, old.max_pixels) {
        change("compress settings".into(), false);
    }
    if new.formats != old.formats {
        let names: Vec<&str> = new.formats.iter().map(|f| f.name()).collect();
        change(format!("formats {}", names.join(",")), false);
    }
    if new.originals != old.originals {
        change(format!("originals {}", new.originals), false);
    }
    if (new.done_retention, new.failed_retention) != (old.done_retention, old.failed_retention) {
        change("retention".into(), false);
    }
    if new.ignore_patterns != old.ignore_patterns || new.recursive != old.recursive {
        change("ignore rules".into(), true);
    }
    if new.backend != old.backend {
        change("watch backend".into(), true);
    }
    if new.queue != old.queue {
        change(format!("queue {}", new.queue), true);
    }
    if new.threads != old.threads {
        change(format!("workers {}", new.threads), false);
    }
    if new.metrics != old.metrics {
        let what = new
            .metrics
            .as_ref()
            .map_or("off".to_string(), |m| shown(&m.path));
        change(format!("metrics {what}"), false);
    }
    if new.stuck != old.stuck {
        change(format!("status.stuck_secs {}", new.stuck.as_secs()), false);
    }
    if (new.settle, new.rescan, new.shutdown_timeout, new.takeover)
        != (old.settle, old.rescan, old.shutdown_timeout, old.takeover)
    {
        change("timing".into(), false);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        config::parse(toml, std::path::Path::new("/srv")).unwrap()
    }

    #[test]
    fn the_diff_names_what_changed_and_whether_to_watch_anew() {
        let base = config("");
        assert_eq!(diff(&base, &base), Diff::default());
        let d = diff(
            &base,
            &config("[log]\nlevel = \"debug\"\n[workers]\nthreads = 3\n"),
        );
        assert_eq!(d.changed, ["log level \"debug\"", "workers 3"]);
        assert!(!d.rewatch);
        let d = diff(&base, &config("[metrics]\ntextfile = \"m/r.prom\"\n"));
        assert_eq!(d.changed, ["metrics /srv/m/r.prom"]);
        assert!(!d.rewatch);
        let d = diff(&base, &config("[compress]\nformats = [\"png\", \"bmp\"]\n"));
        assert_eq!(d.changed, ["formats bmp,png"]);
        assert!(!d.rewatch);
        for (toml, what) in [
            ("[paths]\ninbox = \"elsewhere\"\n", "folders"),
            ("[watch]\nignore = [\"*.x\"]\n", "ignore rules"),
            ("[watch]\nbackend = \"poll\"\n", "watch backend"),
            ("[workers]\nqueue = 7\n", "queue 7"),
        ] {
            let d = diff(&base, &config(toml));
            assert_eq!(d.changed, [what], "{toml}");
            assert!(d.rewatch, "{toml}");
        }
    }
}
