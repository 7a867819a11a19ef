//! Archiving one inbox file (design §4.3–4.4, §4.7): open it without
//! following symlinks, lock it and claim it by a rename into the daemon's
//! claim folder, stream it into a hidden temporary file in the archive,
//! fsync, verify, publish under a name that overwrites nothing, record it
//! in the ledger, then move, keep (put back) or delete the original. Bad input goes to the failed folder with a
//! `NAME.error.txt`; trouble that may pass is reported for a retry with the
//! original untouched. At no point is a file's only copy removed.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use std::sync::Arc;

use crate::bilevel::Conversion;
use crate::bmp::BmpError;
use crate::compress::{self, CompressError, Outcome, VerifyError};
use crate::display::shown;
use crate::ledger::{self, Ledger};
use crate::{claim, durable, faults};

mod failure;
pub use failure::{Cause, Failure, Kind, Op};

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
    pub verify: bool,
    pub max_pixels: u64,
    pub originals: OriginalsAction,
    /// This host's claim folder (`INBOX/.rlewatch/claims/HOST`).
    pub claims: PathBuf,
    pub ledger: Arc<Ledger>,
    /// Where the four folders were when configured.
    pub devices: Devices,
}

/// Where each configured folder was when the configuration was loaded. A
/// folder that was a mount point must still be one, and a missing folder
/// is made again only while its parent is on the filesystem it was on: on
/// a network share that went away, rlewatch would otherwise write on the
/// empty mount point's local disk, where what it filed would be hidden once
/// the share is mounted again (design §4.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Devices {
    pub inbox: Root,
    pub archive: Root,
    pub done: Root,
    pub failed: Root,
}

/// One configured folder, as it was when configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Root {
    /// On another device than its parent.
    pub mount: bool,
    /// Its parent folder's device.
    pub parent: Option<u64>,
}

impl Root {
    pub fn of(dir: &Path) -> Root {
        Root {
            mount: mount_point(dir),
            parent: dir.parent().and_then(device),
        }
    }
}

impl Devices {
    /// Where the folders are now.
    pub fn of(inbox: &Path, archive: &Path, done: &Path, failed: &Path) -> Devices {
        Devices {
            inbox: Root::of(inbox),
            archive: Root::of(archive),
            done: Root::of(done),
            failed: Root::of(failed),
        }
    }
}

fn device(p: &Path) -> Option<u64> {
    fs::metadata(p).ok().map(|m| m.dev())
}

/// True when `dir` is on another device than its parent folder.
pub fn mount_point(dir: &Path) -> bool {
    match (device(dir), dir.parent().and_then(device)) {
        (Some(d), Some(parent)) => d != parent,
        _ => false,
    }
}

/// Checks that the configured folder `root` may be used as configured
/// (`was`): still a mount point if it was one; if missing, made again
/// only where it was.
pub fn still_there(root: &Path, was: Root) -> io::Result<()> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if root.parent().and_then(device) == was.parent {
                return Ok(());
            }
            Err(io::Error::new(
                e.kind(),
                format!(
                    "{} is missing, and the folder it was in is no longer on the filesystem \
                     it was on (a network share unmounted?); it is not made again there",
                    shown(root)
                ),
            ))
        }
        Err(e) => Err(e),
        Ok(_) if was.mount && !mount_point(root) => Err(io::Error::other(format!(
            "{} is no longer the mount point it was when rlewatch started (a network share \
             unmounted?); it is not used until it is mounted again",
            shown(root)
        ))),
        Ok(_) => Ok(()),
    }
}

