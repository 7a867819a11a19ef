//! The work after the coordinator lets a file go (design §4.1, §4.3): the
//! jobs it hands out, one worker loop per pool thread (decode, convert,
//! encode into a temporary file), the finisher threads (fsync, verify,
//! publish, the original) and [`Workers`] owning both. Decides nothing:
//! what goes when is the coordinator's.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::config::Config;
use crate::archive::{self, Report, Settings};

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

/// An encoded file on its way from a worker to a finisher, to be made
/// durable.
pub(super) struct EncodedFile {
    pub(super) encoded: Box<archive::Encoded>,
    pub(super) path: PathBuf,
    pub(super) key: (u64, u64),
    pub(super) attempts: u32,
}

/// One worker loop (one per pool thread): encode files until told to stop
/// or the channel closes, and pass them on to the finishers. The CPU work
/// happens here; fsync waits happen in the finishers, so a worker is free
/// for the next file while the disk catches up.
fn worker_loop(jobs: Receiver<Job>, reports: Sender<JobReport>, to_finishers: Sender<EncodedFile>) {
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
                    if to_finishers
                        .send(EncodedFile {
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

/// One finisher thread's life: each encoded file made durable (fsync,
/// verify, publish, then the original) and reported, until told to stop.
fn make_durable_loop(
    encoded: Receiver<EncodedFile>,
    stop: Receiver<()>,
    reports: Sender<JobReport>,
) {
    let make_durable = |f: EncodedFile| {
        let report = archive::commit(*f.encoded);
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
                    for f in &encoded {
                        if !make_durable(f) {
                            return;
                        }
                    }
                    return;
                }
            },
            recv(encoded) -> f => match f {
                Ok(f) => {
                    if !make_durable(f) {
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
struct Finishers {
    encoded: Receiver<EncodedFile>,
    reports: Sender<JobReport>,
    stop_tx: Sender<()>,
    stop: Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
    count: usize,
    started: usize,
}

impl Finishers {
    /// How many finishers `workers` workers get.
    fn for_workers(workers: usize) -> usize {
        (workers * 2).max(2)
    }

    /// Starts the finishers for `workers` workers, taking files from
    /// `encoded` and reporting on `reports`.
    fn start(
        encoded: Receiver<EncodedFile>,
        reports: Sender<JobReport>,
        workers: usize,
    ) -> std::io::Result<Finishers> {
        let (stop_tx, stop) = crossbeam_channel::unbounded();
        let mut f = Finishers {
            encoded,
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
    fn resize(&mut self, workers: usize) -> std::io::Result<()> {
        let want = Self::for_workers(workers);
        // Threads that stopped are done with; forget their handles.
        self.threads.retain(|t| !t.is_finished());
        while self.count < want {
            let (rx, stop, reports) = (
                self.encoded.clone(),
                self.stop.clone(),
                self.reports.clone(),
            );
            let t = std::thread::Builder::new()
                .name(format!("finisher-{}", self.started))
                .spawn(move || make_durable_loop(rx, stop, reports))?;
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
    fn join(self) {
        let Finishers {
            encoded,
            stop_tx,
            threads,
            ..
        } = self;
        drop((encoded, stop_tx));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// The pipeline's threads, as the coordinator holds them: the pool of
/// worker loops, the channel of jobs to them, and the finishers.
pub(super) struct Workers {
    pool: threadpool::ThreadPool,
    /// Feeds the worker loops; `None` once closed.
    jobs_tx: Option<Sender<Job>>,
    /// The far end, to start loops on and to take back jobs not started.
    jobs: Receiver<Job>,
    /// From workers to finishers; this copy is for worker loops started
    /// later (a reload) and is dropped when closing.
    to_finishers: Option<Sender<EncodedFile>>,
    /// `None` once joined.
    finishers: Option<Finishers>,
    reports: Sender<JobReport>,
}

impl Workers {
    /// The finishers for `threads` workers, started, and a pool of
    /// `threads` with no loop yet ([`Workers::start_loops`]); everything
    /// reports on `reports`.
    pub(super) fn new(threads: usize, reports: Sender<JobReport>) -> std::io::Result<Workers> {
        let (jobs_tx, jobs) = crossbeam_channel::unbounded();
        // The channel to the finishers is as deep as there are workers at
        // start (a reload resizes the finishers, not the channel).
        let (to_finishers, encoded) = crossbeam_channel::bounded(threads);
        let finishers = Finishers::start(encoded, reports.clone(), threads)?;
        Ok(Workers {
            pool: threadpool::Builder::new()
                .num_threads(threads)
                .thread_name("worker".into())
                .build(),
            jobs_tx: Some(jobs_tx),
            jobs,
            to_finishers: Some(to_finishers),
            finishers: Some(finishers),
            reports,
        })
    }

    /// Starts `n` more worker loops (none once closed).
    pub(super) fn start_loops(&self, n: usize) {
        let Some(to_finishers) = &self.to_finishers else {
            return;
        };
        for _ in 0..n {
            let (jobs, reports, to_finishers) = (
                self.jobs.clone(),
                self.reports.clone(),
                to_finishers.clone(),
            );
            self.pool
                .execute(move || worker_loop(jobs, reports, to_finishers));
        }
    }

    /// Whether jobs are still taken (not closed).
    pub(super) fn open(&self) -> bool {
        self.jobs_tx.is_some()
    }

    /// Hands a job to the worker loops. Never blocks: the channel is
    /// unbounded in type, and the coordinator keeps it short.
    pub(super) fn send(&self, job: Job) {
        let Some(tx) = &self.jobs_tx else { return };
        if tx.send(job).is_err() {
            tracing::error!("BUG: the worker loops are gone");
        }
    }

    /// Every pool thread runs exactly one worker loop for its whole life,
    /// so the pool never has an idle thread: growing spawns threads that
    /// each take one new loop; shrinking lowers the pool's limit *first*,
    /// so a thread whose loop was stopped sees it and exits instead of
    /// idling (an idle thread would be counted again at the next growth,
    /// and leak). The finishers follow.
    pub(super) fn resize(&mut self, old: usize, new: usize) {
        if let Some(f) = &mut self.finishers
            && let Err(e) = f.resize(new)
        {
            tracing::error!("cannot start more finisher threads: {e}");
        }
        if new > old {
            self.pool.set_num_threads(new);
            self.start_loops(new - old);
        } else if let Some(tx) = &self.jobs_tx {
            self.pool.set_num_threads(new);
            for _ in new..old {
                let _ = tx.send(Job::Stop);
            }
            // A pool thread checks the pool's size only between two jobs: one
            // left idle by a quick shrink-then-grow waits in the pool's queue
            // and would never see the smaller size. An empty job each wakes
            // such a thread, which then exits (a thread running a loop never
            // takes one; left in the queue, the next grow's threads skip
            // through them).
            for _ in new..old {
                self.pool.execute(|| {});
            }
        }
    }

    /// Closes the channels: each worker loop ends after its current file,
    /// the finishers once they have made durable what reached them.
    /// Returns the files handed out but not started (they stay in the
    /// inbox).
    pub(super) fn close(&mut self) -> Vec<(u64, u64)> {
        self.jobs_tx = None;
        self.to_finishers = None;
        let mut unstarted = Vec::new();
        while let Ok(job) = self.jobs.try_recv() {
            if let Job::Archive { key, .. } = job {
                unstarted.push(key);
            }
        }
        unstarted
    }

    /// Waits for every thread to end (after [`Workers::close`]).
    pub(super) fn join(&mut self) {
        self.pool.join();
        if let Some(f) = self.finishers.take() {
            f.join();
        }
    }

    /// How many worker threads the pool may run.
    #[cfg(test)]
    pub(super) fn max_count(&self) -> usize {
        self.pool.max_count()
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
        formats: c.formats,
        verify: c.verify,
        max_pixels: c.max_pixels,
        originals: c.originals,
        claims: crate::layout::InboxLayout::new(&c.paths.inbox).claims(&c.host),
        link_claims: !super::watch::is_network_fs(&c.paths.inbox)
            || crate::faults::link_claims_forced(),
        ledger,
        devices,
    }
}

/// The devices of `c`'s folders now.
pub(super) fn devices_of(c: &Config) -> archive::Devices {
    let p = &c.paths;
    archive::Devices::of(&p.inbox, &p.archive, &p.done, &p.failed)
}
