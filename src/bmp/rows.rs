//! Hands out a BMP's rows top row first. Uncompressed files are read in
//! blocks of rows with positioned reads (bottom-up files from the end
//! backwards), so memory is O(width). RLE files are one sequential stream
//! that starts at the bottom row, so they are decoded whole into one index
//! byte per pixel (bounded by the pixel limit checked in the header).

use super::opcodes::{RleOp, RleReader};
use super::{BmpError, BmpInfo, Compression, Source};

/// One row as stored.
#[derive(Debug, Clone, Copy)]
pub enum RowData<'a> {
    /// Uncompressed row bytes exactly as in the file (`stride` bytes).
    Packed(&'a [u8]),
    /// One palette index per pixel (RLE files).
    Indices(&'a [u8]),
}

/// Bytes read per positioned read of uncompressed data.
const BLOCK_BYTES: u64 = 256 * 1024;

enum Store {
    Raw {
        block: Vec<u8>,
        rows_per_block: u32,
        first: u32,
        count: u32,
        ahead: Ahead,
    },
    /// Decoded indices in storage order; may stop short of the full image
    /// (the rest is index 0). `row` holds a row that is only partly there.
    Rle { data: Vec<u8>, row: Vec<u8> },
}

/// Streaming row reader; see [`Rows::next_row`].
pub struct Rows<'s, S: Source + ?Sized> {
    info: &'s BmpInfo,
    src: &'s S,
    next: u32,
    store: Store,
}

impl<'s, S: Source + ?Sized> Rows<'s, S> {
    /// Prepares to read the rows of `src` described by `info`. For RLE
    /// files this decodes the whole stream.
    pub fn new(info: &'s BmpInfo, src: &'s S) -> Result<Self, BmpError> {
        let store = match info.compression {
            Compression::None => {
                let rows_per_block = rows_per_block(info);
                Store::Raw {
                    block: vec![0u8; (info.stride * u64::from(rows_per_block)) as usize],
                    rows_per_block,
                    first: 0,
                    count: 0,
                    ahead: Ahead::new(info),
                }
            }
            Compression::Rle8 | Compression::Rle4 => Store::Rle {
                data: decode_rle(info, src)?,
                row: vec![0; info.width as usize],
            },
        };
        Ok(Rows {
            info,
            src,
            next: 0,
            store,
        })
    }

    /// The next row from the top, or `None` after the last one.
    pub fn next_row(&mut self) -> Result<Option<RowData<'_>>, BmpError> {
        let info = self.info;
        if self.next == info.height {
            return Ok(None);
        }
        let y = self.next;
        self.next += 1;
        // Row index in storage order.
        let stored = if info.top_down {
            y
        } else {
            info.height - 1 - y
        };
        match &mut self.store {
            Store::Raw {
                block,
                rows_per_block,
                first,
                count,
                ahead,
            } => {
                if !(*first..*first + *count).contains(&stored) {
                    (*first, *count) = block_of(info, stored, *rows_per_block);
                    read_block(info, self.src, ahead, block, *first, *count)?;
                }
                let start = ((stored - *first) as u64 * info.stride) as usize;
                Ok(Some(RowData::Packed(
                    &block[start..start + info.stride as usize],
                )))
            }
            Store::Rle { data, row } => {
                let w = info.width as usize;
                let start = (stored as usize * w).min(data.len());
                let end = (start + w).min(data.len());
                if end - start == w {
                    return Ok(Some(RowData::Indices(&data[start..end])));
                }
                row.fill(0);
                row[..end - start].copy_from_slice(&data[start..end]);
                Ok(Some(RowData::Indices(row)))
            }
        }
    }
}

/// Bytes advised at a time by [`Ahead`].
const AHEAD_BYTES: u64 = 8 << 20;

/// Read-ahead hints ([`Source::will_need`]) in the direction the pixel
/// data is read. Bottom-up files (most BMPs) are read from the end
/// backwards, which the kernel's own read-ahead does not follow, so on a
/// cold cache every block would wait for the disk; with the hint the next
/// [`AHEAD_BYTES`] are already on their way. A few calls per image, so
/// warm-cache runs do not pay for it.
struct Ahead {
    forward: bool,
    /// Edge of the data advised so far (its end reading forward, its start
    /// reading backward).
    edge: u64,
    start: u64,
    end: u64,
}

impl Ahead {
    fn new(info: &BmpInfo) -> Ahead {
        let start = info.data_offset;
        let end = start + info.stride * u64::from(info.height);
        Ahead {
            forward: info.top_down,
            edge: if info.top_down { start } else { end },
            start,
            end,
        }
    }

    /// Called before reading `len` bytes at `offset`: keeps at least half
    /// a window advised beyond them.
    fn advise<S: Source + ?Sized>(&mut self, src: &S, offset: u64, len: u64) {
        if self.forward {
            let want = (offset + len + AHEAD_BYTES / 2).min(self.end);
            while self.edge < want {
                let n = AHEAD_BYTES.min(self.end - self.edge);
                src.will_need(self.edge, n);
                self.edge += n;
            }
        } else {
            let want = offset.saturating_sub(AHEAD_BYTES / 2).max(self.start);
            while self.edge > want {
                let n = AHEAD_BYTES.min(self.edge - self.start);
                self.edge -= n;
                src.will_need(self.edge, n);
            }
        }
    }
}

