//! Which paths in the inbox are work (design §4.2): files named as an
//! image format names them (`.bmp .tif .png .pgm .gif .jpg` …, any case;
//! `formats::ALL_EXTENSIONS`; which formats are archived is decided by
//! content, `compress.formats`) that are not hidden, not partial downloads or editor leftovers, not in
//! the daemon's own folders and not matched by a configured ignore glob.
//! A name that is not work and not hidden, partial or the daemon's own
//! ([`Filter::ignored`]) is one an operator may expect taken: the daemon
//! logs it once and `rlewatch status` lists it (issue "nothing sits
//! unseen"). Pure path logic: never touches the filesystem.

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
    /// The patterns of `ignore`, in order, to name the one that matched.
    patterns: Vec<String>,
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
            patterns: config.ignore_patterns.clone(),
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

impl Filter {
    /// Why a file at `path` that is not work is left alone, for a name
    /// someone may have dropped expecting it taken: a name no image
    /// format uses, one a `watch.ignore` pattern matches, a file in a
    /// subfolder with `recursive = false`. `None` for work and for what
    /// is never work by convention (hidden names, partial downloads,
    /// the daemon's own folders), which are not told.
    pub fn ignored(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.inbox).ok()?;
        let name = rel.file_name()?;
        let parent = path.parent()?;
        if Self::hidden(name)
            || rel.components().any(|c| Self::hidden(c.as_os_str()))
            || self.own.iter().any(|o| path.starts_with(o))
            || self.wants_file(path)
        {
            return None;
        }
        let bytes = name.as_encoded_bytes();
        if PARTIAL_SUFFIXES
            .iter()
            .any(|s| bytes.ends_with(s.as_bytes()))
        {
            return None;
        }
        if !self.wants_dir(parent) {
            let parent_rel = parent.strip_prefix(&self.inbox).ok()?;
            if !self.recursive {
                return Some(
                    "in a subfolder, and watch.recursive = false takes only the inbox's own files"
                        .into(),
                );
            }
            return parent_rel
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .find_map(|a| self.pattern_of(a))
                .map(|p| format!("its folder matches watch.ignore pattern {p:?}"));
        }
        if let Some(p) = self
            .pattern_of(rel)
            .or_else(|| self.pattern_of(Path::new(name)))
        {
            return Some(format!("matches watch.ignore pattern {p:?}"));
        }
        let mut names: Vec<String> = crate::formats::ALL_EXTENSIONS
            .iter()
            .map(|x| format!("*.{x}"))
            .collect();
        names.dedup();
        Some(format!(
            "not an image name rlewatch takes ({}, any case)",
            names.join(" ")
        ))
    }

    /// The first `watch.ignore` pattern that matches `p`.
    fn pattern_of(&self, p: &Path) -> Option<&str> {
        let i = *self.ignore.matches(p).first()?;
        self.patterns.get(i).map(String::as_str)
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
    fn names_left_alone_say_why_and_conventions_stay_silent() {
        let f = filter("[watch]\nignore = [\"*-draft.bmp\", \"private/**\"]");
        let why = |p: &str| f.ignored(Path::new(p));
        assert!(
            why("/d/inbox/notes.pdf")
                .unwrap()
                .starts_with("not an image name")
        );
        assert!(why("/d/inbox/notes.pdf").unwrap().contains("*.png"));
        assert_eq!(
            why("/d/inbox/x-draft.bmp").as_deref(),
            Some("matches watch.ignore pattern \"*-draft.bmp\"")
        );
        assert_eq!(
            why("/d/inbox/private/a.bmp").as_deref(),
            Some("matches watch.ignore pattern \"private/**\"")
        );
        for silent in [
            "/d/inbox/a.bmp",
            "/d/inbox/.hidden.pdf",
            "/d/inbox/a.bmp.part",
            "/d/inbox/a.bmp.tmp",
            "/d/inbox/.rlewatch/hosts/b",
            "/d/inbox/archive/a.pdf",
            "/d/elsewhere/a.pdf",
        ] {
            assert_eq!(why(silent), None, "{silent}");
        }
        let flat = filter("[watch]\nrecursive = false");
        assert!(
            flat.ignored(Path::new("/d/inbox/sub/a.bmp"))
                .unwrap()
                .contains("recursive = false")
        );
    }

    #[test]
    fn not_recursive_means_top_level_only() {
        let f = filter("[watch]\nrecursive = false");
        assert!(f.wants_file(Path::new("/d/inbox/a.bmp")));
        assert!(!f.wants_file(Path::new("/d/inbox/sub/a.bmp")));
        assert!(!f.wants_dir(Path::new("/d/inbox/sub")));
    }
}
