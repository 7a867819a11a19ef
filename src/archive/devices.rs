//! Where each configured folder is, so that a share that went away is not
//! written under on the local disk (design §4.8).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::display::shown;

/// Where each configured folder was when the configuration was loaded. A
/// folder that was a mount point must still be one, and a missing folder
/// is made again only while its parent is on the filesystem it was on: on
/// a network share that went away, rlewatch would otherwise write on the
/// empty mount point's local disk, where what it filed would be hidden once
/// the share is mounted again (design §4.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Devices {
    pub inbox: Root,
    pub archive: Root,
    pub done: Root,
    pub failed: Root,
}

/// One configured folder, as it was when configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Root {
    /// On another device than its parent.
    pub mount: bool,
    /// Its parent folder's device.
    pub parent: Option<u64>,
}

impl Root {
    pub fn of(dir: &Path) -> Root {
        Root {
            mount: mount_point(dir),
            parent: dir.parent().and_then(device),
        }
    }
}

impl Devices {
    /// Where the folders are now.
    pub fn of(inbox: &Path, archive: &Path, done: &Path, failed: &Path) -> Devices {
        Devices {
            inbox: Root::of(inbox),
            archive: Root::of(archive),
            done: Root::of(done),
            failed: Root::of(failed),
        }
    }
}

fn device(p: &Path) -> Option<u64> {
    fs::metadata(p).ok().map(|m| m.dev())
}

/// True when `dir` is on another device than its parent folder.
pub fn mount_point(dir: &Path) -> bool {
    match (device(dir), dir.parent().and_then(device)) {
        (Some(d), Some(parent)) => d != parent,
        _ => false,
    }
}

/// Checks that the configured folder `root` may be used as configured
/// (`was`): still a mount point if it was one; if missing, made again
/// only where it was.
pub fn still_there(root: &Path, was: Root) -> io::Result<()> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if root.parent().and_then(device) == was.parent {
                return Ok(());
            }
            Err(io::Error::new(
                e.kind(),
                format!(
                    "{} is missing, and the folder it was in is no longer on the filesystem \
                     it was on (a network share unmounted?); it is not made again there",
                    shown(root)
                ),
            ))
        }
        Err(e) => Err(e),
        Ok(_) if was.mount && !mount_point(root) => Err(io::Error::other(format!(
            "{} is no longer the mount point it was when rlewatch started (a network share \
             unmounted?); it is not used until it is mounted again",
            shown(root)
        ))),
        Ok(_) => Ok(()),
    }
}
