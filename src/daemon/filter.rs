//! Which paths in the inbox are work (design §4.2): files named as an
//! image format names them (`.bmp .tif .png .pgm .gif .jpg` …, any case;
//! `formats::ALL_EXTENSIONS`; which formats are archived is decided by
//! content, `compress.formats`) that are not hidden, not partial downloads or editor leftovers, not in
//! the daemon's own folders and not matched by a configured ignore glob.
//! Pure path logic: never touches the filesystem.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use globset::GlobSet;

use super::config::Config;

/// Suffixes of files that are still being written by someone.
const PARTIAL_SUFFIXES: &[&str] = &[".tmp", ".part", ".crdownload", "~"];

#[derive(Debug, Clone)]
pub struct Filter {
    inbox: PathBuf,
    /// The archive, done and failed folders when they lie inside the inbox.
    own: Vec<PathBuf>,
    recursive: bool,
    ignore: GlobSet,
}

impl Filter {
    pub fn new(config: &Config) -> Filter {
        let p = &config.paths;
        let own = [&p.archive, &p.done, &p.failed]
            .into_iter()
            .filter(|d| d.starts_with(&p.inbox))
            .cloned()
            .collect();
        Filter {
            inbox: p.inbox.clone(),
            own,
            recursive: config.recursive,
            ignore: config.ignore.clone(),
        }
    }

    pub fn inbox(&self) -> &Path {
        &self.inbox
    }

    fn hidden(name: &OsStr) -> bool {
        // Covers dotfiles, `.nfs*` and rlewatch's own temporary files.
        name.as_encoded_bytes().first() == Some(&b'.')
    }

    /// True for a folder below the inbox that should be watched and
    /// scanned.
    pub fn wants_dir(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.inbox) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        self.recursive
            && !self.own.iter().any(|o| path.starts_with(o))
            && !rel.components().any(|c| Self::hidden(c.as_os_str()))
            && !self.ignore.is_match(rel)
    }

    /// True for a path that names a file to archive (judged by name only).
    pub fn wants_file(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.inbox) else {
            return false;
        };
        let Some(name) = rel.file_name() else {
            return false;
        };
        let Some(parent) = path.parent() else {
            return false;
        };
        if !self.wants_dir(parent) || Self::hidden(name) {
            return false;
        }
        let bytes = name.as_encoded_bytes();
        if PARTIAL_SUFFIXES
            .iter()
            .any(|s| bytes.ends_with(s.as_bytes()))
        {
            return false;
        }
        if !Path::new(name).extension().is_some_and(|e| {
            crate::formats::ALL_EXTENSIONS
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        }) {
            return false;
        }
        !self.ignore.is_match(rel) && !self.ignore.is_match(Path::new(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::config;

    fn filter(extra: &str) -> Filter {
        let c = config::parse(
            &format!("[paths]\narchive = \"inbox/archive\"\n{extra}"),
            Path::new("/d"),
        )
        .unwrap();
        Filter::new(&c)
    }

    #[test]
    fn names_that_are_work_and_names_that_are_not() {
        let f = filter("[watch]\nignore = [\"*-draft.bmp\", \"private/**\"]");
        for yes in [
            "/d/inbox/a.bmp",
            "/d/inbox/B.BMP",
            "/d/inbox/sub/dir/c.Bmp",
            "/d/inbox/with space.bmp",
        ] {
            assert!(f.wants_file(Path::new(yes)), "{yes}");
        }
        for no in [
            "/d/inbox/.hidden.bmp",
            "/d/inbox/.nfs0001.bmp",
            "/d/inbox/a.bmp.tmp",
            "/d/inbox/a.bmp.part",
            "/d/inbox/a.bmp.crdownload",
            "/d/inbox/a.bmp~",
            "/d/inbox/a.txt",
            "/d/inbox/bmp",
            "/d/inbox/.git/a.bmp",
            "/d/inbox/archive/a.bmp",
            "/d/inbox/x-draft.bmp",
            "/d/inbox/private/a.bmp",
            "/d/elsewhere/a.bmp",
            "/d/inbox",
        ] {
            assert!(!f.wants_file(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn every_image_formats_names_are_work_in_any_case_and_others_are_not() {
        let f = filter("");
        for yes in [
            "a.bmp", "a.DIB", "a.tif", "a.TIFF", "a.png", "a.Png", "a.pbm", "a.pgm", "a.ppm",
            "a.pnm", "a.gif", "a.jpg", "a.JPEG",
        ] {
            assert!(f.wants_file(&Path::new("/d/inbox").join(yes)), "{yes}");
        }
        for no in [
            "a.txt",
            "a.rle",
            "a.pdf",
            "a.webp",
            "a",
            "png",
            "a.png.part",
        ] {
            assert!(!f.wants_file(&Path::new("/d/inbox").join(no)), "{no}");
        }
    }

    #[test]
    fn not_recursive_means_top_level_only() {
        let f = filter("[watch]\nrecursive = false");
        assert!(f.wants_file(Path::new("/d/inbox/a.bmp")));
        assert!(!f.wants_file(Path::new("/d/inbox/sub/a.bmp")));
        assert!(!f.wants_dir(Path::new("/d/inbox/sub")));
    }
}
