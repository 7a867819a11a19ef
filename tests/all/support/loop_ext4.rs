//! A small ext4 made for one test: a sparse file, `mkfs.ext4`, a loop
//! device (`losetup --find --show`), a mount; unmounted and detached on
//! drop, a panic's unwinding included. For what tmpfs cannot do: the
//! attributes `chattr +i` and `+a` (an entry that even root cannot
//! remove). Image and mount point live under a fresh temporary folder of
//! their own. Root only, said as a skip otherwise (`skip_without_root`).
//!
//! The same shape as the filesystem matrix's `LoopFs` (issue 24, branch
//! fsmatrix, `support/loopfs.rs`, `Kind::Ext4`): once both are merged,
//! this becomes a call to that helper.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::{is_root, skip_without_root};

/// An ext4 mounted at [`LoopExt4::path`] for one test.
pub struct LoopExt4 {
    /// Holds the image and the mount point; removed after the unmount.
    dir: tempfile::TempDir,
    mnt: PathBuf,
    dev: Option<String>,
    mounted: bool,
}

/// Runs `cmd`, returning its stdout, or what went wrong.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// True when `tool` can be run (`--version`, or any exit status).
fn have(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
}

impl LoopExt4 {
    /// A fresh ext4 of `size_mb` MB (sparse), mounted; `None`, said as a
    /// skip, where that cannot be done here (not root, no `mkfs.ext4`,
    /// `losetup` or `chattr`). Anything else that fails fails the test.
    pub fn new(size_mb: u64) -> Option<LoopExt4> {
        if !is_root() {
            skip_without_root("making and mounting a loop ext4 needs root");
            return None;
        }
        if let Some(tool) = ["mkfs.ext4", "losetup", "chattr"]
            .into_iter()
            .find(|t| !have(t))
        {
            skip_without_root(&format!("{tool} is not installed"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("rlewatch-ext4-")
            .tempdir()
            .expect("temp dir for a loop ext4");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut fs = LoopExt4 {
            dir,
            mnt,
            dev: None,
            mounted: false,
        };
        let image = fs.dir.path().join("image");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mb << 20))
            .unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))
            .unwrap_or_else(|e| panic!("{e}"));
        // Two tests may ask for a free device at the same moment; the one
        // that loses the race sees an error and asks again.
        let mut attempts = 0;
        let dev = loop {
            match run(Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image))
            {
                Ok(dev) => break dev.trim().to_string(),
                Err(e) if attempts < 10 => {
                    attempts += 1;
                    eprintln!("losetup, attempt {attempts}: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{e}"),
            }
        };
        fs.dev = Some(dev.clone());
        run(Command::new("mount").arg(&dev).arg(&fs.mnt)).unwrap_or_else(|e| panic!("{e}"));
        fs.mounted = true;
        Some(fs)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mnt
    }
}

/// `chattr FLAG PATH` (`+i`, `-i`, `+a`, `-a`); fails the test if refused.
pub fn chattr(flag: &str, path: &Path) {
    run(Command::new("chattr").arg(flag).arg(path)).unwrap_or_else(|e| panic!("{e}"));
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        // A process still using it (a daemon being killed) makes the
        // unmount busy for a moment: try for a while, then detach it
        // lazily so that the loop device goes once the last user does.
        let deadline = Instant::now() + Duration::from_secs(10);
        let unmounted = !self.mounted
            || loop {
                if Command::new("umount")
                    .arg(&self.mnt)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
        if !unmounted {
            eprintln!("{}: busy, unmounted lazily", self.mnt.display());
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        if let Some(dev) = &self.dev {
            // After a lazy unmount the kernel detaches it when it is free.
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
    }
}
