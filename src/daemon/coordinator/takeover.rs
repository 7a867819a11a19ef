//! Other hosts as the coordinator sees them (design §4.8): claims left in
//! other host ids' folders, this host's heartbeat, and the take-over of a
//! host whose heartbeat stopped.

use std::time::Instant;

use tracing::{info, warn};

use super::Coordinator;
use crate::daemon::journal;
use crate::daemon::startup;
use crate::display::shown;
use crate::layout::InboxLayout;

impl Coordinator {
    /// Claims in other host ids' folders are finished only by a daemon with
    /// that host id: said at start, so that files of a retired or renamed
    /// host id are not forgotten there.
    pub(super) fn warn_foreign_claims(&self) {
        let all = InboxLayout::new(&self.settings.inbox).claims_root();
        let Ok(hosts) = std::fs::read_dir(all) else {
            return;
        };
        for host in hosts.flatten() {
            let dir = host.path();
            if dir == self.settings.claims {
                continue;
            }
            let n = crate::claim::list(&dir).len();
            if n > 0 {
                match self.config.takeover {
                    Some(t) => info!(
                        "{n} claimed file(s) in {}, the claim folder of host id {:?}: finished \
                         by that host, or taken over here if its heartbeat stays still for {}s",
                        shown(&dir),
                        host.file_name(),
                        t.as_secs()
                    ),
                    None => warn!(
                        "{n} claimed file(s) wait in {}, the claim folder of host id {:?}: with \
                         takeover_secs = 0 only a daemon with that host id finishes them; if \
                         that host id is retired, stop the daemons and move them back into the \
                         inbox (see docs/faq.md, \"Where did my file go?\")",
                        shown(&dir),
                        host.file_name()
                    ),
                }
            }
        }
    }

    /// Refreshes this host's heartbeat and takes over the claims of hosts
    /// whose heartbeat stopped (design §4.8).
    pub(super) fn tend_hosts(&mut self, now: Instant) {
        let silent = self.config.takeover.map_or(0, |t| t.as_secs());
        let hb = self.heartbeat(now);
        for host in self.hosts.tick(now, hb) {
            let (taken, held) = self.hosts.take_over(&host, &self.settings.claims);
            if !taken.is_empty() {
                warn!(
                    message_id = journal::TAKEN_OVER,
                    rlewatch_host = %self.config.host,
                    rlewatch_taken_from = %host,
                    "host {host:?} has shown no heartbeat for {silent}s: took over {} of its \
                     claimed file(s): {}",
                    taken.len(),
                    taken
                        .iter()
                        .map(|p| shown(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.adopt_claims();
                // Its unfinished temporary files, which no one holds now,
                // on a thread (a walk of the whole archive).
                self.sweep(startup::Stale::Of(host.clone()));
            }
            if held > 0 && self.hosts.first_held(&host) {
                warn!(
                    "host {host:?} has shown no heartbeat for {silent}s, but a live process on \
                     this machine holds its {held} claimed file(s) locked (a stopped or stalled \
                     daemon?): left to it"
                );
            }
        }
    }
}
