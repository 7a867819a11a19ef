//! What one attempt reports: what became of the file and of its original,
//! or why it is to be tried again (with the typed [`Failure`]).

use std::path::PathBuf;

use super::{Failure, SourceId};
use crate::compress::Outcome;
use crate::display::shown;
use crate::ledger;

/// What became of the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Original {
    Moved(PathBuf),
    /// Put back under its name in the inbox (`keep`).
    Kept,
    Deleted,
    /// `delete` was configured but the conversion was lossy (or, for a
    /// file found already archived, not known to be lossless).
    MovedLossy(PathBuf),
    /// `delete` was configured but a process may still hold the original
    /// open for writing (or the lease probe cannot tell): moved instead.
    MovedOpen(PathBuf),
    /// `keep` was configured but a newer file took its name in the inbox
    /// meanwhile: moved to done/ instead of replacing it.
    MovedNameTaken(PathBuf),
    /// Someone removed it meanwhile.
    Vanished,
    /// Another file was put under its name meanwhile: left alone, to be
    /// archived as a new arrival.
    Replaced,
}

impl std::fmt::Display for Original {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Original::Moved(to) => write!(f, "original moved to {}", shown(to)),
            Original::Kept => f.write_str("original kept"),
            Original::Deleted => f.write_str("original deleted"),
            Original::MovedLossy(to) => write!(
                f,
                "original moved to {} (not deleted: not a verified lossless archive)",
                shown(to)
            ),
            Original::MovedOpen(to) => write!(
                f,
                "original moved to {} (not deleted: it may still be open for writing)",
                shown(to)
            ),
            Original::MovedNameTaken(to) => write!(
                f,
                "original moved to {} (not put back: a newer file has its name in the inbox)",
                shown(to)
            ),
            Original::Vanished => f.write_str("original was removed by someone else meanwhile"),
            Original::Replaced => f.write_str(
                "original was replaced by another file meanwhile, which is left to be archived",
            ),
        }
    }
}

/// An archive published for a source whose original could not be filed
/// away yet; handed back with the retry so the same file is filed, not
/// archived again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub archive: PathBuf,
    pub source: SourceId,
    /// The source's digest (for the `filed` line once it is filed).
    pub source_xxh3: u64,
    /// Its ledger entry, when appending it failed: appended first.
    pub unrecorded: Option<Box<ledger::Record>>,
}

/// The result of one attempt.
#[derive(Debug)]
pub enum Report {
    Archived {
        archive: PathBuf,
        outcome: Outcome,
        original: Original,
        millis: u128,
    },
    /// The ledger records an archive of exactly this source (a crash
    /// between publishing and filing, a kept original seen again).
    AlreadyArchived {
        archive: PathBuf,
        original: Original,
    },
    /// The source is gone (someone else took it).
    Gone,
    /// Someone else holds it (another daemon working on it, or a claim of
    /// the same name not finished yet): look again shortly.
    Busy { reason: String },
    /// The source changed while it was read; try again once it settles.
    Changed,
    /// The source changed after its archive was published: that archive
    /// holds an earlier state; the original stays to be archived again.
    Superseded { archive: PathBuf },
    /// Bad input, now in the failed folder; `class` is the reason's class
    /// (the ledger's `quarantined` line, the failure metric's label).
    Quarantined {
        reason: String,
        to: PathBuf,
        class: ledger::ReasonClass,
    },
    /// Not safely reachable inside the inbox (a folder on its path is a
    /// symlink, or it resolves outside); left alone.
    Refused { reason: String },
    /// Could not finish for a reason other than the file's content; the
    /// original is untouched. Retried (`error.kind()` says whether waiting
    /// alone can help).
    Transient { error: Box<Failure> },
    /// Archived (or found archived), but the original could not be filed
    /// away; retried with `published`.
    Unfiled {
        published: Published,
        error: Box<Failure>,
    },
}
