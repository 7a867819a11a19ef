//! Compressing a large dithered image on more than one thread (design §3,
//! "The dither wavefront"; bounded memory): [`two_dithering`]. A thread
//! reads blocks of rows, two threads convert, dither and encode alternate
//! rows, or, when they keep waiting on each other, one thread converts
//! and dithers and another encodes. Bytes and verdicts are the one-thread
//! loop's.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::CompressError;
use crate::bilevel::{Converter, Wavefront};
use crate::bmp::{Blocks, BmpError, BmpInfo, RowData, Source};
use crate::rle::{self, Encoder, RowLayout};

/// Dithered images with at least this many pixels may be compressed by
/// [`two_dithering`]; smaller ones are not worth a thread's start.
pub(super) const PIPELINE_PIXELS: u64 = 1 << 22;

/// Rows converted on one thread before deciding on [`two_dithering`].
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

impl Batch {
    /// A placeholder, holding nothing.
    fn empty() -> Batch {
        Batch {
            bits: Vec::new(),
            rows: 0,
            bytes: Vec::new(),
        }
    }
}

/// A block of raw rows and how many rows it holds (0: the end).
type Block = Result<(Vec<u8>, u32), BmpError>;

/// The reading thread of [`two_dithering`]: blocks of raw rows out, empty block
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

/// The encoding thread of [`two_dithering`] alone and the batches circulating
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

/// A block buffer shared by the two dithering threads of
/// [`two_dithering`]; it goes back to the reading thread when the last
/// of them lets go of it.
struct Shared {
    block: Vec<u8>,
    home: Sender<Vec<u8>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The reader stops at the first send that fails, so this one only
        // fails once it has ended.
        let _ = self.home.send(std::mem::take(&mut self.block));
    }
}

/// A block of rows for a dithering thread: the block, its first row's
/// display index, its row count.
type Job = (Arc<Shared>, u32, u32);

/// One dithering thread's rows of a block, encoded: their bytes, each
/// row's length, and whether all their pixels were pure.
#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    lens: Vec<usize>,
    pure: bool,
}

/// One dithering thread's work: its rows (display index y with y % 2 ==
/// `parity`, or all rows once `parity` is `None`) converted to grey
/// levels, dithered through the shared [`Wavefront`], and encoded.
struct Dithering<'a> {
    info: &'a BmpInfo,
    converter: &'a Converter,
    wave: &'a Wavefront,
    layout: RowLayout,
    grey: Vec<u8>,
    scratch: Vec<u8>,
    bits: Vec<u64>,
    parity: Option<u32>,
}

impl<'a> Dithering<'a> {
    fn new(info: &'a BmpInfo, converter: &'a Converter, wave: &'a Wavefront, parity: u32) -> Self {
        let parity = Some(parity);
        let width = info.width as usize;
        Dithering {
            info,
            converter,
            wave,
            layout: RowLayout::new(width),
            grey: vec![0; width],
            scratch: vec![0; width],
            bits: vec![0; rle::words_for(width)],
            parity,
        }
    }

    /// This thread's rows of a block, into `into`.
    fn block(&mut self, (shared, first, count): &Job, into: &mut Encoded) {
        let width = self.info.width as usize;
        into.bytes.clear();
        into.lens.clear();
        into.pure = true;
        for (y, row) in (*first..).zip(Blocks::rows(self.info, &shared.block, *count)) {
            if self.parity.is_some_and(|p| y % 2 != p) {
                continue;
            }
            let mut bits = std::mem::take(&mut self.bits);
            into.pure &= self.row(y, row, &mut bits);
            let n = into.bytes.len();
            into.bytes.resize(n + width, 0);
            let len = self.layout.encode_into(&bits, &mut into.bytes[n..]);
            into.bytes.truncate(n + len);
            into.lens.push(len);
            self.bits = bits;
        }
    }

    /// Row `y` to bits in `out`; whether its pixels are all pure.
    fn row(&mut self, y: u32, row: RowData<'_>, out: &mut [u64]) -> bool {
        let pure = self
            .converter
            .grey_row(row, &mut self.grey, &mut self.scratch);
        self.wave.row(y, &self.grey, out);
        pure
    }
}

/// The share of the dithering threads' time spent stalled (waiting on
/// each other past the spins, see [`Wavefront::stalled`]), over the last
/// [`CROWDED_ROWS`] rows at least and [`CROWDED_STALL`] or more, beyond
/// which [`two_dithering`] goes on with one dithering thread. Side by
/// side, the two stall now and then; in stretches where they share one
/// core (other work on the other, or the scheduler placing both on one),
/// each row waits for the other's, about 60 µs a row on the photo page,
/// and the pair is no faster than one thread: one dithering thread and
/// an encoding thread are then faster, for [`RETRY_ROWS`].
const STALLED_PERCENT: u32 = 50;

