#!/usr/bin/env python3
"""Differential check of `rlewatch compress` against the reference program's
method: Pillow's `Image.open(path).convert('1')` (dither) and
`.convert('1', dither=Image.Dither.NONE)` (threshold), followed by a
straightforward run-length coder written from design §1.

The BMP files are written byte by byte here (struct, not Pillow's saver,
which only writes 1, 8, 24 and 32 bits per pixel), one layout class at a
time:

  pal1 pal2 pal4 pal8   1/2/4/8-bpp palettes: black-and-white, grey ramp,
                        other greys, colour, near-threshold colours; full
                        and short palettes (biClrUsed); OS/2 core, INFO,
                        V4 and V5 headers
  rgb16-555             16 bpp BI_RGB (5-5-5, top bit random)
  bf16-565, bf16-555    16 bpp BI_BITFIELDS (INFO + masks, V3, V4, V5; one
                        V5 5-5-5 variant with a 0x8000 alpha mask)
  rgb24, bf24           24 bpp BI_RGB, and BI_BITFIELDS (Pillow reads it)
  rgb32                 32 bpp BI_RGB (the 4th byte random; one V5
                        variant declares an alpha mask, which BI_RGB ignores)
  bf32-x                32 bpp BI_BITFIELDS without alpha: BGRX, XBGR, BGXR
  bf32-alpha            32 bpp BI_BITFIELDS with an alpha mask (V3, V4,
                        V5 headers): BGRA, RGBA, ABGR, BGAR; Pillow opens
                        these as RGBA

bottom-up and top-down (not the OS/2 core header, which cannot be). Every
header/direction variant of every layout class gets every width 1..300
(height 1..4), then every variant again at the word, chunk and byte edges
with taller images (1-9, 15-17, 31-33, 63-65, 126-129, 253-257, 381, 508,
509, 1001, 2550 wide), one 517x508 image per class (2^18+ pixels, where
rlewatch switches to a table for 16-bit pixels), and two 2053x2049 noisy
images per class that dithers (2^22+ pixels, bottom-up and top-down or two
headers: rlewatch dithers them on two threads). Content: noise, long runs
(so runs fill and cross the 127-pixel chunks), pure black/white, and
levels next to the threshold; spare bits and row padding are random.

Every file's header is parsed back and checked against what was meant (bit
depth, compression, masks, palette size, direction, offsets), and Pillow
must open it with the expected mode and raw mode (e.g. "P;4", "BGR;16",
"BGRA"), so a layout cannot silently turn into another. Only files Pillow
reads are compared, and what is left out is printed with Pillow's reason:
Pillow 13.0.0 refuses 2-bpp files ("Unsupported BMP pixel depth (2)"), so
pal2 files are compared with Pillow's reading of a twin, the same palette
(biClrUsed given) and indices written at 8 bpp (should Pillow start reading
them, they are compared directly); 4-bpp files with a grey-ramp palette and
4/8-bpp files with a 2-entry [black, white] palette are not generated, as
Pillow misreads them (raw mode "L" or "1" whatever the depth; design §2).
A refusal of any other layout fails the run.

Both modes run over every file, in two batch calls of the binary
(`compress [--threshold] -o DIR IN_DIR`). Prints a summary per layout and
mode; exits 1 on any mismatch, naming the file, the mode and the first
differing byte offset (and the pixel it encodes). Deterministic: the seed
(default 7) is printed. 18,272 files, 36,544 comparisons, about 25 s on 2
cores. Needs Pillow (pinned to 13.0.0 by `.ci/run`).

usage: pillow_differential.py [--seed N] [--keep DIR] PATH/TO/rlewatch
  --keep DIR  write the files to DIR/bmp (the outputs to DIR/dither and
              DIR/threshold; all three replaced) and keep them
"""
import argparse
import collections
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import random
import time

import PIL
from PIL import Image

