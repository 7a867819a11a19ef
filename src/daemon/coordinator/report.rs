//! What the coordinator tells (design §4.3, §4.5): the counters
//! (`crate::daemon::stats`), the `STATUS=` line, and one log line per
//! file the pipeline reports back (and what happens next to a file that
//! must be retried or looked at again).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, error, info, warn};

use super::Coordinator;
use crate::archive::{self, Failure, Kind, Original, Published, Report, notes};
use crate::compress::Outcome;
use crate::daemon::journal;
use crate::daemon::pipeline::JobReport;
use crate::daemon::settle::{backoff, recheck};
use crate::display::shown;

impl Coordinator {
    pub(super) fn status(&mut self) -> String {
        // Files being retried after a transient error are shown apart: a
        // number that stays up is a stuck source someone must look at. A
        // file is retrying while its retry attempt runs too, so the line
        // does not flip between "retrying 1" and "in progress 1".
        let c = self.counts(Instant::now());
        let ignored = if c.ignored > 0 {
            format!(", ignored {}", c.ignored)
        } else {
            String::new()
        };
        format!(
            "archived {}, failed {}, waiting {}, retrying {}, in progress {}{ignored}; host {}",
            self.stats.archived,
            self.stats.failed_total(),
            c.waiting,
            c.retrying,
            c.in_progress,
            self.config.host
        )
    }
    /// A file back from the pipeline: counted, logged, and put back to
    /// wait when it is to be tried or looked at again.
    pub(super) fn on_report(&mut self, d: JobReport) {
        self.schedule.returned(d.key);
        let handed_out = self.stats.returned(d.key);
        let (rel, was_claim) = archive::relative(&self.settings, &d.path);
        let dropped = self.config.paths.inbox.join(rel);
        let claim = self.settings.claims.join(rel);
        // Where the file is now, for whatever comes next: its claim, or
        // the inbox (not claimed yet, or put back for a retry).
        let here = if same_file(&claim, d.key) {
            claim.clone()
        } else if same_file(&dropped, d.key) {
            dropped.clone()
        } else {
            d.path.clone()
        };
        let src = shown(&dropped);
        match d.report {
            Report::Archived {
                archive,
                outcome,
                original,
                millis,
            } => {
                let latency = handed_out.map(|t| t.elapsed());
                self.archived(&src, rel, &archive, &outcome, (millis, latency), &original);
                self.stats.not_retrying(&here, &dropped);
                self.after_filing(&dropped, &original);
                notes::settle_after_archived(
                    &self.settings.inbox,
                    &self.settings.failed,
                    rel,
                    &src,
                );
            }
            Report::AlreadyArchived { archive, original } => {
                self.stats.filed(&archive);
                let (source, source_raw) = journal::path(rel);
                let (arch, arch_raw) = journal::path(self.archive_relative(&archive));
                info!(
                    message_id = journal::ARCHIVED,
                    rlewatch_source = %source,
                    rlewatch_source_raw = source_raw.as_deref(),
                    rlewatch_archive = %arch,
                    rlewatch_archive_raw = arch_raw.as_deref(),
                    rlewatch_host = %self.config.host,
                    "{src}: already archived as {}; {original}",
                    shown(&archive)
                );
                self.stats.not_retrying(&here, &dropped);
                self.after_filing(&dropped, &original);
                notes::settle_after_archived(
                    &self.settings.inbox,
                    &self.settings.failed,
                    rel,
                    &src,
                );
            }
            Report::Gone => {
                self.stats.not_retrying(&here, &dropped);
                debug!("{src}: gone before it could be archived");
            }
            Report::Busy { reason } => {
                debug!("{src}: not taken now: {reason}");
                let due = Instant::now() + recheck(self.config.settle).max(Duration::from_secs(1));
                self.look_again(here, due, d.attempts);
            }
            Report::Refused { reason } => {
                self.stats.not_retrying(&here, &dropped);
                warn!("{src}: left alone: {reason}");
            }
            Report::Superseded { archive } => {
                warn!(
                    "{src}: changed after {} was written, which holds its earlier state; \
                     the original stays and is archived again",
                    shown(&archive)
                );
                let due = Instant::now() + self.config.settle;
                self.look_again(here, due, d.attempts);
            }
            Report::Changed => {
                debug!("{src}: changed while being read; waiting for it to settle");
                let due = Instant::now() + self.config.settle;
                self.look_again(here, due, d.attempts);
            }
            Report::Quarantined { reason, class, to } => {
                self.stats.failed(class);
                self.stats.not_retrying(&here, &dropped);
                self.stats.not_retrying(&d.path, &dropped);
                let (source, source_raw) = journal::path(rel);
                warn!(
                    message_id = journal::QUARANTINED,
                    rlewatch_source = %source,
                    rlewatch_source_raw = source_raw.as_deref(),
                    rlewatch_host = %self.config.host,
                    "{src}: {reason}; moved to {}",
                    shown(&to)
                );
                // Put back already (`rlewatch retry` right after the move):
                // its event came while it was in flight, so it is looked at
                // now. No spin: only someone moving it back brings it here.
                if same_file(&dropped, d.key) {
                    self.observe(&dropped);
                }
            }
            Report::Transient { error } => {
                self.retry_later(here, [&d.path, &dropped], d.attempts, &error, None);
            }
            Report::Unfiled { published, error } => {
                // Archived (and recorded, unless that failed too): counted.
                if published.unrecorded.is_none() {
                    let len = |p: &Path| fs::symlink_metadata(p).map_or(0, |m| m.len());
                    let bytes = (len(&here), len(&published.archive));
                    self.stats
                        .archived_unfiled(&published.archive, bytes, SystemTime::now());
                }
                let p = Some(published);
                self.retry_later(here, [&d.path, &dropped], d.attempts, &error, p);
            }
        }
        if !was_claim && !same_file(&d.path, d.key) {
            // Its name in the inbox is free once claimed: events for a new
            // file there came while the name was in flight. (The same file
            // still there — refused, busy, retried — is not looked at
            // again here: that would spin.)
            self.observe(&d.path);
        }
        // A claim of that name this job did not take (another file claimed
        // meanwhile, or one put there while this one was being claimed).
        if claim.exists() && !self.schedule.is_waiting(&claim) {
            let now = Instant::now();
            self.pend(claim, now, 0, None, false);
        }
    }

