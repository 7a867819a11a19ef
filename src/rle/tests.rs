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

#[test]
fn every_chunk_boundary_is_checked_not_only_the_first() {
    // design §1: 300 pixels are chunks of 127, 127 and 46; the third run
    // here starts at 227 and would end at 300, across the boundary at 254.
    let crossing = [44, 1, 1, 0, 0x80 | 127, 100, 0x80 | 73];
    match decode_image(&crossing) {
        Err(RleError::Overrun {
            offset: 6,
            count: 73,
            left: 27,
        }) => {}
        other => panic!("expected an overrun at byte 6, got {other:?}"),
    }
    // The same pixels split at the boundary are fine.
    let split = [44, 1, 1, 0, 0x80 | 127, 100, 0x80 | 27, 0x80 | 46];
    assert!(decode_image(&split).is_ok());
}

/// Reads `data`, failing first with `Interrupted` before every read, then
/// with `error` once `data` is used up (if given).
struct Flaky<'a> {
    data: &'a [u8],
    interrupt: bool,
    error: Option<io::ErrorKind>,
}

impl io::Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if self.data.is_empty()
            && let Some(kind) = self.error
        {
            return Err(kind.into());
        }
        let n = buf.len().min(self.data.len()).min(1);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn an_interrupted_read_is_retried_and_any_other_read_error_is_reported() {
    let stream = [0x05, 0x00, 0x01, 0x00, 0x82, 0x01, 0x82];
    let flaky = |error| Flaky {
        data: &stream,
        interrupt: false,
        error,
    };
    let mut d = Decoder::new(flaky(None)).unwrap();
    let mut row = [0u64; 1];
    assert!(d.next_row(&mut row).unwrap());
    assert_eq!(row, *pack(&[1, 1, 0, 1, 1]));
    assert!(!d.next_row(&mut row).unwrap());
    // A stream cut short by a failing disk: the error, not a hang and not
    // a clean end.
    let mut d = Decoder::new(Flaky {
        data: &stream[..5],
        interrupt: false,
        error: Some(io::ErrorKind::Other),
    })
    .unwrap();
    match d.next_row(&mut row) {
        Err(RleError::Io { offset: 5, .. }) => {}
        other => panic!("expected a read error at byte 5, got {other:?}"),
    }
    // The same while reading the header.
    let failing = Flaky {
        data: &stream[..2],
        interrupt: false,
        error: Some(io::ErrorKind::Other),
    };
    match Decoder::new(failing) {
        Err(RleError::Io { offset: 0, .. }) => {}
        Err(other) => panic!("expected a read error in the header, got {other:?}"),
        Ok(_) => panic!("expected a read error in the header, got a decoder"),
    }
}

/// design §1 read literally, one pixel at a time: the reference for the
/// word-at-a-time encoder.
fn encode_row_by_pixel(bits: &[u8], out: &mut Vec<u8>) {
    for chunk in bits.chunks(CHUNK) {
        let mut i = 0;
        while i < chunk.len() {
            let bit = chunk[i];
            let run = chunk[i..].iter().take_while(|&&b| b == bit).count();
            out.push((bit << 7) | run as u8);
            i += run;
        }
    }
}

