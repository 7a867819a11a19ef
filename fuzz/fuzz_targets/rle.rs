//! Any bytes as `.rle`: the strict decoder must never panic, and whatever it
//! accepts must survive a round trip: encoding the decoded pixels and
//! decoding again gives the same pixels. (Equal bytes are not required: the
//! decoder accepts two adjacent runs of one colour, which the encoder
//! would merge; the spec does not count that as corruption.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlewatch::rle;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, rows)) = rle::decode_image(data) {
        let again = rle::encode_image(header, &rows);
        assert!(again.len() <= data.len(), "the encoder's form is the shortest");
        let (h2, rows2) = rle::decode_image(&again).expect("own output decodes");
        assert_eq!((h2, rows2), (header, rows));
    }
});