/// The file being worked on, held by its folder's handle: every later
/// step (moving, deleting) acts on `name` inside `parent`, never
/// re-resolving the path, so a folder swapped for a symlink meanwhile
/// cannot redirect it. Once claimed, `parent` is the claim folder.
pub struct Entry {
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

/// Which file a source was, to recognise it again: (device, inode, size,
/// mtime seconds, mtime nanoseconds). A file rewritten or replaced under
/// its name has another identity.
pub type SourceId = (u64, u64, u64, i64, i64);

/// The identity of the file `m` describes.
pub fn source_id(m: &fs::Metadata) -> SourceId {
    (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// An archive published for a source whose original could not be filed
/// away yet; handed back with the retry so the same file is filed, not
/// archived again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub archive: PathBuf,
    pub source: SourceId,
    /// Its ledger entry, when appending it failed: appended first.
    pub unrecorded: Option<Box<ledger::Entry>>,
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
    /// Bad input, now in the failed folder.
    Quarantined { reason: String, to: PathBuf },
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

/// A file whose archive is written to a temporary file but not yet made
/// durable, verified or published; see [`finish`].
pub struct Encoded {
    settings: Arc<Settings>,
    entry: Entry,
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
    Done(Report),
    /// Encoded; [`finish`] must follow.
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
    use Step::Done;
    let s = &**settings;
    let started = Instant::now();
    let (entry, file, before) = match take(s, path, attempts) {
        Ok(taken) => taken,
        Err(report) => return Done(report),
    };
    // Whatever ends the attempt early: a claimed file that must be tried
    // again goes back to the inbox first.
    macro_rules! done {
        ($report:expr) => {
            Done(release(s, &entry, $report))
        };
    }
    let stem = durable::split_name(&entry.name).0.to_os_string();
    let archive_dir = s.archive.join(&entry.rel_dir);
    // This very file (same inode, size and mtime) was archived by an
    // earlier attempt whose original could not be filed: file it now.
    if let Some(p) = published.filter(|p| p.source == source_id(&before) && p.archive.exists()) {
        if let Some(e) = &p.unrecorded
            && let Err(err) = s.ledger.append(e)
        {
            return done!(Report::Unfiled {
                published: p.clone(),
                error: ledger_error(&entry, err),
            });
        }
        // Whether that archive's conversion was lossless is not known here,
        // so `delete` moves the original to done/ instead of deleting it.
        return done!(file_away_archived(
            s,
            &entry,
            &before,
            p.archive.clone(),
            false,
        ));
    }

    if let Err(e) = still_there(&s.archive, s.devices.archive)
        .and_then(|()| durable::create_dir_all(&archive_dir))
    {
        return done!(transient(&entry, Op::ArchiveFolder, &archive_dir, e));
    }
    let temp = match durable::temp_in(&archive_dir, FILE_MODE) {
        Ok(t) => t,
        Err(e) => return done!(transient(&entry, Op::ArchiveFolder, &archive_dir, e)),
    };
    let opts = compress::Options {
        conversion: s.conversion,
        max_pixels: s.max_pixels,
    };
    let mut out = BufWriter::with_capacity(256 * 1024, temp.as_file());
    let result = compress::compress(&file, &mut out, opts);
    let outcome = match result.and_then(|o| out.flush().map(|()| o).map_err(CompressError::Write)) {
        Ok(o) => o,
        Err(e) if e.is_bad_input() => {
            if changed(&file, &before) {
                return done!(Report::Changed);
            }
            // The temporary archive goes before the quarantine is visible:
            // whoever sees the error note sees no stray file.
            drop(out);
            drop(temp);
            return done!(quarantine(s, &entry, &e.to_string(), attempts));
        }
        Err(e) => {
            let error = match e {
                CompressError::Write(io) => Failure::at(&entry.path, Op::Write, temp.path(), io),
                CompressError::Bmp(BmpError::Io(io)) => Failure::io(&entry.path, Op::Read, io),
                other => Failure::at(
                    &entry.path,
                    Op::Read,
                    &entry.path,
                    Cause::Other(other.to_string()),
                ),
            };
            return done!(Report::Transient {
                error: Box::new(error)
            });
        }
    };
    drop(out);
    let source_xxh3 = match digest(&file) {
        Ok(d) => d,
        Err(e) => return done!(transient(&entry, Op::Read, &entry.path, e)),
    };
    if changed(&file, &before) {
        return done!(Report::Changed);
    }
    faults::reached("encoded");
    Step::Encoded(Box::new(Encoded {
        settings: settings.clone(),
        entry,
        work: Work {
            stem,
            archive_dir,
            temp,
            outcome,
            started,
        },
        source: file,
        before,
        source_xxh3,
    }))
}

/// Ends an attempt: a claimed file that is to be tried again after a
/// transient failure goes back under its name in the inbox, where the
/// operator expects a file that is not archived yet (design §4.4); when
/// that name is taken meanwhile it stays claimed and is retried from
/// there.
fn release(s: &Settings, entry: &Entry, report: Report) -> Report {
    if entry.claimed
        && matches!(report, Report::Transient { .. } | Report::Unfiled { .. })
        && let Err(e) = put_back(s, entry)
    {
        tracing::debug!("{}: stays claimed: {e}", shown(&entry.path));
    }
    report
}

/// A failure of `op` on `at` while working on `entry`.
fn transient(entry: &Entry, op: Op, at: &Path, e: io::Error) -> Report {
    Report::Transient {
        error: Box::new(Failure::at(&entry.path, op, at, e)),
    }
}

/// XXH3-64 of a file's bytes, read through `file` from its start.
fn digest(file: &File) -> io::Result<u64> {
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

/// Opens the file at `path` without following symlinks and makes it this
/// daemon's: locked, and (an inbox file) renamed into the claim folder.
fn take(s: &Settings, path: &Path, attempts: u32) -> Result<(Entry, File, fs::Metadata), Report> {
    let (rel, claimed) = relative(s, path);
    let rel_dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
        return Err(Report::Refused {
            reason: "not a file name".into(),
        });
    };
    let dropped = s.inbox.join(rel);
    let base = if claimed { &s.claims } else { &s.inbox };
    let parent = File::open(base)
        .and_then(|b| durable::open_beneath(&b, &rel_dir, libc::O_RDONLY | libc::O_DIRECTORY));
    let parent = match parent {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Report::Gone),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::ENOTDIR)
            ) =>
        {
            return Err(Report::Refused {
                reason: format!(
                    "a folder on its path is not a plain folder inside the inbox ({e})"
                ),
            });
        }
        Err(e) => {
            return Err(Report::Transient {
                error: Box::new(Failure::io(&dropped, Op::OpenFolder, e)),
            });
        }
    };
    let mut entry = Entry {
        path: dropped,
        rel_dir,
        parent,
        name,
        claimed,
        from_claim: claimed,
        _lock: None,
    };
    let (mut file, mut before) = open_locked(s, &entry, attempts)?;
    if !claimed {
        claim(s, &mut entry, &file, &before)?;
        faults::reached("claimed");
        // What is archived is what the claim holds, read through a
        // descriptor opened on it now. Locally the two are one file
        // (checked in `claim`), but where inode numbers are the client's
        // own (sshfs and other FUSE filesystems) that check cannot tell the
        // file opened from a newer one put under its name just before the
        // rename, after another host claimed the first: the old descriptor
        // would go on reading the file that host archives, and this one's
        // claim would be filed away unarchived (design §4.8). The old
        // descriptor stays open: it holds the lock.
        let fresh = match durable::open_beneath(
            &entry.parent,
            Path::new(&entry.name),
            libc::O_RDONLY | libc::O_NONBLOCK,
        ) {
            Ok(f) => f,
            Err(e) => return Err(transient(&entry, Op::Open, &entry.path, e)),
        };
        // The rename moved its ctime: what it is compared with later is
        // taken now.
        before = match fresh.metadata() {
            Ok(m) if m.file_type().is_file() => m,
            Ok(_) => return Err(quarantine(s, &entry, "not a regular file", attempts)),
            Err(e) => return Err(transient(&entry, Op::Stat, &entry.path, e)),
        };
        entry._lock = Some(std::mem::replace(&mut file, fresh));
    }
    Ok((entry, file, before))
}