BI_RGB, BI_BITFIELDS = 0, 3
SRGB = 0x73524742  # 'sRGB', bV4CSType
WIDTHS = range(1, 301)
EDGE_WIDTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
               126, 127, 128, 129, 253, 254, 255, 256, 257, 381, 508, 509,
               1001, 2550]
PATTERNS = ["noise", "runs", "pure", "edge"]

# Masks (r, g, b, a) and the raw mode Pillow must pick for them.
M555 = (0x7C00, 0x3E0, 0x1F, 0)
M565 = (0xF800, 0x7E0, 0x1F, 0)
M24 = (0xFF0000, 0xFF00, 0xFF, 0)
BGRX = (0xFF0000, 0xFF00, 0xFF, 0)
XBGR = (0xFF000000, 0xFF0000, 0xFF00, 0)
BGXR = (0xFF000000, 0xFF00, 0xFF, 0)
BGRA = (0xFF0000, 0xFF00, 0xFF, 0xFF000000)
RGBA = (0xFF, 0xFF00, 0xFF0000, 0xFF000000)
ABGR = (0xFF000000, 0xFF0000, 0xFF00, 0xFF)
BGAR = (0xFF000000, 0xFF00, 0xFF, 0xFF0000)
RAWMODE = {BGRX: "BGRX", XBGR: "XBGR", BGXR: "BGXR", BGRA: "BGRA", RGBA: "RGBA",
           ABGR: "ABGR", BGAR: "BGAR"}


class Layout:
    """One layout class: bit depth, compression and its header variants,
    each (header size, top-down, masks or None)."""

    def __init__(self, name, bits, compression, variants, rawmode=None, pillow_refuses=None):
        self.name, self.bits, self.compression = name, bits, compression
        self.variants, self.rawmode, self.pillow_refuses = variants, rawmode, pillow_refuses


PAL_VARIANTS = [(12, False, None), (40, False, None), (40, True, None),
                (108, True, None), (124, False, None)]
LAYOUTS = [
    Layout("pal1", 1, BI_RGB, PAL_VARIANTS),
    Layout("pal2", 2, BI_RGB, PAL_VARIANTS, pillow_refuses="Unsupported BMP pixel depth (2)"),
    Layout("pal4", 4, BI_RGB, PAL_VARIANTS),
    Layout("pal8", 8, BI_RGB, PAL_VARIANTS),
    Layout("rgb16-555", 16, BI_RGB, [(40, False, None), (40, True, None), (108, False, None),
                                     (124, True, None)], "BGR;15"),
    Layout("bf16-565", 16, BI_BITFIELDS, [(40, False, M565), (40, True, M565), (56, False, M565),
                                          (108, True, M565), (124, False, M565)], "BGR;16"),
    Layout("bf16-555", 16, BI_BITFIELDS, [(40, False, M555), (40, True, M555), (124, False, M555),
                                          (124, True, M555[:3] + (0x8000,))], "BGR;15"),
    Layout("rgb24", 24, BI_RGB, [(40, False, None), (40, True, None), (108, False, None),
                                 (124, True, None)], "BGR"),
    Layout("bf24", 24, BI_BITFIELDS, [(40, False, M24), (40, True, M24), (124, False, M24)], "BGR"),
    Layout("rgb32", 32, BI_RGB, [(40, False, None), (40, True, None), (108, False, None),
                                 (124, True, BGRA)], "BGRX"),
    Layout("bf32-x", 32, BI_BITFIELDS, [(40, False, BGRX), (40, True, XBGR), (108, False, BGXR),
                                        (124, True, BGRX), (56, True, BGRX)]),
    Layout("bf32-alpha", 32, BI_BITFIELDS, [(56, False, BGRA), (108, True, BGRA), (108, False, RGBA),
                                            (124, False, ABGR), (124, True, BGAR),
                                            (124, True, BGRA)]),
]


# ----------------------------------------------------------------- writing

def stride(width, bits):
    return (width * bits + 31) // 32 * 4


