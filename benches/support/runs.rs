//! The run finders (`rle::RunFinder`) timed against each other in one
//! process, alternating round by round so that both see the same load:
//! the rows of the 1-bit text page, and as many rows of noise (a coin per
//! pixel, about one run every two pixels: the dense extreme), each row
//! handed over as the BMP stores it (`RowLayout::encode_bytes_into`, as
//! `compress` does). The outputs of every finder are checked equal.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rlewatch::rle::{RowLayout, RunFinder};

/// Times `rounds` alternating rounds and prints best and median per
/// finder and row kind.
pub fn run(bmp: &[u8], width: usize, height: usize, rounds: usize) {
    let offset = u32::from_le_bytes(bmp[10..14].try_into().unwrap()) as usize;
    let stride = width.div_ceil(32) * 4;
    let text = &bmp[offset..][..stride * height];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..text.len())
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let finders = RunFinder::available();
    let mut out = vec![0u8; width * height];
    for (name, rows) in [("text page", text), ("noise", &noise[..])] {
        let mut times = vec![Vec::new(); finders.len()];
        let mut reference: Option<Vec<u8>> = None;
        for _ in 0..rounds {
            for (f, &finder) in finders.iter().enumerate() {
                let layout = RowLayout::with_finder(width, finder);
                let start = Instant::now();
                let mut n = 0;
                for row in rows.chunks_exact(stride) {
                    n += layout.encode_bytes_into(row, &mut out[n..]);
                }
                times[f].push(start.elapsed());
                black_box(&out[..n]);
                match &reference {
                    None => reference = Some(out[..n].to_vec()),
                    Some(r) => assert!(r[..] == out[..n], "{finder:?} differs on the {name}"),
                }
            }
        }
        let runs = reference.map_or(0, |r| r.len());
        for (f, finder) in finders.iter().enumerate() {
            let t = &mut times[f];
            t.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            eprintln!(
                "runs/{name}/{finder:?}: best {:.2} ms, median {:.2} ms ({rounds} rounds, {runs} runs, {:.2} GB/s of BMP rows at best)",
                ms(t[0]),
                ms(t[t.len() / 2]),
                rows.len() as f64 / t[0].as_secs_f64() / 1e9,
            );
        }
    }
}
