//! The I/O-bound half of an attempt (design §4.3, §4.7): fsync, verify,
//! publish under a free name, record in the ledger, then file the
//! original away.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::dispose::dispose_original;
use super::{
    Cause, Encoded, Failure, Held, Op, Original, Published, Report, Settings, Work, changed,
    release, source_id, transient,
};
use crate::compress::{self, Outcome};
use crate::{durable, faults, ledger};

/// The I/O-bound half: fsync, verify, publish under a free name, record
/// in the ledger, then the original; a claimed file that is to be tried
/// again goes back to the inbox.
pub fn commit(e: Encoded) -> Report {
    let settings = e.settings.clone();
    let (held, report) = commit_encoded(e);
    release(&settings, &held, report)
}

/// [`publish_record_and_file`] on the parts of `e`, giving back the held
/// file for the release.
fn commit_encoded(e: Encoded) -> (Held, Report) {
    let Encoded {
        settings,
        held,
        work,
        source,
        before,
        source_xxh3,
    } = e;
    let report = publish_record_and_file(&settings, &held, work, &source, &before, source_xxh3);
    (held, report)
}

/// The steps in their order (design §4.7): the temporary archive made
/// durable and verified, published (or an archive of this very source
/// adopted), recorded in the ledger, then the original filed away.
fn publish_record_and_file(
    s: &Settings,
    held: &Held,
    work: Work,
    source: &File,
    before: &fs::Metadata,
    source_xxh3: u64,
) -> Report {
    let Work {
        stem,
        archive_dir,
        temp,
        outcome,
        started,
    } = work;
    if let Err(report) = check_temp(s, held, &temp, &outcome) {
        return report;
    }
    // Written to since it was read (a second write session): this archive
    // is of an old state. Dropped; the file is taken again once complete.
    if changed(source, before) {
        return Report::Changed;
    }
    let lossless_and_verified = outcome.lossless && s.verify;
    let source_rel = held.rel_dir.join(&held.name);
    let names = Names {
        dir: &archive_dir,
        stem: &stem,
    };
    if let Some(archive) = recorded_archive(s, names, &source_rel, before.len(), source_xxh3)
        .filter(|a| holds(a, &outcome))
    {
        drop(temp);
        return file_away_archived(
            s,
            held,
            (before, source_xxh3),
            archive,
            lossless_and_verified,
        );
    }
    let (archive, adopted) = match publish_or_adopt(s, held, temp, names, &outcome) {
        Ok(published) => published,
        Err(report) => return report,
    };
    faults::reached("published");
    let record = ledger_record(
        s,
        &source_rel,
        (before.len(), source_xxh3),
        &archive,
        &outcome,
    );
    if let Err(e) = s.ledger.append(&record) {
        return Report::Unfiled {
            published: Published {
                archive,
                source: source_id(before),
                source_xxh3,
                unrecorded: Some(Box::new(record)),
            },
            error: ledger_error(held, e),
        };
    }
    faults::reached("recorded");
    if changed(source, before) {
        // Too late to withdraw a published archive safely; the original
        // stays and is archived again in its new state (nothing is lost).
        return Report::Superseded { archive };
    }
    if adopted {
        return file_away_archived(
            s,
            held,
            (before, source_xxh3),
            archive,
            lossless_and_verified,
        );
    }
    match dispose_original(s, held, before, lossless_and_verified) {
        Ok(original) => {
            record_fate(s, held, source_xxh3, &archive, &original);
            Report::Archived {
                archive,
                outcome,
                original,
                millis: started.elapsed().as_millis(),
            }
        }
        Err(error) => unfiled(archive, (before, source_xxh3), error),
    }
}

/// The archive of this attempt, and whether it was adopted: the temporary
/// file published under a free name, or an archive found unrecorded.
fn publish_or_adopt(
    s: &Settings,
    held: &Held,
    temp: tempfile::NamedTempFile,
    names: Names,
    outcome: &Outcome,
) -> Result<(PathBuf, bool), Report> {
    // A crash between publishing an archive and recording it leaves an
    // archive under this file's name, with exactly these bytes, that no
    // ledger entry names, and the file still claimed: that is this file's
    // archive; it is recorded now rather than published twice. Only for a
    // file that was a claim when the attempt began: an unrecorded archive
    // beside a new arrival may be another host's, between its publishing
    // and its recording, of an image that encodes the same (design §4.8).
    let unrecorded = existing_archives(names.dir, names.stem)
        .filter(|_| held.from_claim)
        .find(|p| !s.ledger.records_archive(&relative_to(&s.archive, p)) && holds(p, outcome));
    match unrecorded {
        Some(a) => {
            drop(temp);
            Ok((a, true))
        }
        None => publish_numbered(temp, names.dir, names.stem)
            .map(|p| (p, false))
            .map_err(|(op, e)| transient(held, op, names.dir, e)),
    }
}

