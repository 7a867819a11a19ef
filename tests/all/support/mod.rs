//! What the tests share, and nothing they check: no test lives here, and
//! no test file exports anything to another.

// Temp folders, the built binary, `wait_until`, the vectors and the
// corpus, listing folders, skipping what needs root.
pub mod harness;

// `Daemon`: a running `rlewatch run` on its own folders, restarted,
// confined, or beside another as a second host.
pub mod daemon;

// Seccomp filters, another user, a user namespace: the daemon confined
// as where it is deployed.
pub mod confine;

// The one ledger reader.
pub mod ledger;

// Small tmpfs mounts; whether FUSE can be mounted here.
pub mod mount;

// A small loop-mounted ext4, for `chattr +i`/`+a` (which tmpfs lacks).
pub mod loop_ext4;

// `PowerFs`: an in-memory FUSE filesystem that keeps only what was
// fsynced, and cuts the power.
pub mod powerfs;

pub use confine::{Confine, NOBODY};
pub use daemon::{Daemon, FAST, restart_with, wait_file};
pub use harness::*;
