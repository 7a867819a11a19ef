//! What becomes of the original once its archive is safe (design §4.4):
//! moved to done/, put back (`keep`) or deleted; and bad input moved to
//! the failed folder with its error note.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{
    FILE_MODE, Failure, Held, Op, Original, OriginalsAction, ReasonClass, Report, Settings, notes,
    still_there, transient,
};
use crate::display::shown;
use crate::{durable, faults, ledger};

/// Applies the originals policy once the archive is safe.
pub(super) fn dispose_original(
    s: &Settings,
    held: &Held,
    source: &fs::Metadata,
    may_delete: bool,
) -> Result<Original, Box<Failure>> {
    let original = dispose(s, held, source, may_delete)?;
    faults::reached("filed");
    Ok(original)
}

fn dispose(
    s: &Settings,
    held: &Held,
    source: &fs::Metadata,
    may_delete: bool,
) -> Result<Original, Box<Failure>> {
    use OriginalsAction as A;
    let path = &held.path;
    // The name may hold another file by now (only for a file not claimed:
    // a claim's folder is the daemon's own): that one is a new arrival,
    // not this archive's original, and is left alone.
    match durable::name_holds(&held.parent, &held.name, source) {
        Ok(false) => return Ok(Original::Replaced),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Original::Vanished),
        _ => {}
    }
    // An original removed by someone else meanwhile is not an error: its
    // archive is safe.
    let move_to_done = |fate: fn(PathBuf) -> Original| match still_there(&s.done, s.devices.done)
        .and_then(|()| {
            durable::move_at(
                &held.parent,
                &held.name,
                &s.done.join(&held.rel_dir),
                FILE_MODE,
            )
        }) {
        Ok(to) => Ok(fate(to)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Original::Vanished),
        Err(e) => {
            let dest = s.done.join(&held.rel_dir);
            let hint = removal_hint(&e, s, held) + &not_a_folder_hint(&e, &dest);
            Err(Box::new(
                Failure::at(path, Op::MoveToDone, &s.done, e).with_hint(hint),
            ))
        }
    };
    match s.originals {
        A::Keep if held.claimed => match put_back(s, held) {
            Ok(true) => Ok(Original::Kept),
            Ok(false) => move_to_done(Original::MovedNameTaken),
            Err(e) => Err(Box::new(Failure::io(path, Op::PutBack, e))),
        },
        A::Keep => Ok(Original::Kept),
        A::Move => move_to_done(Original::Moved),
        A::Delete if may_delete && still_written(held) => move_to_done(Original::MovedOpen),
        A::Delete if may_delete => {
            let change = durable::group::changing(&held.parent)
                .map_err(|e| Box::new(Failure::io(path, Op::Fsync, e)))?;
            match durable::unlink_at(&held.parent, &held.name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Original::Vanished),
                other => other.map_err(|e| {
                    let hint = removal_hint(&e, s, held);
                    Box::new(Failure::io(path, Op::Delete, e).with_hint(hint))
                })?,
            }
            change
                .done()
                .wait()
                .map_err(|e| Box::new(Failure::io(path, Op::Fsync, e)))?;
            Ok(Original::Deleted)
        }
        A::Delete => move_to_done(Original::MovedLossy),
    }
}

