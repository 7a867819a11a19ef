//! Taking a file (design §4.3): open it beneath the inbox without
//! following symlinks, lock it, and claim it into this host's claim
//! folder: a hard link made durable, then the inbox name removed, or one
//! rename where links cannot be used (design §4.7).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::dispose::{quarantine, removal_hint};
use super::{Failure, Held, Op, ReasonClass, Report, Settings, relative, transient};
use crate::display::shown;
use crate::{claim, durable, faults};

/// Opens the file at `path` without following symlinks and makes it this
/// daemon's: locked, and (an inbox file) renamed into the claim folder.
pub(super) fn take(
    s: &Settings,
    path: &Path,
    attempts: u32,
) -> Result<(Held, File, fs::Metadata), Report> {
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
    let mut held = Held {
        path: dropped,
        rel_dir,
        parent,
        name,
        claimed,
        from_claim: claimed,
        _lock: None,
    };
    let (mut file, mut before) = open_locked(s, &held, attempts)?;
    if claimed && before.nlink() > 1 {
        finish_claim(s, &held, &before)?;
        // Removing a name moved its ctime.
        before = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Err(transient(&held, Op::Stat, &held.path, e)),
        };
    }
    if !claimed {
        claim(s, &mut held, &file, &before)?;
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
            &held.parent,
            Path::new(&held.name),
            libc::O_RDONLY | libc::O_NONBLOCK,
        ) {
            Ok(f) => f,
            Err(e) => return Err(transient(&held, Op::Open, &held.path, e)),
        };
        // The rename moved its ctime: what it is compared with later is
        // taken now.
        before = match fresh.metadata() {
            Ok(m) if m.file_type().is_file() => m,
            Ok(_) => {
                return Err(quarantine(
                    s,
                    &held,
                    "not a regular file",
                    ReasonClass::Other,
                    attempts,
                ));
            }
            Err(e) => return Err(transient(&held, Op::Stat, &held.path, e)),
        };
        held._lock = Some(std::mem::replace(&mut file, fresh));
    }
    Ok((held, file, before))
}

