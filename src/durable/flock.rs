//! The lock of the durable path: an exclusive `flock` on an open file (a
//! claim, a temporary file, the inbox lock), which the kernel drops with
//! the process. The order of a move and the fsyncs that make it durable
//! is kept by the group commit (`group.rs`, design §4.7, "Group commit").

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
