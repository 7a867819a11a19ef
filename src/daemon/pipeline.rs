//! The work after the coordinator lets a file go (design §4.1, §4.3): the
//! jobs it hands out, one worker loop per pool thread (decode, convert,
//! encode into a temporary file) and the finisher threads (fsync, verify,
//! publish, the original). Holds no state of its own.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::config::Config;
use crate::archive::{self, Report, Settings};

/// The files handed out and not yet reported back, by (device, inode) and
/// by path, kept together: the same file under a second name (a hard link,
/// a rename while it waited) is not handed out twice, and a path in flight
/// is not observed again (design §4.1).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    by_file: HashMap<(u64, u64), PathBuf>,
    paths: HashSet<PathBuf>,
}

impl InFlight {
    /// Takes `path`, the file `key`, as handed out; false (and nothing
    /// changes) when that file is in flight already, under any name.
    pub(super) fn start(&mut self, key: (u64, u64), path: &Path) -> bool {
        if self.by_file.contains_key(&key) {
            return false;
        }
        self.by_file.insert(key, path.to_path_buf());
        self.paths.insert(path.to_path_buf());
        true
    }

    /// The file `key` is back (reported, or never started): its path.
    pub(super) fn finish(&mut self, key: (u64, u64)) -> Option<PathBuf> {
        let path = self.by_file.remove(&key)?;
        self.paths.remove(&path);
        Some(path)
    }

    pub(super) fn has_file(&self, key: (u64, u64)) -> bool {
        self.by_file.contains_key(&key)
    }

    pub(super) fn has_path(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }

    pub(super) fn len(&self) -> usize {
        self.by_file.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_file.is_empty()
    }

    pub(super) fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.by_file.values()
    }
}

/// What a worker loop is handed.
pub(super) enum Job {
    Archive {
        path: PathBuf,
        key: (u64, u64),
        attempts: u32,
        settings: Arc<Settings>,
        /// What an earlier attempt archived before its original could not
        /// be filed.
        published: Option<archive::Published>,
    },
    /// Ends one worker loop (the pool is shrinking).
    Stop,
}

/// An encoded file on its way to being made durable.
pub(super) struct Finish {
    pub(super) encoded: Box<archive::Encoded>,
    pub(super) path: PathBuf,
    pub(super) key: (u64, u64),
    pub(super) attempts: u32,
}

