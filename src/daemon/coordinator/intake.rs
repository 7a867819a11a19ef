//! Intake (design §4.2): what the watcher and scans report becomes pending
//! files; a pending file whose time has come is looked at (writers, what
//! it declares, settling) and either let go to a worker or given a new
//! time. The looking is done here; the
//! [`Schedule`](super::schedule::Schedule) keeps the times and decides.
//! One (device, inode) is never in flight twice.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{debug, warn};

use super::Coordinator;
use super::schedule::{NEW_FOLDER_RESCAN, Stat, Verdict};
use super::walk::{InboxWalk, scan_batch, thread_cpu};
use crate::daemon::completion;
use crate::daemon::pipeline::Job;
use crate::daemon::settle::Pending;
use crate::daemon::watch::Seen;
use crate::display::shown;

impl Coordinator {
    /// Takes note of a path that may be work.
    pub(super) fn observe(&mut self, path: &Path) {
        if self.schedule.in_flight().has_path(path) {
            return;
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => {
                self.schedule.forget(path);
                return;
            }
        };
        if meta.file_type().is_dir() {
            if self.filter.wants_dir(path) {
                self.scan(path);
            }
            return;
        }
        if !self.filter.wants_file(path) {
            self.note_ignored(path);
            return;
        }
        // Where writers can be observed, every event is a moment to look
        // (a close after writing, a rename in): no settle wait up front.
        let observable = self.completion_observable();
        let (settle, cap) = (self.config.settle, self.wait_cap());
        let stat = Stat::of(&meta);
        self.schedule
            .seen(path, &stat, Instant::now(), settle, observable, cap);
    }
    /// Walks a folder of the inbox for work.
    pub(super) fn scan(&mut self, dir: &Path) {
        let filter = self.filter.clone();
        let walker = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .max_depth(if self.config.recursive { usize::MAX } else { 1 })
            .into_iter()
            .filter_entry(|e| !e.file_type().is_dir() || filter.wants_dir(e.path()));
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    debug!("scan: {e}");
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            if !self.filter.wants_file(entry.path()) {
                self.note_ignored(entry.path());
                continue;
            }
            if !self.schedule.room_for(entry.path(), self.wait_cap()) {
                break;
            }
            self.observe(entry.path());
        }
    }
    /// Starts a walk of the whole inbox (in place of any walk under way)
    /// and takes its first batch; the rest is taken as the list drains
    /// ([`Coordinator::advance_walk`]).
    pub(super) fn rescan(&mut self, why: &str) {
        if let Some(walk) = self.inbox.walk.take() {
            let (inbox, waiting) = (
                shown(&self.config.paths.inbox),
                self.schedule.waiting_count(),
            );
            debug!(
                "{}",
                walk.summary(&inbox, "cut short by a new walk", waiting)
            );
        }
        if self.inbox.elsewhere {
            return;
        }
        self.schedule.retain_kept(|p| p.exists());
        // Ignored names gone or renamed: told again if they come back.
        self.stats.retain_ignored(|p| p.exists());
        self.adopt_claims();
        debug!("rescanning {} ({why})", shown(&self.config.paths.inbox));
        self.schedule.rescanning();
        let inbox = self.config.paths.inbox.clone();
        if !inbox.is_dir() {
            warn!(
                "{}: the inbox is missing; waiting for it to come back",
                shown(&inbox)
            );
            return;
        }
        let filter = self.filter.clone();
        let walk = InboxWalk::new(&inbox, filter, self.config.recursive, why);
        self.inbox.walk = Some(walk);
        self.advance_walk();
    }

    /// Takes files from the walk under way until [`scan_batch`] wait or
    /// it ends (then says what it cost).
    pub(super) fn advance_walk(&mut self) {
        let Some(mut walk) = self.inbox.walk.take() else {
            return;
        };
        let (started, cpu) = (Instant::now(), thread_cpu());
        let batch = scan_batch(self.max_in_flight());
        let mut ended = true;
        while let Some(path) = walk.next_file() {
            if self.schedule.waiting_count() >= batch
                || !self.schedule.room_for(&path, self.wait_cap())
            {
                walk.hold(path);
                ended = false;
                break;
            }
            self.observe(&path);
        }
        walk.spent(started.elapsed(), thread_cpu().saturating_sub(cpu));
        if ended {
            debug!(
                "{}",
                walk.summary(
                    &shown(&self.config.paths.inbox),
                    "through",
                    self.schedule.waiting_count()
                )
            );
        } else {
            self.inbox.walk = Some(walk);
        }
    }

    /// A walk under way whose list has drained to half a batch goes on.
    pub(super) fn walk_wants_more(&self) -> bool {
        self.inbox.walk.is_some()
            && self.schedule.waiting_count() < scan_batch(self.max_in_flight()) / 2
    }
    /// Starts due files while workers are free.
    pub(super) fn dispatch_due(&mut self) {
        let now = Instant::now();
        while let Some(path) = self.schedule.take_due(now, self.max_in_flight()) {
            self.consider(path, now);
        }
    }
    /// A pending file's time has come: start it if it has settled.
    pub(super) fn consider(&mut self, path: PathBuf, now: Instant) {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                self.schedule.forget(&path);
                return;
            }
        };
        let stat = Stat::of(&meta);
        let look = stat.regular.then(|| {
            completion::check(
                &self.config.paths.inbox,
                &path,
                self.config.max_pixels,
                self.completion_observable(),
            )
        });
        let settle = self.config.settle;
        let verdict = self
            .schedule
            .decide(&path, &stat, look.as_ref(), now, settle);
        if verdict != Verdict::Ready || !self.workers.open() {
            return;
        }
        let (attempts, published) = self.schedule.hand_out(&path, stat.key);
        self.stats.handed_out(stat.key, now);
        // Never blocks and never grows past max_in_flight: the channel is
        // unbounded only in type.
        self.workers.send(Job::Archive {
            path,
            key: stat.key,
            attempts,
            settings: self.settings.clone(),
            published,
        });
    }
    /// Puts a file that is not seen by the watcher (a claim, a retry) on
    /// the waiting list, due at `due`; `retry`: waiting out a backoff.
    pub(super) fn pend(
        &mut self,
        path: PathBuf,
        due: Instant,
        attempts: u32,
        published: Option<crate::archive::Published>,
        retry: bool,
    ) {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            self.schedule.forget(&path);
            return;
        };
        let stat = Stat::of(&meta);
        let mut p = Pending::new(stat.size, stat.mtime, due, Instant::now());
        p.attempts = attempts;
        p.published = published;
        p.retry = retry;
        self.schedule.put(path, p);
    }

    /// Puts every claim of this host's claim folder that is neither
    /// waiting nor in flight on the waiting list, due now: claims a crash
    /// left (finished first at start) or a dead daemon of this host left.
    /// A claim another live daemon holds is found locked and left alone.
    pub(super) fn adopt_claims(&mut self) -> usize {
        let now = Instant::now();
        let mut adopted = 0;
        for c in crate::claim::list(&self.settings.claims) {
            if !self.schedule.is_waiting(&c) && !self.schedule.in_flight().has_path(&c) {
                self.pend(c, now, 0, None, false);
                adopted += 1;
            }
        }
        adopted
    }

    pub(super) fn on_seen(&mut self, seen: Seen) {
        if self.deadlines.stopping().is_some() {
            return;
        }
        if seen.folder {
            if self.filter.wants_dir(&seen.path) {
                self.scan(&seen.path.clone());
                let due = Instant::now() + NEW_FOLDER_RESCAN;
                self.schedule.new_folder(seen.path, due);
            }
        } else {
            self.observe(&seen.path);
        }
    }
}
