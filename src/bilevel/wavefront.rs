//! The Floyd–Steinberg dither on two threads (design §3, "The dither
//! wavefront"): rows alternate between the threads, and row y dithers
//! pixel x only once row y − 1 has done pixel x + 1, whose entry in the
//! error array is then final. The arithmetic is [`fs_step`]'s, the
//! definition's (`dither_row`), so the bits are the one-thread loop's.
//!
//! One error array of width + 1 entries is shared, as Pillow has it.
//! Entries are atomics read and written with relaxed ordering (plain moves
//! on x86); what orders them is each row's progress, published every
//! [`BLOCK`] pixels with a release store and read with an acquire load.
//! No entry is read while another thread may write it, nor written while
//! another may still read it:
//!
//! - row y reads entry x + 1 at pixel x, written by row y − 1 at pixel
//!   x + 1: it waits for that progress;
//! - row y writes entry x at pixel x, after row y − 1 has passed pixel
//!   x + 1, so row y − 1 has done with it (it read entry x at pixel
//!   x − 1), and row y + 1 reads it only after row y's progress passes it.
//!
//! Progress is kept in two slots, row y's in slot y % 2, as (y + 1) << 32
//! | pixels done: row y + 2 reuses row y's slot only after row y is done
//! (the same thread does both), and its values are larger, so a wait for
//! "row y − 1 at least so far" is never satisfied too early.
//!
//! A waiting row spins briefly, then yields its core a few times, then
//! parks until the other thread's next publication (or [`PARK`] at most,
//! which covers a wake-up that crossed the park), so that a thread whose
//! partner lost its core does not burn the core it would need.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::dither::{FsState, fs_step};

/// Pixels a row does between two publications of its progress (a word of
/// output bits).
const BLOCK: usize = 64;

/// Spins of a waiting row before it yields its core.
const SPINS: u32 = 256;

/// Yields of a waiting row before it parks (a yield returns at once when
/// no other thread wants the core; a park and its wake-up cost tens of
/// microseconds).
const YIELDS: u32 = 64;

/// Longest park before a waiting row looks again on its own.
const PARK: Duration = Duration::from_micros(200);

/// The state two threads share while dithering one image's rows.
pub struct Wavefront {
    width: usize,
    errors: Vec<AtomicI32>,
    progress: [AtomicU64; 2],
    /// Per thread (rows of parity 0, 1): parked or about to park, and
    /// its handle (set the first time it parks).
    parked: [AtomicBool; 2],
    threads: [OnceLock<Thread>; 2],
    /// Set when a thread stops before its rows are done (see
    /// [`Wavefront::abandon_on_drop`]): waits end at once.
    abandoned: AtomicBool,
    /// Time both threads spent in waits that outlasted the spins, in
    /// nanoseconds (see [`Wavefront::stalled`]).
    stalled: AtomicU64,
}

/// Abandons a [`Wavefront`] when dropped.
pub struct Abandon<'a>(&'a Wavefront);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let wave = self.0;
        wave.abandoned.store(true, Ordering::Release);
        for thread in wave.threads.iter().filter_map(OnceLock::get) {
            thread.unpark();
        }
    }
}

/// A progress value: row `y` has done `x` pixels.
fn key(y: u32, x: usize) -> u64 {
    (u64::from(y) + 1) << 32 | x as u64
}

impl Wavefront {
    /// Continues a dither whose rows before `first` are done and left
    /// `errors` (width + 1 entries). One thread dithers the even rows, the
    /// other the odd ones ([`Wavefront::row`]).
    pub fn new(errors: &[i32], first: u32) -> Wavefront {
        let width = errors.len() - 1;
        let progress = [AtomicU64::new(0), AtomicU64::new(0)];
        if let Some(before) = first.checked_sub(1) {
            progress[before as usize % 2].store(key(before, width + 1), Ordering::Relaxed);
        }
        Wavefront {
            width,
            errors: errors.iter().map(|&e| AtomicI32::new(e)).collect(),
            progress,
            parked: [AtomicBool::new(false), AtomicBool::new(false)],
            threads: [OnceLock::new(), OnceLock::new()],
            abandoned: AtomicBool::new(false),
            stalled: AtomicU64::new(0),
        }
    }

    /// Time either thread has spent in waits that outlasted the spins
    /// (about a microsecond) and went on to yield the core or park: how
    /// much the two did not run side by side.
    pub fn stalled(&self) -> Duration {
        Duration::from_nanos(self.stalled.load(Ordering::Relaxed))
    }

