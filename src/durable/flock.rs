//! The two locks of the durable path: an exclusive `flock` on an open
//! file (a claim, a temporary file, the inbox lock), which the kernel
//! drops with the process, and the process-wide move lock that keeps a
//! move and the fsyncs that make it durable together (design §4.7,
//! "Power loss").

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Takes an exclusive `flock` on `file` without waiting: false when
/// another process (another daemon) holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Held across each move between folders and its folder fsyncs (and a
/// delete and its fsync), so that no other worker of this daemon fsyncs a
/// move's source folder between the rename and the fsync of its
/// destination: that would make the file durably gone from the one before
/// it is durably in the other (design §4.7, "Power loss").
pub fn moving() -> std::sync::MutexGuard<'static, ()> {
    static MOVES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MOVES.lock().unwrap_or_else(|p| p.into_inner())
}
