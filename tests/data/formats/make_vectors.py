#!/usr/bin/env python3
"""Writes the small PNG, PNM and GIF unit-test vectors of
src/formats/{png,pnm,gif}/tests.rs into tests/data/formats/{png,pnm,gif}/,
each with NAME.dither.rle and NAME.threshold.rle made by Pillow 13.0.0
(`convert('1')`, `convert('1', dither=NONE)`) and the RLE coder of design
§1 (make_raster.py's copy of tests/pillow_differential.py's). The images
are built by hand (make_raster.py's writers) from a fixed seed, so running
this again gives the same bytes.

usage: make_vectors.py   (from anywhere; writes beside itself)
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_raster import gif_bytes, png_bytes, reference  # noqa: E402


def grid(rng, w, h, channels, maxv):
    return [[tuple(rng.choice((0, maxv, rng.randint(0, maxv))) for _ in range(channels))
             for _ in range(w)] for _ in range(h)]


def vectors():
    rng = random.Random(22)
    w, h = 37, 9
    yield "png", "grey1.png", png_bytes(w, h, 1, 0, grid(rng, w, h, 1, 1), False)
    yield "png", "grey2.png", png_bytes(w, h, 2, 0, grid(rng, w, h, 1, 3), False)
    # 16-bit grey: clipped, so 300 shows white
    g16 = grid(rng, w, h, 1, 65535)
    g16[0][0] = (300,)
    yield "png", "grey16.png", png_bytes(w, h, 16, 0, g16, False)
    yield "png", "pal4-short.png", png_bytes(
        w, h, 4, 3, grid(rng, w, h, 1, 15), False,
        plte=[(0, 0, 0), (255, 255, 255), (200, 10, 10), (90, 90, 90), (128, 128, 128)])
    yield "png", "rgb16.png", png_bytes(w, h, 16, 2, grid(rng, w, h, 3, 65535), False)
    yield "png", "la16.png", png_bytes(w, h, 16, 4, grid(rng, w, h, 2, 65535), False)
    yield "png", "rgba8.png", png_bytes(w, h, 8, 6, grid(rng, w, h, 4, 255), False)
    yield "png", "adam7-rgb8.png", png_bytes(w, h, 8, 2, grid(rng, w, h, 3, 255), True)
    yield "png", "adam7-grey1.png", png_bytes(w, h, 1, 0, grid(rng, w, h, 1, 1), True)
    # black and white only: lossless
    yield "png", "bw-grey8.png", png_bytes(w, h, 8, 0, [[(rng.choice((0, 255)),) for _ in range(w)]
                                                         for _ in range(h)], False)

    def vals(n, maxv):
        return [rng.choice((0, maxv, rng.randint(0, maxv))) for _ in range(n)]

    bits = vals(w * h, 1)
    yield "pnm", "p1-comments.pbm", (b"P1\n# made by hand\n%d %d\n" % (w, h) +
                                     "".join(str(b) + ("\n" if i % 30 == 29 else "") for i, b in enumerate(bits)).encode()
                                     + b"\n# trailing comment\n")
    raw = bytearray()
    for y in range(h):
        acc = 0
        for x in range(w + (-w) % 8):
            acc = acc << 1 | (bits[y * w + x] if x < w else 1)
        raw += acc.to_bytes((w + 7) // 8, "big")
    yield "pnm", "p4.pbm", b"P4 %d %d\n" % (w, h) + bytes(raw)
    yield "pnm", "p2-maxval10.pgm", (b"P2 %d %d 10\n" % (w, h) +
                                     b" ".join(b"%d" % v for v in vals(w * h, 10)) + b"\n")
    yield "pnm", "p5-maxval65535.pgm", (b"P5 %d %d 65535\n" % (w, h) +
                                        b"".join(v.to_bytes(2, "big") for v in vals(w * h, 65535)))
    yield "pnm", "p6-maxval1000.ppm", (b"P6 %d %d 1000\n" % (w, h) +
                                       b"".join(v.to_bytes(2, "big") for v in vals(3 * w * h, 1000)))
    yield "pnm", "p3.ppm", (b"P3\n%d %d\n255\n" % (w, h) +
                            b"\n".join(b"%d" % v for v in vals(3 * w * h, 255)) + b"\n")

    def idx(n, top):
        return [rng.choice((0, top, rng.randint(0, top))) for _ in range(n)]

    yield "gif", "bw.gif", gif_bytes(w, h, [(0, 0, 0), (255, 255, 255)], (0, 0, w, h, idx(w * h, 1)))
    yield "gif", "ramp16-L.gif", gif_bytes(w, h, [(k, k, k) for k in range(16)],
                                           (0, 0, w, h, idx(w * h, 15)))
    yield "gif", "rect-transparent.gif", gif_bytes(
        w, h, [(0, 0, 0), (255, 255, 255), (99, 99, 99), (250, 0, 0)],
        (5, 2, 20, 5, idx(100, 3)), trans=1)
    yield "gif", "interlaced.gif", gif_bytes(
        w, h, [(0, 0, 0), (255, 255, 255), (130, 130, 130), (10, 200, 10)],
        (0, 0, w, h, idx(w * h, 3)), interlace=True)
    yield "gif", "local-ramp-global.gif", gif_bytes(
        w, h, [(255, 255, 255), (0, 0, 0)], (0, 0, w, h, idx(w * h, 7)),
        lct=[(k, k, k) for k in range(8)])


def main():
    for fmt, name, data in vectors():
        d = os.path.join(HERE, fmt)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        stem = os.path.splitext(name)[0]
        for mode, dither in (("dither", True), ("threshold", False)):
            with open(os.path.join(d, f"{stem}.{mode}.rle"), "wb") as f:
                f.write(reference(data, dither))
        print(fmt, name, len(data))


if __name__ == "__main__":
    main()
