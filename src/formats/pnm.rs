//! PNM (design §2.1): not decoded yet.

use super::{DecodeError, Decoder, Format, Whole};
use crate::bmp::Source;

/// A decoder for the PNM file `src`.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    let _ = (src, max_pixels);
    Err(DecodeError::unsupported(Format::Pnm, "not decoded yet"))
}

/// Whether the PNM file `src` is complete.
pub fn whole(src: &dyn Source) -> Whole {
    let _ = src;
    Whole::Complete
}
