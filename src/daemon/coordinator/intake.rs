//! Intake (design §4.2): what the watcher and scans report becomes pending
//! files; a pending file whose time has come is looked at (writers, what
//! it declares, settling) and either let go to a worker or given a new
//! time. One (device, inode) is never in flight twice.

use std::cmp::Reverse;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, error, warn};

use super::Coordinator;
use crate::daemon::completion;
use crate::daemon::pipeline::Job;
use crate::daemon::settle::{Pending, recheck};
use crate::daemon::watch::Seen;
use crate::display::shown;

impl Coordinator {
    /// Takes note of a path that may be work.
    pub(super) fn observe(&mut self, path: &Path) {
        if self.in_flight.has_path(path) {
            return;
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => {
                self.pending.remove(path);
                return;
            }
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if self.filter.wants_dir(path) {
                self.scan(path);
            }
            return;
        }
        if !self.filter.wants_file(path) {
            return;
        }
        let now = Instant::now();
        let mtime = (meta.mtime(), meta.mtime_nsec());
        let settle = self.config.settle;
        // Where writers can be observed, every event is a moment to look
        // (a close after writing, a rename in): no settle wait up front.
        let observable = self.completion_observable();
        if let Some(p) = self.pending.get_mut(path) {
            if observable && !p.retry {
                p.due = now;
                self.schedule(path.to_path_buf(), now);
            } else if let Some(due) = p.update(meta.len(), mtime, now, settle) {
                self.schedule(path.to_path_buf(), due);
            }
            return;
        }
        if !self.pending.room_for(path, self.wait_cap()) {
            return;
        }
        // Symlinks and other non-files need no settling: they are refused.
        let due = if ft.is_file() && !observable {
            now + settle
        } else {
            now
        };
        self.pending.insert(
            path.to_path_buf(),
            Pending::new(meta.len(), mtime, due, now),
        );
        self.schedule(path.to_path_buf(), due);
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
            if entry.file_type().is_dir() || !self.filter.wants_file(entry.path()) {
                continue;
            }
            if !self.pending.room_for(entry.path(), self.wait_cap()) {
                break;
            }
            self.observe(entry.path());
        }
    }
    pub(super) fn rescan(&mut self, why: &str) {
        if self.inbox_elsewhere {
            return;
        }
        self.kept.retain(|p, _| p.exists());
        self.adopt_claims();
        debug!("rescanning {} ({why})", shown(&self.config.paths.inbox));
        self.pending.rescanning();
        let inbox = self.config.paths.inbox.clone();
        if !inbox.is_dir() {
            warn!(
                "{}: the inbox is missing; waiting for it to come back",
                shown(&inbox)
            );
            return;
        }
        self.scan(&inbox);
    }
    /// Starts due files while workers are free.
    pub(super) fn dispatch_due(&mut self) {
        let now = Instant::now();
        while self.in_flight.len() < self.max_in_flight() {
            let Some(Reverse((due, _))) = self.timers.peek() else {
                break;
            };
            if *due > now {
                break;
            }
            let Some(Reverse((due, path))) = self.timers.pop() else {
                break;
            };
            let Some(p) = self.pending.get(&path) else {
                continue;
            };
            if p.due != due {
                continue; // superseded timer
            }
            self.consider(path, now);
        }
    }
    /// A pending file's time has come: start it if it has settled.
    pub(super) fn consider(&mut self, path: PathBuf, now: Instant) {
        let settle = self.config.settle;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                self.pending.remove(&path);
                return;
            }
        };
        let c = meta.file_type().is_file().then(|| {
            completion::check(
                &self.config.paths.inbox,
                &path,
                self.config.max_pixels,
                self.completion_observable(),
            )
        });
        let p = self
            .pending
            .get_mut(&path)
            .expect("BUG: considered file is pending");
        let mtime = (meta.mtime(), meta.mtime_nsec());
        if let Some(c) = c {
            p.update(meta.len(), mtime, now, settle);
            let wait_until = p.wait_until(c.writers, &c.declared, now, settle);
            if let Some(due) = wait_until {
                p.due = due;
                self.schedule(path, due);
                return;
            }
        }
        if self.kept.get(&path) == Some(&crate::archive::source_id(&meta)) {
            // Archived and kept, unchanged since: nothing to do.
            self.pending.remove(&path);
            return;
        }
        let key = (meta.dev(), meta.ino());
        if self.in_flight.has_file(key) {
            // The same file under another name is being archived (never
            // `now + settle`: with settle_ms = 0 that would spin).
            p.due = now + recheck(settle);
            let due = p.due;
            self.schedule(path, due);
            return;
        }
        let attempts = p.attempts;
        let Some(tx) = &self.jobs_tx else { return };
        let published = self.pending.remove(&path).and_then(|p| p.published);
        self.in_flight.start(key, &path);
        let job = Job::Archive {
            path,
            key,
            attempts,
            settings: self.settings.clone(),
            published,
        };
        // Never blocks and never grows past max_in_flight: the channel is
        // unbounded only in type.
        if tx.send(job).is_err() {
            error!("BUG: the worker loops are gone");
        }
    }
    /// Puts a file that is not seen by the watcher (a claim, a retry) on
    /// the waiting list, due at `due`.
    pub(super) fn pend(
        &mut self,
        path: PathBuf,
        due: Instant,
        attempts: u32,
        published: Option<crate::archive::Published>,
    ) {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            self.pending.remove(&path);
            return;
        };
        let mut p = Pending::new(
            meta.len(),
            (meta.mtime(), meta.mtime_nsec()),
            due,
            Instant::now(),
        );
        p.attempts = attempts;
        p.published = published;
        self.pending.insert(path.clone(), p);
        self.schedule(path, due);
    }

    /// Puts every claim of this host's claim folder that is neither
    /// waiting nor in flight on the waiting list, due now: claims a crash
    /// left (finished first at start) or a dead daemon of this host left.
    /// A claim another live daemon holds is found locked and left alone.
    pub(super) fn adopt_claims(&mut self) -> usize {
        let now = Instant::now();
        let mut adopted = 0;
        for c in crate::claim::list(&self.settings.claims) {
            if !self.pending.contains_key(&c) && !self.in_flight.has_path(&c) {
                self.pend(c, now, 0, None);
                adopted += 1;
            }
        }
        adopted
    }

    pub(super) fn on_seen(&mut self, seen: Seen) {
        if self.stopping.is_some() {
            return;
        }
        if seen.folder {
            if self.filter.wants_dir(&seen.path) {
                self.scan(&seen.path.clone());
                self.new_folders
                    .push_back((Instant::now() + NEW_FOLDER_RESCAN, seen.path));
            }
        } else {
            self.observe(&seen.path);
        }
    }
}

/// How long after a new folder's first scan it is scanned again (see
/// `Coordinator::new_folders`): notify adds its watch within microseconds
/// of reporting it; half a second covers a heavily loaded machine.
const NEW_FOLDER_RESCAN: Duration = Duration::from_millis(500);
