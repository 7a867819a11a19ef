//! Filesystems mounted for a test: a small tmpfs (full, read-only,
//! another device, a share that goes away), and whether a FUSE one (the
//! power-loss filesystem) can be mounted here at all.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::{is_root, skip_without_root};

/// A tmpfs mounted for the test, unmounted on drop.
pub struct Mount(PathBuf);

impl Mount {
    /// A tmpfs of `size` mounted at `at`; `None`, said as a skip, where
    /// that cannot be done (not root, or mounting refused).
    pub fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        if !is_root() {
            skip_without_root("mounting a small filesystem needs root");
            return None;
        }
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status();
        if !ok.is_ok_and(|s| s.success()) {
            skip_without_root("cannot mount a tmpfs here");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }

    /// Mounts it again with `options` (`ro`, `rw`, `size=…`).
    pub fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {options} failed");
    }

    /// Unmounts it now (as a share going away would be).
    pub fn unmount(self) {
        let ok = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "umount {} failed", self.0.display());
        std::mem::forget(self);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// True when a FUSE filesystem can be mounted here (root, /dev/fuse);
/// otherwise prints why the test `what` is skipped, or fails with
/// `RLEWATCH_REQUIRE_ROOT=1`.
pub fn fuse_prerequisites(what: &str) -> bool {
    let missing = if !is_root() {
        Some("needs root to mount a FUSE filesystem")
    } else if !Path::new("/dev/fuse").exists() {
        Some("needs /dev/fuse")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("RLEWATCH_REQUIRE_ROOT").is_some_and(|v| v == "1") => {
            panic!("{what}: {why} (RLEWATCH_REQUIRE_ROOT=1)")
        }
        Some(why) => {
            println!("skipped: {what}: {why}");
            false
        }
    }
}
