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
    pub fn check_on_disk(&self) -> Result<(), FolderError> {
        if self.inbox.exists() && !self.inbox.is_dir() {
            return Err(FolderError::InboxNotFolder(self.inbox.clone()));
        }
        let named = [
            ("inbox", &self.inbox),
            ("archive", &self.archive),
            ("done", &self.done),
            ("failed", &self.failed),
        ];
        for (key, path) in &named[1..] {
            check_makeable(key, path)?;
        }
        let real: Vec<PathBuf> = named.iter().map(|(_, p)| resolved(p)).collect();
        for (i, (a, pa)) in named.iter().enumerate() {
            for (j, (b, pb)) in named.iter().enumerate().skip(i + 1) {
                if real[i] == real[j] {
                    return Err(FolderError::Same {
                        a,
                        b,
                        path_a: pa.to_path_buf(),
                        path_b: pb.to_path_buf(),
                        real: real[i].clone(),
                    });
                }
            }
            if i > 0 && real[i].starts_with(&real[0]) && !pa.starts_with(&self.inbox) {
                return Err(FolderError::InsideInboxThroughSymlink {
                    key: a,
                    path: pa.to_path_buf(),
                    real: real[i].clone(),
                });
            }
            if i > 0 && real[0].starts_with(&real[i]) {
                return Err(FolderError::InboxInside {
                    key: a,
                    inbox: self.inbox.clone(),
                    real: real[i].clone(),
                });
            }
        }
        Ok(())
    }
}

/// What is wrong with the configured folders as they are on disk.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("paths.inbox ({}) is not a folder", .0.display())]
    InboxNotFolder(PathBuf),
    /// An output folder's path, or the nearest part of it that exists, is
    /// a file: the folder cannot be made.
    #[error("paths.{key} ({}) is a file, not a folder", .path.display())]
    FileNotFolder { key: &'static str, path: PathBuf },
    #[error(
        "paths.{key} ({}) cannot be made: {} is a file, not a folder",
        .path.display(),
        .file.display()
    )]
    FileInTheWay {
        key: &'static str,
        path: PathBuf,
        file: PathBuf,
    },
    #[error(
        "paths.{a} ({}) and paths.{b} ({}) are the same folder ({})",
        .path_a.display(),
        .path_b.display(),
        .real.display()
    )]
    Same {
        a: &'static str,
        b: &'static str,
        path_a: PathBuf,
        path_b: PathBuf,
        real: PathBuf,
    },
    #[error(
        "paths.{key} ({}) is inside the inbox through a symlink ({}): \
         the daemon would archive its own outputs",
        .path.display(),
        .real.display()
    )]
    InsideInboxThroughSymlink {
        key: &'static str,
        path: PathBuf,
        real: PathBuf,
    },
    #[error("paths.inbox ({}) is inside paths.{key} ({})", .inbox.display(), .real.display())]
    InboxInside {
        key: &'static str,
        inbox: PathBuf,
        real: PathBuf,
    },
}

/// An output folder exists as a folder, or can be made: neither it nor
/// its nearest existing ancestor is anything but a folder (symlinks
/// followed).
fn check_makeable(key: &'static str, path: &Path) -> Result<(), FolderError> {
    let Some((at, meta)) = path
        .ancestors()
        .find_map(|a| std::fs::metadata(a).ok().map(|m| (a, m)))
    else {
        return Ok(());
    };
    match (meta.is_dir(), at == path) {
        (true, _) => Ok(()),
        (false, true) => Err(FolderError::FileNotFolder {
            key,
            path: path.to_path_buf(),
        }),
        (false, false) => Err(FolderError::FileInTheWay {
            key,
            path: path.to_path_buf(),
            file: at.to_path_buf(),
        }),
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
