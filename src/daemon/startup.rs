//! Start-up chores (design §4.4): the four folders made, a warning when
//! originals would be copied across filesystems, the daemon's own stale
//! temporary files removed (on a thread of their own, once the daemon is
//! ready).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tracing::{debug, info, warn};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stale {
    /// At start: this host's left by its earlier runs (tagged with
    /// another instance's token, or with the host only by an earlier
    /// version) and untagged ones (the CLI's, an earlier version's); never
    /// those tagged with `instance`, this daemon's own.
    Earlier { instance: String },
    /// A dead host's, after taking over its claims.
    Of(String),
}

impl Stale {
    /// Whether a temporary file tagged `tag` is one to remove (when no
    /// process here holds it locked) for a daemon of host `host`.
    pub(super) fn wants(&self, host: &str, tag: crate::durable::TempTag) -> bool {
        match (self, tag.host) {
            (Stale::Earlier { .. }, None) => true,
            (Stale::Earlier { instance }, Some(h)) => {
                h == host && tag.instance != Some(instance.as_str())
            }
            (Stale::Of(dead), Some(h)) => h == dead,
            (Stale::Of(_), None) => false,
        }
    }
}

/// The removal of stale temporary files under `archive/`, `done/` and
/// `failed/` on a thread of its own (design §4.4): a walk of every file
/// there, which on a year's archive takes minutes, so the daemon starts
/// (and a takeover goes on) without waiting for it.
pub(super) struct Sweep {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl Sweep {
    /// Starts the sweep of the folders `c` names for the files `whose`
    /// says; if no thread can be started, sweeps here and now.
    pub(super) fn start(c: &Config, whose: Stale) -> Sweep {
        let stop = Arc::new(AtomicBool::new(false));
        let dirs = [&c.paths.archive, &c.paths.done, &c.paths.failed].map(|d| d.to_path_buf());
        let host = c.host.clone();
        let job = {
            let (stop, whose) = (stop.clone(), whose.clone());
            move || remove_stale_temps(&dirs, &host, &whose, &stop)
        };
        let thread = match std::thread::Builder::new()
            .name("temp-sweep".into())
            .spawn(job)
        {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(
                    "cannot start a thread to remove stale temporary files ({e}): removing them now"
                );
                let dirs =
                    [&c.paths.archive, &c.paths.done, &c.paths.failed].map(|d| d.to_path_buf());
                remove_stale_temps(&dirs, &c.host, &whose, &stop);
                None
            }
        };
        Sweep { stop, thread }
    }

