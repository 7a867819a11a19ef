//! Any bytes as CCITT data (Modified Huffman, Group 3 1-D/2-D, Group 4),
//! the first four bytes choosing the width (1–4096), the coding, the fill
//! order and the rows (1–256). Must never panic, hang or allocate past
//! O(width + input); every row must be ⌈width/8⌉ bytes with the bits past
//! the width 0, and no more rows than asked for. The input is decoded as
//! one strip (read, then seekable: the same rows), then split in two
//! strips decoded by one `RowDecoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The codec is private to rlewatch (`pub(crate)`), and needs only std and
// thiserror: compiled in here from its source.
#[allow(dead_code)]
#[path = "../../src/formats/ccitt.rs"]
mod ccitt;

use ccitt::{Coding, Params, RowDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let width = u32::from(u16::from_le_bytes([head[0], head[1]]) & 0x0fff) + 1;
    let flags = head[2];
    let coding = match flags & 3 {
        0 => Coding::ModifiedHuffman,
        1 => Coding::Group3 {
            two_d: flags & 4 != 0,
            fill_bits: flags & 8 != 0,
        },
        _ => Coding::Group4,
    };
    let params = Params {
        width,
        coding,
        lsb_first: flags & 16 != 0,
    };
    let rows = u32::from(head[3]) + 1;
    let check = |row: &[u8]| {
        assert_eq!(row.len(), width.div_ceil(8) as usize);
        let pad = (8 - width % 8) % 8;
        assert_eq!(
            row[row.len() - 1] & ((1u8 << pad) - 1),
            0,
            "bits past the width"
        );
    };

    let mut n = 0;
    let res = ccitt::decode(body, &params, rows, |row| {
        check(row);
        n += 1;
        Ok(())
    });
    if let Ok(got) = res {
        assert_eq!(got, n);
        assert!(got <= rows);
    }

    // Seekable input: the same rows as above.
    if let Ok(mut rd) = RowDecoder::new_seekable(std::io::Cursor::new(body), &params, rows) {
        let mut m = 0;
        while let Ok(Some(row)) = rd.next_row() {
            check(row);
            m += 1;
        }
        if res.is_ok() {
            assert_eq!(m, n);
        }
    }

    let (first, second) = body.split_at(body.len() / 2);
    let Ok(mut rd) = RowDecoder::new(first, &params, rows) else {
        return;
    };
    let mut n = 0;
    while let Ok(Some(row)) = rd.next_row() {
        check(row);
        n += 1;
    }
    assert!(n <= rows);
    let mut rd = rd.next_strip(second, rows);
    let mut n = 0;
    while let Ok(Some(row)) = rd.next_row() {
        check(row);
        n += 1;
    }
    assert!(n <= rows);
});
