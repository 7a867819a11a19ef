//! Archiving one inbox file (design §4.3–4.4, §4.7): open it without
//! following symlinks, lock it and claim it into the daemon's claim folder
//! (a hard link made durable, then the inbox name removed; or a rename), stream it into a hidden temporary file in the archive,
//! fsync, verify, publish under a name that overwrites nothing, record it
//! in the ledger, then move, keep (put back) or delete the original. Bad input goes to the failed folder with a
//! `NAME.error.txt`; trouble that may pass is reported for a retry with the
//! original untouched. At no point is a file's only copy removed.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use crate::bilevel::Conversion;
use crate::bmp::BmpError;
use crate::compress::{self, CompressError, Outcome};
use crate::display::shown;
use crate::ledger::Ledger;
use crate::{durable, faults};

mod class;
mod commit;
mod devices;
mod dispose;
mod failure;
pub mod notes;
mod report;
mod take;
#[cfg(test)]
mod tests;

pub use class::{ReasonClass, class_of};
pub use commit::commit;
pub use devices::{Devices, Root, mount_point, still_there};
pub use failure::{Cause, Failure, Kind, Op};
pub use report::{Original, Published, Report};

use commit::file_published;
use dispose::{put_back, quarantine};
use take::take;

/// Mode of the files the daemon writes (before the umask).
pub const FILE_MODE: u32 = 0o640;

/// What happens to an original once its archive is safely written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginalsAction {
    Move,
    Keep,
    Delete,
}

impl std::fmt::Display for OriginalsAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OriginalsAction::Move => "move",
            OriginalsAction::Keep => "keep",
            OriginalsAction::Delete => "delete",
        })
    }
}

/// What the worker needs to know; a snapshot of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub inbox: PathBuf,
    pub archive: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub conversion: Conversion,
    /// The formats archived (`compress.formats`).
    pub formats: crate::formats::FormatSet,
    pub verify: bool,
    pub max_pixels: u64,
    pub originals: OriginalsAction,
    /// This host's claim folder (`INBOX/.rlewatch/claims/HOST`).
    pub claims: PathBuf,
    /// Claim by a hard link, made durable before the inbox name goes
    /// (design §4.7): only where every daemon that can reach the inbox
    /// shares this host's `flock`, that is not on a network filesystem.
    pub link_claims: bool,
    pub ledger: Arc<Ledger>,
    /// Where the four folders were when configured.
    pub devices: Devices,
}

/// The file being worked on, held by its folder's handle: every later
/// step (moving, deleting) acts on `name` inside `parent`, never
/// re-resolving the path, so a folder swapped for a symlink meanwhile
/// cannot redirect it. Once claimed, `parent` is the claim folder.
pub struct Held {
    /// Where the file was dropped (for messages and the error note).
    pub path: PathBuf,
    /// Its subfolder, relative to the inbox.
    pub rel_dir: PathBuf,
    parent: File,
    name: std::ffi::OsString,
    claimed: bool,
    /// Was a claim when this attempt began: left by a crash of this host,
    /// or taken over from a dead one.
    from_claim: bool,
    /// The descriptor the file was locked through before it was claimed,
    /// kept open so that the lock lasts until the end (see `take`).
    _lock: Option<File>,
}

/// Which file a source was, to recognise it again: (device, inode, size,
/// mtime seconds, mtime nanoseconds). A file rewritten or replaced under
/// its name has another identity.
pub type SourceId = (u64, u64, u64, i64, i64);

