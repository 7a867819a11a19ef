//! The one integration test binary: codec against the shared corpus, the
//! command line through the real binary.

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
mod netfs;
mod powerfs;
mod powerloss;
