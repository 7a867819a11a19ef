//! Tests of the run-length format: the design's worked example, run boundaries, strict decoding.

use super::*;

fn pack(bits: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; words_for(bits.len())];
    for (i, &b) in bits.iter().enumerate() {
        if b != 0 {
            words[i / 64] |= 1 << (63 - i % 64);
        }
    }
    words
}

#[test]
fn design_worked_example() {
    // design §1: white white black white white → 05 00 01 00 82 01 82
    let header = Header {
        width: 5,
        height: 1,
    };
    let out = encode_image(header, &pack(&[1, 1, 0, 1, 1]));
    assert_eq!(out, [0x05, 0x00, 0x01, 0x00, 0x82, 0x01, 0x82]);
    let (h, rows) = decode_image(&out).unwrap();
    assert_eq!(h, header);
    assert_eq!(rows, pack(&[1, 1, 0, 1, 1]));
}

#[test]
fn runs_split_at_chunk_boundaries() {
    // 300 white pixels: chunks of 127, 127, 46.
    let out = encode_image(
        Header {
            width: 300,
            height: 1,
        },
        &pack(&[1; 300]),
    );
    assert_eq!(&out[4..], [0x80 | 127, 0x80 | 127, 0x80 | 46]);
}

#[test]
fn adjacent_runs_of_one_colour_decode_and_reencode_merged() {
    // Found by fuzzing: design §1 does not call this corruption, so the
    // decoder accepts it; the encoder writes the merged form.
    let split = [3, 0, 1, 0, 0x81, 0x81, 0x01];
    let (h, rows) = decode_image(&split).unwrap();
    assert_eq!(encode_image(h, &rows), [3, 0, 1, 0, 0x82, 0x01]);
}

#[test]
fn decoder_rejects_corruption_with_offsets() {
    let bad = |bytes: &[u8]| decode_image(bytes).unwrap_err().to_string();
    assert_eq!(bad(&[5, 0]), "truncated header: 2 of 4 bytes");
    assert!(bad(&[0, 0, 1, 0]).contains("at least 1"));
    assert_eq!(bad(&[5, 0, 1, 0, 0x80]), "corrupt run at byte 4: count 0");
    assert!(bad(&[5, 0, 1, 0, 0x82, 0x04]).starts_with("corrupt run at byte 5: count 4 overruns"));
    assert!(bad(&[5, 0, 1, 0, 0x82]).starts_with("truncated data at byte 5: row 0 of 1"));
    assert_eq!(
        bad(&[5, 0, 1, 0, 0x85, 0x01]),
        "trailing data at byte 5: the image ends there"
    );
    // A run may not cross the 127-pixel chunk boundary.
    let mut crossing = vec![200, 0, 1, 0, 0x80 | 100, 0x80 | 100];
    crossing.extend([0x80 | 73]);
    assert!(bad(&crossing).starts_with("corrupt run at byte 5: count 100 overruns the chunk (27"));
}
