//! The daemon (`rlewatch run`, design §4): watch the inbox, let files settle,
//! hand them to a fixed thread pool that archives them, react to SIGHUP
//! (reload) and SIGTERM/SIGINT (drain and exit).
//!
//! Threads: notify's thread runs the watcher callback ([`watch::Handler`]),
//! which only does non-blocking sends onto the bounded channel; a signal
//! thread turns signals into messages; the *coordinator* (the thread that
//! called [`run`]) owns all state: files waiting to settle, timers, retries,
//! what is in flight. The pool runs exactly one long-lived worker loop per
//! thread (its own unbounded queue stays empty); the loops take files from
//! a channel the coordinator keeps a step ahead of them, encode each into a
//! temporary file and pass it to finisher threads, which fsync, verify,
//! publish and file the original while the worker encodes the next one.
//! At most four files per worker are handed out at a time; backpressure
//! stays on the disk: whatever is not in flight is still just a file in
//! the inbox.

pub mod completion;
pub mod config;
pub mod filter;
pub mod lock;
pub mod logging;
pub mod systemd;
pub mod watch;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{debug, error, info, warn};

use crate::archive::{self, Original, Report, Settings};
use completion::Declared;
use config::Config;
use filter::Filter;
use watch::{Flags, Handler, Seen, Watch};

/// A path made safe for a log line: control characters (newlines, ANSI
/// escapes) and invalid UTF-8 are escaped.
pub fn shown(path: &Path) -> String {
    let lossy = path.to_string_lossy();
    if lossy.chars().any(char::is_control) || matches!(lossy, std::borrow::Cow::Owned(_)) {
        let bytes = path.as_os_str().as_encoded_bytes();
        bytes.utf8_chunks().fold(String::new(), |mut s, chunk| {
            s.extend(chunk.valid().chars().flat_map(char::escape_debug));
            for b in chunk.invalid() {
                s.push_str(&format!("\\x{b:02x}"));
            }
            s
        })
    } else {
        lossy.into_owned()
    }
}

/// Signals, as messages to the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Reload,
    Shutdown,
}

/// Registers the signal handlers. Call first thing in `main`: a SIGHUP
/// before this would kill the process.
pub fn register_signals() -> std::io::Result<Signals> {
    // The lease probe (design §4.2) holds a read lease for microseconds; a
    // writer opening the file then makes the kernel send the holder SIGIO,
    // whose default action would end the process.
    // SAFETY: setting a signal's disposition to "ignore" has no
    // preconditions and installs no handler.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    Signals::new([SIGHUP, SIGTERM, SIGINT])
}

/// A file waiting in the inbox.
#[derive(Debug, Clone)]
struct Pending {
    size: u64,
    mtime: (i64, i64),
    due: Instant,
    /// When size and mtime were first seen as they are now.
    since: Instant,
    attempts: u32,
    /// Waiting out a backoff after a transient failure.
    retry: bool,
}

impl Pending {
    /// Takes note of the file's current size and mtime; when they changed,
    /// the file must settle again: returns its new due time.
    fn update(
        &mut self,
        size: u64,
        mtime: (i64, i64),
        now: Instant,
        settle: Duration,
    ) -> Option<Instant> {
        if (self.size, self.mtime) == (size, mtime) {
            return None;
        }
        self.size = size;
        self.mtime = mtime;
        self.since = now;
        self.due = self.due.max(now + settle);
        Some(self.due)
    }
}

/// What a worker loop is handed.
enum Job {
    Archive {
        path: PathBuf,
        key: (u64, u64),
        attempts: u32,
        settings: Arc<Settings>,
    },
    /// Ends one worker loop (the pool is shrinking).
    Stop,
}

/// An encoded file on its way to being made durable.
struct Finish {
    encoded: Box<archive::Encoded>,
    path: PathBuf,
    key: (u64, u64),
    attempts: u32,
}

