//! The four configured folders: resolved against the configuration file's
//! folder, told apart, and checked on disk (`check-config`, start-up).

use std::path::{Path, PathBuf};

use super::{ConfigError, RawPaths, invalid};

/// The four folders, absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub inbox: PathBuf,
    pub archive: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
}

impl Paths {
    /// The four folders of `raw`, absolute (relative ones against `base`),
    /// checked to be four different folders with the inbox inside none of
    /// the others.
    pub(super) fn resolve(raw: &RawPaths, base: &Path) -> Result<Paths, ConfigError> {
        let resolve = |p: &Path| -> PathBuf { normalize(&base.join(p)) };
        let paths = Paths {
            inbox: resolve(&raw.inbox),
            archive: resolve(&raw.archive),
            done: resolve(&raw.done),
            failed: resolve(&raw.failed),
        };
        let named = [
            ("inbox", &paths.inbox),
            ("archive", &paths.archive),
            ("done", &paths.done),
            ("failed", &paths.failed),
        ];
        for (i, (a, pa)) in named.iter().enumerate() {
            for (b, pb) in &named[i + 1..] {
                if pa == pb {
                    return Err(invalid(format!(
                        "paths.{a} and paths.{b} are the same folder ({})",
                        pa.display()
                    )));
                }
                if *a == "inbox" && pa.starts_with(pb) {
                    return Err(invalid(format!(
                        "paths.inbox ({}) is inside paths.{b}",
                        pa.display()
                    )));
                }
            }
        }
        Ok(paths)
    }

    /// The folders as they are on disk (design §4.6): an inbox that exists
    /// but is not a folder, and any two folders that are one (through a
    /// symlink or `..`), or an output folder that lies inside the inbox
    /// only through an alias (the watcher would archive its own outputs,
    /// since it leaves alone only what is lexically below the inbox), are
    /// errors. Folders not created yet are judged by their nearest
    /// existing ancestor. The one check here that reads the filesystem;
    /// run at start, at reload and by `check-config`.
    pub fn check_on_disk(&self) -> Result<(), String> {
        if self.inbox.exists() && !self.inbox.is_dir() {
            return Err(format!(
                "paths.inbox ({}) is not a folder",
                self.inbox.display()
            ));
        }
        let named = [
            ("inbox", &self.inbox),
            ("archive", &self.archive),
            ("done", &self.done),
            ("failed", &self.failed),
        ];
        let real: Vec<PathBuf> = named.iter().map(|(_, p)| resolved(p)).collect();
        for (i, (a, pa)) in named.iter().enumerate() {
            for (j, (b, pb)) in named.iter().enumerate().skip(i + 1) {
                if real[i] == real[j] {
                    return Err(format!(
                        "paths.{a} ({}) and paths.{b} ({}) are the same folder ({})",
                        pa.display(),
                        pb.display(),
                        real[i].display()
                    ));
                }
            }
            if i > 0 && real[i].starts_with(&real[0]) && !pa.starts_with(&self.inbox) {
                return Err(format!(
                    "paths.{a} ({}) is inside the inbox through a symlink ({}): \
                     the daemon would archive its own outputs",
                    pa.display(),
                    real[i].display()
                ));
            }
            if i > 0 && real[0].starts_with(&real[i]) {
                return Err(format!(
                    "paths.inbox ({}) is inside paths.{a} ({})",
                    self.inbox.display(),
                    real[i].display()
                ));
            }
        }
        Ok(())
    }
}

/// `path` with symlinks resolved: its nearest existing ancestor
/// canonicalized, the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Removes `.` and `..` components lexically (no symlink resolution: the
/// folders may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
