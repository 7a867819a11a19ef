//! Start-up chores (design §4.4): the four folders made, a warning when
//! originals would be copied across filesystems, the daemon's own stale
//! temporary files removed.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::config::Config;
use crate::display::shown;

/// Creates the four folders if missing.
pub(super) fn make_folders(c: &Config) -> Result<()> {
    for dir in [
        &c.paths.inbox,
        &c.paths.archive,
        &c.paths.done,
        &c.paths.failed,
    ] {
        crate::durable::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", shown(dir)))?;
    }
    warn_cross_filesystem(c);
    Ok(())
}

/// Warns when done/ or failed/ lies on another filesystem than the inbox:
/// filing an original there is a copy, an fsync and an unlink instead of a
/// rename.
pub(super) fn warn_cross_filesystem(c: &Config) {
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

/// Whose stale temporary files to remove.
pub(super) enum Stale<'a> {
    /// This host's, and untagged ones (the CLI's, an earlier version's),
    /// at start.
    Ours,
    /// A dead host's, after taking over its claims.
    Of(&'a str),
}

/// Removes rlewatch's temporary files left by a crash: those tagged with
/// the host `whose` says (on shared storage another host's `flock` is not
/// seen here, so its files in progress must be told apart by name —
/// design §4.8) and that no live process on this machine holds locked
/// (another daemon's files in progress stay).
pub(super) fn remove_stale_temps(c: &Config, whose: Stale) {
    let mut removed = 0;
    let unheld = |p: &Path| {
        fs::File::open(p)
            .and_then(|f| crate::durable::try_lock(&f))
            .unwrap_or(true)
    };
    let wanted = |owner: Option<&str>| match (&whose, owner) {
        (Stale::Ours, None) => true,
        (Stale::Ours, Some(h)) => h == c.host,
        (Stale::Of(dead), Some(h)) => h == *dead,
        (Stale::Of(_), None) => false,
    };
    for dir in [&c.paths.archive, &c.paths.done, &c.paths.failed] {
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if entry.file_type().is_file()
                && crate::durable::temp_owner(entry.file_name()).is_some_and(wanted)
                && unheld(entry.path())
            {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    // Gone meanwhile: another host's daemon, starting too,
                    // removed it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => warn!(
                        "{}: cannot remove stale temporary file: {e}",
                        shown(entry.path())
                    ),
                }
            }
        }
    }
    if removed > 0 {
        match whose {
            Stale::Ours => {
                info!("removed {removed} stale temporary file(s) left by an earlier run")
            }
            Stale::Of(host) => {
                info!("removed {removed} stale temporary file(s) left by host {host:?}")
            }
        }
    }
}
