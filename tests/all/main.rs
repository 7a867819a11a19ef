//! The one integration test binary. Everything runs the real built binary
//! in temporary folders. One module per subject, each saying what it
//! holds; what they share is in `support`, never in a test file.

// Shared fixtures: temp folders and the binary, `Daemon` (also beside
// another as a second host), confinement, the ledger reader, mounts, and
// the FUSE power-loss filesystem. No tests.
mod support;

// The codec against the bundled vectors, with property tests.
mod codec;
// The codec against the shared corpus (ignored without it).
mod corpus;
// The one-shot codec commands: compress, decompress, verify, audit;
// outputs, modes, pipes, interrupts, refusals, error lines, exit codes.
mod cli;
// Files arriving every way, bursts, slow writers, bad inputs, taken names.
mod arrival;
// When a file is complete: writers that pause, preallocate, write the
// header last or keep the file open.
mod completion;
// What becomes of originals: moved, kept, deleted only when lossless.
mod originals;
// `rlewatch where`: a file's history from the ledger (and its index), the
// claims, the inbox and the failed folder; the ledger's fate lines.
mod where_;
// check-config (and --defaults), SIGHUP reloads applied or refused
// whole, and `rlewatch reload`'s checks of its file and its target.
mod reload;
// `rlewatch retry`: failed files back into the inbox with their history,
// --now, orphan error notes; retention of done/ and failed/.
mod retry;
// One daemon per inbox, clean-up at start, signals, systemd, logs, idle.
mod lifecycle;
// Journal fields: MESSAGE_ID, RLEWATCH_* and PRIORITY on each event,
// sent to a journal socket of the test's own; the fallback to stderr.
mod journal;
// Hostile names, deep folders and headers that lie.
mod hostile;
// Full, read-only and vanishing folders, swapped symlinks, retries.
mod faults;
// The shipped service's conditions: seccomp, a non-root user, umask.
mod deployed;
// SIGKILL at random moments while files arrive, then every file once.
mod crash;
// `rlewatch status`: every exit code of --check, --json, --ack, ignored
// names.
mod status;
// The Prometheus textfile after a run; promtool and a real node_exporter
// (ignored without them).
mod metrics;
// Claims, the ledger and audit: several daemons on one inbox, a SIGKILL
// at every step of a file's life, a dead host's claims taken over.
mod claims;
// Three hosts on sshfs, one killed: every file archived once.
mod netfs;
// What the daemon assumes of a filesystem (leases, holes, no-replace
// renames), checked on ext4, XFS, btrfs and tmpfs.
mod fsmatrix;
// Real disks full (loop-mounted ext4, XFS, btrfs) and folders remounted
// read-only under the running daemon.
mod diskfull;
// Power cuts on the FUSE filesystem that keeps only what was fsynced.
mod powerloss;
// The source's top-level modules import each other without a cycle
// (prints the import graph with --nocapture).
mod imports;
