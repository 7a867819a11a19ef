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

/// A reason class (design §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonClass {
    /// No image signature at all (or an empty file).
    NotAnImage,
    /// Damaged, truncated or with a header that lies.
    Invalid,
    /// Valid, but a variant rlewatch does not decode.
    Unsupported,
    /// Over `compress.max_pixels` or the format's size limit.
    TooLarge,
    /// JPEG, or a format left out of `compress.formats`.
    RefusedFormat,
    /// Anything else (not a regular file, a symlink).
    Other,
}

impl ReasonClass {
    /// Every class, in the order metrics list them.
    pub const ALL: [ReasonClass; 6] = [
        ReasonClass::NotAnImage,
        ReasonClass::Invalid,
        ReasonClass::Unsupported,
        ReasonClass::TooLarge,
        ReasonClass::RefusedFormat,
        ReasonClass::Other,
    ];

    /// Its name in the ledger and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ReasonClass::NotAnImage => "not_an_image",
            ReasonClass::Invalid => "invalid",
            ReasonClass::Unsupported => "unsupported",
            ReasonClass::TooLarge => "too_large",
            ReasonClass::RefusedFormat => "refused_format",
            ReasonClass::Other => "other",
        }
    }

    /// The class named `name` (as [`ReasonClass::name`] writes it).
    pub fn from_name(name: &str) -> Option<ReasonClass> {
        ReasonClass::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class of a compression error that quarantines its file.
    pub fn of(e: &CompressError) -> ReasonClass {
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
                DecodeError::Invalid { .. }
                | DecodeError::Truncated { .. }
                | DecodeError::Io(_) => ReasonClass::Invalid,
                DecodeError::TooLargeForFormat { .. }
                | DecodeError::PixelLimit { .. }
                | DecodeError::WholeFrameLimit { .. } => ReasonClass::TooLarge,
            },
            CompressError::Write(_) => ReasonClass::Other,
        }
    }
}

impl std::fmt::Display for ReasonClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_the_documented_ones() {
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
        for c in ReasonClass::ALL {
            assert_eq!(ReasonClass::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn jpeg_is_a_refused_format_and_an_empty_file_not_an_image() {
        let jpeg = CompressError::Decode(crate::compress::jpeg_refused());
        assert_eq!(ReasonClass::of(&jpeg), ReasonClass::RefusedFormat);
        let empty = CompressError::NotAnImage { empty: true };
        assert_eq!(ReasonClass::of(&empty), ReasonClass::NotAnImage);
        let big = CompressError::Decode(DecodeError::PixelLimit {
            width: 10,
            height: 10,
            pixels: 100,
            limit: 1,
        });
        assert_eq!(ReasonClass::of(&big), ReasonClass::TooLarge);
        let png = CompressError::Decode(DecodeError::invalid(Format::Png, "bad CRC"));
        assert_eq!(ReasonClass::of(&png), ReasonClass::Invalid);
    }
}