def write_bmp(width, height, bits, rows, header, top_down, compression, masks, palette, colors):
    """A BMP from `rows` (top row first, each exactly stride bytes).
    `palette` is a list of (r, g, b); `colors` goes into biClrUsed."""
    assert all(len(r) == stride(width, bits) for r in rows) and len(rows) == height
    data = b"".join(rows if top_down else rows[::-1])
    if header == 12:
        assert not top_down and compression == BI_RGB
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
        pal = b"".join(struct.pack("<BBB", b, g, r) for r, g, b in palette)
        extra = b""
    else:
        info = struct.pack("<IiiHHIIiiII", header, width, -height if top_down else height, 1,
                           bits, compression, len(data), 2835, 2835, colors, 0)
        m = masks or (0, 0, 0, 0)
        extra = b""
        if header == 40:
            if compression == BI_BITFIELDS:
                extra = struct.pack("<III", *m[:3])
        else:
            info += struct.pack("<III", *m[:3])
            if header >= 56:
                info += struct.pack("<I", m[3])
            if header >= 108:
                info += struct.pack("<I", SRGB) + bytes(36) + bytes(12)
            if header == 124:
                info += struct.pack("<IIII", 4, 0, 0, 0)  # LCS_GM_IMAGES
        assert len(info) == header, (header, len(info))
        pal = b"".join(struct.pack("<BBBB", b, g, r, 0) for r, g, b in palette)
    offset = 14 + len(info) + len(extra) + len(pal)
    return struct.pack("<2sIHHI", b"BM", offset + len(data), 0, 0, offset) + info + extra + pal + data


def check_header(blob, f):
    """Parses the written header back and asserts it is the layout meant."""
    magic, size, _, _, offset = struct.unpack_from("<2sIHHI", blob, 0)
    assert magic == b"BM" and size == len(blob), f.name
    hsize = struct.unpack_from("<I", blob, 14)[0]
    assert hsize == f.header, f.name
    if hsize == 12:
        w, h, planes, bits = struct.unpack_from("<HHHH", blob, 18)
        comp, colors, entry = BI_RGB, 0, 3
    else:
        w, h, planes, bits, comp = struct.unpack_from("<iiHHI", blob, 18)
        colors, entry = struct.unpack_from("<I", blob, 46)[0], 4
        assert (h < 0) == f.top_down, f.name
        h = abs(h)
        if comp == BI_BITFIELDS:
            # Right after the 40-byte INFO part: in the header (V2+) or
            # after it (INFO); V3+ add the alpha mask.
            n = 4 if hsize >= 56 else 3
            got = struct.unpack_from("<" + "I" * n, blob, 54)
            assert got == f.masks[:n], (f.name, got)
    assert (w, h, planes, bits, comp) == (f.width, f.height, 1, f.bits, f.compression), f.name
    npal = (colors or 1 << bits) if bits <= 8 else 0
    assert npal == len(f.palette), f.name
    masks_after = 12 if hsize == 40 and comp == BI_BITFIELDS else 0
    assert offset == 14 + hsize + masks_after + entry * npal, f.name
    assert len(blob) - offset == stride(w, bits) * h, f.name


def pillow_palette_mode(palette):
    """The mode Pillow 13 opens a palette BMP as (BmpImagePlugin), and so
    the rule rlewatch must apply (design §2)."""
    n = len(palette)
    want = [(0, 0, 0), (255, 255, 255)] if n == 2 else [(i, i, i) for i in range(n)]
    if palette == want:
        return "1" if n <= 2 else "L"
    return "P"