/// Opens `entry` read-only without following a symlink, checks it is a
/// regular file and locks it (Busy when another daemon holds it).
fn open_locked(s: &Settings, entry: &Entry, attempts: u32) -> Result<(File, fs::Metadata), Report> {
    let file = match durable::open_beneath(
        &entry.parent,
        Path::new(&entry.name),
        libc::O_RDONLY | libc::O_NONBLOCK,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Report::Gone),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(quarantine(
                s,
                entry,
                "symbolic links are not followed",
                attempts,
            ));
        }
        // A socket cannot be opened at all (ENXIO); it will never be a BMP.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(quarantine(s, entry, "not a regular file", attempts));
        }
        Err(e) => return Err(transient(entry, Op::Open, &entry.path, e)),
    };
    let before = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Err(transient(entry, Op::Stat, &entry.path, e)),
    };
    if !before.file_type().is_file() {
        return Err(quarantine(s, entry, "not a regular file", attempts));
    }
    match claim::lock(&file) {
        Ok(true) => Ok((file, before)),
        Ok(false) => Err(Report::Busy {
            reason: "another rlewatch is working on it".into(),
        }),
        Err(e) => Err(transient(entry, Op::Lock, &entry.path, e)),
    }
}

/// Renames the locked inbox file into the claim folder; `entry` then
/// names the claim.
fn claim(
    s: &Settings,
    entry: &mut Entry,
    file: &File,
    before: &fs::Metadata,
) -> Result<(), Report> {
    let dir = match claim::open_dir(&s.claims, &entry.rel_dir) {
        Ok(d) => d,
        Err(e) => return Err(transient(entry, Op::ClaimFolder, &s.claims, e)),
    };
    match claim::rename_confirmed(&entry.parent, &entry.name, &dir, file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The source is gone (another daemon took it), or the claim
            // folder was removed under us (a start-up cleanup of another
            // daemon): then look again.
            return Err(match durable::stat_at(&entry.parent, &entry.name) {
                Ok(_) => Report::Busy {
                    reason: "its claim folder went away; trying again".into(),
                },
                Err(_) => Report::Gone,
            });
        }
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            return Err(Report::Busy {
                reason: "a file of the same name is still being archived".into(),
            });
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            return Err(Report::Refused {
                reason: format!(
                    "it is on another filesystem than the inbox's claim folder {}, so it \
                     cannot be claimed by a rename",
                    shown(&s.claims)
                ),
            });
        }
        Err(e) => {
            let hint = removal_hint(&e, s, entry);
            return Err(Report::Transient {
                error: Box::new(Failure::at(&entry.path, Op::Claim, &s.claims, e).with_hint(hint)),
            });
        }
    }
    entry.parent = dir;
    entry.claimed = true;
    // Between the open and the rename another file may have been put under
    // the name: the claim is then that other file, which nobody holds; it
    // is found by the next look at the claim folder (and this attempt ends
    // as Busy, so the coordinator looks there shortly).
    match durable::stat_at(&entry.parent, &entry.name) {
        Ok(st) if (st.st_dev, st.st_ino) == (before.dev(), before.ino()) => Ok(()),
        _ => Err(Report::Busy {
            reason: "it was replaced while being claimed; taking the new file".into(),
        }),
    }
}

