//! The body of the per-format targets (`png`, `pnm`, `gif`): any bytes fed
//! as one format, whatever their first bytes say. Asks whether the file is
//! whole, then compresses in both modes with a pixel limit that keeps each
//! run small. Must never panic, hang or allocate past the limit; a success
//! must decode as a valid `.rle` of the header's size.

use rlewatch::bilevel::Conversion;
use rlewatch::compress;
use rlewatch::formats::{self, Format};

pub fn run(data: &[u8], format: Format) {
    let _ = formats::whole(&data, format);
    for conversion in [Conversion::Dither, Conversion::Threshold] {
        let Ok(mut decoder) = formats::open(&data, format, 1 << 20) else {
            return;
        };
        let mut out = Vec::new();
        if let Ok(outcome) =
            compress::compress_decoded(decoder.as_mut(), data.len() as u64, &mut out, conversion)
        {
            let (header, _) = rlewatch::rle::decode_image(&out).expect("own output decodes");
            assert_eq!(
                (u32::from(header.width), u32::from(header.height)),
                (outcome.width, outcome.height)
            );
            compress::verify_rle(out.as_slice(), &outcome).expect("own output verifies");
        }
    }
}
