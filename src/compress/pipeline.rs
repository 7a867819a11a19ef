//! Compressing a large dithered image with three threads (design §3, bounded memory):
//! reading, converting and encoding overlap; bytes and verdicts are the
//! one-thread loop's.

use std::io::Write;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::CompressError;
use crate::bilevel::Converter;
use crate::bmp::{Blocks, BmpError, BmpInfo, Source};
use crate::rle::{self, Encoder, RowLayout};

/// Dithered images with at least this many pixels are compressed by three
/// threads (see [`pipelined`]); smaller ones are not worth a thread's start.
pub(super) const PIPELINE_PIXELS: u64 = 1 << 22;

/// Rows converted on one thread before deciding on [`pipelined`].
pub(super) const PROBE_ROWS: u32 = 64;

/// Rows per batch handed to the encoding thread.
const BATCH_ROWS: usize = 16;

/// Buffers in flight between the threads (bounds the memory used).
const IN_FLIGHT: usize = 3;

/// A batch of converted rows on its way to the encoding thread, and back
/// with the encoded bytes.
struct Batch {
    bits: Vec<u64>,
    rows: usize,
    bytes: Vec<u8>,
}

/// Compresses an uncompressed image with three threads: one reads blocks
/// of rows (the same positioned reads as [`Rows`](crate::bmp::Rows)), this one converts them
/// (the dither is serial, so this is the critical path), one encodes
/// batches of converted rows into runs. Written bytes, their order and the
/// verdicts are the same as the one-thread loop's; only the work moves.
/// Memory stays bounded: [`IN_FLIGHT`] buffers circulate between each
/// pair of threads, and a thread waiting for a free buffer blocks.
///
/// Against the one-thread loop on the 7200×5600 photo-like page this
/// measured about 240 → 180 ms; a two-thread variant (reading on this
/// thread, encoding on the other) measured in between (about 200 ms).
pub(super) fn pipelined<S: Source + ?Sized, W: Write>(
    info: &BmpInfo,
    src: &S,
    blocks: Blocks<'_>,
    converter: &mut Converter,
    enc: &mut Encoder<W>,
) -> Result<(), CompressError> {
    let width = info.width as usize;
    let words = rle::words_for(width);
    std::thread::scope(|scope| {
        let (full_rx, free_tx) = spawn_reader(scope, blocks, src);
        let mut batches = Batches::start(scope, width);
        let mut batch = batches.spare.pop().expect("BUG: IN_FLIGHT > 0");
        loop {
            let (block, count) = full_rx
                .recv()
                .expect("BUG: the reader ends with 0 or an error")?;
            if count == 0 {
                break;
            }
            for row in Blocks::rows(info, &block, count) {
                let start = batch.rows * words;
                converter.row(row, &mut batch.bits[start..start + words]);
                batch.rows += 1;
                if batch.rows == BATCH_ROWS {
                    batch = batches.hand_over(batch, enc)?;
                }
            }
            // The reader stops at the first send that fails, so this one
            // only fails once it has ended.
            let _ = free_tx.send(block);
        }
        batches.finish(batch, enc)
    })
}

/// A block of raw rows and how many rows it holds (0: the end).
type Block = Result<(Vec<u8>, u32), BmpError>;

/// The reading thread of [`pipelined`]: blocks of raw rows out, empty block
/// buffers back ([`IN_FLIGHT`] of them).
fn spawn_reader<'scope, 'env: 'scope, S: Source + ?Sized>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    mut blocks: Blocks<'env>,
    src: &'env S,
) -> (Receiver<Block>, Sender<Vec<u8>>) {
    let (full_tx, full_rx) = unbounded::<Block>();
    let (free_tx, free_rx) = unbounded::<Vec<u8>>();
    for _ in 0..IN_FLIGHT {
        free_tx
            .send(vec![0u8; blocks.block_bytes()])
            .expect("BUG: receiver alive");
    }
    scope.spawn(move || {
        for mut block in free_rx {
            let got = blocks.read_next(src, &mut block);
            let done = !matches!(got, Ok(n) if n > 0);
            if full_tx.send(got.map(|n| (block, n))).is_err() || done {
                break;
            }
        }
    });
    (full_rx, free_tx)
}

/// The encoding thread of [`pipelined`] and the batches circulating
/// between it and the converting thread: batches of bits in, the same
/// batches with their runs out, written in order.
struct Batches {
    todo: Option<Sender<Batch>>,
    encoded: Receiver<Batch>,
    spare: Vec<Batch>,
    in_flight: usize,
}

impl Batches {
    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>, width: usize) -> Batches {
        let words = rle::words_for(width);
        let (todo_tx, todo_rx) = unbounded::<Batch>();
        let (encoded_tx, encoded_rx) = unbounded::<Batch>();
        scope.spawn(move || {
            let layout = RowLayout::new(width);
            for mut batch in todo_rx {
                batch.bytes.resize(batch.rows * width, 0);
                let mut n = 0;
                for row in batch.bits.chunks_exact(words).take(batch.rows) {
                    n += layout.encode_into(row, &mut batch.bytes[n..]);
                }
                batch.bytes.truncate(n);
                if encoded_tx.send(batch).is_err() {
                    break;
                }
            }
        });
        let spare = (0..IN_FLIGHT)
            .map(|_| Batch {
                bits: vec![0u64; words * BATCH_ROWS],
                rows: 0,
                bytes: Vec::with_capacity(width * BATCH_ROWS),
            })
            .collect();
        Batches {
            todo: Some(todo_tx),
            encoded: encoded_rx,
            spare,
            in_flight: 0,
        }
    }

    fn send(&mut self, batch: Batch) {
        self.todo
            .as_ref()
            .expect("BUG: no batch is sent after finish")
            .send(batch)
            .expect("BUG: the encoder outlives its channel");
        self.in_flight += 1;
    }

    /// Writes an encoded batch that came back; it is no longer in flight.
    fn write<W: Write>(&mut self, b: &Batch, enc: &mut Encoder<W>) -> Result<(), CompressError> {
        self.in_flight -= 1;
        enc.write_encoded(&b.bytes, b.rows)
            .map_err(CompressError::Write)
    }

    /// Writes the next encoded batch, waiting for it.
    fn write_next<W: Write>(&mut self, enc: &mut Encoder<W>) -> Result<Batch, CompressError> {
        let b = self
            .encoded
            .recv()
            .expect("BUG: the encoder outlives its channel");
        self.write(&b, enc)?;
        Ok(b)
    }

    /// Sends a full batch to be encoded; writes whatever is encoded, and
    /// waits only when out of buffers. Returns an empty batch to fill.
    fn hand_over<W: Write>(
        &mut self,
        batch: Batch,
        enc: &mut Encoder<W>,
    ) -> Result<Batch, CompressError> {
        self.send(batch);
        while let Ok(b) = self.encoded.try_recv() {
            self.write(&b, enc)?;
            self.spare.push(b);
        }
        let mut next = match self.spare.pop() {
            Some(b) => b,
            None => self.write_next(enc)?,
        };
        next.rows = 0;
        Ok(next)
    }

    /// Sends the last, partial batch and writes every batch still out.
    fn finish<W: Write>(mut self, batch: Batch, enc: &mut Encoder<W>) -> Result<(), CompressError> {
        if batch.rows > 0 {
            self.send(batch);
        }
        self.todo = None;
        while self.in_flight > 0 {
            self.write_next(enc)?;
        }
        Ok(())
    }
}
