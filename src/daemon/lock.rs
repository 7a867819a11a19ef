//! One daemon per inbox and host (design §4.5): an exclusive `flock` on
//! `INBOX/.rlewatch/HOST.lock`, held for the daemon's life. A convenience
//! only — claims (design §4.7) are what keep two daemons from taking one
//! file — but it lives in the daemon's own folder (mode 0700), so inbox
//! writers cannot delete it. The lock file holds the owner's pid for the
//! error message; the lock, not the file, is what counts, so a stale file
//! after a crash is harmless.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::layout::InboxLayout;

#[derive(Debug)]
pub struct InboxLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another rlewatch is already running on {inbox} (lock {lock} held{pid})")]
    Held {
        inbox: String,
        lock: String,
        pid: String,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Makes the daemon's own folders in the inbox (the claim folder of
/// `host`, checked to be the daemon's alone) and takes the lock, or says
/// who holds it.
pub fn lock(inbox: &Path, host: &str) -> Result<InboxLock, LockError> {
    crate::claim::prepare(inbox, host).map_err(|message| LockError::Io {
        path: crate::display::shown(inbox),
        source: io::Error::other(message),
    })?;
    let path = InboxLayout::new(inbox).lock(host);
    let shown = crate::display::shown(&path);
    let io_err = |source| LockError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    if !crate::durable::try_lock(&file).map_err(io_err)? {
        {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = text.trim();
            return Err(LockError::Held {
                inbox: crate::display::shown(inbox),
                lock: shown,
                pid: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" by pid {pid}")
                },
            });
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err)?;
    Ok(InboxLock { _file: file })
}
