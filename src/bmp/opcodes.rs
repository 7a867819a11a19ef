//! The opcode grammar of BMP RLE8/RLE4 pixel data (design §3), read once
//! for every walk of such a stream: the row decoder (`rows.rs`) turns the
//! instructions into palette indices, and the completion check
//! (`daemon::completion`) walks them to find the end-of-bitmap marker of a
//! file still being written. Only the grammar lives here; what a run means
//! for pixels (clipping at the row end, nibble order) is the decoder's.
//!
//! The stream is a sequence of two-byte opcodes:
//!
//! | bytes            | instruction                                          |
//! |------------------|------------------------------------------------------|
//! | `n v` (n ≥ 1)    | encoded run: `n` pixels of `v` (RLE4: `v`'s nibbles, high first, alternating) |
//! | `00 00`          | end of line                                          |
//! | `00 01`          | end of bitmap                                        |
//! | `00 02 dx dy`    | delta: move `dx` right and `dy` up                   |
//! | `00 n` (n ≥ 3)   | absolute run: `n` pixels stored as they are in the next `n` bytes (RLE4: `⌈n/2⌉` bytes, two pixels a byte), then one pad byte if that count is odd, so that the next opcode starts on a 16-bit boundary |
//!
//! A stream may end anywhere, also inside an instruction (a truncated file,
//! or one still being written): [`RleReader::next_op`] says so with
//! `Ok(None)` rather than an error, and an absolute run's bytes are read
//! one at a time so that the caller sees how many were there.

use std::io;

use super::{Compression, Source};

/// Bytes read from the source at a time.
const READ_CHUNK: usize = 64 * 1024;

/// One instruction of an RLE8/RLE4 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RleOp {
    /// Encoded mode: `count` (≥ 1) pixels of `value` in RLE8; in RLE4
    /// `value`'s high and low nibbles alternately, high first.
    Run { count: u8, value: u8 },
    /// Absolute mode: `pixels` (≥ 3) pixels stored as they are in the
    /// `bytes` bytes that follow the opcode (`pixels` in RLE8, `⌈pixels/2⌉`
    /// in RLE4), then one pad byte when `pad` (`bytes` odd). Read the data
    /// with [`RleReader::byte`] and the pad with [`RleReader::skip`].
    Absolute { pixels: u8, bytes: u8, pad: bool },
    /// `00 00`: the rest of the line is skipped.
    EndOfLine,
    /// `00 01`: the image ends here.
    EndOfBitmap,
    /// `00 02 right up`: the position moves `right` pixels right and `up`
    /// rows up (towards the top of a bottom-up image).
    Delta { right: u8, up: u8 },
}

impl RleOp {
    /// Bytes that follow the opcode of an absolute run, its pad included;
    /// 0 for every other instruction (a delta's two bytes belong to it).
    pub fn data_len(self) -> u64 {
        match self {
            RleOp::Absolute { bytes, pad, .. } => u64::from(bytes) + u64::from(pad),
            _ => 0,
        }
    }
}