/// Rows per positioned read of an uncompressed image.
fn rows_per_block(info: &BmpInfo) -> u32 {
    (BLOCK_BYTES / info.stride).clamp(1, u64::from(info.height)) as u32
}

/// The block of stored rows (first, count) read for stored row `stored`
/// when it is the next row in display order.
fn block_of(info: &BmpInfo, stored: u32, rows_per_block: u32) -> (u32, u32) {
    if info.top_down {
        (stored, rows_per_block.min(info.height - stored))
    } else {
        let n = rows_per_block.min(stored + 1);
        (stored + 1 - n, n)
    }
}

/// Reads stored rows `first..first + count` into the start of `block`.
fn read_block<S: Source + ?Sized>(
    info: &BmpInfo,
    src: &S,
    ahead: &mut Ahead,
    block: &mut [u8],
    first: u32,
    count: u32,
) -> Result<(), BmpError> {
    let bytes = (info.stride * u64::from(count)) as usize;
    let offset = info.data_offset + info.stride * u64::from(first);
    ahead.advise(src, offset, bytes as u64);
    src.read_exact_at(&mut block[..bytes], offset)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => BmpError::Truncated {
                what: "the pixel data (the file shrank while being read)",
                needed: offset + bytes as u64,
                len: info.file_len,
            },
            _ => BmpError::Io(e),
        })
}

/// The rows of an uncompressed image as blocks that can be read on one
/// thread and converted on another: the same positioned reads [`Rows`]
/// makes, in the same order. See [`Blocks::read_next`] and
/// [`Blocks::rows`].
pub struct Blocks<'s> {
    info: &'s BmpInfo,
    ahead: Ahead,
    rows_per_block: u32,
    /// Next row in display order.
    next: u32,
}

impl<'s> Blocks<'s> {
    /// `None` for RLE images (they are decoded whole; use [`Rows`]).
    pub fn new(info: &'s BmpInfo) -> Option<Blocks<'s>> {
        (info.compression == Compression::None).then(|| Blocks {
            info,
            ahead: Ahead::new(info),
            rows_per_block: rows_per_block(info),
            next: 0,
        })
    }

    /// Starts at display row `row` (rows before it are not read).
    pub fn starting_at(mut self, row: u32) -> Blocks<'s> {
        self.next = row.min(self.info.height);
        self
    }

    /// Bytes a block buffer needs.
    pub fn block_bytes(&self) -> usize {
        (self.info.stride * u64::from(self.rows_per_block)) as usize
    }

    /// Reads the next block into `block` (at least [`Blocks::block_bytes`]
    /// long); returns its row count, 0 after the last row.
    pub fn read_next<S: Source + ?Sized>(
        &mut self,
        src: &S,
        block: &mut [u8],
    ) -> Result<u32, BmpError> {
        let info = self.info;
        if self.next == info.height {
            return Ok(0);
        }
        let y = self.next;
        let stored = if info.top_down {
            y
        } else {
            info.height - 1 - y
        };
        let (first, count) = block_of(info, stored, self.rows_per_block);
        read_block(info, src, &mut self.ahead, block, first, count)?;
        self.next += count;
        Ok(count)
    }

    /// The rows of a block of `count` rows read by [`Blocks::read_next`],
    /// in display order.
    pub fn rows<'b>(
        info: &BmpInfo,
        block: &'b [u8],
        count: u32,
    ) -> impl Iterator<Item = RowData<'b>> + 'b {
        let stride = info.stride as usize;
        let top_down = info.top_down;
        (0..count as usize).map(move |k| {
            let i = if top_down { k } else { count as usize - 1 - k };
            RowData::Packed(&block[i * stride..(i + 1) * stride])
        })
    }
}

