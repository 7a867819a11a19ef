//! Why an attempt could not finish (design §4.4): the file, the step, the
//! path the step acted on, the system's error, and whether waiting can
//! help. Modelled on ripgrep's `ignore::Error::WithPath`: the path travels
//! with the error instead of being formatted into a string at each site.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::display::shown;

/// The step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Opening the inbox subfolder the file is in.
    OpenFolder,
    Open,
    Stat,
    Lock,
    /// Reading the source (decoding it, or digesting it for the ledger).
    Read,
    /// Making or opening this host's claim folder.
    ClaimFolder,
    /// The move (link, then unlink; or rename) into the claim folder.
    Claim,
    /// Making the archive folder or a temporary file in it.
    ArchiveFolder,
    /// Writing the temporary archive.
    Write,
    /// Re-reading the temporary archive (`verify = true`).
    Verify,
    /// Renaming the archive under its final name.
    Publish,
    /// Making a rename or removal durable.
    Fsync,
    /// Appending the ledger entry.
    Record,
    MoveToDone,
    /// `keep`: the claim going back into the inbox.
    PutBack,
    Delete,
    /// The quarantine's `NAME.error.txt`.
    WriteNote,
    MoveToFailed,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::OpenFolder => "opening its folder",
            Op::Open => "open",
            Op::Stat => "stat",
            Op::Lock => "lock",
            Op::Read => "read",
            Op::ClaimFolder => "claim folder",
            Op::Claim => "claiming it (a move into",
            Op::ArchiveFolder => "archive folder",
            Op::Write => "writing the archive",
            Op::Verify => "verification failed for",
            Op::Publish => "publishing in",
            Op::Fsync => "fsync",
            Op::Record => "recording it in the ledger",
            Op::MoveToDone | Op::MoveToFailed => "moving to",
            Op::PutBack => "putting the original back",
            Op::Delete => "delete",
            Op::WriteNote => "writing the error note",
        })
    }
}

/// What went wrong underneath.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The temporary archive read back is not what was encoded
    /// (`verify = true`). Its Display only: no source of its own, so an
    /// error chain does not repeat it.
    #[error("{0}")]
    Verify(crate::compress::VerifyError),
    /// The source could not be read for a reason that is neither its
    /// content (that is quarantined) nor a plain I/O error.
    #[error("{0}")]
    Compress(crate::compress::CompressError),
}

/// Whether waiting can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// May pass by itself: space freed, a network share back, a disk
    /// error that does not repeat.
    Transient,
    /// Will not pass until someone changes something: a permission, a
    /// read-only mount, a name or path the filesystem rejects, a file
    /// where a folder should be. Still
    /// retried (with backoff), so that fixing it is enough.
    Permanent,
}

/// An attempt that failed for a reason that is not the file's content; the
/// original is untouched (or, after publishing, not yet filed away).
#[derive(Debug, thiserror::Error)]
pub struct Failure {
    /// The file being archived, where it was dropped.
    pub file: PathBuf,
    pub op: Op,
    /// The path the step acted on, when it is not the file.
    pub at: Option<PathBuf>,
    #[source]
    pub cause: Cause,
    /// What the operator can do about it, when known (a folder's mode).
    pub hint: Option<String>,
}

impl Failure {
    /// `op` on the file itself failed with `e`.
    pub fn io(file: &std::path::Path, op: Op, e: io::Error) -> Failure {
        Failure {
            file: file.to_path_buf(),
            op,
            at: None,
            cause: Cause::Io(e),
            hint: None,
        }
    }

    /// `op` on `at`, for the file `file`, failed with `cause`.
    pub fn at(
        file: &std::path::Path,
        op: Op,
        at: &std::path::Path,
        cause: impl Into<Cause>,
    ) -> Failure {
        Failure {
            file: file.to_path_buf(),
            op,
            at: (at != file).then(|| at.to_path_buf()),
            cause: cause.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: String) -> Failure {
        let hint = hint.trim();
        self.hint = (!hint.is_empty()).then(|| hint.to_string());
        self
    }

    /// The system's error, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.cause {
            Cause::Io(e) => Some(e),
            Cause::Verify(_) | Cause::Compress(_) => None,
        }
    }

    pub fn kind(&self) -> Kind {
        use io::ErrorKind as K;
        // By kind, not errno: some errors come wrapped (tempfile adds the
        // path), which keeps the kind but not the raw errno.
        let permanent = self.io_error().is_some_and(|e| {
            e.raw_os_error() == Some(libc::ELOOP)
                || matches!(
                    e.kind(),
                    K::PermissionDenied
                        | K::ReadOnlyFilesystem
                        | K::InvalidFilename
                        | K::NotADirectory
                        | K::IsADirectory
                        | K::CrossesDevices
                        | K::TooManyLinks
                        | K::InvalidInput
                        | K::AlreadyExists
                )
        });
        if permanent {
            Kind::Permanent
        } else {
            Kind::Transient
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", shown(&self.file), self.op)?;
        if let Some(at) = &self.at {
            write!(f, " {}", shown(at))?;
        }
        if self.op == Op::Claim {
            f.write_str(")")?;
        }
        write!(f, ": {}", self.cause)?;
        if let Some(hint) = &self.hint {
            write!(f, " {hint}")?;
        }
        Ok(())
    }
}

