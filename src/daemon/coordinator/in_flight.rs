//! The files handed out to the pipeline and not yet reported back
//! (design §4.1): part of the coordinator's [`super::schedule::Schedule`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The files handed out and not yet reported back, by (device, inode) and
/// by path, kept together: the same file under a second name (a hard link,
/// a rename while it waited) is not handed out twice, and a path in flight
/// is not observed again (design §4.1).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    by_file: HashMap<(u64, u64), PathBuf>,
    paths: HashSet<PathBuf>,
}

impl InFlight {
    /// Takes `path`, the file `key`, as handed out; false (and nothing
    /// changes) when that file is in flight already, under any name.
    pub(super) fn start(&mut self, key: (u64, u64), path: &Path) -> bool {
        if self.by_file.contains_key(&key) {
            return false;
        }
        self.by_file.insert(key, path.to_path_buf());
        self.paths.insert(path.to_path_buf());
        true
    }

    /// The file `key` is back (reported, or never started): its path.
    pub(super) fn release(&mut self, key: (u64, u64)) -> Option<PathBuf> {
        let path = self.by_file.remove(&key)?;
        self.paths.remove(&path);
        Some(path)
    }

    pub(super) fn has_file(&self, key: (u64, u64)) -> bool {
        self.by_file.contains_key(&key)
    }

    pub(super) fn has_path(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }

    pub(super) fn len(&self) -> usize {
        self.by_file.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_file.is_empty()
    }

    pub(super) fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.by_file.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_in_flight_once_under_any_name_and_both_indexes_agree() {
        let mut f = InFlight::default();
        let (a, b) = (Path::new("/in/a.bmp"), Path::new("/in/b.bmp"));
        assert!(f.start((1, 10), a));
        // The same file (device, inode) under another name: not twice.
        assert!(!f.start((1, 10), b));
        assert!(f.has_file((1, 10)) && f.has_path(a) && !f.has_path(b));
        // Another file; same inode number on another device is another file.
        assert!(f.start((2, 10), b));
        assert_eq!(f.len(), 2);
        assert_eq!(f.release((1, 10)).as_deref(), Some(a));
        assert!(!f.has_path(a) && !f.has_file((1, 10)));
        assert_eq!(f.release((1, 10)), None);
        assert_eq!(f.paths().collect::<Vec<_>>(), [b]);
        assert_eq!(f.release((2, 10)).as_deref(), Some(b));
        assert!(f.is_empty() && !f.has_path(b));
    }
}
