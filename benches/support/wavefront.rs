//! The two-core wavefront for the Floyd–Steinberg dither (design §3,
//! "The dither wavefront"), timed on its own: the photo-like page's grey
//! levels dithered by [`Wavefront`] on one thread (every row in turn),
//! then on two threads taking alternate rows, and the bits checked
//! equal. `rlewatch compress` uses it (`src/compress/pipeline.rs`); this
//! times the dither alone, without reading, grey levels or encoding.
//! Run: `RLEWATCH_BENCH_WAVEFRONT=1 cargo bench --bench codec` (and under
//! `taskset -c 0` for one core).

use std::time::{Duration, Instant};

use rlewatch::bilevel::Wavefront;

/// A row's index, grey levels and bits.
type Row<'a> = (usize, (&'a [u8], &'a mut [u64]));

/// Dithers every row of `grey` into `out` (a word-aligned row of bits
/// per row): on this thread alone, or with a second one taking the odd rows.
fn dither(grey: &[u8], width: usize, out: &mut [u64], two: bool) {
    let words = width.div_ceil(64);
    let wave = &Wavefront::new(&vec![0; width + 1], 0);
    let rows = grey.chunks(width).zip(out.chunks_mut(words)).enumerate();
    if !two {
        for (y, (g, o)) in rows {
            wave.row(y as u32, g, o);
        }
        return;
    }
    let (even, odd): (Vec<_>, Vec<_>) = rows.partition(|(y, _)| y % 2 == 0);
    let work = move |rows: Vec<Row<'_>>| {
        for (y, (g, o)) in rows {
            wave.row(y as u32, g, o);
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| work(odd));
        work(even);
    });
}

/// This process's CPU time (user + system, all threads).
fn cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our own rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Times both on `grey` (`width` pixels a row), best of `runs`,
/// alternating, and prints the figures.
pub fn run(grey: &[u8], width: usize, runs: usize) {
    let words = width.div_ceil(64) * (grey.len() / width);
    let mut a = vec![0u64; words];
    let mut b = vec![0u64; words];
    let (mut serial_t, mut serial_cpu) = (Duration::MAX, Duration::MAX);
    let (mut wave_t, mut wave_cpu) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu());
        dither(grey, width, &mut a, false);
        serial_t = serial_t.min(t.elapsed());
        serial_cpu = serial_cpu.min(cpu() - c);
        let (t, c) = (Instant::now(), cpu());
        dither(grey, width, &mut b, true);
        wave_t = wave_t.min(t.elapsed());
        wave_cpu = wave_cpu.min(cpu() - c);
        assert!(a == b, "two threads' bits differ from one thread's");
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "dither of the photo page's grey levels ({} pixels, best of {runs}, CPUs allowed: {}): one thread {:.1} ms (CPU {:.1} ms), two threads {:.1} ms (CPU {:.1} ms), {:.2}x; bits identical",
        grey.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(serial_t),
        ms(serial_cpu),
        ms(wave_t),
        ms(wave_cpu),
        serial_t.as_secs_f64() / wave_t.as_secs_f64(),
    );
}
