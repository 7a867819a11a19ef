#!/usr/bin/env python3
"""Differential check of `rlewatch compress` on PNG, PNM and GIF files
against Pillow 13.0.0's `Image.open(f).convert('1')` (dither) and
`.convert('1', dither=Image.Dither.NONE)` (threshold) followed by the
RLE coder of design §1 (copied from tests/pillow_differential.py).

Files are made with Pillow where it writes the variant and by hand
(struct/zlib) where it does not: every PNG colour type and bit depth,
plain and Adam7-interlaced, with and without tRNS; PNM P1-P6 plain and
raw at maxvals 1, 2, 10, 100, 254, 255, 256, 1000, 4095, 65534, 65535;
GIF with global or local palettes (grey ramps of several sizes, colour,
black/white), no palette, frame rectangles smaller than the screen with
and without a transparency index, interlaced. Widths 1..70, 127, 128,
129, 255, 256, 257, 300; heights 1..5 cycling (and 9..17 for interlace).
Content: noise, runs, pure black/white, values near the threshold. Also PNGs
written by Pillow itself (adaptive filters, optimize) in modes 1, L, P, RGB,
RGBA, LA and I;16.

usage: make_raster.py [--only png,pnm,gif] [--keep DIR] [--seed N] RLEWATCH
Prints counts per class and mode; exits 1 on any mismatch. RLEWATCH is run
as `RLEWATCH compress --force -o DIR/ [--threshold] FILE...`; while
`rlewatch compress` still parses its inputs as BMPs first (src/cli/encode.rs),
any binary with that interface calling `rlewatch::compress::compress` on
each file does (the results in the commit messages came from such a
40-line wrapper).
"""
import argparse
import collections
import io
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image

WIDTHS = list(range(1, 71)) + [127, 128, 129, 255, 256, 257, 300]

RUN = re.compile(rb"\x00+|\xff+")


def encode(width, height, pixels):
    """Design §1 from one byte per pixel (0 or 255), top row first."""
    out = bytearray(struct.pack("<HH", width, height))
    for y in range(height):
        for x0 in range(y * width, (y + 1) * width, 127):
            for m in RUN.finditer(pixels, x0, min((y + 1) * width, x0 + 127)):
                out.append((0x80 if pixels[m.start()] else 0) | (m.end() - m.start()))
    return bytes(out)


def reference(data, dither):
    im = Image.open(io.BytesIO(data))
    bw = im.convert("1") if dither else im.convert("1", dither=Image.Dither.NONE)
    return encode(im.width, im.height, bw.convert("L").tobytes())


# ------------------------------------------------------------------ content

def values(rng, n, maxval, pattern):
    """n samples in 0..maxval."""
    if pattern == "noise":
        return [rng.randint(0, maxval) for _ in range(n)]
    if pattern == "pure":
        return [rng.choice((0, maxval)) for _ in range(n)]
    if pattern == "runs":
        out = []
        while len(out) < n:
            out += [rng.choice((0, maxval, rng.randint(0, maxval)))] * rng.randint(1, 200)
        return out[:n]
    # near the threshold (128 of 255) and the extremes
    near = sorted({min(maxval, max(0, round(v * maxval / 255))) for v in (0, 1, 126, 127, 128, 129, 254, 255)})
    near += [v for v in (maxval - 1, 1, 255, 256, 127, 128) if 0 <= v <= maxval]
    return [rng.choice(near) for _ in range(n)]


PATTERNS = ["noise", "pure", "runs", "edge"]


def dims(i, interlaced=False):
    w = WIDTHS[i % len(WIDTHS)]
    h = (9 + i % 9) if interlaced else 1 + i % 5
    return w, h


# ---------------------------------------------------------------------- PNM