/// One worker loop (one per pool thread): encode files until told to stop
/// or the channel closes, and pass them on to the finishers. The CPU work
/// happens here; fsync waits happen in the finishers, so a worker is free
/// for the next file while the disk catches up.
fn worker_loop(jobs: Receiver<Job>, done: Sender<Done>, finish: Sender<Finish>) {
    for job in jobs {
        match job {
            Job::Archive {
                path,
                key,
                attempts,
                settings,
            } => match archive::encode(&settings, &path, attempts) {
                archive::Step::Done(report) => {
                    if done
                        .send(Done {
                            path,
                            key,
                            attempts,
                            report,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                archive::Step::Encoded(encoded) => {
                    if finish
                        .send(Finish {
                            encoded,
                            path,
                            key,
                            attempts,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            },
            Job::Stop => return,
        }
    }
}

/// One finisher: fsync, verify, publish, then the original.
fn finisher_loop(finish: Receiver<Finish>, done: Sender<Done>) {
    for f in finish {
        let report = archive::finish(*f.encoded);
        if done
            .send(Done {
                path: f.path,
                key: f.key,
                attempts: f.attempts,
                report,
            })
            .is_err()
        {
            return;
        }
    }
}

/// A finished job.
struct Done {
    path: PathBuf,
    key: (u64, u64),
    attempts: u32,
    report: Report,
}

#[derive(Debug, Default)]
struct Stats {
    archived: u64,
    failed: u64,
    retries: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// How often a file found incomplete is looked at again when no event
/// comes: settle_ms, but never a busy loop (settle_ms may be 0).
fn recheck(settle: Duration) -> Duration {
    settle.max(Duration::from_millis(100))
}

/// How long a file that may still be written (empty, no header yet,
/// shorter than declared, no RLE end marker) is waited for, with no change
/// and no writer, before it is processed anyway (and most likely
/// quarantined).
fn truncation_grace(settle: Duration) -> Duration {
    (settle * 40).max(Duration::from_secs(5))
}

/// Delay before retry number `attempts` (1 s doubling, at most 5 min).
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

/// A little jitter for periodic rescans, so that many daemons do not scan
/// in step: ±10 %, from the clock.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let spread = d.as_millis() as u64 / 5;
    if spread == 0 {
        return d;
    }
    d - Duration::from_millis(spread / 2) + Duration::from_millis(u64::from(nanos) % spread)
}

fn settings_of(c: &Config) -> Settings {
    Settings {
        inbox: c.paths.inbox.clone(),
        archive: c.paths.archive.clone(),
        done: c.paths.done.clone(),
        failed: c.paths.failed.clone(),
        conversion: c.conversion,
        verify: c.verify,
        max_pixels: c.max_pixels,
        originals: c.originals,
    }
}

/// Creates the four folders if missing.
fn make_folders(c: &Config) -> Result<()> {
    for dir in [
        &c.paths.inbox,
        &c.paths.archive,
        &c.paths.done,
        &c.paths.failed,
    ] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", shown(dir)))?;
    }
    warn_cross_filesystem(c);
    Ok(())
}

/// Warns when done/ or failed/ lies on another filesystem than the inbox:
/// filing an original there is a copy, an fsync and an unlink instead of a
/// rename.
fn warn_cross_filesystem(c: &Config) {
    use std::os::unix::fs::MetadataExt;
    let device = |dir: &Path| fs::metadata(dir).map(|m| m.dev()).ok();
    let Some(inbox) = device(&c.paths.inbox) else {
        return;
    };
    for (what, dir) in [("done", &c.paths.done), ("failed", &c.paths.failed)] {
        if device(dir).is_some_and(|d| d != inbox) {
            warn!(
                "the {what} folder {} is on another filesystem than the inbox {}: each original \
                 filed there is copied, synced and then removed instead of renamed (twice the \
                 I/O); keep them on one filesystem",
                shown(dir),
                shown(&c.paths.inbox)
            );
        }
    }
}

/// Removes rlewatch's own temporary files left by a crash.
fn remove_stale_temps(c: &Config) {
    let mut removed = 0;
    for dir in [&c.paths.archive, &c.paths.done, &c.paths.failed] {
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if entry.file_type().is_file() && crate::durable::is_temp_name(entry.file_name()) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => warn!(
                        "{}: cannot remove stale temporary file: {e}",
                        shown(entry.path())
                    ),
                }
            }
        }
    }
    if removed > 0 {
        info!("removed {removed} stale temporary file(s) from an earlier run");
    }
}

struct Coordinator {
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
    done_tx: Sender<Done>,
    done: Receiver<Done>,
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
    finishers: Vec<std::thread::JoinHandle<()>>,
    pending: HashMap<PathBuf, Pending>,
    /// Folders that appeared, to be scanned once more when due: notify
    /// adds the watch on a new folder (and its subfolders) only after
    /// reporting it, so a file created in between has no event and may
    /// not be there yet at the first scan.
    new_folders: VecDeque<(Instant, PathBuf)>,
    timers: BinaryHeap<Reverse<(Instant, PathBuf)>>,
    in_flight: HashMap<(u64, u64), PathBuf>,
    in_flight_paths: HashSet<PathBuf>,
    /// More files were seen than `pending` may hold: rescan once drained.
    overflowed: bool,
    next_rescan: Option<Instant>,
    next_watchdog: Option<Instant>,
    next_status: Instant,
    stopping: Option<Instant>,
    stats: Stats,
}

impl Coordinator {
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
            let (jobs, done, finish) = (self.jobs.clone(), self.done_tx.clone(), finish.clone());
            self.pool.execute(move || worker_loop(jobs, done, finish));
        }
    }

    fn capacity(&self) -> usize {
        (self.config.queue.max(1024)) * 4
    }

    fn handler(&self) -> Handler {
        Handler {
            tx: self.events_tx.clone(),
            wake: self.wake_tx.clone(),
            flags: self.flags.clone(),
            filter: self.filter.clone(),
            polling: false,
        }
    }

    fn poll_interval(&self) -> Duration {
        self.config
            .settle
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    fn start_watch(&mut self) -> Result<()> {
        // Drop the old watcher first: one inotify instance at a time.
        self.watch = None;
        let w = watch::start(
            self.config.backend,
            self.config.recursive,
            self.poll_interval(),
            &self.handler(),
        )?;
        info!(
            "watching {} ({}{})",
            shown(&self.config.paths.inbox),
            if w.polling { "polling" } else { "inotify" },
            if self.config.recursive {
                ", with subfolders"
            } else {
                ""
            }
        );
        self.watch = Some(w);
        Ok(())
    }

    fn status(&self) -> String {
        format!(
            "archived {}, failed {}, waiting {}, in progress {}",
            self.stats.archived,
            self.stats.failed,
            self.pending.len(),
            self.in_flight.len()
        )
    }

    /// True when writers can be observed: the native backend (local
    /// events; the lease probe then says per file whether it can answer).
    fn completion_observable(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| !w.polling)
    }

    fn schedule(&mut self, path: PathBuf, due: Instant) {
        self.timers.push(Reverse((due, path)));
    }

    /// Takes note of a path that may be work.
    fn observe(&mut self, path: &Path) {
        if self.in_flight_paths.contains(path) {
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
        if self.pending.len() >= self.capacity() {
            self.overflowed = true;
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
            Pending {
                size: meta.len(),
                mtime,
                due,
                since: now,
                attempts: 0,
                retry: false,
            },
        );
        self.schedule(path.to_path_buf(), due);
    }

    /// Walks a folder of the inbox for work.
    fn scan(&mut self, dir: &Path) {
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
            if self.pending.len() >= self.capacity() && !self.pending.contains_key(entry.path()) {
                self.overflowed = true;
                break;
            }
            self.observe(entry.path());
        }
    }

    fn rescan(&mut self, why: &str) {
        debug!("rescanning {} ({why})", shown(&self.config.paths.inbox));
        self.overflowed = false;
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
    fn dispatch_due(&mut self) {
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
    fn consider(&mut self, path: PathBuf, now: Instant) {
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
            let grace_ends = p.since + truncation_grace(settle);
            let wait_until = match c.writers {
                // Being written: wait, however long the writer pauses. Its
                // close brings an event; the timer is only a safety net.
                Some(true) => {
                    p.since = now;
                    Some(now + recheck(settle).max(Duration::from_secs(1)))
                }
                // Observed: nobody writes it; no settle wait.
                Some(false) => None,
                // Cannot be observed: size and mtime stable for settle_ms.
                None => Some(p.since + settle).filter(|&t| t > now),
            }
            .or_else(|| match c.declared {
                // It may still be written (or its writer crashed): it gets
                // the grace, counted from its last change, before the
                // worker sees it (and likely quarantines it). Observed, a
                // new write brings an event; otherwise it is polled.
                Declared::NotYet(_) if !p.retry && now < grace_ends => Some(match c.writers {
                    Some(false) => grace_ends,
                    _ => now + recheck(settle),
                }),
                _ => None,
            });
            if let Some(due) = wait_until {
                p.due = due;
                self.schedule(path, due);
                return;
            }
        }
        let key = (meta.dev(), meta.ino());
        if self.in_flight.contains_key(&key) {
            // The same file under another name is being archived.
            p.due = now + settle;
            let due = p.due;
            self.schedule(path, due);
            return;
        }
        let attempts = p.attempts;
        let Some(tx) = &self.jobs_tx else { return };
        self.pending.remove(&path);
        self.in_flight.insert(key, path.clone());
        self.in_flight_paths.insert(path.clone());
        let job = Job::Archive {
            path,
            key,
            attempts,
            settings: self.settings.clone(),
        };
        // Never blocks and never grows past max_in_flight: the channel is
        // unbounded only in type.
        if tx.send(job).is_err() {
            error!("BUG: the worker loops are gone");
        }
    }

    fn finished(&mut self, d: Done) {
        self.in_flight.remove(&d.key);
        self.in_flight_paths.remove(&d.path);
        let src = shown(&d.path);
        match d.report {
            Report::Archived {
                archive,
                outcome,
                original,
                millis,
            } => {
                self.stats.archived += 1;
                self.stats.bytes_in += outcome.bytes_in;
                self.stats.bytes_out += outcome.bytes_out;
                let ratio = outcome.bytes_in as f64 / outcome.bytes_out.max(1) as f64;
                info!(
                    "archived {src} -> {}: {} -> {} bytes, ratio {ratio:.1}, lossless {}, {millis} ms; {original}",
                    shown(&archive),
                    outcome.bytes_in,
                    outcome.bytes_out,
                    outcome.lossless
                );
                if let Original::MovedLossy(_) = original {
                    warn!(
                        "{src}: conversion was lossy, so the original was moved to done instead of deleted"
                    );
                }
            }
            Report::AlreadyArchived { archive, original } => {
                info!(
                    "{src}: already archived as {} (archive newer than source); {original}",
                    shown(&archive)
                );
            }
            Report::Gone => debug!("{src}: gone before it could be archived"),
            Report::Refused { reason } => warn!("{src}: left alone: {reason}"),
            Report::Changed => {
                debug!("{src}: changed while being read; waiting for it to settle");
                self.observe(&d.path);
            }
            Report::Quarantined { reason, to } => {
                self.stats.failed += 1;
                warn!("{src}: {reason}; moved to {}", shown(&to));
            }
            Report::Transient { error } => {
                self.stats.retries += 1;
                let attempts = d.attempts + 1;
                let wait = backoff(attempts);
                error!(
                    "{error}; original left in place, retry {attempts} in {}s",
                    wait.as_secs()
                );
                if let Ok(meta) = fs::symlink_metadata(&d.path) {
                    let now = Instant::now();
                    self.pending.insert(
                        d.path.clone(),
                        Pending {
                            size: meta.len(),
                            mtime: (meta.mtime(), meta.mtime_nsec()),
                            due: now + wait,
                            since: now,
                            attempts,
                            retry: true,
                        },
                    );
                    self.schedule(d.path, now + wait);
                }
            }
        }
    }

    fn reload(&mut self) {
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

    fn apply(&mut self, new: Config) -> Result<()> {
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
            if let Job::Archive { path, key, .. } = job {
                self.in_flight.remove(&key);
                self.in_flight_paths.remove(&path);
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

    fn run(&mut self) {
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.stopping {
                if self.in_flight.is_empty() {
                    break;
                }
                if now >= deadline {
                    let left: Vec<String> = self.in_flight.values().map(|p| shown(p)).collect();
                    warn!(
                        "shutdown timeout: abandoning {} file(s) in progress (they stay in the inbox): {}",
                        left.len(),
                        left.join(", ")
                    );
                    break;
                }
            } else {
                if self.flags.watch_limit.swap(false, Ordering::SeqCst)
                    && !self.watch.as_ref().is_some_and(|w| w.polling)
                {
                    error!(
                        "inotify watch limit reached: raise fs.inotify.max_user_watches \
                         (sysctl fs.inotify.max_user_watches=524288); falling back to polling"
                    );
                    let mode = if self.config.recursive {
                        notify::RecursiveMode::Recursive
                    } else {
                        notify::RecursiveMode::NonRecursive
                    };
                    self.watch = None;
                    match watch::start_poll(mode, self.poll_interval(), &self.handler()) {
                        Ok(w) => self.watch = Some(w),
                        Err(e) => error!("{e}"),
                    }
                }
                if let Some(e) = self.flags.error.lock().ok().and_then(|mut e| e.take()) {
                    warn!("watcher: {e}; rescanning");
                }
                if self.flags.rescan.swap(false, Ordering::SeqCst) {
                    self.rescan("events were dropped");
                }
                if self.overflowed && self.pending.len() < self.capacity() / 2 {
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
                let inbox_there = self.config.paths.inbox.is_dir();
                if self.watch.is_some() && !inbox_there {
                    // Its watch died with it; files cannot arrive meanwhile.
                    warn!(
                        "{}: the inbox disappeared; waiting for it to come back",
                        shown(&self.config.paths.inbox)
                    );
                    self.watch = None;
                    self.pending.clear();
                    self.timers.clear();
                }
                if self.watch.is_none() && inbox_there {
                    // The lock file went with the old folder: take it again.
                    match lock::lock(&self.config.paths.inbox) {
                        Ok(l) => self._lock = l,
                        Err(e) => {
                            error!("{e}; stopping");
                            self.begin_shutdown();
                            continue;
                        }
                    }
                    if let Err(e) = self.start_watch() {
                        error!("{e:#}");
                    } else {
                        self.rescan("inbox is back");
                    }
                }
                self.dispatch_due();
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
                recv(self.done) -> done => {
                    if let Ok(done) = done {
                        self.finished(done);
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

    fn on_seen(&mut self, seen: Seen) {
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

/// Runs the daemon until SIGTERM/SIGINT; `signals` must have been
/// registered first thing in `main` ([`register_signals`]).
pub fn run(config_path: Option<&Path>, signals: Signals) -> Result<()> {
    let config = match config_path {
        Some(p) => config::load(p)?,
        None => {
            let c = Config::defaults(
                &std::env::current_dir().context("cannot read the working directory")?,
            );
            c.paths.check_on_disk().map_err(anyhow::Error::msg)?;
            c
        }
    };
    let level = logging::init(&config.log_level, config.log_format);
    make_folders(&config)?;
    let the_lock = lock::lock(&config.paths.inbox)?;
    remove_stale_temps(&config);

    let (control_tx, control) = unbounded();
    let signal_handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || signal_loop(signals, control_tx))
        .context("cannot start the signal thread")?;

    let (events_tx, events) = bounded(config.queue);
    let (wake_tx, wake) = bounded(1);
    let (done_tx, done) = unbounded();
    let (jobs_tx, jobs) = unbounded();
    // Finishers mostly wait on fsync: twice as many as workers keeps the
    // disk busy; the channel to them is as deep as there are workers.
    let (finish_tx, finish_rx) = bounded::<Finish>(config.threads);
    let finishers = (0..(config.threads * 2).max(2))
        .map(|i| {
            let (rx, done) = (finish_rx.clone(), done_tx.clone());
            std::thread::Builder::new()
                .name(format!("finisher-{i}"))
                .spawn(move || finisher_loop(rx, done))
        })
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot start the finisher threads")?;
    drop(finish_rx);
    let systemd = systemd::Systemd::new();
    let config = Arc::new(config);
    let mut c = Coordinator {
        config_path: config_path.map(Path::to_path_buf),
        settings: Arc::new(settings_of(&config)),
        filter: Arc::new(Filter::new(&config)),
        pool: threadpool::Builder::new()
            .num_threads(config.threads)
            .thread_name("worker".into())
            .build(),
        jobs_tx: Some(jobs_tx),
        jobs,
        finish_tx: Some(finish_tx),
        finishers,
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
        done_tx,
        done,
        control,
        flags: Arc::default(),
        watch: None,
        pending: HashMap::new(),
        new_folders: VecDeque::new(),
        timers: BinaryHeap::new(),
        in_flight: HashMap::new(),
        in_flight_paths: HashSet::new(),
        overflowed: false,
        next_status: Instant::now(),
        stopping: None,
        stats: Stats::default(),
    };
    c.start_workers(c.config.threads);
    // Watch first, then scan: a file arriving in between is seen twice at
    // worst, never missed.
    c.start_watch()?;
    c.rescan("startup backlog");
    info!(
        "rlewatch {} started: {} -> {} ({} workers, conversion {}, originals {})",
        env!("CARGO_PKG_VERSION"),
        shown(&c.config.paths.inbox),
        shown(&c.config.paths.archive),
        c.config.threads,
        c.config.conversion,
        c.config.originals
    );
    c.systemd.ready(&c.status());
    c.run();

    signal_handle.close();
    let _ = signal_thread.join();
    let s = &c.stats;
    info!(
        "stopped: archived {} file(s), {} -> {} bytes, {} failed, {} retried attempt(s)",
        s.archived, s.bytes_in, s.bytes_out, s.failed, s.retries
    );
    if c.in_flight.is_empty() {
        c.pool.join();
        for f in c.finishers.drain(..) {
            let _ = f.join();
        }
    }
    Ok(())
}

fn signal_loop(mut signals: Signals, control: Sender<Control>) {
    let mut terminating = false;
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                let _ = control.send(Control::Reload);
            }
            _ if terminating => {
                eprintln!(
                    "rlewatch: second termination signal: exiting now (files in progress stay in the inbox)"
                );
                std::process::exit(1);
            }
            _ => {
                terminating = true;
                let _ = control.send(Control::Shutdown);
            }
        }
    }
}

/// `rlewatch check-config`: validates and returns the effective
/// configuration as TOML.
pub fn check_config(path: &Path) -> Result<String> {
    Ok(config::load(path)?.to_string())
}
