//! An interrupted one-shot command leaves no temporary files: every
//! temporary output beside its destination is registered while it exists
//! ([`TempOutput`]); on SIGINT, SIGTERM or SIGHUP a signal thread removes
//! those still registered and ends the process with 128 + the signal
//! number. It must never remove a published output: creating, publishing
//! and removing all hold the registry's lock, so a file is either still a
//! registered temporary (removed) or already renamed to its final name,
//! complete and synced (kept).
//!
//! Why not O_TMPFILE temporaries, which vanish by themselves: publishing
//! one takes linkat(2), which cannot replace an existing file for
//! `--force`, and O_TMPFILE is missing on some filesystems an output may
//! be on (NFS, many FUSE ones); the named, locked temporaries of
//! [`durable::temp_in`] are the ones the daemon also uses and recognises.

use std::sync::Once;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::*;

/// The temporary outputs that exist now.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temps() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the signal thread (once): from then on SIGINT, SIGTERM and SIGHUP
/// remove the registered temporary files and exit with 128 + the signal.
pub(super) fn remove_temps_on_signals() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                result = Err(anyhow!("cannot install signal handlers: {e}"));
                return;
            }
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                // Held until the process ends: nothing is created or
                // published after this point.
                let temps = temps();
                for path in temps.iter() {
                    let _ = std::fs::remove_file(path);
                }
                let name = match sig {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                eprintln!("rlewatch: interrupted by {name}; unfinished outputs removed");
                std::process::exit(128 + sig);
            }
        });
    });
    result
}

/// A temporary output file, registered for removal on a signal while it
/// exists.
pub(super) struct TempOutput {
    temp: Option<tempfile::NamedTempFile>,
}

impl TempOutput {
    /// A hidden temporary file in `dir` created with `mode` (the umask
    /// applies), registered in the same step.
    pub(super) fn create(dir: &Path, mode: u32) -> io::Result<TempOutput> {
        let mut temps = temps();
        let temp = durable::temp_in(dir, mode)?;
        temps.push(temp.path().to_path_buf());
        Ok(TempOutput { temp: Some(temp) })
    }

    pub(super) fn file(&self) -> &File {
        self.temp
            .as_ref()
            .expect("BUG: a TempOutput holds its file until published")
            .as_file()
    }

    /// Renames the finished file to `output` (never over an existing file
    /// unless `force`) and unregisters it.
    pub(super) fn publish(mut self, output: &Path, force: bool) -> Result<()> {
        let temp = self
            .temp
            .take()
            .expect("BUG: a TempOutput holds its file until published");
        // The data's fsync outside the lock, so parallel jobs do not wait
        // on each other for it; `durable::publish` syncs again (cheap).
        temp.as_file()
            .sync_all()
            .with_context(|| format!("{}", temp.path().display()))?;
        let mut temps = temps();
        let path = temp.path().to_path_buf();
        let result = durable::publish(temp, output, force);
        temps.retain(|p| *p != path);
        result.map_err(|e| match e {
            durable::PublishError::Exists(p) => exists(&p),
            other => anyhow!(other),
        })
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let mut temps = temps();
            let path = temp.path().to_path_buf();
            drop(temp); // removes the file
            temps.retain(|p| *p != path);
        }
    }
}