    /// True once the sweep is over.
    pub(super) fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the sweep between two files and waits for it: what it has
    /// not reached yet is removed at the next start.
    pub(super) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Removes rlewatch's temporary files left by a crash below `dirs`: those
/// tagged as `whose` says ([`Stale::wants`]; on shared storage another
/// host's `flock` is not seen here, so its files in progress must be told
/// apart by name — design §4.8) and that no live process on this machine
/// holds locked (another daemon's files in progress stay). This daemon's
/// own files, which its workers create and lock while the sweep runs, are
/// told apart by the instance token in their names: a file between its
/// creation and its `flock` is never taken for a stale one. Returns how
/// many it removed; stops early once `stop` is set.
pub(super) fn remove_stale_temps(
    dirs: &[PathBuf],
    host: &str,
    whose: &Stale,
    stop: &AtomicBool,
) -> usize {
    let began = std::time::Instant::now();
    let (mut removed, mut seen) = (0, 0u64);
    let unheld = |p: &Path| {
        fs::File::open(p)
            .and_then(|f| crate::durable::try_lock(&f))
            .unwrap_or(true)
    };
    'dirs: for dir in dirs {
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if stop.load(Ordering::Relaxed) {
                info!(
                    "stopping: the removal of stale temporary files stopped after {seen}                      file(s); the rest are removed at the next start"
                );
                break 'dirs;
            }
            seen += 1;
            if entry.file_type().is_file()
                && crate::durable::temp_tag(entry.file_name()).is_some_and(|t| whose.wants(host, t))
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
    debug!(
        "looked for stale temporary files among {seen} entries in {:.3} s",
        began.elapsed().as_secs_f64()
    );
    if removed > 0 {
        match whose {
            Stale::Earlier { .. } => {
                info!("removed {removed} stale temporary file(s) left by an earlier run")
            }
            Stale::Of(host) => {
                info!("removed {removed} stale temporary file(s) left by host {host:?}")
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the sweep removes and what it leaves (design §4.4): at start,
    /// this host's files of other instances and untagged ones, never this
    /// instance's own (its workers' files between creation and `flock`),
    /// another host's, a locked one or another program's; after a
    /// takeover, the dead host's only.
    #[test]
    fn the_sweep_removes_only_stale_files_and_never_this_instances() {
        let t = tempfile::tempdir().unwrap();
        let dirs = ["archive", "done", "failed"].map(|d| t.path().join(d));
        for d in &dirs {
            fs::create_dir_all(d.join("sub")).unwrap();
        }
        let own = "00000000000000ff";
        let removed_at_start = [
            "archive/.rlewatch-Ab12Zx.tmp",
            "archive/sub/.rlewatch-h1~Ab12Zx.tmp",
            "done/.rlewatch-h1~0000000000000001~Ab12Zx.tmp",
            "failed/sub/.rlewatch-h1~0000000000000001~Cd34Yw.tmp",
        ];
        let kept = [
            "archive/.rlewatch-h1~00000000000000ff~Ab12Zx.tmp",
            "done/sub/.rlewatch-h1~00000000000000ff~Cd34Yw.tmp",
            "archive/sub/.rlewatch-h2~0000000000000001~Ab12Zx.tmp",
            "failed/.rlewatch-h2~Ab12Zx.tmp",
            "archive/x.tmp",
            "archive/.rlewatch-h1~1~Ab12Zx.part",
            "done/page.bmp",
        ];
        let locked = "archive/sub/.rlewatch-h1~0000000000000002~Ef56Vu.tmp";
        for f in removed_at_start.iter().chain(&kept).chain([&locked]) {
            fs::write(t.path().join(f), f).unwrap();
        }
        // Held by a live process (here, this one, through another open
        // file): a daemon at work on it.
        let holder = fs::File::open(t.path().join(locked)).unwrap();
        assert!(crate::durable::try_lock(&holder).unwrap());
        let never = AtomicBool::new(false);
        let whose = Stale::Earlier {
            instance: own.to_string(),
        };
        assert_eq!(remove_stale_temps(&dirs, "h1", &whose, &never), 4);
        for f in removed_at_start {
            assert!(!t.path().join(f).exists(), "{f} left");
        }
        for f in kept.iter().chain([&locked]) {
            assert_eq!(fs::read_to_string(t.path().join(f)).unwrap(), *f);
        }
        // Once unlocked, the locked one is stale too; the own ones stay.
        drop(holder);
        assert_eq!(remove_stale_temps(&dirs, "h1", &whose, &never), 1);
        assert!(!t.path().join(locked).exists());
        // Host h2 found dead: its files only, whatever their instance.
        let whose = Stale::Of("h2".to_string());
        assert_eq!(remove_stale_temps(&dirs, "h1", &whose, &never), 2);
        for f in &kept[..2] {
            assert!(t.path().join(f).exists(), "{f} removed");
        }
        for f in &kept[2..4] {
            assert!(!t.path().join(f).exists(), "{f} left");
        }
        for f in &kept[4..] {
            assert_eq!(fs::read_to_string(t.path().join(f)).unwrap(), *f);
        }
    }

    /// A sweep told to stop removes nothing more.
    #[test]
    fn a_stopped_sweep_removes_nothing_more() {
        let t = tempfile::tempdir().unwrap();
        let dirs = [t.path().join("archive")];
        fs::create_dir_all(&dirs[0]).unwrap();
        fs::write(dirs[0].join(".rlewatch-Ab12Zx.tmp"), b"x").unwrap();
        let stopped = AtomicBool::new(true);
        let whose = Stale::Earlier {
            instance: "00000000000000ff".to_string(),
        };
        assert_eq!(remove_stale_temps(&dirs, "h1", &whose, &stopped), 0);
        assert!(dirs[0].join(".rlewatch-Ab12Zx.tmp").exists());
    }
}