/// The I/O-bound half: fsync, verify, publish under a free name, record
/// in the ledger, then the original.
pub fn finish(e: Encoded) -> Report {
    let settings = e.settings.clone();
    let (entry, report) = finish_entry(e);
    release(&settings, &entry, report)
}

fn finish_entry(e: Encoded) -> (Entry, Report) {
    let Encoded {
        settings,
        entry,
        work,
        source,
        before,
        source_xxh3,
    } = e;
    let report = finish_taken(&settings, &entry, work, &source, &before, source_xxh3);
    (entry, report)
}

/// The archive in the making: the parts of an [`Encoded`] that `finish`
/// uses up.
struct Work {
    stem: std::ffi::OsString,
    archive_dir: PathBuf,
    temp: tempfile::NamedTempFile,
    outcome: Outcome,
    started: Instant,
}

fn finish_taken(
    s: &Settings,
    entry: &Entry,
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
    if let Err(e) = temp.as_file().sync_all() {
        return transient(entry, Op::Fsync, temp.path(), e);
    }
    faults::reached("synced");
    faults::corrupt_temp(temp.as_file());
    if s.verify {
        let check = File::open(temp.path()).map_err(Cause::Io).and_then(|f| {
            compress::verify_rle(f, &outcome).map_err(|e: VerifyError| Cause::Other(e.to_string()))
        });
        if let Err(e) = check {
            return Report::Transient {
                error: Box::new(Failure::at(&entry.path, Op::Verify, temp.path(), e)),
            };
        }
        faults::reached("verified");
    }
    // Written to since it was read (a second write session): this archive
    // is of an old state. Dropped; the file is taken again once complete.
    if changed(source, before) {
        return Report::Changed;
    }
    let lossless_and_verified = outcome.lossless && s.verify;
    let source_rel = entry.rel_dir.join(&entry.name);
    // Already archived (a crash between publishing and filing, a kept
    // original seen again): the ledger records this very source, and its
    // archive holds exactly the bytes just encoded.
    // Another daemon may have recorded it since this one last looked: the
    // ledger is read again when the name is taken in the archive.
    let mut recorded = s.ledger.find(&source_rel, before.len(), source_xxh3);
    if recorded.is_none() && durable::numbered(&archive_dir, &stem, "rle", 0).exists() {
        s.ledger.refresh();
        recorded = s.ledger.find(&source_rel, before.len(), source_xxh3);
    }
    // The recorded archive is one of this file's names in the archive.
    let rel = |p: &Path| p.strip_prefix(&s.archive).unwrap_or(p).to_path_buf();
    if let Some(archive) = recorded
        .and_then(|hash| {
            existing_archives(&archive_dir, &stem).find(|p| ledger::path_hash(&rel(p)) == hash)
        })
        .filter(|a| holds(a, &outcome))
    {
        drop(temp);
        return file_away_archived(s, entry, before, archive, lossless_and_verified);
    }
    // A crash between publishing an archive and recording it leaves an
    // archive under this file's name, with exactly these bytes, that no
    // ledger entry names, and the file still claimed: that is this file's
    // archive; it is recorded now rather than published twice. Only for a
    // file that was a claim when the attempt began: an unrecorded archive
    // beside a new arrival may be another host's, between its publishing
    // and its recording, of an image that encodes the same (design §4.8).
    let unrecorded = existing_archives(&archive_dir, &stem)
        .filter(|_| entry.from_claim)
        .find(|p| !s.ledger.records_archive(&rel(p)) && holds(p, &outcome));
    let (archive, adopted) = match unrecorded {
        Some(a) => {
            drop(temp);
            (a, true)
        }
        None => match publish_numbered(temp, &archive_dir, &stem) {
            Ok(p) => (p, false),
            Err((op, e)) => return transient(entry, op, &archive_dir, e),
        },
    };
    faults::reached("published");
    let (source_text, source_raw) = ledger::path_fields(&source_rel);
    let (archive_text, archive_raw) =
        ledger::path_fields(archive.strip_prefix(&s.archive).unwrap_or(&archive));
    let record = ledger::Entry {
        v: ledger::VERSION,
        time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        host: s.ledger.host().to_string(),
        source: source_text,
        source_raw,
        source_size: before.len(),
        source_xxh3: ledger::hex(source_xxh3),
        archive: archive_text,
        archive_raw,
        archive_size: outcome.bytes_out,
        archive_xxh3: ledger::hex(outcome.digest),
        width: outcome.width,
        height: outcome.height,
        conversion: s.conversion.to_string(),
        lossless: outcome.lossless,
    };
    if let Err(e) = s.ledger.append(&record) {
        return Report::Unfiled {
            published: Published {
                archive,
                source: source_id(before),
                unrecorded: Some(Box::new(record)),
            },
            error: ledger_error(entry, e),
        };
    }
    faults::reached("recorded");
    if changed(source, before) {
        // Too late to withdraw a published archive safely; the original
        // stays and is archived again in its new state (nothing is lost).
        return Report::Superseded { archive };
    }
    if adopted {
        return file_away_archived(s, entry, before, archive, lossless_and_verified);
    }
    match dispose_original(s, entry, before, lossless_and_verified) {
        Ok(original) => Report::Archived {
            archive,
            outcome,
            original,
            millis: started.elapsed().as_millis(),
        },
        Err(error) => unfiled(archive, before, error),
    }
}