    /// A guard that, when dropped, ends every wait of the other thread
    /// at once: held by each thread for as long as it dithers, so that a
    /// thread that stops (an error, a panic) never leaves the other
    /// waiting for its rows. Rows dithered after that are not the
    /// image's; the caller must not use them.
    pub fn abandon_on_drop(&self) -> Abandon<'_> {
        Abandon(self)
    }

    /// Dithers row `y` (its grey levels) into `out` (packed bits, as
    /// `dither_row` writes them). Each thread calls it for its rows in
    /// order, starting with the first row of its parity at or after
    /// [`Wavefront::new`]'s `first`. One thread may also do rows of both
    /// parities in turn, once the other has done every row it was given
    /// so far (the caller's "alone"): the rules above still hold.
    pub fn row(&self, y: u32, grey: &[u8], out: &mut [u64]) {
        let width = self.width;
        debug_assert_eq!(grey.len(), width);
        let me = y as usize % 2;
        let mut seen = 0;
        let mut st = FsState::ZERO;
        for (x, word) in (0..width).step_by(BLOCK).zip(out.iter_mut()) {
            let end = (x + BLOCK).min(width);
            // Pixel end − 1 reads entry end, written at row y − 1's pixel end.
            if y > 0 {
                seen = self.wait(y - 1, end + 1, seen);
            }
            let mut bits = 0u64;
            // Sliced once, so that the loop has no bounds checks.
            let (grey, errors) = (&grey[x..end], &self.errors[x..=end]);
            for (i, (&g, e)) in grey.iter().zip(errors.windows(2)).enumerate() {
                let below = e[1].load(Ordering::Relaxed);
                let (white, store) = fs_step(g, below, &mut st);
                bits |= u64::from(white) << (63 - i);
                e[0].store(store, Ordering::Relaxed);
            }
            *word = bits;
            if end < width {
                self.publish(me, key(y, end));
            }
        }
        self.errors[width].store(st.l0, Ordering::Relaxed);
        self.publish(me, key(y, width + 1));
    }

    /// The errors left for the row after the last one dithered (for a
    /// caller that goes on alone).
    pub fn errors(&self) -> Vec<i32> {
        self.errors
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .collect()
    }

    fn publish(&self, me: usize, value: u64) {
        self.progress[me].store(value, Ordering::Release);
        let other = 1 - me;
        if self.parked[other].load(Ordering::Relaxed)
            && let Some(thread) = self.threads[other].get()
        {
            thread.unpark();
        }
    }

    /// Waits until row `y` has done `pixels` pixels (`seen`: the value
    /// last read of its slot); returns the value read.
    fn wait(&self, y: u32, pixels: usize, mut seen: u64) -> u64 {
        let want = key(y, pixels);
        let slot = &self.progress[y as usize % 2];
        let me = 1 - y as usize % 2;
        let mut spins = 0;
        let mut stalled_since = None;
        while seen < want {
            seen = slot.load(Ordering::Acquire);
            if seen >= want {
                break;
            }
            if self.abandoned.load(Ordering::Acquire) {
                return u64::MAX;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else if spins < SPINS + YIELDS {
                if spins == SPINS {
                    stalled_since = Some(Instant::now());
                }
                spins += 1;
                std::thread::yield_now();
            } else {
                self.threads[me].get_or_init(std::thread::current);
                self.parked[me].store(true, Ordering::Relaxed);
                // A publication between the store above and the park is
                // either seen here or wakes the park; one that crossed both
                // is covered by the timeout.
                seen = slot.load(Ordering::Acquire);
                if seen < want {
                    std::thread::park_timeout(PARK);
                }
                self.parked[me].store(false, Ordering::Relaxed);
            }
        }
        if let Some(since) = stalled_since {
            let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stalled.fetch_add(ns, Ordering::Relaxed);
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bilevel::dither::dither_row;

    /// Grey levels that make the loop busy everywhere, from a small
    /// xorshift generator (no state shared with the code under test).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    /// Two threads over rows `first..height` give the bits and the final
    /// errors of the one-thread definition, for widths around the block
    /// and word sizes and with rows before `first` done by the definition.
    #[test]
    fn two_threads_give_the_one_thread_bits() {
        for (width, height, first) in [
            (1, 9, 0),
            (2, 7, 3),
            (63, 11, 0),
            (64, 10, 1),
            (65, 13, 4),
            (130, 40, 0),
            (1001, 31, 7),
        ] {
            let grey = noise(width * height, width as u64 * 31 + height as u64);
            let words = width.div_ceil(64);
            let mut want = vec![0u64; words * height];
            let mut errors = vec![0i32; width + 1];
            for (g, o) in grey.chunks(width).zip(want.chunks_mut(words)) {
                dither_row(g, &mut errors, o);
            }
            let mut got = vec![0u64; words * height];
            let mut before = vec![0i32; width + 1];
            for (g, o) in grey.chunks(width).zip(got.chunks_mut(words)).take(first) {
                dither_row(g, &mut before, o);
            }
            let rows: Vec<(usize, &mut [u64])> =
                got.chunks_mut(words).enumerate().skip(first).collect();
            let (mut even, mut odd): (Vec<_>, Vec<_>) =
                rows.into_iter().partition(|(y, _)| y % 2 == 0);
            let grey = &grey;
            let wave = Wavefront::new(&before, first as u32);
            let wave = &wave;
            std::thread::scope(|s| {
                s.spawn(move || {
                    for (y, o) in &mut odd {
                        wave.row(*y as u32, &grey[*y * width..][..width], o);
                    }
                });
                for (y, o) in &mut even {
                    wave.row(*y as u32, &grey[*y * width..][..width], o);
                }
            });
            let errors_after = wave.errors();
            assert!(
                got == want,
                "bits differ: width {width} height {height} first {first}"
            );
            assert_eq!(
                errors_after, errors,
                "errors differ: width {width} height {height}"
            );
        }
    }
}