class Gen:
    """Random content, deterministic from the seed."""

    def __init__(self, rng):
        self.rng = rng

    def palette(self, kind, n, bits):
        r = self.rng
        while True:
            if kind == "bw":
                pal = [(0, 0, 0), (255, 255, 255)][:n] + [(r.randrange(256),) * 3 for _ in range(n - 2)]
            elif kind == "ramp":
                pal = [(i, i, i) for i in range(n)]
            elif kind == "grey":
                pal = [(g, g, g) for g in (r.randrange(256) for _ in range(n))]
            elif kind == "edge":
                pal = [tuple(r.randrange(112, 146) for _ in range(3)) for _ in range(n)]
            else:
                pal = [tuple(r.randrange(256) for _ in range(3)) for _ in range(n)]
            mode = pillow_palette_mode(pal)
            # Pillow misreads these (its raw mode is "1" or "L" whatever
            # the depth, design §2): not generated; 1 bpp "1" is right.
            # (2 bpp is compared through an 8-bpp twin, where "L" is right.)
            if mode == "1" and bits > 1 or mode == "L" and bits == 4:
                kind = "colour"
                continue
            return pal, mode

    def runs(self, width, values):
        """A row of `width` items drawn from `values()`, noise or runs."""
        r, out, x = self.rng, [], 0
        while x < width:
            n = min(width - x, r.choice([1, 2, 3, r.randrange(1, 130), r.randrange(100, 400)]))
            out += [values()] * n
            x += n
        return out

    def index_rows(self, width, height, n, pattern):
        r = self.rng
        if pattern == "noise":
            return [[r.randrange(n) for _ in range(width)] for _ in range(height)]
        return [self.runs(width, lambda: r.randrange(n)) for _ in range(height)]

    def pixel(self, bits, masks, pattern):
        """One random direct-colour pixel as bytes."""
        r = self.rng
        m = masks or {16: M555, 24: M24, 32: BGRX}[bits]
        if pattern == "pure":
            level = r.choice([0, 255])
            chans = [level] * 3
        elif pattern == "edge":
            chans = [r.randrange(112, 146) for _ in range(3)]
        else:
            chans = [r.randrange(256) for _ in range(3)]
        v = r.randrange(1 << bits)  # unused bits and alpha stay random
        for mask, c in zip(m[:3], chans):
            shift = (mask & -mask).bit_length() - 1
            top = (mask >> shift).bit_length()
            v = v & ~mask | (c >> (8 - top)) << shift
        return v.to_bytes(bits // 8, "little")

    def direct_rows(self, width, height, bits, masks, pattern):
        r, pad = self.rng, stride(width, bits) - width * bits // 8
        rows = []
        for _ in range(height):
            if pattern == "noise":
                row = r.randbytes(width * bits // 8)  # every bit at random
            elif pattern == "runs":
                row = b"".join(self.runs(width, lambda: r.randbytes(bits // 8)))
            else:
                row = b"".join(self.runs(width, lambda: self.pixel(bits, masks, pattern))
                               if r.random() < 0.5 else
                               [self.pixel(bits, masks, pattern) for _ in range(width)])
            rows.append(row + r.randbytes(pad))
        return rows

    def pack(self, indices, bits, width):
        """Palette indices, most significant first, the last byte's spare
        bits and the row padding random."""
        r, per, out = self.rng, 8 // bits, bytearray()
        for i in range(0, width, per):
            v = 0
            for j in range(per):
                v = v << bits | (indices[i + j] if i + j < width else r.randrange(1 << bits))
            out.append(v)
        return bytes(out) + r.randbytes(stride(width, bits) - len(out))


class File:
    pass


def make_file(gen, layout, variant, width, height, pattern, pal_kind, seq):
    r = gen.rng
    header, top_down, masks = variant
    f = File()
    f.layout, f.width, f.height, f.bits = layout.name, width, height, layout.bits
    f.compression, f.header, f.top_down, f.masks = layout.compression, header, top_down, masks
    f.twin = None
    if layout.bits <= 8:
        full = 1 << layout.bits
        # biClrUsed: 0 (the full palette) or a short palette; the core
        # header always has the full palette.
        colors = 0 if header == 12 or r.random() < 0.5 else r.randrange(2, full + 1)
        n = colors or full
        f.palette, f.mode = gen.palette(pal_kind, n, layout.bits)
        f.rawmode = f.mode if f.mode != "P" else {1: "P;1", 4: "P;4", 8: "P"}.get(layout.bits)
        # Near-threshold colours come from the palette kind ("edge").
        pattern = "noise" if pattern in ("noise", "edge") else "runs"
        idx = gen.index_rows(width, height, n, pattern)
        rows = [gen.pack(i, layout.bits, width) if layout.bits < 8 else bytes(i) + r.randbytes(stride(width, 8) - width)
                for i in idx]
        if layout.pillow_refuses:
            # The same palette and indices at 8 bpp, biClrUsed explicit: the
            # mode Pillow picks depends on the palette alone.
            f.twin = write_bmp(width, height, 8, [bytes(i) + bytes(stride(width, 8) - width) for i in idx],
                               40, False, BI_RGB, None, f.palette, n)
    else:
        f.palette, colors = [], 0
        f.mode = "RGBA" if layout.bits == 32 and layout.compression == BI_BITFIELDS and masks[3] else "RGB"
        f.rawmode = layout.rawmode or RAWMODE[masks]
        if pal_kind == "bw" and pattern == "noise":
            pattern = "pure"
        rows = gen.direct_rows(width, height, layout.bits, masks, pattern)
    f.pattern = pattern
    tag = {12: "core", 40: "info", 52: "v2", 56: "v3", 108: "v4", 124: "v5"}[header]
    f.name = (f"{layout.name}-{seq:04d}-w{width}-h{height}-{tag}-{'td' if top_down else 'bu'}"
              f"-{f.mode}-{pattern}.bmp")
    f.blob = write_bmp(width, height, layout.bits, rows, header, top_down, layout.compression,
                       masks, f.palette, colors)
    check_header(f.blob, f)
    return f


def plan(rng):
    """Every layout and header/direction variant: widths 1..300, then the
    edges with taller images."""
    gen = Gen(rng)
    kinds = ["colour", "bw", "grey", "ramp", "edge"]
    files = []
    for layout in LAYOUTS:
        seq = 0
        jobs = []
        for v in layout.variants:
            for w in WIDTHS:
                jobs.append((v, w, rng.randrange(1, 5), rng.choice(PATTERNS), rng.choice(kinds)))
        for w in EDGE_WIDTHS:
            for v in layout.variants:
                h = rng.randrange(1, 3) if w > 1000 else rng.randrange(2, 6)
                jobs.append((v, w, h, rng.choice(PATTERNS), rng.choice(kinds)))
        # One image of 2^18+ pixels: rlewatch tabulates all 65536 16-bit
        # values from that size on (bilevel.rs, Table16); noise hits them.
        jobs.append((layout.variants[-1], 517, 508, "noise", rng.choice(kinds)))
        # One image of 2^22+ pixels in every layout that dithers, noisy
        # from the first row: rlewatch dithers the rows after the 64th on
        # two threads there (design §3, "The dither wavefront"); "ramp"
        # makes the 8-bpp palette Pillow's "L".
        if layout.bits in (8, 16, 24, 32):
            kind = "ramp" if layout.bits == 8 else rng.choice(kinds)
            for top_down in (False, True):
                v = next(v for v in layout.variants if v[1] == top_down)
                jobs.append((v, 2053, 2049, "noise", kind))
        for v, w, h, pattern, kind in jobs:
            files.append(make_file(gen, layout, v, w, h, pattern, kind, seq))
            seq += 1
    return files


def not_generated(root):
    """Palette files Pillow misreads, so rlewatch deliberately differs
    (design §2) and the plan leaves them out: shown, not claimed. Returns
    (what, what Pillow does) pairs."""
    cases = [
        ("pal4 with a grey-ramp palette (entry i = (i, i, i))", 4, [(i, i, i) for i in range(16)]),
        ("pal4 with a 2-entry [black, white] palette", 4, [(0, 0, 0), (255, 255, 255)]),
        ("pal8 with a 2-entry [black, white] palette", 8, [(0, 0, 0), (255, 255, 255)]),
    ]
    out = []
    for what, bits, pal in cases:
        idx = [i % len(pal) for i in range(40)]
        row = Gen(random.Random(0)).pack(idx, bits, 40) if bits < 8 else bytes(idx)
        path = os.path.join(root, "misread.bmp")
        with open(path, "wb") as f:
            f.write(write_bmp(40, 1, bits, [row], 40, False, BI_RGB, None, pal, len(pal)))
        im = Image.open(path)
        raw = im.tile[0].args[0]
        try:
            im.load()
            right = bytes(pal[i][0] for i in idx)  # grey palettes, so R = the level
            how = f"opens it as {im.mode} with raw mode {raw!r}" + (
                ", reading it wrongly" if im.convert("L").tobytes() != right else
                " and reads it right: add it to the plan")
        except OSError as e:
            how = f"opens it as {im.mode} with raw mode {raw!r} and fails to load it ({e})"
        out.append((what, how))
    return out


# --------------------------------------------------------------- reference

RUN = re.compile(rb"\x00+|\xff+")


def encode(width, height, pixels):
    """Design §1 from one byte per pixel (0 or 255), top row first."""
    out = bytearray(struct.pack("<HH", width, height))
    for y in range(height):
        for x0 in range(y * width, (y + 1) * width, 127):
            for m in RUN.finditer(pixels, x0, min((y + 1) * width, x0 + 127)):
                out.append((0x80 if pixels[m.start()] else 0) | (m.end() - m.start()))
    return bytes(out)


def reference(im, dither):
    bw = im.convert("1") if dither else im.convert("1", dither=Image.Dither.NONE)
    return encode(im.width, im.height, bw.convert("L").tobytes())


def locate(data, offset):
    """(row, x) of the run at byte `offset` of an .rle."""
    w, pos = struct.unpack_from("<H", data, 0)[0], 0
    for i in range(4, min(offset, len(data))):
        pos += data[i] & 0x7F
    return divmod(pos, w) if w else (0, 0)


# -------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rlewatch", help="the binary to check")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--keep", metavar="DIR",
                    help="write the files to DIR/bmp, DIR/dither, DIR/threshold (replaced) and keep them")
    args = ap.parse_args()
    start = time.monotonic()
    print(f"Pillow {PIL.__version__}, seed {args.seed}")
    if PIL.__version__ != "13.0.0":
        print("warning: the reference is pinned to Pillow 13.0.0 (.ci/run installs it)")

    files = plan(random.Random(args.seed))
    # Coverage of the plan itself: every width 1..300 in every layout.
    for layout in LAYOUTS:
        have = {f.width for f in files if f.layout == layout.name}
        missing = set(WIDTHS) - have
        assert not missing, (layout.name, sorted(missing)[:10])

    failures, skipped = [], {}
    counts = collections.defaultdict(lambda: collections.Counter())
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        root = os.path.abspath(args.keep) if args.keep else tmp
        src = os.path.join(root, "bmp")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        expected = {}
        for f in files:
            path = os.path.join(src, f.name)
            with open(path, "wb") as out:
                out.write(f.blob)
            layout = next(x for x in LAYOUTS if x.name == f.layout)
            try:
                im = Image.open(path)
                got = (im.mode, im.tile[0].args[0])  # before load() empties tile
                assert got == (f.mode, f.rawmode), (f.name, got, (f.mode, f.rawmode))
                im.load()
            except OSError as e:
                if layout.pillow_refuses and layout.pillow_refuses in str(e):
                    skipped[f.layout] = str(e)
                    im = None
                else:
                    print(f"FAILED: Pillow refuses {f.name}, a layout it should read: {e}")
                    sys.exit(1)
            if im is None:
                twin = os.path.join(root, "twin.bmp")
                with open(twin, "wb") as out:
                    out.write(f.twin)
                im = Image.open(twin)
                assert (im.mode, im.tile[0].args[0]) == (f.mode, f.mode), f.name
                im.load()
            assert im.size == (f.width, f.height), f.name
            expected[f.name] = {"dither": reference(im, True), "threshold": reference(im, False)}
            counts[f.layout]["files"] += 1
            counts[f.layout]["pixels"] += f.width * f.height
        made = time.monotonic()

        misread = not_generated(root)
        for mode, flags in (("dither", []), ("threshold", ["--threshold"])):
            dst = os.path.join(root, mode)
            shutil.rmtree(dst, ignore_errors=True)
            before = len(failures)
            proc = subprocess.run([args.rlewatch, "compress", "--force", "-o", dst, src] + flags,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for f in files:
                out = os.path.join(dst, f.name[:-4] + ".rle")
                want = expected[f.name][mode]
                try:
                    with open(out, "rb") as fh:
                        got = fh.read()
                except FileNotFoundError:
                    said = [line for line in proc.stderr.splitlines() if f.name in line]
                    failures.append(f"{f.name} {mode}: rlewatch wrote nothing "
                                    f"(exit {proc.returncode}: {' / '.join(said) or proc.stderr.strip()[-300:]})")
                    counts[f.layout][mode + " failed"] += 1
                    continue
                if got == want:
                    counts[f.layout][mode + " passed"] += 1
                    continue
                at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                          min(len(got), len(want)))
                row, x = locate(want, at)
                failures.append(
                    f"{f.name} {mode}: first differing byte at offset {at} (row {row}, pixel {x}): "
                    f"Pillow gives {want[at:at + 8].hex(' ') or 'end of file'}, "
                    f"rlewatch {got[at:at + 8].hex(' ') or 'end of file'} "
                    f"(lengths {len(want)} and {len(got)})")
                counts[f.layout][mode + " failed"] += 1
            if proc.returncode != 0 and len(failures) == before:
                failures.append(f"rlewatch compress ({mode}) exited {proc.returncode}: {proc.stderr.strip()[-500:]}")

    for name, reason in skipped.items():
        print(f"{name}: not compared with Pillow's reading of the file itself: Pillow {PIL.__version__} "
              f"says \"{reason}\"; compared with its reading of the same palette and indices at 8 bpp")
    for what, how in misread:
        print(f"not generated: {what}: Pillow {how}")
    print(f"\n{'layout':<11} {'files':>6} {'widths':>8} {'pixels':>9}  {'dither':>16}  {'threshold':>16}")
    total = collections.Counter()
    for layout in LAYOUTS:
        c = counts[layout.name]
        ws = {f.width for f in files if f.layout == layout.name}
        cells = [f"{c[m + ' passed']} ok" + (f" {c[m + ' failed']} BAD" if c[m + ' failed'] else "")
                 for m in ("dither", "threshold")]
        print(f"{layout.name:<11} {c['files']:>6} {len(ws):>8} {c['pixels']:>9}  {cells[0]:>16}  {cells[1]:>16}")
        total.update(c)
    print(f"{'total':<11} {total['files']:>6} {'':>8} {total['pixels']:>9}  "
          f"{total['dither passed']:>13} ok  {total['threshold passed']:>13} ok")
    modes = collections.Counter((f.layout, f.mode) for f in files)
    print("Pillow modes:", ", ".join(f"{l} {m}×{n}" for (l, m), n in modes.items() if not l.startswith(("rgb", "bf"))))
    for failure in failures[:50]:
        print("DIFFERS:", failure)
    if len(failures) > 50:
        print(f"... and {len(failures) - 50} more")
    checked = total["dither passed"] + total["threshold passed"] + len(failures)
    print(f"{checked - len(failures)} of {checked} comparisons passed, {len(failures)} failed "
          f"({made - start:.0f} s writing and Pillow, {time.monotonic() - made:.0f} s rlewatch)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
