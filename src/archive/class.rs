//! Why a file was quarantined, as one of a few fixed classes: the `class`
//! of a ledger `quarantined` line and the `reason` label of the
//! `rlewatch_files_failed_total` metric (docs/operations.md). A handful of
//! values on purpose: a metric label must stay low-cardinality, and an
//! operator's alert or dashboard keys on what to do about it (fix the
//! scanner's settings, raise max_pixels, convert a format), not on the
//! exact message, which stays in `NAME.error.txt`.

use crate::bmp::BmpError;
use crate::compress::CompressError;
use crate::formats::{DecodeError, Format};
pub use crate::ledger::ReasonClass;

/// The class of a compression error that quarantines its file (the
/// classes are the ledger's, [`ReasonClass`]): one match over every kind.
pub fn class_of(e: &CompressError) -> ReasonClass {
    match e {
        CompressError::NotAnImage { .. } => ReasonClass::NotAnImage,
        CompressError::NotAccepted(_) => ReasonClass::RefusedFormat,
        CompressError::Bmp(b) => match b {
            BmpError::NotBmp(_) => ReasonClass::NotAnImage,
            BmpError::Unsupported(_) => ReasonClass::Unsupported,
            BmpError::Invalid(_) | BmpError::Truncated { .. } | BmpError::Io(_) => {
                ReasonClass::Invalid
            }
            BmpError::TooLargeForFormat { .. } | BmpError::PixelLimit { .. } => {
                ReasonClass::TooLarge
            }
        },
        CompressError::Decode(d) => match d {
            DecodeError::Unsupported {
                format: Format::Jpeg,
                ..
            } => ReasonClass::RefusedFormat,
            DecodeError::Unsupported { .. } => ReasonClass::Unsupported,
            DecodeError::Invalid { .. } | DecodeError::Truncated { .. } | DecodeError::Io(_) => {
                ReasonClass::Invalid
            }
            DecodeError::TooLargeForFormat { .. }
            | DecodeError::PixelLimit { .. }
            | DecodeError::WholeFrameLimit { .. } => ReasonClass::TooLarge,
        },
        CompressError::Write(_) => ReasonClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_are_the_documented_names() {
        let names: Vec<&str> = ReasonClass::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "not_an_image",
                "invalid",
                "unsupported",
                "too_large",
                "refused_format",
                "other"
            ]
        );
    }

    #[test]
    fn jpeg_is_a_refused_format_and_an_empty_file_not_an_image() {
        let jpeg = CompressError::Decode(crate::compress::jpeg_refused());
        assert_eq!(class_of(&jpeg), ReasonClass::RefusedFormat);
        let empty = CompressError::NotAnImage { empty: true };
        assert_eq!(class_of(&empty), ReasonClass::NotAnImage);
        let big = CompressError::Decode(DecodeError::PixelLimit {
            width: 10,
            height: 10,
            pixels: 100,
            limit: 1,
        });
        assert_eq!(class_of(&big), ReasonClass::TooLarge);
        let png = CompressError::Decode(DecodeError::invalid(Format::Png, "bad CRC"));
        assert_eq!(class_of(&png), ReasonClass::Invalid);
    }
}