fn ledger_error(entry: &Entry, e: io::Error) -> Box<Failure> {
    Box::new(Failure::io(&entry.path, Op::Record, e))
}

/// Files away the original of a source found already archived as
/// `archive`.
fn file_away_archived(
    s: &Settings,
    entry: &Entry,
    before: &fs::Metadata,
    archive: PathBuf,
    may_delete: bool,
) -> Report {
    match dispose_original(s, entry, before, may_delete) {
        Ok(original) => Report::AlreadyArchived { archive, original },
        Err(error) => unfiled(archive, before, error),
    }
}

/// Archived, but the original could not be filed: the retry carries the
/// archive and the source's identity.
fn unfiled(archive: PathBuf, before: &fs::Metadata, error: Box<Failure>) -> Report {
    Report::Unfiled {
        published: Published {
            archive,
            source: source_id(before),
            unrecorded: None,
        },
        error,
    }
}

/// True when the file's size or mtime moved since `before`.
/// The ctime too: a rewrite that puts the old mtime back (`touch -d`,
/// `rsync -t`, `utime`) still moves the ctime, which no one can set.
/// (The claim's own rename moves the ctime as well, so `before` is taken
/// from the claimed file.)
fn changed(file: &File, before: &fs::Metadata) -> bool {
    match file.metadata() {
        Ok(now) => {
            now.len() != before.len()
                || (now.mtime(), now.mtime_nsec()) != (before.mtime(), before.mtime_nsec())
                || (now.ctime(), now.ctime_nsec()) != (before.ctime(), before.ctime_nsec())
        }
        Err(_) => true,
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
                Err(e.error)
            }
        }
    })
    .map_err(|e| (Op::Publish, e))?;
    durable::sync_dir(dir)
        .map(|()| dest)
        .map_err(|e| (Op::Fsync, e))
}