/// `keep`: the claimed original goes back under its name in the inbox
/// (its subfolder made again if it was removed). False when a newer file
/// has that name now: it is not replaced.
pub(super) fn put_back(s: &Settings, held: &Held) -> io::Result<bool> {
    still_there(&s.inbox, s.devices.inbox)?;
    let inbox_dir = s.inbox.join(&held.rel_dir);
    durable::create_dir_all(&inbox_dir)?;
    let dir = File::open(&s.inbox).and_then(|inbox| {
        durable::open_beneath(&inbox, &held.rel_dir, libc::O_RDONLY | libc::O_DIRECTORY)
    })?;
    match durable::rename_noreplace(&held.parent, &held.name, &dir) {
        Ok(()) => Ok(true),
        // The same file back under its inbox name after a power cut is
        // this original put back already.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            match durable::same_file_there(
                &held.parent,
                &held.name,
                &dir,
                &inbox_dir.join(&held.name),
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
fn still_written(held: &Held) -> bool {
    let file = durable::open_beneath(
        &held.parent,
        Path::new(&held.name),
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
pub(super) fn removal_hint(e: &io::Error, s: &Settings, held: &Held) -> String {
    if !matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    ) {
        return String::new();
    }
    // Whose folder is in the way: the source's (a writer's umask) or the
    // destination (done/ or failed/, the daemon's own)?
    if durable::may_remove_at(&held.parent, &held.name).is_ok() {
        return " (the destination folder is not writable by rlewatch: check its owner and \
                 mode, and that it is in the unit's ReadWritePaths=)"
            .to_string();
    }
    format!(
        " (the folder {} is not writable by rlewatch: writers need umask 002 or a default ACL \
         such as `setfacl -d -m g:GROUP:rwX {}`; see docs/service.md, \"Setting up writers\")",
        shown(&s.inbox.join(&held.rel_dir)),
        shown(&s.inbox)
    )
}

/// " (PATH is a file, not a folder)" when moving towards the folder `dest`
/// failed because a file stands where `dest` or one of its parents should
/// be (making the folder or renaming into it then fails with EEXIST or
/// ENOTDIR, whose own text says only "File exists"); else nothing.
pub(super) fn not_a_folder_hint(e: &io::Error, dest: &Path) -> String {
    let about_a_folder = matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTDIR))
        || matches!(
            e.kind(),
            io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
        );
    // Without a trailing slash (`done/` joined with an empty subfolder has
    // one), which would make a file there fail to stat instead.
    let dest: PathBuf = dest.components().collect();
    let file_in_the_way = || {
        dest.ancestors()
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
    };
    match about_a_folder.then(file_in_the_way).flatten() {
        Some(p) => format!(" ({} is a file, not a folder)", shown(p)),
        None => String::new(),
    }
}

/// Moves a bad file to the failed folder, writes `NAME.error.txt` beside
/// it, then appends a `quarantined` line to the ledger (design §4.7).
pub(super) fn quarantine(
    s: &Settings,
    held: &Held,
    reason: &str,
    class: ReasonClass,
    attempts: u32,
) -> Report {
    let path = held.path.as_path();
    let dir = s.failed.join(&held.rel_dir);
    let note_for = |to: &Path| notes::note_path(&dir, to.file_name().unwrap_or_default());
    // A file `rlewatch retry` put back carries its earlier failures: the
    // new note takes them in (design §4.4, "Retrying failures").
    let rel = held.rel_dir.join(&held.name);
    let history = notes::read_history(&s.inbox, &rel);
    let note = notes::note_text(
        path,
        reason,
        SystemTime::now(),
        attempts + 1,
        history.as_ref().map(|(_, h)| h.as_str()),
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
    // Digested before it moves (the name is this host's to read now).
    let (size, xxh3) = size_and_digest(held);
    if let Err(e) = write_note(&note_for(&expected)) {
        return transient(held, Op::WriteNote, &note_for(&expected), e);
    }
    let to = match durable::move_at(&held.parent, &held.name, &dir, FILE_MODE) {
        Ok(to) => to,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let _ = fs::remove_file(note_for(&expected));
            return Report::Gone;
        }
        Err(e) => {
            let hint = removal_hint(&e, s, held) + &not_a_folder_hint(&e, &dir);
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
    // The history is in the new note now.
    if let Some((at, _)) = history
        && let Err(e) = fs::remove_file(&at)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(
            "{}: cannot remove these earlier failures (they are in {} too): {e}",
            shown(&at),
            shown(&note_for(&to))
        );
    }
    record_quarantine(s, held, (size, xxh3), &to, reason, class, attempts + 1);
    Report::Quarantined {
        reason: reason.to_string(),
        class,
        to,
    }
}

/// The size and digest of the file `held` names, when it is a regular
/// file that can be read (a FIFO is never opened for reading: it would
/// block).
fn size_and_digest(held: &Held) -> (u64, Option<u64>) {
    let file = durable::open_beneath(
        &held.parent,
        Path::new(&held.name),
        libc::O_RDONLY | libc::O_NONBLOCK,
    );
    let Ok(file) = file else { return (0, None) };
    match file.metadata() {
        Ok(m) if m.is_file() => (m.len(), super::digest(&file).ok()),
        Ok(m) => (m.len(), None),
        Err(_) => (0, None),
    }
}

/// Appends the `quarantined` line; a failure is logged, not fatal: the
/// file and its note are in the failed folder already, and event lines
/// may be lost (design §4.7: "fate not recorded").
fn record_quarantine(
    s: &Settings,
    held: &Held,
    (size, xxh3): (u64, Option<u64>),
    to: &Path,
    reason: &str,
    class: ReasonClass,
    attempts: u32,
) {
    let (source, source_raw) = ledger::path_fields(&held.rel_dir.join(&held.name));
    let (path, path_raw) = ledger::path_fields(to.strip_prefix(&s.failed).unwrap_or(to));
    let line = ledger::Line::Quarantined(ledger::Quarantined {
        v: ledger::VERSION,
        time: ledger::now(),
        host: s.ledger.host().to_string(),
        source,
        source_raw,
        source_size: size,
        source_xxh3: xxh3.map(ledger::hex),
        path,
        path_raw,
        reason: reason.to_string(),
        class,
        attempts,
    });
    if let Err(e) = s.ledger.append_event(&line) {
        tracing::warn!(
            "{}: quarantined, but the ledger line could not be written: {e}",
            shown(&held.path)
        );
    }
}
