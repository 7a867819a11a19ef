//! Any bytes as `.rle`: the strict decoder must never panic, and whatever it
//! accepts must re-encode to exactly the same bytes (the format has one
//! encoding per image).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlewatch::rle;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, rows)) = rle::decode_image(data) {
        assert_eq!(rle::encode_image(header, &rows), data);
    }
});
