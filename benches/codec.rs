//! Codec throughput on 7200×5600 pages (see `support/page.rs`): the text
//! page as a 1-bit BMP, as a noisy 24-bit scan and as a pure black-and-white
//! 24-bit BMP (every pixel 0 or 255, like the reference's samples), and a
//! photo-like 24-bit page; each compressed in both modes from memory to
//! memory; and decoding the `.rle`. Run: `cargo bench --bench codec`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlewatch::bilevel::Conversion;
use rlewatch::compress::{self, Options};
use rlewatch::rle;

#[path = "support/page.rs"]
mod page;

fn codec(c: &mut Criterion) {
    let ink = page::ink(page::WIDTH, page::HEIGHT);
    let one = page::bmp_1bit(&ink, page::WIDTH, page::HEIGHT);
    let rgb = page::bmp_24bit(&ink, page::WIDTH, page::HEIGHT);
    let bw = page::bmp_24bit_bw(&ink, page::WIDTH, page::HEIGHT);
    let photo = page::bmp_24bit_photo(page::WIDTH, page::HEIGHT);
    drop(ink);
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

criterion_group!(benches, codec);
criterion_main!(benches);