/// One worker loop (one per pool thread): encode files until told to stop
/// or the channel closes, and pass them on to the finishers. The CPU work
/// happens here; fsync waits happen in the finishers, so a worker is free
/// for the next file while the disk catches up.
pub(super) fn worker_loop(jobs: Receiver<Job>, reports: Sender<JobReport>, finish: Sender<Finish>) {
    for job in jobs {
        match job {
            Job::Archive {
                path,
                key,
                attempts,
                settings,
                published,
            } => match archive::encode(&settings, &path, attempts, published.as_ref()) {
                archive::Step::Over(report) => {
                    if reports
                        .send(JobReport {
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
fn finisher_loop(finish: Receiver<Finish>, stop: Receiver<()>, reports: Sender<JobReport>) {
    let archive = |f: Finish| {
        let report = archive::finish(*f.encoded);
        reports
            .send(JobReport {
                path: f.path,
                key: f.key,
                attempts: f.attempts,
                report,
            })
            .is_ok()
    };
    loop {
        crossbeam_channel::select! {
            recv(stop) -> r => match r {
                // One finisher fewer (the pool shrank).
                Ok(()) => return,
                // The coordinator is gone: finish what is left, then end.
                Err(_) => {
                    for f in &finish {
                        if !archive(f) {
                            return;
                        }
                    }
                    return;
                }
            },
            recv(finish) -> f => match f {
                Ok(f) => {
                    if !archive(f) {
                        return;
                    }
                }
                // Every sender gone: shutting down, all finished.
                Err(_) => return,
            },
        }
    }
}

/// The finisher threads: they mostly wait on fsync, so there are twice as
/// many as workers (at least two), and a reload that resizes the workers
/// resizes them too (design §4.1).
pub(super) struct Finishers {
    finish: Receiver<Finish>,
    reports: Sender<JobReport>,
    stop_tx: Sender<()>,
    stop: Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
    count: usize,
    started: usize,
}

impl Finishers {
    /// How many finishers `workers` workers get.
    pub(super) fn for_workers(workers: usize) -> usize {
        (workers * 2).max(2)
    }

    /// Starts the finishers for `workers` workers, taking files from
    /// `finish` and reporting on `reports`.
    pub(super) fn start(
        finish: Receiver<Finish>,
        reports: Sender<JobReport>,
        workers: usize,
    ) -> std::io::Result<Finishers> {
        let (stop_tx, stop) = crossbeam_channel::unbounded();
        let mut f = Finishers {
            finish,
            reports,
            stop_tx,
            stop,
            threads: Vec::new(),
            count: 0,
            started: 0,
        };
        f.resize(workers)?;
        Ok(f)
    }

    /// As many finishers as `workers` workers get: more are started, or
    /// as many as too many are told to stop (each after its current file).
    pub(super) fn resize(&mut self, workers: usize) -> std::io::Result<()> {
        let want = Self::for_workers(workers);
        // Threads that stopped are done with; forget their handles.
        self.threads.retain(|t| !t.is_finished());
        while self.count < want {
            let (rx, stop, reports) =
                (self.finish.clone(), self.stop.clone(), self.reports.clone());
            let t = std::thread::Builder::new()
                .name(format!("finisher-{}", self.started))
                .spawn(move || finisher_loop(rx, stop, reports))?;
            self.threads.push(t);
            self.count += 1;
            self.started += 1;
        }
        while self.count > want {
            let _ = self.stop_tx.send(());
            self.count -= 1;
        }
        Ok(())
    }

    /// Waits for every finisher to end (once the channel to them closed).
    pub(super) fn join(self) {
        let Finishers {
            finish,
            stop_tx,
            threads,
            ..
        } = self;
        drop((finish, stop_tx));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A job back from the pipeline: the file, and what became of it.
pub(super) struct JobReport {
    pub(super) path: PathBuf,
    pub(super) key: (u64, u64),
    pub(super) attempts: u32,
    pub(super) report: Report,
}

/// The workers' snapshot of the configuration: the archive layer's settings; `devices` as recorded when the folders
/// were last configured (see [`archive::Devices`]).
pub(super) fn settings_of(
    c: &Config,
    ledger: Arc<crate::ledger::Ledger>,
    devices: archive::Devices,
) -> Settings {
    Settings {
        inbox: c.paths.inbox.clone(),
        archive: c.paths.archive.clone(),
        done: c.paths.done.clone(),
        failed: c.paths.failed.clone(),
        conversion: c.conversion,
        verify: c.verify,
        max_pixels: c.max_pixels,
        originals: c.originals,
        claims: crate::claim::root(&c.paths.inbox, &c.host),
        ledger,
        devices,
    }
}

/// The devices of `c`'s folders now.
pub(super) fn devices_of(c: &Config) -> archive::Devices {
    let p = &c.paths;
    archive::Devices::of(&p.inbox, &p.archive, &p.done, &p.failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_in_flight_once_under_any_name_and_both_indexes_agree() {
        let mut f = InFlight::default();
        let (a, b) = (Path::new("/in/a.bmp"), Path::new("/in/b.bmp"));
        assert!(f.start((1, 10), a));
        // The same file (device, inode) under another name: not twice.
        assert!(!f.start((1, 10), b));
        assert!(f.has_file((1, 10)) && f.has_path(a) && !f.has_path(b));
        // Another file; same inode number on another device is another file.
        assert!(f.start((2, 10), b));
        assert_eq!(f.len(), 2);
        assert_eq!(f.finish((1, 10)).as_deref(), Some(a));
        assert!(!f.has_path(a) && !f.has_file((1, 10)));
        assert_eq!(f.finish((1, 10)), None);
        assert_eq!(f.paths().collect::<Vec<_>>(), [b]);
        assert_eq!(f.finish((2, 10)).as_deref(), Some(b));
        assert!(f.is_empty() && !f.has_path(b));
    }
}
