//! The one integration test binary. Everything runs the real built binary
//! in temporary folders: the codec against the bundled vectors and the
//! shared corpus, the command line, the daemon (arrivals, completion,
//! faults, crashes, claims and the ledger, several hosts on sshfs, power
//! loss on a FUSE filesystem) and the deployed setup.

mod harness;

mod hostile;

mod claims;
mod cli;
mod codec;
mod completion;
mod corpus;
mod crash;
mod daemon;
mod deployed;
mod faults;
mod imports;
mod netfs;
mod powerfs;
mod powerloss;