/// See [`STALLED_PERCENT`].
const CROWDED_ROWS: u32 = 128;

/// See [`STALLED_PERCENT`].
const CROWDED_STALL: Duration = Duration::from_millis(10);

/// Rows after the switch to two threads before their stalls count (see
/// [`STALLED_PERCENT`]).
const WARM_ROWS: u32 = 128;

/// Rows done alone before [`two_dithering`] tries two threads again, the
/// first time; twice as many each time after (a crowd that stays, stays).
const RETRY_ROWS: u32 = 1024;

/// When [`two_dithering`] goes on with one dithering thread, and when
/// it goes back to two.
#[derive(Debug, Clone, Copy)]
pub(super) enum Alone {
    /// When the two threads stall too much ([`STALLED_PERCENT`]); back
    /// after [`RETRY_ROWS`].
    WhenCrowded,
    /// For the blocks that start in `from..to` (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Between(u32, u32),
}

/// Compresses an uncompressed image whose rows go through the dither,
/// from row `first` on, with the dither on two threads (design §3, "The
/// dither wavefront"): a reading thread ([`spawn_reader`]); this thread
/// does the even rows of each block and hands the block to another,
/// which does the odd ones. Each converts its rows to grey levels,
/// dithers them through one shared [`Wavefront`] and encodes them. This
/// thread writes the rows in order, a block behind, so that it does not
/// wait for the other's last row.
///
/// When the threads stall too much ([`STALLED_PERCENT`]), this thread
/// stops handing blocks over and goes on alone: it converts and dithers
/// every row, and an encoding thread ([`Batches`]) encodes them; after
/// [`RETRY_ROWS`] it tries two threads again.
/// Written bytes and verdicts are the one-thread loop's; memory stays
/// bounded ([`IN_FLIGHT`] blocks and batches, a few blocks' encoded rows).
pub(super) fn two_dithering<S: Source + ?Sized, W: Write>(
    info: &BmpInfo,
    src: &S,
    blocks: Blocks<'_>,
    first: u32,
    converter: &mut Converter,
    enc: &mut Encoder<W>,
    when_alone: Alone,
) -> Result<(), CompressError> {
    let wave = &Wavefront::new(converter.errors(), first);
    let shared: &Converter = converter;
    let words = rle::words_for(info.width as usize);
    let pure = std::thread::scope(|scope| {
        let (full_rx, free_tx) = spawn_reader(scope, blocks, src);
        let (job_tx, job_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<Encoded>();
        let (back_tx, back_rx) = unbounded::<Encoded>();
        scope.spawn(move || {
            // Whatever ends this thread ends the other's waits.
            let _abandon = wave.abandon_on_drop();
            let mut odd = Dithering::new(info, shared, wave, 1);
            for job in job_rx {
                let mut into = back_rx.try_recv().unwrap_or_default();
                odd.block(&job, &mut into);
                drop(job);
                if done_tx.send(into).is_err() {
                    break;
                }
            }
        });
        let _abandon = wave.abandon_on_drop();
        let mut even = Dithering::new(info, shared, wave, 0);
        let mut written = Written {
            pending: std::collections::VecDeque::new(),
            spare: Vec::new(),
            pure: true,
        };
        // (stalled, when, row) at the start of recent blocks.
        let mut recent = std::collections::VecDeque::new();
        // Alone: the encoding thread's batches and the row it began at;
        // how many times so far.
        let mut alone: Option<(Batches, Batch, u32)> = None;
        let mut times_alone = 0;
        // Stalls count from this row on.
        let mut warm_until = first + WARM_ROWS;
        let mut y = first;
        loop {
            let (block, count) = full_rx
                .recv()
                .expect("BUG: the reader ends with 0 or an error")?;
            if count == 0 {
                break;
            }
            let job = (
                Arc::new(Shared {
                    block,
                    home: free_tx.clone(),
                }),
                y,
                count,
            );
            y += count;
            if let Some(&(_, _, since)) = alone.as_ref() {
                let back = match when_alone {
                    Alone::WhenCrowded => job.1 >= since + (RETRY_ROWS << (times_alone - 1).min(8)),
                    Alone::Between(_, to) => job.1 >= to,
                };
                if back {
                    // Every row done alone is written before any of the
                    // two threads'; the stalls count again at once.
                    let (batches, batch, _) = alone.take().expect("BUG: checked");
                    batches.finish(batch, enc)?;
                    even.parity = Some(0);
                    recent.clear();
                    warm_until = job.1;
                }
            }
            let go_alone = alone.is_none()
                && match when_alone {
                    // The first rows are left out: the threads' start
                    // (first touches of their buffers) stalls them too.
                    Alone::WhenCrowded => {
                        job.1 >= warm_until && crowded(&mut recent, wave.stalled(), job.1)
                    }
                    Alone::Between(from, to) => (from..to).contains(&job.1),
                };
            if go_alone {
                // The other thread waits, idle, after the rows it has;
                // they are written before any of this thread's alone.
                even.parity = None;
                while !written.pending.is_empty() {
                    written.write_first(enc, &done_rx, &back_tx)?;
                }
                let mut batches = Batches::start(scope, info.width as usize);
                let batch = batches.spare.pop().expect("BUG: IN_FLIGHT > 0");
                alone = Some((batches, batch, job.1));
                times_alone += 1;
            }
            if let Some((batches, batch, _)) = &mut alone {
                let (shared, first, count) = &job;
                for (y, row) in (*first..).zip(Blocks::rows(info, &shared.block, *count)) {
                    let start = batch.rows * words;
                    written.pure &= even.row(y, row, &mut batch.bits[start..start + words]);
                    batch.rows += 1;
                    if batch.rows == BATCH_ROWS {
                        let full = std::mem::replace(batch, Batch::empty());
                        *batch = batches.hand_over(full, enc)?;
                    }
                }
                continue;
            }
            job_tx
                .send(job.clone())
                .expect("BUG: the odd thread ends only when this one does");
            let mut mine = written.spare.pop().unwrap_or_default();
            even.block(&job, &mut mine);
            written.pending.push_back((mine, job.1, job.2));
            drop(job);
            if written.pending.len() > 1 {
                written.write_first(enc, &done_rx, &back_tx)?;
            }
        }
        while !written.pending.is_empty() {
            written.write_first(enc, &done_rx, &back_tx)?;
        }
        drop(job_tx);
        if let Some((batches, batch, _)) = alone {
            batches.finish(batch, enc)?;
        }
        Ok::<bool, CompressError>(written.pure)
    })?;
    converter.note_pure(pure);
    Ok(())
}

/// Whether the dithering threads stalled more than [`STALLED_PERCENT`]
/// of their time (and [`CROWDED_STALL`]) over the last [`CROWDED_ROWS`]
/// rows or more, given the time `stalled` so far at row `y`; `recent`
/// keeps the (stalled, when, row) of recent calls.
fn crowded(
    recent: &mut std::collections::VecDeque<(Duration, Instant, u32)>,
    stalled: Duration,
    y: u32,
) -> bool {
    let now = Instant::now();
    recent.push_back((stalled, now, y));
    if recent.len() < 2 {
        return false;
    }
    while recent.len() > 2 && y - recent[1].2 >= CROWDED_ROWS {
        recent.pop_front();
    }
    let (then, since, from) = recent[0];
    // Two threads' time: twice the time since.
    let both = 2 * now.duration_since(since);
    let stalled = stalled - then;
    y - from >= CROWDED_ROWS && stalled >= CROWDED_STALL && stalled * 100 > both * STALLED_PERCENT
}

/// The blocks [`two_dithering`]'s even thread has done and not yet
/// written, oldest first: its rows, the first row and the row count.
struct Written {
    pending: std::collections::VecDeque<(Encoded, u32, u32)>,
    spare: Vec<Encoded>,
    pure: bool,
}

impl Written {
    /// Writes the oldest pending block's rows in order, taking the odd
    /// rows from the other thread (waiting for them).
    fn write_first<W: Write>(
        &mut self,
        enc: &mut Encoder<W>,
        done: &Receiver<Encoded>,
        back: &Sender<Encoded>,
    ) -> Result<(), CompressError> {
        let (mine, first, count) = self
            .pending
            .pop_front()
            .expect("BUG: called with one pending");
        let theirs = done
            .recv()
            .expect("BUG: the odd thread answers every block");
        self.pure &= mine.pure && theirs.pure;
        let mut rows = [(&mine, 0, 0), (&theirs, 0, 0)];
        for y in first..first + count {
            let (from, at, k) = &mut rows[y as usize % 2];
            let len = from.lens[*k];
            enc.write_encoded(&from.bytes[*at..*at + len], 1)
                .map_err(CompressError::Write)?;
            (*at, *k) = (*at + len, *k + 1);
        }
        let _ = back.send(theirs);
        self.spare.push(mine);
        Ok(())
    }
}