/// Applies the originals policy once the archive is safe.
fn dispose_original(
    s: &Settings,
    entry: &Entry,
    source: &fs::Metadata,
    may_delete: bool,
) -> Result<Original, Box<Failure>> {
    let original = dispose(s, entry, source, may_delete)?;
    faults::reached("filed");
    Ok(original)
}

fn dispose(
    s: &Settings,
    entry: &Entry,
    source: &fs::Metadata,
    may_delete: bool,
) -> Result<Original, Box<Failure>> {
    use OriginalsAction as A;
    let path = &entry.path;
    // The name may hold another file by now (only for a file not claimed:
    // a claim's folder is the daemon's own): that one is a new arrival,
    // not this archive's original, and is left alone.
    match durable::stat_at(&entry.parent, &entry.name) {
        Ok(st) if (st.st_dev, st.st_ino) != (source.dev(), source.ino()) => {
            return Ok(Original::Replaced);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Original::Vanished),
        _ => {}
    }
    // An original removed by someone else meanwhile is not an error: its
    // archive is safe.
    let move_to_done = |fate: fn(PathBuf) -> Original| match still_there(&s.done, s.devices.done)
        .and_then(|()| {
            durable::move_at(
                &entry.parent,
                &entry.name,
                &s.done.join(&entry.rel_dir),
                FILE_MODE,
            )
        }) {
        Ok(to) => Ok(fate(to)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Original::Vanished),
        Err(e) => {
            let hint = removal_hint(&e, s, entry);
            Err(Box::new(
                Failure::at(path, Op::MoveToDone, &s.done, e).with_hint(hint),
            ))
        }
    };
    match s.originals {
        A::Keep if entry.claimed => match put_back(s, entry) {
            Ok(true) => Ok(Original::Kept),
            Ok(false) => move_to_done(Original::MovedNameTaken),
            Err(e) => Err(Box::new(Failure::io(path, Op::PutBack, e))),
        },
        A::Keep => Ok(Original::Kept),
        A::Move => move_to_done(Original::Moved),
        A::Delete if may_delete && still_written(entry) => move_to_done(Original::MovedOpen),
        A::Delete if may_delete => {
            let _moving = claim::moving();
            match durable::unlink_at(&entry.parent, &entry.name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Original::Vanished),
                other => other.map_err(|e| {
                    let hint = removal_hint(&e, s, entry);
                    Box::new(Failure::io(path, Op::Delete, e).with_hint(hint))
                })?,
            }
            entry
                .parent
                .sync_all()
                .map_err(|e| Box::new(Failure::io(path, Op::Fsync, e)))?;
            Ok(Original::Deleted)
        }
        A::Delete => move_to_done(Original::MovedLossy),
    }
}

