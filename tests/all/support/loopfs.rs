//! Real filesystems made for a test: a sparse file, `mkfs`, a loop device
//! (`losetup --find --show`), a mount; unmounted and detached on drop,
//! a panic's unwinding included. Everything lives under a fresh temporary
//! folder of its own (image and mount point), so that what a killed run
//! leaves (a mount, an attached loop device) never has the name the next
//! run uses. Root only, said as a skip otherwise (`skip_without_root`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::{is_root, skip_without_root};

/// The filesystems of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ext4, default options (`data=ordered`).
    Ext4,
    /// ext4 mounted `data=journal`.
    Ext4Journal,
    /// XFS (the RHEL default).
    Xfs,
    /// btrfs, default options.
    Btrfs,
    /// btrfs mounted `compress=zstd`.
    BtrfsZstd,
    /// tmpfs (no loop device; for comparison).
    Tmpfs,
}

/// Every filesystem of the matrix, in the order they are run.
pub const ALL: [Kind; 6] = [
    Kind::Ext4,
    Kind::Ext4Journal,
    Kind::Xfs,
    Kind::Btrfs,
    Kind::BtrfsZstd,
    Kind::Tmpfs,
];

impl Kind {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ext4 => "ext4",
            Kind::Ext4Journal => "ext4 data=journal",
            Kind::Xfs => "xfs",
            Kind::Btrfs => "btrfs",
            Kind::BtrfsZstd => "btrfs compress=zstd",
            Kind::Tmpfs => "tmpfs",
        }
    }

    /// The `mkfs` command (`None` for tmpfs) and the mount options.
    fn recipe(self) -> (Option<&'static [&'static str]>, Option<&'static str>) {
        const EXT4: &[&str] = &["mkfs.ext4", "-q", "-F"];
        const XFS: &[&str] = &["mkfs.xfs", "-q", "-f"];
        const BTRFS: &[&str] = &["mkfs.btrfs", "-q", "-f"];
        match self {
            Kind::Ext4 => (Some(EXT4), None),
            Kind::Ext4Journal => (Some(EXT4), Some("data=journal")),
            Kind::Xfs => (Some(XFS), None),
            Kind::Btrfs => (Some(BTRFS), None),
            Kind::BtrfsZstd => (Some(BTRFS), Some("compress=zstd")),
            Kind::Tmpfs => (None, None),
        }
    }
}

/// A filesystem of `Kind` mounted at [`LoopFs::path`] for one test.
pub struct LoopFs {
    /// Holds the image and the mount point; removed after the unmount.
    dir: tempfile::TempDir,
    mnt: PathBuf,
    dev: Option<String>,
    mounted: bool,
}

/// The smallest XFS `mkfs.xfs` makes is larger than 300 MB.
pub const XFS_MIN_MB: u64 = 320;

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

impl LoopFs {
    /// A fresh `kind` of `size_mb` MB (sparse; XFS at least [`XFS_MIN_MB`]), mounted; `None`, said as
    /// a skip, where that cannot be done here (not root, no `mkfs`).
    /// Anything else that fails (the kernel refusing the mount) fails the
    /// test.
    pub fn new(kind: Kind, size_mb: u64) -> Option<LoopFs> {
        if !is_root() {
            skip_without_root("making and mounting a loop filesystem needs root");
            return None;
        }
        let (mkfs, options) = kind.recipe();
        if let Some(mkfs) = mkfs
            && Command::new("which")
                .arg(mkfs[0])
                .output()
                .map_or(true, |o| !o.status.success())
        {
            skip_without_root(&format!("{} is not installed", mkfs[0]));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("rlewatch-loopfs-")
            .tempdir()
            .expect("temp dir for a loop filesystem");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut fs = LoopFs {
            dir,
            mnt,
            dev: None,
            mounted: false,
        };
        let size_mb = if kind == Kind::Xfs {
            size_mb.max(XFS_MIN_MB)
        } else {
            size_mb
        };
        let Some(mkfs) = mkfs else {
            run(Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m,mode=0755")])
                .arg("tmpfs")
                .arg(&fs.mnt))
            .unwrap_or_else(|e| panic!("{e}"));
            fs.mounted = true;
            return Some(fs);
        };
        let image = fs.dir.path().join("image");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mb << 20))
            .unwrap();
        run(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&image)).unwrap_or_else(|e| panic!("{e}"));
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
        let mut mount = Command::new("mount");
        if let Some(options) = options {
            mount.args(["-o", options]);
        }
        run(mount.arg(&dev).arg(&fs.mnt)).unwrap_or_else(|e| panic!("{e}"));
        fs.mounted = true;
        Some(fs)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// Mounts it again with `options` (`ro`, `rw`).
    pub fn remount(&self, options: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.mnt))
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Free bytes for an unprivileged writer (`statvfs`'s `f_bavail`).
    pub fn free_bytes(&self) -> u64 {
        let c = std::ffi::CString::new(self.mnt.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statvfs with a NUL-terminated path and a zeroed buffer.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail * s.f_frsize
    }
}

impl Drop for LoopFs {
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

/// Runs `scenario` with a folder on each filesystem of [`ALL`] in turn
/// (`size_mb` each), then fails naming every filesystem it failed on;
/// prints how long each took. Skipped, as a whole, where loop filesystems
/// cannot be made. `RLEWATCH_FSMATRIX=ext4,xfs,btrfs+compress=zstd` (names
/// as [`Kind::name`] says them, a space written `+`) runs only those.
pub fn on_each(size_mb: u64, scenario: impl Fn(&Path)) {
    on_each_of(&ALL, size_mb, scenario);
}

/// [`on_each`] on the filesystems `kinds` only.
pub fn on_each_of(kinds: &[Kind], size_mb: u64, scenario: impl Fn(&Path)) {
    let mut failed = Vec::new();
    let only = std::env::var("RLEWATCH_FSMATRIX").ok();
    for &kind in kinds {
        if let Some(only) = &only
            && !only
                .split(',')
                .any(|k| k.trim() == kind.name().replace(' ', "+"))
        {
            continue;
        }
        let Some(fs) = LoopFs::new(kind, size_mb) else {
            return;
        };
        let started = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(fs.path())));
        println!(
            "{}: {:?} {:.1?}",
            kind.name(),
            outcome.is_ok(),
            started.elapsed()
        );
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {}", kind.name(), why));
        }
    }
    assert!(failed.is_empty(), "failed on:\n{}", failed.join("\n"));
}

/// Sets or clears a file attribute (`chattr +a PATH`, `-a`, `+i`): what
/// tmpfs lacks and ext4 has, for an entry that even root cannot remove.
pub fn chattr(flag: &str, path: &Path) {
    let out = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .expect("run chattr (package e2fsprogs)");
    assert!(
        out.status.success(),
        "chattr {flag} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
