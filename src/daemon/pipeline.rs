//! The work after the coordinator lets a file go (design §4.1, §4.3): the
//! jobs it hands out, one worker loop per pool thread (decode, convert,
//! encode into a temporary file) and the finisher threads (fsync, verify,
//! publish, the original). Holds no state of its own.

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
pub(super) fn worker_loop(jobs: Receiver<Job>, done: Sender<Done>, finish: Sender<Finish>) {
    for job in jobs {
        match job {
            Job::Archive {
                path,
                key,
                attempts,
                settings,
                published,
            } => match archive::encode(&settings, &path, attempts, published.as_ref()) {
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
pub(super) fn finisher_loop(finish: Receiver<Finish>, done: Sender<Done>) {
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
pub(super) struct Done {
    pub(super) path: PathBuf,
    pub(super) key: (u64, u64),
    pub(super) attempts: u32,
    pub(super) report: Report,
}

/// The workers' snapshot of the configuration.
pub(super) fn settings_of(c: &Config, ledger: Arc<crate::ledger::Ledger>) -> Settings {
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
    }
}