/// The reason class of bad input, for the ledger's `quarantined` line and
/// the `rlewatch_files_failed_total{reason}` metric (design §4.7).
pub fn reason_class(e: &crate::compress::CompressError) -> crate::ledger::ReasonClass {
    use crate::bmp::BmpError as B;
    use crate::compress::CompressError as C;
    use crate::formats::{DecodeError as D, Format};
    use crate::ledger::ReasonClass as R;
    match e {
        C::NotAnImage { .. } | C::Bmp(B::NotBmp(_)) => R::NotAnImage,
        C::NotAccepted(_)
        | C::Decode(D::Unsupported {
            format: Format::Jpeg,
            ..
        }) => R::RefusedFormat,
        C::Bmp(B::Unsupported(_)) | C::Decode(D::Unsupported { .. }) => R::Unsupported,
        C::Bmp(B::TooLargeForFormat { .. } | B::PixelLimit { .. })
        | C::Decode(
            D::TooLargeForFormat { .. } | D::PixelLimit { .. } | D::WholeFrameLimit { .. },
        ) => R::TooLarge,
        C::Bmp(B::Invalid(_) | B::Truncated { .. } | B::Io(_))
        | C::Decode(D::Invalid { .. } | D::Truncated { .. } | D::Io(_)) => R::Invalid,
        C::Write(_) => R::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn permissions_and_rejected_names_are_permanent_space_and_disk_errors_transient() {
        let f = |errno| {
            Failure::io(
                Path::new("/in/a.bmp"),
                Op::Write,
                io::Error::from_raw_os_error(errno),
            )
        };
        for errno in [
            libc::EACCES,
            libc::EPERM,
            libc::EROFS,
            libc::ENAMETOOLONG,
            libc::ENOTDIR,
            libc::ELOOP,
            libc::EEXIST,
            libc::EXDEV,
        ] {
            assert_eq!(f(errno).kind(), Kind::Permanent, "errno {errno}");
        }
        for errno in [
            libc::ENOSPC,
            libc::EDQUOT,
            libc::EIO,
            libc::ENOENT,
            libc::ESTALE,
            libc::ETIMEDOUT,
        ] {
            assert_eq!(f(errno).kind(), Kind::Transient, "errno {errno}");
        }
        // Wrapped, as tempfile wraps it with the path: the kind survives.
        let wrapped = io::Error::new(
            io::Error::from_raw_os_error(libc::EROFS).kind(),
            "read-only at path /arc/.t.tmp",
        );
        assert_eq!(
            Failure::io(Path::new("/in/a.bmp"), Op::ArchiveFolder, wrapped).kind(),
            Kind::Permanent
        );
        let verify = Failure::at(
            Path::new("/in/a.bmp"),
            Op::Verify,
            Path::new("/arc/.t.tmp"),
            Cause::Verify(crate::compress::VerifyError::Content),
        );
        assert_eq!(verify.kind(), Kind::Transient);
    }

    #[test]
    fn the_message_names_the_file_the_step_the_other_path_and_the_cause() {
        let e = Failure::at(
            Path::new("/in/a.bmp"),
            Op::MoveToDone,
            Path::new("/done"),
            io::Error::from_raw_os_error(libc::EACCES),
        )
        .with_hint("(check its mode)".into());
        assert_eq!(
            e.to_string(),
            "/in/a.bmp: moving to /done: Permission denied (os error 13) (check its mode)"
        );
        let e = Failure::at(
            Path::new("/in/a.bmp"),
            Op::Read,
            Path::new("/in/a.bmp"),
            io::Error::from_raw_os_error(libc::EIO),
        );
        assert_eq!(e.at, None);
        assert_eq!(
            e.to_string(),
            "/in/a.bmp: read: Input/output error (os error 5)"
        );
    }
}