/// `keep`: the claimed original goes back under its name in the inbox
/// (its subfolder made again if it was removed). False when a newer file
/// has that name now: it is not replaced.
fn put_back(s: &Settings, entry: &Entry) -> io::Result<bool> {
    still_there(&s.inbox, s.devices.inbox)?;
    let inbox_dir = s.inbox.join(&entry.rel_dir);
    durable::create_dir_all(&inbox_dir)?;
    let dir = File::open(&s.inbox).and_then(|inbox| {
        durable::open_beneath(&inbox, &entry.rel_dir, libc::O_RDONLY | libc::O_DIRECTORY)
    })?;
    match claim::rename_noreplace(&entry.parent, &entry.name, &dir) {
        Ok(()) => Ok(true),
        // The same file back under its inbox name after a power cut is
        // this original put back already.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            match durable::same_file_there(
                &entry.parent,
                &entry.name,
                &dir,
                &inbox_dir.join(&entry.name),
                e,
            ) {
                Ok(_) => Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Right before deleting: false only when the kernel says no process on
/// this host holds the original open for writing (a lease probe). Open for
/// writing, or no answer (no `CAP_LEASE`, a filesystem without leases):
/// the original is filed to done/ instead, so nothing its writer adds later
/// is lost (design §4.4).
fn still_written(entry: &Entry) -> bool {
    let file = durable::open_beneath(
        &entry.parent,
        Path::new(&entry.name),
        libc::O_RDONLY | libc::O_NONBLOCK,
    );
    match file {
        Ok(f) => !matches!(durable::has_writers(&f), Ok(false)),
        // Gone meanwhile: the unlink will say so.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

/// The fix for an original that cannot be taken out of its folder: folders
/// that writers create must stay writable by the daemon's group. Empty for
/// other errors.
fn removal_hint(e: &io::Error, s: &Settings, entry: &Entry) -> String {
    if !matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    ) {
        return String::new();
    }
    // Whose folder is in the way: the source's (a writer's umask) or the
    // destination (done/ or failed/, the daemon's own)?
    if durable::may_remove_at(&entry.parent, &entry.name).is_ok() {
        return " (the destination folder is not writable by rlewatch: check its owner and \
                 mode, and that it is in the unit's ReadWritePaths=)"
            .to_string();
    }
    format!(
        " (the folder {} is not writable by rlewatch: writers need umask 002 or a default ACL \
         such as `setfacl -d -m g:GROUP:rwX {}`; see the README, \"Setting up writers\")",
        shown(&s.inbox.join(&entry.rel_dir)),
        shown(&s.inbox)
    )
}

/// Moves a bad file to the failed folder and writes `NAME.error.txt`
/// beside it.
fn quarantine(s: &Settings, entry: &Entry, reason: &str, attempts: u32) -> Report {
    let path = entry.path.as_path();
    let dir = s.failed.join(&entry.rel_dir);
    let note_for = |to: &Path| {
        dir.join(durable::fit_name(
            to.file_name().unwrap_or_default(),
            ".error.txt",
        ))
    };
    let note = format!(
        "file: {}\nreason: {reason}\ntime: {}\nattempts: {}\n",
        path.display(),
        humantime::format_rfc3339_seconds(SystemTime::now()),
        attempts + 1
    );
    // The note is written first, for the name the file will most likely
    // get: a crash in between leaves a note without its file (the file is
    // still in the inbox and will be quarantined again, note rewritten),
    // never a quarantined file without its reason.
    let name = path.file_name().unwrap_or_default();
    let (stem, ext) = durable::split_name(name);
    let expected = durable::with_numbered(&dir, stem, &ext, |p| match fs::symlink_metadata(p) {
        Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(_) => Ok(p.to_path_buf()),
    })
    .unwrap_or_else(|_| dir.join(name));
    let write_note = |at: &Path| -> io::Result<()> {
        still_there(&s.failed, s.devices.failed)?;
        durable::create_dir_all(&dir)?;
        let mut t = durable::temp_in(&dir, FILE_MODE)?;
        t.write_all(note.as_bytes())?;
        durable::publish(t, at, true).map_err(|e| match e {
            durable::PublishError::Io { source, .. } => source,
            exists => io::Error::new(io::ErrorKind::AlreadyExists, exists.to_string()),
        })
    };
    if let Err(e) = write_note(&note_for(&expected)) {
        return transient(entry, Op::WriteNote, &note_for(&expected), e);
    }
    let to = match durable::move_at(&entry.parent, &entry.name, &dir, FILE_MODE) {
        Ok(to) => to,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let _ = fs::remove_file(note_for(&expected));
            return Report::Gone;
        }
        Err(e) => {
            let hint = removal_hint(&e, s, entry);
            return Report::Transient {
                error: Box::new(Failure::at(path, Op::MoveToFailed, &dir, e).with_hint(hint)),
            };
        }
    };
    if to != expected {
        // Someone took the expected name meanwhile: move the note along.
        if let Err(e) = fs::rename(note_for(&expected), note_for(&to)) {
            tracing::warn!(
                "{}: could not move the error note: {e}",
                shown(&note_for(&to))
            );
        }
    }
    Report::Quarantined {
        reason: reason.to_string(),
        to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings for an inbox in `t`, archiving into `archive`.
    fn settings(t: &Path, archive: PathBuf) -> Arc<Settings> {
        let inbox = t.join("inbox");
        fs::create_dir_all(&inbox).unwrap();
        let claims = claim::prepare(&inbox, "h").unwrap();
        let ledger = Ledger::open(&t.join("ledger-home"), "h").unwrap();
        Arc::new(Settings {
            inbox,
            archive,
            done: t.join("done"),
            failed: t.join("failed"),
            conversion: Conversion::Dither,
            verify: true,
            max_pixels: 1_000_000,
            originals: OriginalsAction::Move,
            claims,
            ledger: Arc::new(ledger),
            devices: Devices::default(),
        })
    }

    #[test]
    fn a_file_where_the_archive_folder_should_be_is_a_permanent_failure_and_the_original_stays() {
        let t = tempfile::tempdir().unwrap();
        let archive = t.path().join("archive");
        fs::write(&archive, b"not a folder").unwrap();
        let s = settings(t.path(), archive.clone());
        let src = s.inbox.join("a.bmp");
        let bmp = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pal1.bmp");
        fs::copy(bmp, &src).unwrap();
        let error = match encode(&s, &src, 0, None) {
            Step::Done(Report::Transient { error }) => error,
            Step::Done(other) => panic!("{other:?}"),
            Step::Encoded(_) => panic!("encoded into a file"),
        };
        assert_eq!(error.op, Op::ArchiveFolder);
        assert_eq!(error.kind(), Kind::Permanent, "{error}");
        assert_eq!(error.file, src);
        assert_eq!(error.at, Some(archive.join("")));
        assert!(error.io_error().is_some());
        // Put back from its claim, unchanged.
        assert_eq!(fs::read(&src).unwrap(), fs::read(bmp).unwrap());
        assert!(claim::list(&s.claims).is_empty());
    }
}
