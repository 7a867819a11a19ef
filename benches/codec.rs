//! Codec throughput on 7200×5600 pages (see `support/page.rs`): the text
//! page as a 1-bit BMP, as a noisy 24-bit scan and as a pure black-and-white
//! 24-bit BMP (every pixel 0 or 255, like the reference's samples), and a
//! photo-like 24-bit page; each compressed in both modes from memory to
//! memory, beside a copy of the same bytes (`memcpy`, for scale); and
//! decoding the `.rle`. Run: `cargo bench --bench codec`.
//! `RLEWATCH_BENCH_WAVEFRONT=1` first times the dither wavefront on one
//! thread and on two (`support/wavefront.rs`);
//! `RLEWATCH_BENCH_RUNS=N` first times the run finders against each other,
//! N rounds alternating (`support/runs.rs`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlewatch::bilevel::Conversion;
use rlewatch::compress::{self, Options};
use rlewatch::rle;

#[path = "support/page.rs"]
mod page;
#[path = "support/runs.rs"]
mod runs;
#[path = "support/wavefront.rs"]
mod wavefront;

fn codec(c: &mut Criterion) {
    let ink = page::ink(page::WIDTH, page::HEIGHT);
    let one = page::bmp_1bit(&ink, page::WIDTH, page::HEIGHT);
    let rgb = page::bmp_24bit(&ink, page::WIDTH, page::HEIGHT);
    let bw = page::bmp_24bit_bw(&ink, page::WIDTH, page::HEIGHT);
    let photo = page::bmp_24bit_photo(page::WIDTH, page::HEIGHT);
    drop(ink);
    if let Some(rounds) = std::env::var("RLEWATCH_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        runs::run(&one, page::WIDTH, page::HEIGHT, rounds);
    }
    if std::env::var_os("RLEWATCH_BENCH_WAVEFRONT").is_some() {
        wavefront::run(&grey_of(&photo), page::WIDTH, 7);
    }
    let mut out = Vec::with_capacity(64 << 20);

    let mut g = c.benchmark_group("compress");
    g.sample_size(20);
    for (name, bmp) in [
        ("1bit", &one),
        ("24bit", &rgb),
        ("24bit-bw", &bw),
        ("24bit-photo", &photo),
    ] {
        g.throughput(Throughput::Bytes(bmp.len() as u64));
        // The bytes copied once, for scale: memory speed on this machine.
        let mut copy = vec![0u8; bmp.len()];
        g.bench_function(format!("{name}/memcpy"), |b| {
            b.iter(|| {
                copy.copy_from_slice(bmp);
                black_box(&copy);
            })
        });
        drop(copy);
        for conversion in [Conversion::Dither, Conversion::Threshold] {
            g.bench_function(format!("{name}/{conversion}"), |b| {
                b.iter(|| {
                    out.clear();
                    compress::compress(
                        bmp.as_slice(),
                        &mut out,
                        Options {
                            conversion,
                            max_pixels: u64::MAX,
                            formats: rlewatch::formats::FormatSet::DECODED,
                        },
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();

    out.clear();
    compress::compress(one.as_slice(), &mut out, Options::default()).unwrap();
    eprintln!(
        "1-bit page: {} bytes BMP → {} bytes .rle",
        one.len(),
        out.len()
    );
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    // Throughput in bytes of decoded 1-bit pixels.
    g.throughput(Throughput::Bytes((page::WIDTH * page::HEIGHT / 8) as u64));
    g.bench_function("rle", |b| {
        let mut row = vec![0u64; rle::words_for(page::WIDTH)];
        b.iter(|| {
            let mut dec = rle::Decoder::new(out.as_slice()).unwrap();
            while dec.next_row(&mut row).unwrap() {
                black_box(&row);
            }
        })
    });
    g.finish();
}

/// Pillow's grey levels of a bottom-up 24-bit BMP, top row first.
fn grey_of(bmp: &[u8]) -> Vec<u8> {
    let offset = u32::from_le_bytes(bmp[10..14].try_into().unwrap()) as usize;
    let (w, h) = (page::WIDTH, page::HEIGHT);
    let stride = (w * 3).div_ceil(4) * 4;
    let mut grey = Vec::with_capacity(w * h);
    for y in (0..h).rev() {
        let row = &bmp[offset + y * stride..][..w * 3];
        grey.extend(row.chunks_exact(3).map(|p| {
            let (b, g, r) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            ((299 * r + 587 * g + 114 * b) / 1000) as u8
        }));
    }
    grey
}

criterion_group!(benches, codec);
criterion_main!(benches);