/// The identity of the file `m` describes.
pub fn source_id(m: &fs::Metadata) -> SourceId {
    (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// A file whose archive is written to a temporary file but not yet made
/// durable, verified or published; see [`commit()`].
pub struct Encoded {
    settings: Arc<Settings>,
    held: Held,
    work: Work,
    /// The claimed source, locked, to notice a later write before its
    /// archive is published or the original filed away.
    source: File,
    before: fs::Metadata,
    /// XXH3-64 of the source's bytes.
    source_xxh3: u64,
}

/// The first half of an attempt.
pub enum Step {
    /// Over already (archived before, refused, gone, failed).
    Over(Report),
    /// Encoded; [`commit()`] must follow.
    Encoded(Box<Encoded>),
}

/// The file's path relative to the inbox, and whether `path` is a claim.
pub fn relative<'a>(s: &Settings, path: &'a Path) -> (&'a Path, bool) {
    match path.strip_prefix(&s.claims) {
        Ok(rel) => (rel, true),
        Err(_) => (path.strip_prefix(&s.inbox).unwrap_or(path), false),
    }
}

/// The CPU-bound half: takes the file (claims it, or locks a claim it
/// finds), reads and checks it, writes the archive to a temporary file.
/// `path` is an inbox file or a claim. `published`: what an earlier
/// attempt of this same file archived before its original could not be
/// filed (then only the original is filed).
pub fn encode(
    settings: &Arc<Settings>,
    path: &Path,
    attempts: u32,
    published: Option<&Published>,
) -> Step {
    let s = &**settings;
    let started = Instant::now();
    let (held, file, before) = match take(s, path, attempts) {
        Ok(taken) => taken,
        Err(report) => return Step::Over(report),
    };
    let (work, source_xxh3) =
        match encode_taken(s, &held, (&file, &before), attempts, published, started) {
            Ok(encoded) => encoded,
            // Whatever ends the attempt early: a claimed file that must be
            // tried again goes back to the inbox first.
            Err(report) => return Step::Over(release(s, &held, report)),
        };
    faults::reached("encoded");
    Step::Encoded(Box::new(Encoded {
        settings: settings.clone(),
        held,
        work,
        source: file,
        before,
        source_xxh3,
    }))
}

/// Encodes the taken file into a temporary archive beside where it will
/// be published, with the digest of the bytes read; `Err` ends the
/// attempt with that report.
fn encode_taken(
    s: &Settings,
    held: &Held,
    (file, before): (&File, &fs::Metadata),
    attempts: u32,
    published: Option<&Published>,
    started: Instant,
) -> Result<(Work, u64), Report> {
    let stem = durable::split_name(&held.name).0.to_os_string();
    let archive_dir = s.archive.join(&held.rel_dir);
    // This very file (same inode, size and mtime) was archived by an
    // earlier attempt whose original could not be filed: file it now.
    if let Some(p) = published.filter(|p| p.source == source_id(before) && p.archive.exists()) {
        return Err(file_published(s, held, before, p));
    }
    still_there(&s.archive, s.devices.archive)
        .and_then(|()| durable::create_dir_all(&archive_dir))
        .map_err(|e| transient(held, Op::ArchiveFolder, &archive_dir, e))?;
    let temp = durable::temp_in(&archive_dir, FILE_MODE)
        .map_err(|e| transient(held, Op::ArchiveFolder, &archive_dir, e))?;
    let (temp, outcome) = write_archive(s, held, file, before, temp, attempts)?;
    let source_xxh3 = digest(file).map_err(|e| transient(held, Op::Read, &held.path, e))?;
    if changed(file, before) {
        return Err(Report::Changed);
    }
    let work = Work {
        stem,
        archive_dir,
        temp,
        outcome,
        started,
    };
    Ok((work, source_xxh3))
}

/// Streams the conversion of `file` into `temp`. Bad input is
/// quarantined (the temporary file removed first, so whoever sees the
/// error note sees no stray file); a file that changed meanwhile is
/// `Changed`.
fn write_archive(
    s: &Settings,
    held: &Held,
    file: &File,
    before: &fs::Metadata,
    temp: tempfile::NamedTempFile,
    attempts: u32,
) -> Result<(tempfile::NamedTempFile, Outcome), Report> {
    let opts = compress::Options {
        conversion: s.conversion,
        max_pixels: s.max_pixels,
        formats: s.formats,
    };
    let mut out = BufWriter::with_capacity(256 * 1024, temp.as_file());
    let result = compress::compress(file, &mut out, opts)
        .and_then(|o| out.flush().map(|()| o).map_err(CompressError::Write));
    drop(out);
    match result {
        Ok(outcome) => Ok((temp, outcome)),
        Err(e) if e.is_bad_input() => {
            if changed(file, before) {
                return Err(Report::Changed);
            }
            drop(temp);
            Err(quarantine(s, held, &e.to_string(), class_of(&e), attempts))
        }
        Err(CompressError::Write(io)) => Err(Report::Transient {
            error: Box::new(Failure::at(&held.path, Op::Write, temp.path(), io)),
        }),
        Err(CompressError::Bmp(BmpError::Io(io))) => Err(Report::Transient {
            error: Box::new(Failure::io(&held.path, Op::Read, io)),
        }),
        Err(other) => Err(Report::Transient {
            error: Box::new(Failure::at(
                &held.path,
                Op::Read,
                &held.path,
                Cause::Compress(other),
            )),
        }),
    }
}

/// Ends an attempt: a claimed file that is to be tried again after a
/// transient failure goes back under its name in the inbox, where the
/// operator expects a file that is not archived yet (design §4.4); when
/// that name is taken meanwhile it stays claimed and is retried from
/// there.
fn release(s: &Settings, held: &Held, report: Report) -> Report {
    if held.claimed
        && matches!(report, Report::Transient { .. } | Report::Unfiled { .. })
        && let Err(e) = put_back(s, held)
    {
        tracing::debug!("{}: stays claimed: {e}", shown(&held.path));
    }
    report
}

/// A failure of `op` on `at` while working on `held`.
fn transient(held: &Held, op: Op, at: &Path, e: io::Error) -> Report {
    Report::Transient {
        error: Box::new(Failure::at(&held.path, op, at, e)),
    }
}

/// True when the file's size or mtime moved since `before`.
/// The ctime too: a rewrite that puts the old mtime back (`touch -d`,
/// `rsync -t`, `utime`) still moves the ctime, which no one can set.
/// (The claim's own rename moves the ctime as well, so `before` is taken
/// from the claimed file.)
pub(super) fn changed(file: &File, before: &fs::Metadata) -> bool {
    match file.metadata() {
        Ok(now) => {
            now.len() != before.len()
                || (now.mtime(), now.mtime_nsec()) != (before.mtime(), before.mtime_nsec())
                || (now.ctime(), now.ctime_nsec()) != (before.ctime(), before.ctime_nsec())
        }
        Err(_) => true,
    }
}

/// XXH3-64 of a file's bytes, read through `file` from its start.
pub(super) fn digest(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
}

/// The archive in the making: the parts of an [`Encoded`] that [`commit()`]
/// uses up.
struct Work {
    stem: std::ffi::OsString,
    archive_dir: PathBuf,
    temp: tempfile::NamedTempFile,
    outcome: Outcome,
    started: Instant,
}
