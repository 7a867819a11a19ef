//! Any bytes as a TIFF: the completion rule, then compress in both modes
//! with a pixel limit that keeps each run small. Must never panic, hang or
//! allocate past the limit; a success must decode as a valid `.rle` of the
//! header's size. Inputs not starting as a TIFF are made to (the first
//! four bytes replaced by "II*\0" or "MM\0*") so that every run reaches
//! the TIFF reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlewatch::bilevel::Conversion;
use rlewatch::compress::{self, Options};
use rlewatch::formats::{self, Format};

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    if data.len() >= 4 && Format::sniff(&data) != Some(Format::Tiff) {
        let magic: &[u8; 4] = if data[0] & 1 == 0 { b"II*\0" } else { b"MM\0*" };
        data[..4].copy_from_slice(magic);
    }
    let data = data.as_slice();
    let _ = formats::whole(&data, Format::Tiff);
    for conversion in [Conversion::Dither, Conversion::Threshold] {
        let mut out = Vec::new();
        let opts = Options {
            conversion,
            max_pixels: 1 << 20,
            ..Options::default()
        };
        if let Ok(outcome) = compress::compress(data, &mut out, opts) {
            let (header, _) = rlewatch::rle::decode_image(&out).expect("own output decodes");
            assert_eq!(
                (u32::from(header.width), u32::from(header.height)),
                (outcome.width, outcome.height)
            );
            compress::verify_rle(out.as_slice(), &outcome).expect("own output verifies");
        }
    }
});
