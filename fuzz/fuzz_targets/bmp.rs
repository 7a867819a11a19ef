//! Any bytes as a BMP: compress in both modes, with a pixel limit that keeps
//! each run small. Must never panic, hang or allocate past the limit; a
//! success must decode as a valid `.rle` of the header's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlewatch::bilevel::Conversion;
use rlewatch::compress::{self, Options};

fuzz_target!(|data: &[u8]| {
    for conversion in [Conversion::Dither, Conversion::Threshold] {
        let mut out = Vec::new();
        // BMP only: the other formats have their own targets.
        let opts = Options {
            conversion,
            max_pixels: 1 << 20,
            formats: rlewatch::formats::FormatSet::of(&[rlewatch::formats::Format::Bmp]),
        };
        if let Ok(outcome) = compress::compress(data, &mut out, opts) {
            let (header, _) = rlewatch::rle::decode_image(&out).expect("own output decodes");
            assert_eq!((u32::from(header.width), u32::from(header.height)), (outcome.width, outcome.height));
            compress::verify_rle(out.as_slice(), &outcome).expect("own output verifies");
        }
    }
});