    /// Counts an archived file and logs its line (and why an original
    /// to be deleted was moved instead).
    fn archived(
        &mut self,
        src: &str,
        rel: &Path,
        archive: &Path,
        outcome: &Outcome,
        (millis, latency): (u128, Option<Duration>),
        original: &Original,
    ) {
        let processing = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        self.stats.archived(
            (outcome.bytes_in, outcome.bytes_out),
            latency,
            processing,
            SystemTime::now(),
        );
        let ratio = outcome.bytes_in as f64 / outcome.bytes_out.max(1) as f64;
        let (source, source_raw) = journal::path(rel);
        let (arch, arch_raw) = journal::path(self.archive_relative(archive));
        info!(
            message_id = journal::ARCHIVED,
            rlewatch_source = %source,
            rlewatch_source_raw = source_raw.as_deref(),
            rlewatch_archive = %arch,
            rlewatch_archive_raw = arch_raw.as_deref(),
            rlewatch_host = %self.config.host,
            "archived {src} -> {}: {} -> {} bytes, ratio {ratio:.1}, lossless {}, {millis} ms; {original}",
            shown(archive),
            outcome.bytes_in,
            outcome.bytes_out,
            outcome.lossless
        );
        if let Original::MovedLossy(_) = original {
            if outcome.lossless {
                warn!(
                    "{src}: the archive was not verified (verify = false), so the original \
                     was moved to done instead of deleted"
                );
            } else {
                warn!(
                    "{src}: conversion was lossy, so the original was moved to done instead of deleted"
                );
            }
        }
    }

    /// A file to be looked at again at `due` (an event for it meanwhile
    /// brings that forward, as for any waiting file).
    fn look_again(&mut self, path: PathBuf, due: Instant, attempts: u32) {
        self.pend(path, due, attempts, None, false);
    }

    /// A kept original is remembered as archived; a replaced one is looked
    /// at again (its events came while its path was in flight).
    fn after_filing(&mut self, path: &std::path::Path, original: &Original) {
        match original {
            Original::Kept => {
                if let Ok(meta) = fs::symlink_metadata(path) {
                    self.schedule
                        .keep(path.to_path_buf(), crate::archive::source_id(&meta));
                }
            }
            Original::Replaced => self.observe(path),
            _ => {}
        }
    }

    /// A transient failure: back off and try the file again; what it was
    /// archived as, if it was, goes along so that it is filed, not
    /// archived twice.
    fn retry_later(
        &mut self,
        path: PathBuf,
        earlier: [&Path; 2],
        attempts: u32,
        error: &Failure,
        published: Option<Published>,
    ) {
        let attempts = attempts + 1;
        let wait = backoff(attempts);
        let (rel, _) = archive::relative(&self.settings, &path);
        let rel = rel.to_path_buf();
        let now = SystemTime::now();
        self.stats.retrying(
            &path,
            &earlier,
            &rel,
            attempts,
            error.to_string(),
            now + wait,
            now,
        );
        // Retried either way: once someone fixes a permanent cause, the
        // next attempt goes through.
        let needs = match error.kind() {
            Kind::Permanent => " (this will not pass until it is fixed)",
            Kind::Transient => "",
        };
        let (source, source_raw) = journal::path(archive::relative(&self.settings, &path).0);
        error!(
            message_id = journal::RETRYING,
            rlewatch_source = %source,
            rlewatch_source_raw = source_raw.as_deref(),
            rlewatch_host = %self.config.host,
            "{error}; original left in place, retry {attempts} in {}s{needs}",
            wait.as_secs()
        );
        self.pend(path, Instant::now() + wait, attempts, published, true);
    }
}

impl Coordinator {
    /// An archive's path relative to the archive folder, as the ledger
    /// and the journal's `RLEWATCH_ARCHIVE` give it.
    fn archive_relative<'a>(&self, archive: &'a Path) -> &'a Path {
        archive
            .strip_prefix(&self.config.paths.archive)
            .unwrap_or(archive)
    }
}

/// True when `path` is the file `key` (device, inode) names.
fn same_file(path: &std::path::Path, key: (u64, u64)) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == key)
}