/// Makes the temporary archive durable and, when configured, reads it
/// back through the strict decoder.
fn check_temp(
    s: &Settings,
    held: &Held,
    temp: &tempfile::NamedTempFile,
    outcome: &Outcome,
) -> Result<(), Report> {
    temp.as_file()
        .sync_all()
        .map_err(|e| transient(held, Op::Fsync, temp.path(), e))?;
    faults::reached("synced");
    faults::corrupt_temp(temp.as_file());
    if s.verify {
        File::open(temp.path())
            .map_err(Cause::Io)
            .and_then(|f| compress::verify_rle(f, outcome).map_err(Cause::Verify))
            .map_err(|e| Report::Transient {
                error: Box::new(Failure::at(&held.path, Op::Verify, temp.path(), e)),
            })?;
        faults::reached("verified");
    }
    Ok(())
}

/// Where a file of stem `stem` is archived: `dir/stem.rle`, `dir/stem-1.rle`, ….
#[derive(Clone, Copy)]
struct Names<'a> {
    dir: &'a Path,
    stem: &'a std::ffi::OsStr,
}

/// The archive the ledger records for this very source (path, size and
/// digest), among the file's names in the archive: a crash between
/// publishing and filing, or a kept original seen again. Another daemon
/// may have recorded it since this one last looked: the ledger is read
/// again when the name is taken in the archive.
fn recorded_archive(
    s: &Settings,
    names: Names,
    source_rel: &Path,
    size: u64,
    xxh3: u64,
) -> Option<PathBuf> {
    let mut recorded = s.ledger.find(source_rel, size, xxh3);
    if recorded.is_none() && durable::numbered(names.dir, names.stem, "rle", 0).exists() {
        s.ledger.refresh();
        recorded = s.ledger.find(source_rel, size, xxh3);
    }
    let hash = recorded?;
    existing_archives(names.dir, names.stem)
        .find(|p| ledger::path_hash(&relative_to(&s.archive, p)) == hash)
}

/// `p` relative to `root` (as the ledger names archives).
fn relative_to(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap_or(p).to_path_buf()
}

/// The ledger line for `archive`, published for the source at
/// `source_rel` of (size, digest) `source`.
fn ledger_record(
    s: &Settings,
    source_rel: &Path,
    (source_size, source_xxh3): (u64, u64),
    archive: &Path,
    outcome: &Outcome,
) -> ledger::Record {
    let (source_text, source_raw) = ledger::path_fields(source_rel);
    let (archive_text, archive_raw) = ledger::path_fields(&relative_to(&s.archive, archive));
    ledger::Record {
        v: ledger::VERSION,
        time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        host: s.ledger.host().to_string(),
        source: source_text,
        source_raw,
        source_size,
        source_xxh3: ledger::hex(source_xxh3),
        archive: archive_text,
        archive_raw,
        archive_size: outcome.bytes_out,
        archive_xxh3: ledger::hex(outcome.digest),
        width: outcome.width,
        height: outcome.height,
        conversion: s.conversion.to_string(),
        lossless: outcome.lossless,
        format: outcome.format.name().to_string(),
    }
}

pub(super) fn ledger_error(held: &Held, e: io::Error) -> Box<Failure> {
    Box::new(Failure::io(&held.path, Op::Record, e))
}

/// Files away the original of a source found already archived as
/// `archive`.
pub(super) fn file_away_archived(
    s: &Settings,
    held: &Held,
    (before, source_xxh3): (&fs::Metadata, u64),
    archive: PathBuf,
    may_delete: bool,
) -> Report {
    match dispose_original(s, held, before, may_delete) {
        Ok(original) => {
            record_fate(s, held, source_xxh3, &archive, &original);
            Report::AlreadyArchived { archive, original }
        }
        Err(error) => unfiled(archive, (before, source_xxh3), error),
    }
}