/// Reads the instructions of an RLE stream from a [`Source`], sequentially
/// from a start offset up to an end offset (or the end of the source), in
/// buffered chunks.
pub struct RleReader<'s, S: Source + ?Sized> {
    src: &'s S,
    rle4: bool,
    /// Offset of the next chunk to read.
    pos: u64,
    /// No byte at or after this offset is read.
    end: u64,
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl<'s, S: Source + ?Sized> RleReader<'s, S> {
    /// A reader of the `compression` stream (RLE8 or RLE4; anything else is
    /// read as RLE8) in `src` from `start` up to `end` (exclusive;
    /// `u64::MAX` for the end of the source).
    pub fn new(src: &'s S, compression: Compression, start: u64, end: u64) -> Self {
        RleReader {
            src,
            rle4: compression == Compression::Rle4,
            pos: start,
            end,
            buf: vec![0u8; READ_CHUNK],
            at: 0,
            len: 0,
        }
    }

    /// The next byte of the stream, `None` at its end.
    #[inline]
    pub fn byte(&mut self) -> io::Result<Option<u8>> {
        if self.at == self.len {
            let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
            let want = self.buf.len().min(left);
            self.len = self.src.read_at(&mut self.buf[..want], self.pos)?;
            self.pos += self.len as u64;
            self.at = 0;
            if self.len == 0 {
                return Ok(None);
            }
        }
        self.at += 1;
        Ok(Some(self.buf[self.at - 1]))
    }

    /// Skips `n` bytes; false when the stream ends first.
    pub fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            if self.at == self.len {
                // Refills the buffer and takes its first byte.
                if self.byte()?.is_none() {
                    return Ok(false);
                }
                n -= 1;
                continue;
            }
            let k = n.min((self.len - self.at) as u64);
            self.at += k as usize;
            n -= k;
        }
        Ok(true)
    }

    /// The next instruction, or `None` when the stream ends before a whole
    /// opcode (or a delta's two bytes) is there. An absolute run's data is
    /// not read: the caller reads or skips [`RleOp::data_len`] bytes before
    /// asking for the next instruction.
    #[inline]
    pub fn next_op(&mut self) -> io::Result<Option<RleOp>> {
        let Some(count) = self.byte()? else {
            return Ok(None);
        };
        let Some(second) = self.byte()? else {
            return Ok(None);
        };
        Ok(Some(match (count, second) {
            (0, 0) => RleOp::EndOfLine,
            (0, 1) => RleOp::EndOfBitmap,
            (0, 2) => {
                let Some(right) = self.byte()? else {
                    return Ok(None);
                };
                let Some(up) = self.byte()? else {
                    return Ok(None);
                };
                RleOp::Delta { right, up }
            }
            (0, pixels) => {
                let bytes = if self.rle4 {
                    pixels.div_ceil(2)
                } else {
                    pixels
                };
                RleOp::Absolute {
                    pixels,
                    bytes,
                    pad: bytes % 2 == 1,
                }
            }
            (count, value) => RleOp::Run { count, value },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instruction with the data bytes of an absolute run.
    type Step = Option<(RleOp, Vec<u8>)>;

    /// Every instruction of `stream` with the data bytes of its absolute
    /// runs, walked to its end or the first instruction cut off. The last
    /// element is `None` when the stream ended inside an instruction or
    /// before an end of bitmap.
    fn walk(stream: &[u8], compression: Compression) -> Vec<Step> {
        let mut ops = RleReader::new(stream, compression, 0, u64::MAX);
        let mut seen = Vec::new();
        loop {
            let Some(op) = ops.next_op().unwrap() else {
                seen.push(None);
                return seen;
            };
            let mut data = Vec::new();
            if let RleOp::Absolute { bytes, pad, .. } = op {
                for _ in 0..bytes {
                    match ops.byte().unwrap() {
                        Some(b) => data.push(b),
                        None => {
                            seen.push(Some((op, data)));
                            seen.push(None);
                            return seen;
                        }
                    }
                }
                if !ops.skip(u64::from(pad)).unwrap() {
                    seen.push(Some((op, data)));
                    seen.push(None);
                    return seen;
                }
            }
            seen.push(Some((op, data)));
            if op == RleOp::EndOfBitmap {
                return seen;
            }
        }
    }

    fn op(op: RleOp) -> Step {
        Some((op, Vec::new()))
    }

    fn absolute(pixels: u8, bytes: u8, pad: bool, data: &[u8]) -> Step {
        Some((RleOp::Absolute { pixels, bytes, pad }, data.to_vec()))
    }

    #[test]
    fn rle8_instructions_of_every_kind_are_read_with_odd_absolute_runs_padded() {
        let stream: &[u8] = &[
            3, 0x41, // 3 pixels of 0x41
            0, 0, // end of line
            0, 2, 5, 1, // delta: 5 right, 1 up
            0, 3, 9, 8, 7, 0xee, // 3 pixels in 3 bytes, then a pad byte
            0, 4, 1, 2, 3, 4, // 4 pixels in 4 bytes, no pad
            255, 0, // the longest run
            0, 1, // end of bitmap
        ];
        assert_eq!(
            walk(stream, Compression::Rle8),
            vec![
                op(RleOp::Run {
                    count: 3,
                    value: 0x41
                }),
                op(RleOp::EndOfLine),
                op(RleOp::Delta { right: 5, up: 1 }),
                absolute(3, 3, true, &[9, 8, 7]),
                absolute(4, 4, false, &[1, 2, 3, 4]),
                op(RleOp::Run {
                    count: 255,
                    value: 0
                }),
                op(RleOp::EndOfBitmap),
            ]
        );
    }

    #[test]
    fn rle4_absolute_runs_count_nibbles_and_pad_an_odd_byte_count() {
        let stream: &[u8] = &[
            4, 0x12, // 4 pixels: 1 2 1 2
            0, 5, 0x12, 0x34, 0x50, 0xee, // 5 pixels in 3 bytes, padded
            0, 3, 0x12, 0x30, // 3 pixels in 2 bytes, no pad
            0, 6, 0xab, 0xcd, 0xef, 0xee, // 6 pixels in 3 bytes, padded
            0, 4, 0x12, 0x34, // 4 pixels in 2 bytes, no pad
            0, 255, // 255 pixels in 128 bytes, no pad
        ];
        let mut stream = stream.to_vec();
        let long: Vec<u8> = (0..128).collect();
        stream.extend_from_slice(&long);
        stream.extend_from_slice(&[0, 2, 0, 0, 0, 1]);
        assert_eq!(
            walk(&stream, Compression::Rle4),
            vec![
                op(RleOp::Run {
                    count: 4,
                    value: 0x12
                }),
                absolute(5, 3, true, &[0x12, 0x34, 0x50]),
                absolute(3, 2, false, &[0x12, 0x30]),
                absolute(6, 3, true, &[0xab, 0xcd, 0xef]),
                absolute(4, 2, false, &[0x12, 0x34]),
                absolute(255, 128, false, &long),
                op(RleOp::Delta { right: 0, up: 0 }),
                op(RleOp::EndOfBitmap),
            ]
        );
        // The same bytes as RLE8: `00 05` is five bytes, so the walk
        // goes astray (and may run out), as a reader of the wrong kind would.
        assert_ne!(
            walk(&stream, Compression::Rle8),
            walk(&stream, Compression::Rle4)
        );
    }

    #[test]
    fn a_stream_cut_inside_an_instruction_ends_without_an_error() {
        // Cut inside the opcode, inside a delta's two bytes, inside an
        // absolute run's data and before its pad.
        let stream: &[u8] = &[0, 2, 5, 1, 0, 3, 9, 8, 7, 0xee, 0, 1];
        let delta = op(RleOp::Delta { right: 5, up: 1 });
        let cases: &[(usize, Vec<Step>)] = &[
            (0, vec![None]),
            (1, vec![None]),
            (2, vec![None]),
            (3, vec![None]),
            (4, vec![delta.clone(), None]),
            (5, vec![delta.clone(), None]),
            (6, vec![delta.clone(), absolute(3, 3, true, &[]), None]),
            (8, vec![delta.clone(), absolute(3, 3, true, &[9, 8]), None]),
            (
                9,
                vec![delta.clone(), absolute(3, 3, true, &[9, 8, 7]), None],
            ),
            (
                10,
                vec![delta.clone(), absolute(3, 3, true, &[9, 8, 7]), None],
            ),
            (
                11,
                vec![delta.clone(), absolute(3, 3, true, &[9, 8, 7]), None],
            ),
            (
                12,
                vec![
                    delta.clone(),
                    absolute(3, 3, true, &[9, 8, 7]),
                    op(RleOp::EndOfBitmap),
                ],
            ),
        ];
        for (cut, expected) in cases {
            assert_eq!(
                &walk(&stream[..*cut], Compression::Rle8),
                expected,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_len_is_an_absolute_runs_bytes_and_pad() {
        let abs = |pixels, bytes, pad| RleOp::Absolute { pixels, bytes, pad };
        assert_eq!(abs(3, 3, true).data_len(), 4);
        assert_eq!(abs(4, 4, false).data_len(), 4);
        assert_eq!(abs(5, 3, true).data_len(), 4);
        assert_eq!(abs(255, 255, true).data_len(), 256);
        assert_eq!(RleOp::Delta { right: 1, up: 1 }.data_len(), 0);
        assert_eq!(RleOp::Run { count: 9, value: 0 }.data_len(), 0);
    }

    #[test]
    fn the_reader_stays_between_its_start_and_end_offsets() {
        let bytes: &[u8] = &[0, 1, 0xff, 2, 7, 0, 1];
        // From offset 3: a run, then the end of bitmap.
        let mut ops = RleReader::new(bytes, Compression::Rle8, 3, u64::MAX);
        assert_eq!(
            ops.next_op().unwrap(),
            Some(RleOp::Run { count: 2, value: 7 })
        );
        assert_eq!(ops.next_op().unwrap(), Some(RleOp::EndOfBitmap));
        assert_eq!(ops.next_op().unwrap(), None);
        // Ending at offset 6, the end of bitmap is cut off.
        let mut ops = RleReader::new(bytes, Compression::Rle8, 3, 6);
        assert_eq!(
            ops.next_op().unwrap(),
            Some(RleOp::Run { count: 2, value: 7 })
        );
        assert_eq!(ops.next_op().unwrap(), None);
    }

    #[test]
    fn absolute_runs_are_skipped_across_read_chunks() {
        // 300 absolute runs of 255 bytes and a pad: 77,400 bytes, more
        // than one chunk, with pad bytes that look like end markers.
        let mut stream = Vec::new();
        for _ in 0..300 {
            stream.extend_from_slice(&[0, 255]);
            stream.extend(std::iter::repeat_n(1, 255));
            stream.push(1);
        }
        stream.extend_from_slice(&[0, 1]);
        let mut ops = RleReader::new(stream.as_slice(), Compression::Rle8, 0, u64::MAX);
        let mut absolutes = 0;
        loop {
            match ops.next_op().unwrap() {
                Some(op @ RleOp::Absolute { .. }) => {
                    assert!(ops.skip(op.data_len()).unwrap());
                    absolutes += 1;
                }
                Some(RleOp::EndOfBitmap) => break,
                other => panic!("{other:?} after {absolutes} absolute runs"),
            }
        }
        assert_eq!(absolutes, 300);
        // Cut one byte short of the last pad: the skip says so.
        let cut = 300 * 258 - 1;
        let mut ops = RleReader::new(&stream[..cut], Compression::Rle8, 0, u64::MAX);
        for _ in 0..299 {
            let op = ops.next_op().unwrap().unwrap();
            assert!(ops.skip(op.data_len()).unwrap());
        }
        let op = ops.next_op().unwrap().unwrap();
        assert!(!ops.skip(op.data_len()).unwrap());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "tests/proptest-regressions/bmp_opcodes.txt",
                ),
            )),
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// What the completion check relies on: a file cut anywhere reads
        /// as the whole file's instructions up to the cut, never as an
        /// error or as instructions the whole does not have.
        #[test]
        fn a_cut_stream_reads_as_a_prefix_of_the_whole_streams_instructions(
            stream in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(0u8),
                    proptest::prelude::Just(1u8),
                    proptest::prelude::Just(2u8),
                    0u8..8,
                    proptest::prelude::any::<u8>(),
                ],
                0..96,
            ),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            rle4 in proptest::prelude::any::<bool>(),
        ) {
            let kind = if rle4 { Compression::Rle4 } else { Compression::Rle8 };
            let cut = cut.index(stream.len() + 1);
            let whole = walk(&stream, kind);
            let part = walk(&stream[..cut], kind);
            proptest::prop_assert!(part.len() <= whole.len());
            for (p, w) in part.iter().zip(&whole) {
                match (p, w) {
                    (None, _) => {}
                    (Some((p_op, p_data)), Some((w_op, w_data))) => {
                        proptest::prop_assert_eq!(p_op, w_op);
                        proptest::prop_assert!(w_data.starts_with(p_data));
                    }
                    (Some(_), None) => proptest::prop_assert!(false, "{part:?} / {whole:?}"),
                }
            }
        }
    }
}
