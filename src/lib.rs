//! rlewatch: unattended archival of black-and-white images (BMP, TIFF, PNG,
//! PNM, GIF) as `.rle` files. The design — format, pixel rules, the life of a file, threads and
//! channels, which code enforces which guarantee — is `docs/design.md`;
//! comments cite its sections as "design §N".
//!
//! Crate map (arrows point from user to used; the codec knows nothing of
//! files' names or of the daemon):
//!
//! - [`rle`]: the `.rle` format: encode packed bit rows, strict decode.
//! - [`bmp`]: BMP headers, streaming row reader, 1-bit writer.
//! - [`formats`]: TIFF, PNG, PNM and GIF decoded row by row into the
//!   layouts of an uncompressed BMP.
//! - [`bilevel`]: pixels → bits, bit-exact with Pillow's `convert('1')`.
//! - [`compress`]: one image → `.rle` (streaming; BMP through [`bmp`], the
//!   others through [`formats`]), and verification.
//! - [`durable`]: temporary files, fsync, no-clobber publication and
//!   renames, the `flock`, the group commit of folder fsyncs; imports
//!   nothing of the crate.
//! - [`layout`]: every path under `INBOX/.rlewatch/` and
//!   `ARCHIVE/.rlewatch/` (a leaf).
//! - [`claim`]: the daemon's private claim folders, where an inbox file
//!   is taken (linked, then its inbox name removed; or renamed) under a
//!   lock.
//! - [`ledger`]: the archive's append-only record of what was archived.
//! - [`archive`]: archive one inbox file: claim, temp, fsync, verify,
//!   publish, record, then the original (move/keep/delete) or quarantine.
//! - [`fixity`]: one archive checked against its ledger entry (used by
//!   [`audit`] and the daemon's retention).
//! - [`audit`]: `rlewatch audit`, the archive checked against the ledger.
//! - [`locate`]: `rlewatch where`, a file's history from the ledger (through
//!   its index), the claims, the inbox and the failed folder.
//! - [`daemon`]: `rlewatch run`: config, watcher, coordinator, pool,
//!   signals, systemd, lock, logging.
//! - [`heartbeat`]: the heartbeat file's format (a daemon's published
//!   state), written by [`daemon`], read by [`status`].
//! - [`status`]: `rlewatch status`: every host, the inbox, failed/ and
//!   the ledger at a glance, `--json`, `--check` (Monitoring Plugins).
//! - [`display`]: how paths appear in log lines (a leaf).
//! - [`magic`]: what a file is by its first bytes (a leaf).
//! - [`cli`]: the one-shot commands (`compress`, `decompress`, `verify`,
//!   `reload`, `generate-assets`; `audit` is [`audit`]'s).
//! - [`retry`]: `rlewatch retry`, failed files back into the inbox, and
//!   `--now` for the daemons' files in backoff.
//! - [`faults`]: test-only crash points (feature `test-hooks`).

pub mod archive;
pub mod audit;
pub mod bilevel;
pub mod bmp;
pub mod claim;
pub mod cli;
pub mod compress;
pub mod daemon;
pub mod display;
pub mod durable;
mod extsort;
pub mod faults;
pub mod fixity;
pub mod formats;
pub mod heartbeat;
pub mod layout;
pub mod ledger;
pub mod locate;
pub mod magic;
pub mod retry;
pub mod rle;
pub mod status;
