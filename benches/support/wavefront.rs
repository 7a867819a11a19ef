//! The two-core wavefront for the Floyd–Steinberg dither (issue 23, item
//! 4), as an experiment beside the serial loop: the photo-like page's grey
//! levels dithered by one thread, then by two threads taking alternate
//! rows, row y working only on pixels whose errors from row y − 1 are
//! final (row y − 1 at least 2 pixels ahead; progress published every
//! [`BLOCK`] pixels with release stores, read with acquire loads; a waiting
//! row spins briefly, then yields). Both use Pillow's arithmetic as
//! `src/bilevel/dither.rs` does (`fs_step`, the same branch-free form), and
//! the bits are checked equal. Not yet wired into `compress`; see
//! docs/performance.md. Run: `RLEWATCH_BENCH_WAVEFRONT=1 cargo bench
//! --bench codec` (and under `taskset -c 0` for one core).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Pixels a row does between two publications of its progress.
const BLOCK: usize = 64;

/// Pillow's state between pixels: error flowing right (×16), pending sums
/// for the row below.
#[derive(Clone, Copy)]
struct State {
    l: i32,
    l0: i32,
    l1: i32,
}

const ZERO: State = State { l: 0, l0: 0, l1: 0 };

/// One pixel: `src/bilevel/dither.rs`'s `fs_step`.
#[inline(always)]
fn step(g: u8, below: i32, st: &mut State) -> (bool, i32) {
    let s = i32::from(g) + (st.l + below) / 16;
    let white = s > 128;
    let mask = -i32::from(white);
    let (if_white, if_black) = ((s - 255).min(0), s.max(0));
    let err = if_black ^ ((if_white ^ if_black) & mask);
    let store = 3 * err + st.l0;
    st.l0 = 5 * err + st.l1;
    st.l1 = err;
    st.l = 7 * err;
    (white, store)
}

/// The serial loop: one error array of width + 1, rows top to bottom.
fn serial(grey: &[u8], width: usize, out: &mut [u8]) {
    let mut errors = vec![0i32; width + 1];
    for (g, o) in grey.chunks(width).zip(out.chunks_mut(width)) {
        let mut st = ZERO;
        for x in 0..width {
            let (white, below) = step(g[x], errors[x + 1], &mut st);
            o[x] = u8::from(white);
            errors[x] = below;
        }
        errors[width] = st.l0;
    }
}

/// The wavefront: the same error array, shared (relaxed atomics: plain
/// loads and stores on x86), and one progress counter per row (pixels
/// whose error entry is written; width + 1 once the row is done).
fn wavefront(grey: &[u8], width: usize, out: &mut [u8]) {
    let height = grey.len() / width;
    let errors: Vec<AtomicI32> = (0..=width).map(|_| AtomicI32::new(0)).collect();
    let progress: Vec<AtomicUsize> = (0..height).map(|_| AtomicUsize::new(0)).collect();
    let (errors, progress) = (&errors, &progress);
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for (y, row) in out.chunks_mut(width).enumerate() {
        if y % 2 == 0 {
            even.push((y, row))
        } else {
            odd.push((y, row))
        }
    }
    let work = move |rows: Vec<(usize, &mut [u8])>| {
        for (y, o) in rows {
            let g = &grey[y * width..(y + 1) * width];
            let mut st = ZERO;
            // Row y - 1's progress as last seen (row 0 waits for nothing).
            let mut seen = if y == 0 { width + 1 } else { 0 };
            let mut x = 0;
            while x < width {
                let end = (x + BLOCK).min(width);
                // Pixel x reads errors[x + 1], final once row y - 1 has
                // done pixel x + 1: the block needs progress end + 1.
                let need = end + 1;
                let mut spins = 0u32;
                while seen < need {
                    seen = progress[y - 1].load(Ordering::Acquire);
                    spins += 1;
                    if spins > 200 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                for i in x..end {
                    let (white, below) = step(g[i], errors[i + 1].load(Ordering::Relaxed), &mut st);
                    o[i] = u8::from(white);
                    errors[i].store(below, Ordering::Relaxed);
                }
                x = end;
                if x < width {
                    progress[y].store(x, Ordering::Release);
                }
            }
            errors[width].store(st.l0, Ordering::Relaxed);
            progress[y].store(width + 1, Ordering::Release);
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
    let mut a = vec![0u8; grey.len()];
    let mut b = vec![0u8; grey.len()];
    let (mut serial_t, mut serial_cpu) = (Duration::MAX, Duration::MAX);
    let (mut wave_t, mut wave_cpu) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu());
        serial(grey, width, &mut a);
        serial_t = serial_t.min(t.elapsed());
        serial_cpu = serial_cpu.min(cpu() - c);
        let (t, c) = (Instant::now(), cpu());
        wavefront(grey, width, &mut b);
        wave_t = wave_t.min(t.elapsed());
        wave_cpu = wave_cpu.min(cpu() - c);
        assert!(a == b, "the wavefront's bits differ from the serial loop's");
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "dither of the photo page's grey levels ({} pixels, best of {runs}, CPUs allowed: {}): serial {:.1} ms (CPU {:.1} ms), two-thread wavefront {:.1} ms (CPU {:.1} ms), {:.2}x; bits identical",
        grey.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(serial_t),
        ms(serial_cpu),
        ms(wave_t),
        ms(wave_cpu),
        serial_t.as_secs_f64() / wave_t.as_secs_f64(),
    );
}
