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

/// Removes rlewatch's own temporary files left by a crash: those no live
/// process holds locked (another daemon's files in progress stay).
pub(super) fn remove_stale_temps(c: &Config, whose: &str) {
    let mut removed = 0;
    let unheld = |p: &Path| {
        fs::File::open(p)
            .and_then(|f| crate::claim::lock(&f))
            .unwrap_or(true)
    };
    for dir in [&c.paths.archive, &c.paths.done, &c.paths.failed] {
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if entry.file_type().is_file()
                && crate::durable::is_temp_name(entry.file_name())
                && unheld(entry.path())
            {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => warn!(
                        "{}: cannot remove stale temporary file: {e}",
                        shown(entry.path())
                    ),
                }
            }
        }
    }
    if removed > 0 {
        info!("removed {removed} stale temporary file(s) left by {whose}");
    }
}