def pnm_files(rng):
    maxvals = [1, 2, 10, 100, 254, 255, 256, 1000, 4095, 65534, 65535]
    seps = [b" ", b"\n", b"\t", b"  \r\n"]
    for kind in "123456":
        for maxval in ([1] if kind in "14" else maxvals):
            cls = f"P{kind}-{maxval}"
            for i, w in enumerate(WIDTHS):
                w, h = dims(i)
                pattern = PATTERNS[i % 4]
                bands = 3 if kind in "36" else 1
                vals = values(rng, w * h * bands, maxval, pattern)
                head = b"P" + kind.encode()
                sep = seps[i % 4]
                if i % 7 == 3:
                    head += b"\n# a comment\n"
                else:
                    head += sep
                head += b"%d%s%d" % (w, sep, h)
                if kind not in "14":
                    head += b"%s%d" % (sep + b"#c\n" if i % 11 == 5 else sep, maxval)
                head += b"\n"
                if kind == "4":
                    body = bytearray()
                    for y in range(h):
                        row = vals[y * w:(y + 1) * w]
                        bits = 0
                        for x in range(w + (-w) % 8):
                            bits = bits << 1 | (row[x] if x < w else rng.randint(0, 1))
                        body += bits.to_bytes((w + 7) // 8, "big")
                elif kind in "56":
                    fmt = ">%dH" % len(vals) if maxval > 255 else "%dB" % len(vals)
                    body = struct.pack(fmt, *vals)
                elif kind == "1":
                    s = "".join(str(v) for v in vals)
                    parts = [s[j:j + 70] for j in range(0, len(s), 70)]
                    body = ("\n" if i % 2 else " ").join(parts).encode()
                    if i % 5 == 2:
                        body = b"# lead\n" + body
                else:
                    toks = [str(v) for v in vals]
                    body = b""
                    for j, t in enumerate(toks):
                        body += t.encode() + (b"\n" if j % 9 == 8 else b" ")
                        if i % 6 == 1 and j % 13 == 0:
                            body += b"# comment 12 34\n"
                yield cls, f"pnm-{cls}-{i}.pnm", head + body


# ----------------------------------------------------------------------- PNG

def chunk(cid, data):
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(w, h, bits, ctype, samples, interlace, plte=None, trns=None, rng=None):
    """samples: rows of per-pixel tuples of channel values."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]

    def pack_row(pixels):
        if bits < 8:
            acc, n, out = 0, 0, bytearray()
            for p in pixels:
                acc = acc << bits | p[0]
                n += bits
                if n == 8:
                    out.append(acc)
                    acc, n = 0, 0
            if n:
                out.append(acc << (8 - n))
            return bytes(out)
        fmt = ">%d%s" % (len(pixels) * channels, "H" if bits == 16 else "B")
        return struct.pack(fmt, *[c for p in pixels for c in p])

    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        rows = [[samples[y][x] for x in range(x0, w, dx)] for y in range(y0, h, dy)]
        if not rows or not rows[0]:
            continue
        for r in rows:
            raw.append(0)
            raw += pack_row(r)
    # random filters would need encoding; use filter 0 and let zlib vary
    ihdr = struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte is not None:
        out += chunk(b"PLTE", bytes(c for rgb in plte for c in rgb))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    z = zlib.compress(bytes(raw), 6)
    if rng and rng.random() < 0.5 and len(z) > 4:
        k = rng.randint(1, len(z) - 1)
        out += chunk(b"IDAT", z[:k]) + chunk(b"IDAT", z[k:])
    else:
        out += chunk(b"IDAT", z)
    return out + chunk(b"IEND", b"")


def png_files(rng):
    combos = [(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3),
              (8, 3), (8, 4), (16, 4), (8, 6), (16, 6)]
    for bits, ctype in combos:
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
        for interlace in (False, True):
            for with_trns in (False, True):
                cls = f"png-{bits}b-c{ctype}{'-i' if interlace else ''}{'-t' if with_trns else ''}"
                for i in range(len(WIDTHS)):
                    w, h = dims(i, interlace)
                    pattern = PATTERNS[i % 4]
                    maxv = (1 << bits) - 1
                    plte = trns = None
                    if ctype == 3:
                        n = rng.choice([1 << bits, max(1, (1 << bits) - rng.randint(0, 3))])
                        kind = i % 3
                        if kind == 0:
                            plte = [(rng.randint(0, 255),) * 3 for _ in range(n)]
                        elif kind == 1:
                            plte = [tuple(rng.randint(0, 255) for _ in range(3)) for _ in range(n)]
                        else:
                            plte = [rng.choice([(0, 0, 0), (255, 255, 255), (127, 128, 129)]) for _ in range(n)]
                        # indices may pass the palette's end
                        idx = values(rng, w * h, maxv, pattern)
                        samples = [[(idx[y * w + x],) for x in range(w)] for y in range(h)]
                        if with_trns:
                            trns = bytes(rng.choice((0, 255, 128)) for _ in range(rng.randint(1, n)))
                    else:
                        vals = values(rng, w * h * channels, maxv, pattern)
                        if ctype in (4, 6) and pattern == "pure":
                            # alpha: mostly opaque
                            for k in range(channels - 1, len(vals), channels):
                                vals[k] = maxv if rng.random() < 0.8 else rng.randint(0, maxv)
                        samples = [[tuple(vals[(y * w + x) * channels:(y * w + x + 1) * channels])
                                    for x in range(w)] for y in range(h)]
                        if with_trns and ctype in (0, 2):
                            key = samples[0][0]
                            trns = struct.pack(">%dH" % len(key), *key)
                    if with_trns and trns is None:
                        continue
                    data = png_bytes(w, h, bits, ctype, samples, interlace, plte, trns, rng)
                    yield cls, f"{cls}-{i}.png", data
    # Pillow's own writer: adaptive row filters, several IDAT chunks.
    for mode in ("1", "L", "P", "RGB", "RGBA", "LA", "I;16"):
        cls = f"png-pillow-{mode}"
        for i in range(len(WIDTHS)):
            w, h = dims(i)
            h += 6
            n = {"1": 1, "L": 1, "P": 1, "RGB": 3, "RGBA": 4, "LA": 2, "I;16": 1}[mode]
            maxv = 65535 if mode == "I;16" else (1 if mode == "1" else 255)
            vals = values(rng, w * h * n, maxv, PATTERNS[i % 4])
            if mode == "1":
                im = Image.frombytes("L", (w, h), bytes(255 * v for v in vals)).convert("1")
            elif mode == "I;16":
                im = Image.frombytes("I;16", (w, h), struct.pack("<%dH" % len(vals), *vals))
            elif mode == "P":
                im = Image.frombytes("P", (w, h), bytes(vals))
                im.putpalette(bytes(rng.randint(0, 255) for _ in range(3 * rng.randint(2, 256))))
            else:
                im = Image.frombytes(mode, (w, h), bytes(vals))
            buf = io.BytesIO()
            im.save(buf, "PNG", optimize=i % 2 == 0)
            yield cls, f"{cls}-{i}.png", buf.getvalue()


# ----------------------------------------------------------------------- GIF

def lzw_encode(indices, min_size):
    """A plain GIF LZW encoder (clear at start, table reset when full)."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    out, acc, nbits = bytearray(), 0, 0
    size = min_size + 1

    def emit(code):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8

    table = {(i,): i for i in range(clear)}
    nxt = end + 1
    emit(clear)
    cur = ()
    for p in indices:
        if cur + (p,) in table:
            cur = cur + (p,)
            continue
        emit(table[cur])
        if nxt < 4096:
            table[cur + (p,)] = nxt
            nxt += 1
            if nxt - 1 == (1 << size) and size < 12:
                size += 1
        else:
            emit(clear)
            table = {(i,): i for i in range(clear)}
            nxt = end + 1
            size = min_size + 1
        cur = (p,)
    if cur:
        emit(table[cur])
    emit(end)
    if nbits:
        out.append(acc & 0xFF)
    blocks = bytearray()
    for k in range(0, len(out), 255):
        part = out[k:k + 255]
        blocks += bytes([len(part)]) + part
    return bytes([min_size]) + bytes(blocks) + b"\x00"


def gif_bytes(sw, sh, gct, frame, trans=None, lct=None, interlace=False):
    fx, fy, fw, fh, idx = frame
    def table_bits(t):
        b = 0
        while (2 << b) < len(t):
            b += 1
        return b
    flags = 0
    out = b"GIF89a" + struct.pack("<HH", sw, sh)
    if gct is not None:
        flags = 0x80 | table_bits(gct)
    out += bytes([flags, 0, 0])
    if gct is not None:
        n = 2 << table_bits(gct)
        out += bytes(c for rgb in gct for c in rgb) + b"\x00" * (3 * (n - len(gct)))
    if trans is not None:
        out += b"!\xf9\x04" + bytes([1, 0, 0, trans]) + b"\x00"
    lflags = 0x40 if interlace else 0
    if lct is not None:
        lflags |= 0x80 | table_bits(lct)
    out += b"," + struct.pack("<HHHH", fx, fy, fw, fh) + bytes([lflags])
    if lct is not None:
        n = 2 << table_bits(lct)
        out += bytes(c for rgb in lct for c in rgb) + b"\x00" * (3 * (n - len(lct)))
    rows = [idx[y * fw:(y + 1) * fw] for y in range(fh)]
    if interlace:
        order = list(range(0, fh, 8)) + list(range(4, fh, 8)) + list(range(2, fh, 4)) + list(range(1, fh, 2))
        rows = [rows[y] for y in order]
    flat = [p for r in rows for p in r]
    maxidx = max(flat) if flat else 0
    min_size = max(2, maxidx.bit_length())
    out += lzw_encode(flat, min_size)
    return out + b";"


def gif_files(rng):
    kinds = ["bw", "colour", "ramp2", "ramp4", "ramp16", "ramp256", "grey-not-ramp", "none", "local-ramp", "local-colour"]
    for kind in kinds:
        for variant in ("full", "rect", "rect-trans", "interlace"):
            cls = f"gif-{kind}-{variant}"
            for i in range(len(WIDTHS)):
                w, h = dims(i, variant == "interlace")
                pattern = PATTERNS[i % 4]
                ncol = {"bw": 2, "colour": 1 << rng.randint(1, 8), "ramp2": 2, "ramp4": 4, "ramp16": 16,
                        "ramp256": 256, "grey-not-ramp": 16, "none": 256, "local-ramp": 64,
                        "local-colour": 8}[kind]
                if kind == "bw":
                    pal = [(0, 0, 0), (255, 255, 255)]
                elif kind.startswith("ramp") or kind == "local-ramp":
                    pal = [(k, k, k) for k in range(ncol)]
                elif kind == "grey-not-ramp":
                    pal = [(v, v, v) for v in sorted(rng.sample(range(256), ncol))]
                else:
                    pal = [tuple(rng.randint(0, 255) for _ in range(3)) for _ in range(ncol)]
                gct = lct = None
                if kind.startswith("local"):
                    lct = pal
                    gct = [(255, 0, 0), (0, 0, 0)] if i % 2 else None
                elif kind != "none":
                    gct = pal
                if variant.startswith("rect") and w > 1 and h > 1:
                    fx, fy = rng.randint(0, w // 2), rng.randint(0, h // 2)
                    fw, fh = rng.randint(1, w - fx), rng.randint(1, h - fy)
                else:
                    fx, fy, fw, fh = 0, 0, w, h
                idx = values(rng, fw * fh, ncol - 1, pattern)
                trans = rng.randint(0, ncol - 1) if variant == "rect-trans" else None
                data = gif_bytes(w, h, gct, (fx, fy, fw, fh, idx), trans, lct, variant == "interlace")
                yield cls, f"{cls}-{i}.gif", data


# ---------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rlewatch")
    ap.add_argument("--only", default="png,pnm,gif")
    ap.add_argument("--keep")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}")
    root = args.keep or tempfile.mkdtemp(prefix="raster-")
    src = os.path.join(root, "in")
    os.makedirs(src, exist_ok=True)
    gens = {"pnm": pnm_files, "png": png_files, "gif": gif_files}
    files, expected = [], {}
    counts = collections.defaultdict(collections.Counter)
    skipped = collections.Counter()
    for fmt in args.only.split(","):
        for cls, name, data in gens[fmt](rng):
            try:
                want = (reference(data, True), reference(data, False))
            except Exception as e:  # Pillow refuses: not compared
                skipped[f"{cls}: {type(e).__name__}: {e}"] += 1
                continue
            path = os.path.join(src, name)
            with open(path, "wb") as f:
                f.write(data)
            files.append((cls, name, path))
            expected[name] = want
            counts[cls]["files"] += 1
    failures = []
    for mode, flags, k in (("dither", [], 0), ("threshold", ["--threshold"], 1)):
        dst = os.path.join(root, mode) + "/"
        os.makedirs(dst, exist_ok=True)
        for start in range(0, len(files), 2000):
            batch = files[start:start + 2000]
            proc = subprocess.run([args.rlewatch, "compress", "--force", "-o", dst] + flags +
                                  [p for _, _, p in batch], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for cls, name, _ in batch:
                out = os.path.join(dst, os.path.splitext(name)[0] + ".rle")
                try:
                    with open(out, "rb") as f:
                        got = f.read()
                    os.remove(out)
                except FileNotFoundError:
                    said = [line for line in proc.stderr.splitlines() if name in line]
                    failures.append((cls, f"{name} {mode}: no output ({' / '.join(said)[:300]})"))
                    counts[cls][mode + " failed"] += 1
                    continue
                want = expected[name][k]
                if got == want:
                    counts[cls][mode + " passed"] += 1
                else:
                    at = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]),
                              min(len(got), len(want)))
                    failures.append((cls, f"{name} {mode}: differs at byte {at}: Pillow {want[at:at+6].hex()} "
                                    f"rlewatch {got[at:at+6].hex()} (lengths {len(want)}, {len(got)})"))
                    counts[cls][mode + " failed"] += 1
    total = collections.Counter()
    for cls in sorted(counts):
        c = counts[cls]
        total.update(c)
        print(f"{cls:28} files {c['files']:4}  dither {c['dither passed']:4} ok {c['dither failed']:3} bad"
              f"  threshold {c['threshold passed']:4} ok {c['threshold failed']:3} bad")
    print(f"TOTAL files {total['files']}, comparisons passed {total['dither passed'] + total['threshold passed']}, "
          f"failed {total['dither failed'] + total['threshold failed']}")
    for why, n in sorted(skipped.items()):
        print(f"not compared (Pillow refuses) x{n}: {why}")
    shown = collections.Counter()
    for cls, f in failures:
        shown[cls] += 1
        if shown[cls] <= 2:
            print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
