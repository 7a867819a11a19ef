//! `rlewatch retry --now` in the daemon (design §4.4, "Retrying
//! failures"): SIGUSR1 from this machine, or the request file
//! `INBOX/.rlewatch/retry-now` rewritten by a command on any host of a
//! shared inbox, makes every file waiting out a backoff due at once. The
//! request file is looked at on each heartbeat tick and never removed (each
//! host acts on each new version of it once).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use tracing::info;

use super::Coordinator;
use crate::layout::InboxLayout;

/// The version of the request file last acted on.
#[derive(Debug)]
pub(super) struct RetryRequest {
    /// (inode, mtime seconds, mtime nanoseconds): each request is a new
    /// file renamed over the old one.
    seen: Option<(u64, i64, i64)>,
}

impl RetryRequest {
    /// The request file of `inbox`; a request made before the start is not
    /// acted on (at the start nothing waits out a backoff).
    pub(super) fn new(inbox: &Path) -> RetryRequest {
        RetryRequest {
            seen: version(inbox),
        }
    }

    /// True once for each new request in `inbox` (the inbox may change at
    /// a reload).
    fn asked(&mut self, inbox: &Path) -> bool {
        let now = version(inbox);
        if now.is_some() && now != self.seen {
            self.seen = now;
            return true;
        }
        false
    }
}

fn version(inbox: &Path) -> Option<(u64, i64, i64)> {
    fs::metadata(InboxLayout::new(inbox).retry_request())
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
}

impl Coordinator {
    /// Every file in backoff due now, said in the log with `why`.
    pub(super) fn retry_now(&mut self, why: &str) {
        let n = self.schedule.retry_now(Instant::now());
        info!("retrying {n} file(s) in backoff now ({why})");
    }

    /// On a heartbeat tick: a new request file?
    pub(super) fn tend_retry_request(&mut self) {
        if self.retry_request.asked(&self.config.paths.inbox) {
            self.retry_now("asked through the request file by `rlewatch retry --now`");
        }
    }
}