/// Every run finder on one row, as packed words and as a BMP stores it
/// (bytes, padded to 4 or not; the padding and the bits past the width
/// random), against design §1 read pixel by pixel.
fn check_row(bits: &[u8], next: &mut impl FnMut() -> u64, what: &str) {
    let width = bits.len();
    let mut want = Vec::new();
    encode_row_by_pixel(bits, &mut want);
    let mut words = pack(bits);
    // Bits past the width are ignored.
    if let Some(last) = words.last_mut() {
        *last |= !tail_mask(width) & next();
    }
    let mut got = Vec::new();
    encode_row(&words, width, &mut got);
    assert_eq!(got, want, "encode_row, width {width}, {what}");
    let mut padded: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    padded.truncate(width.div_ceil(32) * 4);
    padded
        .iter_mut()
        .skip(width.div_ceil(8))
        .for_each(|b| *b = next() as u8);
    let exact = &padded[..width.div_ceil(8)];
    // A longer slice of words than the width needs: the rest is ignored.
    let mut longer = words.clone();
    longer.push(next());
    for finder in RunFinder::available() {
        let layout = RowLayout::with_finder(width, finder);
        assert_eq!(layout.finder(), finder);
        // `out` is exactly the width, inside a larger buffer whose rest
        // must stay untouched: the SIMD finders store ahead of their
        // count and must not store past the slice.
        let canary = 0xA5;
        let check = |got: &[u8], n: usize, kind: &str| {
            assert_eq!(got[..n], want, "{finder:?}, {kind}, width {width}, {what}");
            assert!(
                got[width..].iter().all(|&b| b == canary),
                "{finder:?}, {kind}, width {width}, {what}: wrote past the output"
            );
        };
        for (row, kind) in [(&words, "words"), (&longer, "more words")] {
            let mut got = vec![canary; width + 64];
            let n = layout.encode_into(row, &mut got[..width]);
            check(&got, n, kind);
        }
        for (bytes, kind) in [(&padded[..], "padded bytes"), (exact, "bytes")] {
            let mut got = vec![canary; width + 64];
            let n = layout.encode_bytes_into(bytes, &mut got[..width]);
            check(&got, n, kind);
        }
    }
}

fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[test]
fn every_run_finder_equals_the_format_read_pixel_by_pixel_at_every_width_and_density() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let widths = (1..=300).chain([
        383, 508, 509, 511, 512, 513, 640, 1016, 2550, 4096, 7200, 65535,
    ]);
    for width in widths {
        // Dense (a coin per pixel), sparse (long runs), and uniform rows.
        for flip_per_1024 in [1024, 512, 40, 3, 0] {
            let mut bit = (next() & 1) as u8;
            let bits: Vec<u8> = (0..width)
                .map(|_| {
                    if (next() % 1024) < flip_per_1024 {
                        bit ^= 1;
                    }
                    bit
                })
                .collect();
            check_row(&bits, &mut next, &format!("flips {flip_per_1024}/1024"));
        }
    }
}

/// The detected run finder is the one this CPU is expected to have: on
/// x86-64 with AVX-512 VBMI2 and GFNI, not silently the portable one; with
/// AVX2 and BMI (and no AVX-512), the AVX2 one. Every finder the CPU runs
/// is in `RunFinder::available`, so the tests above cover each of them.
#[test]
fn the_detected_run_finder_is_the_fastest_this_cpu_runs() {
    #[cfg(target_arch = "x86_64")]
    if std::path::Path::new("/proc/cpuinfo").exists() {
        let has = |f: &str| {
            std::fs::read_to_string("/proc/cpuinfo")
                .map(|c| c.split_whitespace().any(|w| w == f))
                .unwrap_or(false)
        };
        let bmi = ["bmi1", "bmi2", "popcnt", "abm"].iter().all(|f| has(f));
        let avx512 = bmi
            && ["avx512f", "avx512bw", "avx512vbmi", "avx512_vbmi2", "gfni"]
                .iter()
                .all(|f| has(f));
        let avx2 = bmi && has("avx2");
        let want = if avx512 {
            RunFinder::Avx512
        } else if avx2 {
            RunFinder::Avx2
        } else {
            RunFinder::Portable
        };
        assert_eq!(RunFinder::detect(), want);
        assert_eq!(RunFinder::available().contains(&RunFinder::Avx2), avx2);
        assert_eq!(RunFinder::available().contains(&RunFinder::Avx512), avx512);
    }
    assert_eq!(RunFinder::available()[0], RunFinder::Portable);
    assert_eq!(RowLayout::new(100).finder(), RunFinder::detect());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/proptest-regressions/rle.txt",
            ),
        )),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Rows made of runs of any lengths (1 to 300 pixels, so runs cross
    /// words and chunk boundaries), at any width the header allows.
    #[test]
    fn every_run_finder_agrees_with_the_format_on_rows_of_random_runs(
        runs in proptest::collection::vec(1usize..300, 1..400),
        first in 0u8..2,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let mut bits = Vec::new();
        let mut bit = first;
        for run in runs {
            bits.extend(std::iter::repeat_n(bit, run));
            bit ^= 1;
        }
        bits.truncate(usize::from(u16::MAX));
        check_row(&bits, &mut xorshift(seed | 1), "random runs");
    }
}
