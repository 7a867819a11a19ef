//! One archive checked against its ledger entry (design §4.7): the size,
//! then a strict decode whose row stream must hash to the recorded digest.
//! What `rlewatch audit`, `rlewatch where --verify` and the daemon's
//! retention (which removes an original only once its archive passes)
//! all use. Reads the archive; writes nothing.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use crate::compress::{self, Outcome};
use crate::ledger::Record;

/// Why an archive does not match its ledger entry.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The entry's `archive_xxh3` is not a hexadecimal number.
    #[error("ledger digest {0:?} is not hex")]
    Digest(String),
    /// The archive cannot be opened or its size read.
    #[error("{0}")]
    Io(io::Error),
    #[error("{len} bytes, the ledger records {recorded}")]
    Size { len: u64, recorded: u64 },
    /// Not decodable, or not the bytes the entry describes.
    #[error("{0}")]
    Verify(compress::VerifyError),
}

/// Checks one archive against its entry.
pub fn check(path: &Path, e: &Record) -> Result<(), CheckError> {
    check_against(path, &crate::ledger::Checked::of(e))
}

/// Checks one archive against what `rlewatch audit` keeps of its entry
/// ([`crate::ledger::Checked`]).
pub fn check_against(path: &Path, e: &crate::ledger::Checked) -> Result<(), CheckError> {
    let digest = e.archive_xxh3.clone().map_err(CheckError::Digest)?;
    let expected = Outcome {
        width: e.width,
        height: e.height,
        bytes_in: e.source_size,
        bytes_out: e.archive_size,
        lossless: e.lossless,
        digest,
        format: e.format,
    };
    let file = File::open(path).map_err(CheckError::Io)?;
    let len = file.metadata().map_err(CheckError::Io)?.len();
    if len != e.archive_size {
        return Err(CheckError::Size {
            len,
            recorded: e.archive_size,
        });
    }
    compress::verify_rle(BufReader::with_capacity(1 << 20, file), &expected)
        .map_err(CheckError::Verify)
}