/// Decodes an RLE4/RLE8 stream into one index per pixel in storage order.
/// The instructions come from [`RleReader`]; what each means for the
/// pixels is decided here.
///
/// Follows Pillow's decoder step for step (runs clipped at the row end,
/// absolute runs that may spill into the next row, deltas as skipped
/// pixels), so that files Pillow reads give the same pixels. Pixels the
/// stream never reaches (early end, deltas) are index 0.
fn decode_rle<S: Source + ?Sized>(info: &BmpInfo, src: &S) -> Result<Vec<u8>, BmpError> {
    let rle4 = info.compression == Compression::Rle4;
    let w = info.width as usize;
    let dest = w * info.height as usize;
    // Grown as the stream delivers pixels, never sized from the header
    // alone: a short stream stays small. At most `dest` plus one step.
    let mut data: Vec<u8> = Vec::new();
    let mut ops = RleReader::new(src, info.compression, info.data_offset, u64::MAX);
    let mut x: usize = 0;
    while data.len() < dest {
        let Some(op) = ops.next_op()? else {
            break;
        };
        match op {
            RleOp::Run { count, value } => {
                let n = usize::from(count).min(w.saturating_sub(x));
                if rle4 {
                    let pair = [value >> 4, value & 0x0f];
                    data.extend((0..n).map(|i| pair[i % 2]));
                } else {
                    data.extend(std::iter::repeat_n(value, n));
                }
                x += n;
            }
            RleOp::EndOfLine => {
                let pad = (w - data.len() % w) % w;
                data.extend(std::iter::repeat_n(0, pad));
                x = 0;
            }
            RleOp::EndOfBitmap => break,
            RleOp::Delta { right, up } => {
                let skip = (usize::from(right) + usize::from(up) * w).min(dest - data.len());
                data.extend(std::iter::repeat_n(0, skip));
                x = data.len() % w;
            }
            RleOp::Absolute { pixels, pad, .. } => {
                // Only the bytes of the pixels that fit are read; the image
                // is full after them.
                let n = usize::from(pixels).min(dest - data.len());
                let byte_count = if rle4 { n.div_ceil(2) } else { n };
                let mut got = 0;
                for i in 0..byte_count {
                    let Some(b) = ops.byte()? else { break };
                    got += 1;
                    if rle4 {
                        data.push(b >> 4);
                        if i * 2 + 1 < n {
                            data.push(b & 0x0f);
                        }
                    } else {
                        data.push(b);
                    }
                }
                if got < byte_count || data.len() == dest {
                    break;
                }
                x += usize::from(pixels);
                if pad {
                    ops.skip(1)?;
                }
            }
        }
    }
    data.truncate(dest);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BMP of `width`×`height` (bottom-up) with an INFO header, a grey
    /// palette of `colors` entries and `stream` as its RLE pixel data.
    fn rle_bmp(compression: Compression, width: i32, height: i32, stream: &[u8]) -> Vec<u8> {
        let (bits, code, colors): (u16, u32, u32) = match compression {
            Compression::Rle4 => (4, 2, 16),
            _ => (8, 1, 256),
        };
        let offset = 14 + 40 + 4 * colors;
        let mut b = Vec::new();
        b.extend_from_slice(b"BM");
        b.extend_from_slice(&(offset + stream.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&width.to_le_bytes());
        b.extend_from_slice(&height.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&code.to_le_bytes());
        b.extend_from_slice(&(stream.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&colors.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for i in 0..colors {
            let g = (i * 255 / (colors - 1)) as u8;
            b.extend_from_slice(&[g, g, g, 0]);
        }
        b.extend_from_slice(stream);
        b
    }

    /// The palette indices of every row, top row first.
    fn indices(bytes: &[u8]) -> Vec<Vec<u8>> {
        let info = BmpInfo::parse(&bytes, u64::MAX).unwrap();
        let mut rows = Rows::new(&info, bytes).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next_row().unwrap() {
            match row {
                RowData::Indices(i) => out.push(i.to_vec()),
                RowData::Packed(_) => panic!("an RLE file gave packed rows"),
            }
        }
        out
    }

    #[test]
    fn rle8_runs_absolute_runs_deltas_and_line_ends_give_their_pixels() {
        // 4×3, stored bottom row first.
        let stream: &[u8] = &[
            0, 3, 1, 2, 3, 0xee, // row 0: 1 2 3, then a pad byte
            1, 2, // 2 (row 0 is full)
            0, 0, // end of line: on to row 1
            0, 2, 2, 1, // delta: to x 2 of row 2 (row 1 stays 0)
            2, 3, // 3 3
            0, 1, // end of bitmap
        ];
        assert_eq!(
            indices(&rle_bmp(Compression::Rle8, 4, 3, stream)),
            vec![vec![0, 0, 3, 3], vec![0, 0, 0, 0], vec![1, 2, 3, 2]]
        );
    }

    #[test]
    fn rle4_runs_alternate_nibbles_and_an_early_end_leaves_index_0() {
        // 5×2, stored bottom row first.
        let stream: &[u8] = &[
            0, 5, 0x12, 0x34, 0x50, 0xee, // row 0: 1 2 3 4 5, padded
            0, 0, // end of line
            4, 0xab, // row 1: 10 11 10 11
            0, 1, // end of bitmap; the last pixel is never given
        ];
        assert_eq!(
            indices(&rle_bmp(Compression::Rle4, 5, 2, stream)),
            vec![vec![10, 11, 10, 11, 0], vec![1, 2, 3, 4, 5]]
        );
    }

    #[test]
    fn a_stream_cut_inside_an_absolute_run_keeps_the_pixels_it_has() {
        // 4×1: an absolute run of 4 whose data stops after 3 bytes.
        let stream: &[u8] = &[0, 4, 7, 8, 9];
        assert_eq!(
            indices(&rle_bmp(Compression::Rle8, 4, 1, stream)),
            vec![vec![7, 8, 9, 0]]
        );
    }
}