/// Opens `held` read-only without following a symlink, checks it is a
/// regular file and locks it (Busy when another daemon holds it).
fn open_locked(s: &Settings, held: &Held, attempts: u32) -> Result<(File, fs::Metadata), Report> {
    let file = match durable::open_beneath(
        &held.parent,
        Path::new(&held.name),
        libc::O_RDONLY | libc::O_NONBLOCK,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Report::Gone),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(quarantine(
                s,
                held,
                "symbolic links are not followed",
                ReasonClass::Other,
                attempts,
            ));
        }
        // A socket cannot be opened at all (ENXIO); it will never be a BMP.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(quarantine(
                s,
                held,
                "not a regular file",
                ReasonClass::Other,
                attempts,
            ));
        }
        Err(e) => return Err(transient(held, Op::Open, &held.path, e)),
    };
    let before = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Err(transient(held, Op::Stat, &held.path, e)),
    };
    if !before.file_type().is_file() {
        return Err(quarantine(
            s,
            held,
            "not a regular file",
            ReasonClass::Other,
            attempts,
        ));
    }
    #[cfg(test)]
    super::tests::between_open_and_lock();
    match durable::try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Report::Busy {
                reason: "another rlewatch is working on it".into(),
            });
        }
        Err(e) => return Err(transient(held, Op::Lock, &held.path, e)),
    }
    // The lock is won only once its holder lets go, and a daemon lets go
    // of a file once it is filed away: the file opened may no longer be
    // under its name (a claim another daemon of this host id has just
    // filed, design §4.3). It is not this attempt's to archive: the name
    // is looked at again (Busy) or was let go (Gone).
    match durable::name_holds(&held.parent, &held.name, &before) {
        Ok(true) => Ok((file, before)),
        Ok(false) => Err(Report::Busy {
            reason: "it was replaced while being opened; taking the new file".into(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Report::Gone),
        Err(e) => Err(transient(held, Op::Stat, &held.path, e)),
    }
}

/// Set once hard links turned out not to work on the inbox's filesystem
/// (see [`claim_by_link`]): claims are renames from then on.
static NO_LINKS: AtomicBool = AtomicBool::new(false);

/// Set once a hard link to one file was refused (EPERM, EMLINK), which is
/// said once: that file, and each such file after it, is claimed by a
/// rename; other files still by a link.
static LINK_REFUSED_SAID: AtomicBool = AtomicBool::new(false);

/// Moves the locked inbox file into the claim folder (design §4.7); `held`
/// then names the claim. By a hard link where `s.link_claims` allows it
/// and the filesystem has them, else by one rename.
fn claim(s: &Settings, held: &mut Held, file: &File, before: &fs::Metadata) -> Result<(), Report> {
    let dir = match claim::open_dir(&s.claims, &held.rel_dir) {
        Ok(d) => d,
        Err(e) => return Err(transient(held, Op::ClaimFolder, &s.claims, e)),
    };
    if s.link_claims
        && !NO_LINKS.load(Ordering::Relaxed)
        && let Some(linked) = claim_by_link(s, held, &dir, before)
    {
        linked?;
        held.parent = dir;
        held.claimed = true;
        return Ok(());
    }
    // One rename: the inbox folder can be fsynced by a writer between it
    // and the claim folder's fsync (design §4.7, "Power loss").
    match durable::rename_confirmed(&held.parent, &held.name, &dir, file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The source is gone (another daemon took it), or the claim
            // folder was removed under us (a start-up cleanup of another
            // daemon): then look again.
            return Err(match durable::stat_at(&held.parent, &held.name) {
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
            let hint = removal_hint(&e, s, held);
            return Err(Report::Transient {
                error: Box::new(Failure::at(&held.path, Op::Claim, &s.claims, e).with_hint(hint)),
            });
        }
    }
    held.parent = dir;
    held.claimed = true;
    // Between the open and the rename another file may have been put under
    // the name: the claim is then that other file, which nobody holds; it
    // is found by the next look at the claim folder (and this attempt ends
    // as Busy, so the coordinator looks there shortly).
    match durable::name_holds(&held.parent, &held.name, before) {
        Ok(true) => Ok(()),
        _ => Err(Report::Busy {
            reason: "it was replaced while being claimed; taking the new file".into(),
        }),
    }
}

/// The claim in two halves (design §4.7, "Power loss"): `linkat` into the
/// claim folder, that folder fsynced, then the inbox name removed
/// ([`durable::unlink_twin_durably`]) and both folders fsynced. At every
/// instant the file has a durable name. `None`: links cannot be used here,
/// claim by a rename instead.
fn claim_by_link(
    s: &Settings,
    held: &Held,
    dir: &File,
    before: &fs::Metadata,
) -> Option<Result<(), Report>> {
    // Another name: perhaps the claim of another host id whose daemon died
    // between the halves. Its next start or a take-over finishes it.
    if before.nlink() > 1 && claim::linked_elsewhere(&s.claims, &held.rel_dir, &held.name, before) {
        return Some(Err(Report::Gone));
    }
    match durable::link_at(&held.parent, &held.name, dir) {
        Ok(()) => {}
        // Linked by an attempt that a crash ended before the inbox name was
        // removed: this one finishes the claim. Any other file of the name
        // is a claim not finished yet.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            if !durable::name_holds(dir, &held.name, before).unwrap_or(false) {
                return Some(Err(Report::Busy {
                    reason: "a file of the same name is still being archived".into(),
                }));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(Err(match durable::stat_at(&held.parent, &held.name) {
                Ok(_) => Report::Busy {
                    reason: "its claim folder went away; trying again".into(),
                },
                Err(_) => Report::Gone,
            }));
        }
        // Refused for this file: with `fs.protected_hardlinks` (the
        // default) the kernel links only files their linker owns or may
        // write, and a writer's file of mode 0644 is neither; vfat says
        // EPERM for every file. A rename claims it.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EMLINK)) => {
            tracing::debug!(
                "{}: hard link refused ({e}): claimed by a rename",
                shown(&held.path)
            );
            if !LINK_REFUSED_SAID.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    "{}: the kernel refuses a hard link to this file (with \
                     fs.protected_hardlinks, files rlewatch may not write, such as a \
                     writer's 0644 files): such files are claimed by a rename, which a power cut \
                     can lose in one window (design §4.7); writers with umask 002 or a default \
                     ACL (docs/service.md) avoid it",
                    shown(&held.path)
                );
            }
            return None;
        }
        Err(e) if durable::no_links(&e) => {
            NO_LINKS.store(true, Ordering::Relaxed);
            tracing::info!(
                "hard links are not available in {} ({e}): files are claimed by a rename, which \
                 a power cut can lose in one window (design §4.7)",
                shown(&s.claims)
            );
            return None;
        }
        Err(e) => return Some(Err(transient(held, Op::Claim, &s.claims, e))),
    }
    faults::reached("claim-linked");
    if let Err(e) = durable::group::sync(dir) {
        return Some(Err(transient(held, Op::Claim, &s.claims, e)));
    }
    if !durable::name_holds(dir, &held.name, before).unwrap_or(false) {
        if durable::name_holds(&held.parent, &held.name, before).unwrap_or(false) {
            // The inbox name still holds the file, the claim's new name
            // shows another identity: this filesystem does not keep a
            // file's identity across its names (sshfs without `use_ino`),
            // and no claim here could be recognised again.
            if let Ok(change) = durable::group::changing(dir)
                && durable::unlink_at(dir, &held.name).is_ok()
            {
                let _ = change.done().wait();
            }
            NO_LINKS.store(true, Ordering::Relaxed);
            tracing::info!(
                "a file's hard links show different identities in {}: files are claimed by a \
                 rename (design §4.7)",
                shown(&s.claims)
            );
            return None;
        }
        // Another file was put under the name between the open and the
        // link: that file is a claim now, which nobody holds; the next
        // look at the claim folder takes it and removes its inbox name.
        return Some(Err(Report::Busy {
            reason: "it was replaced while being claimed; taking the new file".into(),
        }));
    }
    match durable::unlink_twin(&held.parent, &held.name, dir, before) {
        Ok(durable::Twin::Removed) | Ok(durable::Twin::Replaced) => {}
        Ok(durable::Twin::Gone) => {
            // Removed by someone else: a writer taking it back (it is
            // claimed now all the same), or, on storage shared by hosts,
            // another host that won it and holds it in its claim folder.
            if claim::linked_elsewhere(&s.claims, &held.rel_dir, &held.name, before) {
                let change = match durable::group::changing(dir) {
                    Ok(c) => c,
                    Err(e) => return Some(Err(transient(held, Op::Claim, &s.claims, e))),
                };
                if let Err(e) = durable::unlink_at(dir, &held.name) {
                    return Some(Err(transient(held, Op::Claim, &s.claims, e)));
                }
                let _ = change.done().wait();
                return Some(Err(Report::Gone));
            }
        }
        Err(e) => return Some(Err(transient(held, Op::Claim, &s.claims, e))),
    }
    faults::reached("claim-unlinked");
    // The inbox name's removal was registered with the group commit as a
    // move before its rename (`unlink_twin`); it is not waited for here:
    // the file is durable in the claim folder already (the link's fsync
    // above), and the batches are flushed in order, so this move is
    // durable before the next durable step of this file returns (its
    // archive's publishing), sharing that flush (design §4.7, "Group
    // commit").
    Some(Ok(()))
}

/// A claim that still has its inbox name (a crash between the halves of a
/// claim, design §4.7; or a claim taken over from a dead host in that
/// state): the inbox name is removed before anything else, so the file is
/// never taken from the inbox a second time. A scratch name of the file
/// left in the claim folder by an interrupted removal goes first.
fn finish_claim(s: &Settings, held: &Held, before: &fs::Metadata) -> Result<(), Report> {
    durable::remove_scratch_twin(&held.parent, &held.name, before)
        .map_err(|e| transient(held, Op::Claim, &s.claims, e))?;
    let inbox = File::open(&s.inbox)
        .and_then(|i| durable::open_beneath(&i, &held.rel_dir, libc::O_RDONLY | libc::O_DIRECTORY));
    let inbox = match inbox {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(transient(held, Op::Claim, &s.inbox, e)),
    };
    if !durable::name_holds(&inbox, &held.name, before).unwrap_or(false) {
        return Ok(());
    }
    match durable::unlink_twin_durably(&inbox, &held.name, &held.parent, before) {
        Ok(_) => Ok(()),
        Err(e) => Err(transient(held, Op::Claim, &s.inbox, e)),
    }
}