/// Appends the `filed` line: where the original of `archive` went, the
/// exact done/ path included, so that numbering that diverges between
/// the archive and done/ (`a-1.rle` beside `done/a-2.bmp`) does not
/// matter (design §4.7). A failure is logged, not fatal: the archive and
/// its entry are durable, the original filed; only this line is lost
/// ("fate not recorded").
fn record_fate(s: &Settings, held: &Held, source_xxh3: u64, archive: &Path, original: &Original) {
    use ledger::Fate;
    let (fate, done) = match original {
        Original::Moved(to)
        | Original::MovedLossy(to)
        | Original::MovedOpen(to)
        | Original::MovedNameTaken(to) => (Fate::Done, Some(relative_to(&s.done, to))),
        Original::Kept => (Fate::Kept, None),
        Original::Deleted => (Fate::Deleted, None),
        Original::Vanished => (Fate::Vanished, None),
        Original::Replaced => (Fate::Replaced, None),
    };
    let (source, source_raw) = ledger::path_fields(&held.rel_dir.join(&held.name));
    let (archive, archive_raw) = ledger::path_fields(&relative_to(&s.archive, archive));
    let (path, path_raw) = match done.as_deref().map(ledger::path_fields) {
        Some((p, raw)) => (Some(p), raw),
        None => (None, None),
    };
    let line = ledger::Line::Filed(ledger::Filed {
        v: ledger::VERSION,
        time: ledger::now(),
        host: s.ledger.host().to_string(),
        source,
        source_raw,
        source_xxh3: ledger::hex(source_xxh3),
        archive,
        archive_raw,
        fate,
        path,
        path_raw,
    });
    if let Err(e) = s.ledger.append_event(&line) {
        tracing::warn!(
            "{}: filed, but the ledger line saying where could not be written: {e}",
            crate::display::shown(&held.path)
        );
    }
}

/// Archived, but the original could not be filed: the retry carries the
/// archive and the source's identity.
fn unfiled(
    archive: PathBuf,
    (before, source_xxh3): (&fs::Metadata, u64),
    error: Box<Failure>,
) -> Report {
    Report::Unfiled {
        published: Published {
            archive,
            source: source_id(before),
            source_xxh3,
            unrecorded: None,
        },
        error,
    }
}

/// The names in `dir` a file of stem `stem` may have been archived under:
/// `stem.rle`, `stem-1.rle`, … up to the first free one.
fn existing_archives<'a>(
    dir: &'a Path,
    stem: &'a std::ffi::OsStr,
) -> impl Iterator<Item = PathBuf> + 'a {
    (0..durable::MAX_NUMBERED)
        .map(move |n| durable::numbered(dir, stem, "rle", n))
        .take_while(|p| fs::symlink_metadata(p).is_ok())
}

/// True when `path` is a regular file holding exactly `outcome`'s bytes
/// (size and digest, then the strict decoder).
fn holds(path: &Path, outcome: &Outcome) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == outcome.bytes_out)
        && File::open(path)
            .ok()
            .is_some_and(|f| compress::verify_rle(f, outcome).is_ok())
}

/// Publishes the temporary file as `stem.rle`, or `stem-N.rle` when taken;
/// on failure, the step (publishing, or the folder's fsync).
fn publish_numbered(
    temp: tempfile::NamedTempFile,
    dir: &Path,
    stem: &std::ffi::OsStr,
) -> Result<PathBuf, (Op, io::Error)> {
    let mut temp = Some(temp);
    // The temporary file is already fsynced; persist_noclobber never
    // replaces an existing file and hands the file back when it fails.
    let dest = durable::with_numbered(dir, stem, "rle", |dest| {
        let t = temp
            .take()
            .expect("BUG: the temporary file comes back after each failed attempt");
        match t.persist_noclobber(dest) {
            Ok(_) => Ok(dest.to_path_buf()),
            Err(e) => {
                temp = Some(e.file);
                Err(durable::taken_as_exists(e.error, dest))
            }
        }
    })
    .map_err(|e| (Op::Publish, e))?;
    durable::sync_dir(dir)
        .map(|()| dest)
        .map_err(|e| (Op::Fsync, e))
}

/// Files the original of a source an earlier attempt archived (`p`),
/// recording that archive first if the ledger append failed then.
pub(super) fn file_published(
    s: &Settings,
    held: &Held,
    before: &fs::Metadata,
    p: &Published,
) -> Report {
    if let Some(e) = &p.unrecorded
        && let Err(err) = s.ledger.append(e)
    {
        return Report::Unfiled {
            published: p.clone(),
            error: ledger_error(held, err),
        };
    }
    // Whether that archive's conversion was lossless is not known here,
    // so `delete` moves the original to done/ instead of deleting it.
    file_away_archived(s, held, (before, p.source_xxh3), p.archive.clone(), false)
}
