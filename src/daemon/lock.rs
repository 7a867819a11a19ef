//! One daemon per inbox (design §4.5): an exclusive `flock` on
//! `INBOX/.rlewatch.lock`, held for the daemon's life. The lock file holds
//! the owner's pid for the error message; the lock, not the file, is what
//! counts, so a stale file after a crash is harmless.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Name of the lock file inside the inbox (hidden, so never a candidate).
pub const LOCK_NAME: &str = ".rlewatch.lock";

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

/// Takes the lock for `inbox`, or says who holds it.
pub fn lock(inbox: &Path) -> Result<InboxLock, LockError> {
    let path = inbox.join(LOCK_NAME);
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
        .mode(0o644)
        .open(&path)
        .map_err(io_err)?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
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
        return Err(io_err(err));
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err)?;
    Ok(InboxLock { _file: file })
}
