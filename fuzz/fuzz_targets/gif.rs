//! Any bytes as a GIF: compress in both modes, with a pixel limit that keeps
//! each run small, and ask whether the file is whole. Must never panic, hang
//! or allocate past the limit; a success must decode as a valid `.rle` of
//! the header's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlewatch::bilevel::Conversion;
use rlewatch::compress;
use rlewatch::formats::{self, Format};

fuzz_target!(|data: &[u8]| {
    // Every input is fed as a GIF, whatever its first bytes say.
    let _ = formats::whole(&data, Format::Gif);
    for conversion in [Conversion::Dither, Conversion::Threshold] {
        let Ok(mut decoder) = formats::open(&data, Format::Gif, 1 << 20) else {
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
});
