//! Codec throughput on a 7200×5600 text page (see `support/page.rs`):
//! compressing the 1-bit and 24-bit BMPs in both modes, from memory to
//! memory, and decoding the `.rle`. Run: `cargo bench --bench codec`.

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
    drop(ink);
    let mut out = Vec::with_capacity(64 << 20);

    let mut g = c.benchmark_group("compress");
    g.sample_size(20);
    for (name, bmp) in [("1bit", &one), ("24bit", &rgb)] {
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
