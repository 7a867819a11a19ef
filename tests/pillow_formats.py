#!/usr/bin/env python3
"""Differential check of `rlewatch compress` on TIFF, PNG, PNM and GIF (and
JPEG, refused by design) against the reference program's method: Pillow
13.0.0's `Image.open(path).convert('1')` (dither) and
`.convert('1', dither=Image.Dither.NONE)` (threshold), run-length coded by
the straightforward coder of design §1 (`encode`, shared with
tests/pillow_differential.py).

Inputs, per format, in two kinds of class:

  generated   written here from a seeded generator (default seed 7), by hand
              with struct/zlib where Pillow's savers cannot write the
              layout, and with Pillow's savers for the compressions that
              need libtiff (LZW, CCITT G3/G4) or real GIF LZW. Every layout
              class gets every width 1..300 (height 1..4), then the word,
              chunk and byte edges (1-9, 15-17, 31-33, 63-65, 126-129,
              253-257, 381, 508, 509, 1001) with taller images. Content:
              noise, long runs, pure black/white, levels near the
              threshold (for 16-bit grey: near 128 and past 255, which
              Pillow clips).
                PNG   colour types 0/2/3/4/6 x every legal bit depth, with
                      and without tRNS, interlaced (Adam7) or not, random
                      filters, IDAT split, gAMA/sBIT/tEXt chunks
                TIFF  by hand: 1/2/4/8/16-bit MinIsBlack and MinIsWhite,
                      palette 1/2/4/8-bit, RGB 8/16-bit, RGBA associated and
                      unassociated, LA, CMYK, RGBX; 12-bit, signed 16-bit,
                      float; chunky and planar; none/PackBits/LZW/Deflate,
                      predictor 2, FillOrder 2, strips of several heights,
                      tiles, Orientation 1-8, II and MM. With Pillow's
                      saver: raw/packbits/tiff_lzw/tiff_deflate/
                      tiff_adobe_deflate for 1/L/P/RGB/RGBA/CMYK/I;16,
                      group3/group4 for 1, and two-page files
                PNM   P1-P6, plain and raw, maxval 1, 2, 10, 15, 100, 255,
                      256, 1000, 65535, comments in the header
                GIF   palettes of 2..256 entries (global or local), grey
                      ramps (Pillow opens those as L), a first frame smaller
                      than the screen with and without transparency,
                      interlaced, animated (the first frame counts)
  corpus:NAME public test files fetched at run time from package registries
              and cached (--corpus-cache): Pillow 13.0.0's sdist (PyPI,
              its Tests/images), PngSuite (the 29 files pypng's sdist on
              PyPI embeds, and libpng's contrib/pngsuite and
              contrib/testpngs from Debian's libpng1.6 source package),
              libtiff's test/images (Debian's tiff source package), giflib's
              pictures (Debian's giflib source package) and netpbm's test
              images (Debian's netpbm-free source package). The libtiff
              pictures are not in the `tiff` crate's tarball on crates.io
              (checked every run; said so). Files are picked by their magic
              number, not their name.

For each file: what Pillow does (its mode, or its refusal and message),
then both modes through the binary in batch calls (files named
explicitly), compared byte for byte:
  - Pillow reads it: rlewatch must write the same bytes (a mismatch fails,
    naming the file, Pillow's mode, the first differing offset and the
    pixel); a refusal fails too, with rlewatch's message, unless it is in
    ALLOWED_REFUSALS (JPEG, refused by design).
  - Pillow refuses it: rlewatch's behaviour is printed, never a failure
    (accepting a file valid per its format's spec is fine, design §2.1).
  - Always: a crash (exit status other than 0/1, a signal, a hang) fails;
    a refusal must name the file in a message; the batch's exit status
    must be 1 iff a file in it failed.
With --twins, each generated file Pillow reads is also saved as a BMP
from Pillow's decoded pixels and compared the same way: the check that the
comparison path can pass (the BMP decoder is done).

Prints a per-format, per-class table and the seed; exits 1 on any failure.
Seed 7: 20,377 generated files and 941 corpus files (and 19,978 BMP twins
with --twins), 55-85 s on the 2 shared cores with the corpora cached
(fetching them the first time adds 10-30 s), measured with the stub
decoders, which refuse at once.
Needs Pillow 13.0.0 and, for the corpora, pip and (Debian) apt-get; a
corpus that cannot be fetched is reported, not fatal (--offline skips
them all).

usage: pillow_formats.py [--seed N] [--formats png,tiff,pnm,gif,jpeg]
                         [--corpus-cache DIR] [--offline] [--twins]
                         [--keep DIR] PATH/TO/rlewatch
"""
import argparse
import collections
import glob
import io
import os
import re
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zlib

import PIL
from PIL import Image

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pillow_differential import encode, locate  # noqa: E402  (design §1 coder)

FORMATS = ["png", "tiff", "pnm", "gif", "jpeg"]
WIDTHS = range(1, 301)
EDGE_WIDTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
               126, 127, 128, 129, 253, 254, 255, 256, 257, 381, 508, 509, 1001]
PATTERNS = ["noise", "runs", "pure", "edge"]

# Refusals by rlewatch of files Pillow reads that are accepted, each with
# why: (format, regex on rlewatch's message, reason).
ALLOWED_REFUSALS = [
    # No pure-Rust JPEG decoder is byte-exact with Pillow's libjpeg-turbo
    # (docs/faq.md has the measurements), so JPEG is quarantined with a
    # reason instead of being converted differently; JPEG inside a TIFF
    # (compressions 6 and 7) likewise.
    ("jpeg", r"JPEG", "JPEG is refused by design (no byte-exact decoder)"),
    ("tiff", r"JPEG-compressed TIFF", "JPEG in TIFF, refused as JPEG is"),
    # TIFF compressions document scanners do not write, which Pillow reads
    # through its libtiff (docs/guide.md, "Input formats").
    ("tiff", r"compression 34925 ", "LZMA in TIFF, not read"),
    ("tiff", r"compression 50000 ", "ZSTD in TIFF, not read"),
    ("tiff", r"compression 5000[12] ", "WebP in TIFF, not read"),
    # Uncompressed colour planes with FillOrder 2: Pillow's raw modes read
    # some and misread others, so rlewatch refuses them all.
    ("tiff", r"separate planes with FillOrder 2", "FillOrder 2 colour planes, refused"),
    # The .rle header holds 16-bit sides (design §1).
    (None, r"65535 pixels per side", "too large for the .rle format"),
]


def sniff(head):
    """The format a file's first bytes say (as rlewatch's Format::sniff)."""
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):
        return "tiff"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"GIF8"):
        return "gif"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[1:2] != b"" \
            and (head[2:3].isspace() or head[2:3] == b"#"):
        return "pnm"
    return None


EXT = {"png": "png", "tiff": "tif", "pnm": "pnm", "gif": "gif", "jpeg": "jpg", "bmp": "bmp"}


class Item:
    """One input file: its format, class, name (unique stem) and bytes."""

    def __init__(self, fmt, cls, desc, blob, ext=None, expect=None):
        self.fmt, self.cls, self.desc, self.blob = fmt, cls, desc, blob
        self.expect = expect  # the modes Pillow must open it as (generated files)
        self.ext = ext or EXT[fmt]
        self.name = None


# ------------------------------------------------------------ content

def edge_levels(maxval):
    """Sample values whose 8-bit level is near the threshold 128."""
    lo, hi = maxval * 112 // 255, -(-maxval * 145 // 255)
    return lo, max(lo + 1, hi)


class Gen:
    def __init__(self, rng):
        self.rng = rng

    def row(self, width, pix):
        """`width` pixels from pix(): noise or runs (so runs fill and cross
        the 127-pixel chunks)."""
        r, out, x = self.rng, [], 0
        if r.random() < 0.4:
            return [pix() for _ in range(width)]
        while x < width:
            n = min(width - x, r.choice([1, 2, 3, r.randrange(1, 130), r.randrange(100, 400)]))
            out += [pix()] * n
            x += n
        return out

    def pixfn(self, pattern, chans, maxval, alpha=False, clip16=False):
        """A function giving one pixel (a tuple of samples)."""
        r = self.rng
        lo, hi = edge_levels(maxval)
        if clip16:  # Pillow clips 16-bit grey: the edge is 128, not 32768
            lo, hi = 100, 300

        def one():
            if pattern == "pure":
                c = (r.choice([0, maxval]),) * chans
            elif pattern == "edge":
                c = tuple(r.randrange(lo, hi + 1) for _ in range(chans))
            elif pattern == "runs" and r.random() < 0.5:
                c = (r.choice([0, maxval]),) * chans
            else:
                c = tuple(r.randrange(maxval + 1) for _ in range(chans))
            if alpha:
                c += (maxval if r.random() < 0.6 else r.randrange(maxval + 1),)
            return c
        return one

    def image(self, width, height, pattern, chans, maxval, alpha=False, clip16=False):
        pix = self.pixfn(pattern, chans, maxval, alpha, clip16)
        return [self.row(width, pix) for _ in range(height)]

    def palette(self, kind, n):
        r = self.rng
        if kind == "bw":
            return [(0, 0, 0), (255, 255, 255)][:n] + [(r.randrange(256),) * 3 for _ in range(n - 2)]
        if kind == "ramp":
            return [(i, i, i) for i in range(n)]
        if kind == "grey":
            return [(g, g, g) for g in (r.randrange(256) for _ in range(n))]
        if kind == "edge":
            return [tuple(r.randrange(112, 146) for _ in range(3)) for _ in range(n)]
        return [tuple(r.randrange(256) for _ in range(3)) for _ in range(n)]


def jobs(rng, variants, tall=(2, 6)):
    """(variant, width, height, pattern): every variant at every width
    1..300 (height 1..4), then every variant at the edges, taller."""
    out = []
    for w in WIDTHS:
        out.append((rng.choice(variants), w, rng.randrange(1, 5), rng.choice(PATTERNS)))
    for v in variants:
        for w in rng.sample(WIDTHS, 4):  # every variant at small widths too
            out.append((v, w, rng.randrange(1, 5), rng.choice(PATTERNS)))
    for w in EDGE_WIDTHS:
        for v in variants:
            h = rng.randrange(1, 4) if w > 1000 else rng.randrange(*tall)
            out.append((v, w, h, rng.choice(PATTERNS)))
    return out


def pack_bits(samples, bits):
    """Samples (ints < 2**bits) packed most significant first, padded to a
    whole byte."""
    if bits == 8:
        return bytes(samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = acc << bits | s
        n += bits
        while n >= 8:
            out.append(acc >> (n - 8) & 0xFF)
            n -= 8
        acc &= (1 << n) - 1
    if n:
        out.append(acc << (8 - n) & 0xFF)
    return bytes(out)


def pack_row(samples, bits, big=True, sampleformat=1):
    e = ">" if big else "<"
    if sampleformat == 3:
        return struct.pack(e + "f" * len(samples), *samples)
    if bits == 16:
        return struct.pack(e + ("h" if sampleformat == 2 else "H") * len(samples), *samples)
    return pack_bits(samples, bits)


def flat(row):
    return [s for p in row for s in p]


# ---------------------------------------------------------------- PNG

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_filter(rng, raw_rows, bpp):
    """Each row with a random filter type (0-4) in front."""
    out, prev = bytearray(), None
    for raw in raw_rows:
        t = rng.randrange(5)
        up = prev or bytes(len(raw))
        f = bytearray(len(raw))
        for i, x in enumerate(raw):
            a = raw[i - bpp] if i >= bpp else 0
            b = up[i]
            c = up[i - bpp] if i >= bpp else 0
            if t == 0:
                p = 0
            elif t == 1:
                p = a
            elif t == 2:
                p = b
            elif t == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else b if pb <= pc else c
            f[i] = (x - p) & 0xFF
        out += bytes([t]) + f
        prev = raw
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
PNG_CHANS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def write_png(rng, width, height, ct, depth, pixels, palette=None, trns=None, interlace=False):
    chans = PNG_CHANS[ct]
    bpp = max(1, chans * depth // 8)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = range(x0, width, dx), range(y0, height, dy)
            if len(xs) and len(ys):
                data += png_filter(rng, [pack_row(flat([pixels[y][x] for x in xs]), depth) for y in ys], bpp)
    else:
        data = png_filter(rng, [pack_row(flat(row), depth) for row in pixels], bpp)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ct, 0, 0,
                                                                  int(interlace)))
    if rng.random() < 0.3:
        out += png_chunk(b"gAMA", struct.pack(">I", rng.choice([45455, 100000])))
    if rng.random() < 0.2:
        out += png_chunk(b"sBIT", bytes([min(depth, 8) if ct == 3 else depth] * (3 if ct == 3 else chans)))
    if palette is not None:
        out += png_chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    if rng.random() < 0.2:
        out += png_chunk(b"tEXt", b"Comment\0made by tests/pillow_formats.py")
    z = zlib.compress(data, rng.choice([0, 6, 9]))
    cuts = sorted(rng.sample(range(len(z) + 1), min(rng.choice([0, 0, 1, 3]), len(z) + 1)))
    for a, b in zip([0] + cuts, cuts + [len(z)]):
        out += png_chunk(b"IDAT", z[a:b])
    return out + png_chunk(b"IEND", b"")


# The mode Pillow opens each colour type (and bit depth) as, design §2.1.
PNG_MODES = {(0, 1): {"1"}, (0, 2): {"L"}, (0, 4): {"L"}, (0, 8): {"L"}, (0, 16): {"I;16"}, 2: {"RGB"},
             3: {"P"}, 4: {8: {"LA"}, 16: {"RGBA"}}, 6: {"RGBA"}}
PNG_KINDS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8),
             (4, 8), (4, 16), (6, 8), (6, 16)]


def plan_png(rng, gen):
    items = []
    for ct, depth in PNG_KINDS:
        variants = [(il, t) for il in (False, True) for t in ((False, True) if ct in (0, 2, 3) else (False,))]
        for (interlace, with_trns), w, h, pattern in jobs(rng, variants):
            maxval = (1 << depth) - 1
            palette = trns = None
            if ct == 3:
                n = rng.randrange(1, (1 << depth) + 1)
                kind = rng.choice(["colour", "bw", "grey", "ramp", "edge"])
                palette = gen.palette(kind, n)
                # Indices past the palette's end now and then (black, design §2.1).
                top = n - 1 if rng.random() < 0.8 else maxval
                px = gen.image(w, h, "noise" if pattern in ("noise", "edge") else "runs", 1, top)
                if with_trns:
                    trns = bytes(rng.randrange(256) for _ in range(rng.randrange(1, n + 1)))
            else:
                chans = PNG_CHANS[ct]
                colour = 3 if ct in (2, 6) else 1
                px = gen.image(w, h, pattern, colour, maxval, alpha=chans > colour,
                               clip16=(depth == 16 and colour == 1 and ct == 0))
                if with_trns:
                    v = rng.choice([0, maxval, rng.randrange(maxval + 1)])
                    trns = struct.pack(">H", v) if ct == 0 else struct.pack(">HHH", v, v, rng.randrange(maxval + 1))
            blob = write_png(rng, w, h, ct, depth, px, palette, trns, interlace)
            desc = f"ct{ct}d{depth}{'-adam7' if interlace else ''}{'-trns' if trns else ''}-w{w}-h{h}-{pattern}"
            items.append(Item("png", f"ct{ct}/{depth}{' adam7' if interlace else ''}", desc, blob,
                              expect=PNG_MODES[ct if ct else (0, depth)].get(depth)
                              if ct == 4 else PNG_MODES[ct if ct else (0, depth)]))
    return items


# --------------------------------------------------------------- PNM

PNM_MAXVALS = [1, 2, 10, 15, 100, 255, 256, 1000, 65535]


def write_pnm(rng, kind, width, height, maxval, pixels):
    """P1-P6; pixels are tuples (1 sample, or 3 for P3/P6); P1/P4 take
    bits, 1 = black."""
    plain = kind in "123"
    head = f"P{kind}"
    parts = [head, f"{width} {height}"] + ([] if kind in "14" else [str(maxval)])
    sep = [rng.choice(["\n", " ", "\t", "\r\n"]) for _ in parts]
    out = ""
    for i, (p, s) in enumerate(zip(parts, sep)):
        out += p + (s if i < len(parts) - 1 else rng.choice(["\n", " "]))
        if rng.random() < 0.25 and i < len(parts) - 1:
            out += "# a comment, made by tests/pillow_formats.py\n"
    data = out.encode()
    if plain:
        vals = [str(s) for row in pixels for s in flat(row)]
        lines, cur = [], ""
        joiner = "" if kind == "1" and rng.random() < 0.3 else " "
        for v in vals:
            if len(cur) + len(v) + 1 > 70:
                lines.append(cur)
                cur = ""
            cur += (joiner if cur else "") + v
        lines.append(cur)
        data += ("\n".join(lines) + "\n").encode()
    elif kind == "4":
        for row in pixels:
            data += pack_bits(flat(row), 1)
    else:
        for row in pixels:
            s = flat(row)
            data += struct.pack(">" + "H" * len(s), *s) if maxval > 255 else bytes(s)
    return data


def plan_pnm(rng, gen):
    items = []
    for kind in "123456":
        maxvals = [1] if kind in "14" else PNM_MAXVALS
        for maxval, w, h, pattern in jobs(rng, maxvals):
            chans = 3 if kind in "36" else 1
            px = gen.image(w, h, pattern, chans, maxval)
            blob = write_pnm(rng, kind, w, h, maxval, px)
            mv = "" if kind in "14" else f"-m{maxval}"
            cls = f"P{kind}" + ("" if kind in "14" else (" max<=255" if maxval <= 255 else " max>255"))
            items.append(Item("pnm", cls, f"p{kind}{mv}-w{w}-h{h}-{pattern}", blob,
                              ext={"1": "pbm", "4": "pbm", "2": "pgm", "5": "pgm"}.get(kind, "ppm"),
                              expect={"1"} if kind in "14" else {"RGB"} if kind in "36" else
                              {"L"} if maxval <= 255 else {"I"}))
    return items


# ---------------------------------------------------------------- GIF

def gif_lzw(indices, mcs):
    """GIF LZW (variable code width, clear when the table fills)."""
    clear, eoi = 1 << mcs, (1 << mcs) + 1
    out, acc, nbits = bytearray(), 0, 0
    cs = mcs + 1

    def emit(code, width):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8

    table = {bytes([i]): i for i in range(clear)}
    nxt = eoi + 1
    emit(clear, cs)
    w = b""
    for k in indices:
        wk = w + bytes([k])
        if wk in table:
            w = wk
            continue
        emit(table[w], cs)
        table[wk] = nxt
        nxt += 1
        if nxt > (1 << cs) and cs < 12:
            cs += 1
        if nxt >= 4094:
            emit(clear, cs)
            table = {bytes([i]): i for i in range(clear)}
            nxt, cs = eoi + 1, mcs + 1
        w = bytes([k])
    if w:
        emit(table[w], cs)
    emit(eoi, cs)
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def sub_blocks(data):
    return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255)) + b"\0"


def colour_table(palette):
    bits = max(1, (len(palette) - 1).bit_length())
    return bits, b"".join(bytes(c) for c in palette) + bytes(3 * ((1 << bits) - len(palette)))


def gif_frame(rng, x, y, w, h, idx, mcs, local=None, interlace=False, trns=None):
    out = b""
    if trns is not None:
        out += b"\x21\xf9\x04" + struct.pack("<BHB", 1, 0, trns) + b"\0"
    rows = [idx[i * w:(i + 1) * w] for i in range(h)]
    if interlace:
        order = [y2 for start, step in ((0, 8), (4, 8), (2, 4), (1, 2)) for y2 in range(start, h, step)]
        rows = [rows[i] for i in order]
    flags = (0x40 if interlace else 0)
    lct = b""
    if local is not None:
        bits, lct = colour_table(local)
        flags |= 0x80 | (bits - 1)
    out += b"\x2c" + struct.pack("<HHHHB", x, y, w, h, flags) + lct
    return out + bytes([mcs]) + sub_blocks(gif_lzw(b"".join(bytes(r) for r in rows), mcs))


def plan_gif(rng, gen):
    items = []
    variants = ["global", "local", "ramp", "interlaced", "offset", "offset-trns", "animated", "pillow"]
    for variant, w, h, pattern in jobs(rng, variants):
        n = rng.choice([2, 3, 4, 7, 16, 17, 100, 255, 256, rng.randrange(2, 257)])
        kind = "ramp" if variant == "ramp" else rng.choice(["colour", "bw", "grey", "edge", "ramp"])
        if kind == "ramp" and variant == "ramp":
            n = rng.choice([2, 4, 16, 256, rng.randrange(2, 257)])
        pal = gen.palette(kind, n)
        idx_pattern = "noise" if pattern in ("noise", "edge") else "runs"
        idx = bytes(flat(flat(gen.image(w, h, idx_pattern, 1, n - 1))))
        if variant == "pillow":
            im = Image.frombytes("P", (w, h), idx)
            im.putpalette(b"".join(bytes(c) for c in pal))
            buf = io.BytesIO()
            im.save(buf, "GIF", optimize=False, interlace=rng.random() < 0.3)
            items.append(Item("gif", "pillow saver", f"pillow-n{n}-{kind}-w{w}-h{h}-{pattern}", buf.getvalue(),
                              expect={"P", "L"}))
            continue
        bits, gct = colour_table(pal)
        mcs = max(2, bits)
        sw, sh, x, y = w, h, 0, 0
        trns = None
        if variant.startswith("offset"):
            sw, sh = w + rng.randrange(0, 20), h + rng.randrange(1, 9)
            x, y = rng.randrange(sw - w + 1), rng.randrange(sh - h + 1)
            if variant.endswith("trns"):
                trns = rng.randrange(n)
        elif variant == "animated":
            trns = rng.choice([None, rng.randrange(n)])
        local = variant == "local"
        screen_flags = 0 if local else 0x80 | ((bits - 1) << 4) | (bits - 1)
        out = b"GIF89a" + struct.pack("<HHBBB", sw, sh, screen_flags, 0, 0) + (b"" if local else gct)
        if variant == "animated":
            out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
        out += gif_frame(rng, x, y, w, h, idx, mcs, local=pal if local else None,
                         interlace=variant == "interlaced", trns=trns)
        if variant == "animated":
            idx2 = bytes(rng.randrange(n) for _ in range(w * h))
            out += gif_frame(rng, 0, 0, w, h, idx2, mcs)
        out += b"\x3b"
        items.append(Item("gif", variant, f"{variant}-n{n}-{kind}-w{w}-h{h}-{pattern}", out, expect={"P", "L"}))
    return items


# --------------------------------------------------------------- TIFF

SHORT, LONG, RATIONAL = 3, 4, 5


def tiff_lzw(data):
    """TIFF LZW (MSB-first codes, 'early change' as libtiff writes it)."""
    out, acc, nbits = bytearray(), 0, 0
    width = 9
    def emit(code):
        nonlocal acc, nbits
        acc = acc << width | code
        nbits += width
        while nbits >= 8:
            out.append(acc >> (nbits - 8) & 0xFF)
            nbits -= 8
        acc &= (1 << nbits) - 1
    table = {bytes([i]): i for i in range(256)}
    nxt = 258
    emit(256)
    w = b""
    for k in data:
        wk = w + bytes([k])
        if wk in table:
            w = wk
            continue
        emit(table[w])
        table[wk] = nxt
        nxt += 1
        if nxt >= 1 << width and width < 12:
            width += 1
        if nxt >= 4093:
            emit(256)
            table = {bytes([i]): i for i in range(256)}
            nxt, width = 258, 9
        w = bytes([k])
    if w:
        emit(table[w])
        nxt += 1
        if nxt >= 1 << width and width < 12:
            width += 1
    emit(257)
    if nbits:
        out.append(acc << (8 - nbits) & 0xFF)
    return bytes(out)


def packbits(data):
    out, i = bytearray(), 0
    while i < len(data):
        j = i
        while j < len(data) and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i >= 3:
            out += bytes([257 - (j - i), data[i]])
            i = j
            continue
        j = i
        while j < len(data) and j - i < 128 and not (j + 2 < len(data) and data[j] == data[j + 1] == data[j + 2]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def tiff_block(rows, spp, bps, big, predictor, sampleformat=1):
    """Rows of samples (lists of ints) as the bytes of a strip or tile."""
    out = b""
    for s in rows:
        if predictor == 2:
            m = (1 << bps) - 1
            s = s[:spp] + [(s[i] - s[i - spp]) & m for i in range(spp, len(s))]
        out += pack_row(s, bps, big, sampleformat or 1)
    return out


def write_tiff(rng, width, height, spp, bps, photometric, rows, *, big=False, compression=1,
               predictor=1, fillorder=1, orientation=None, rows_per_strip=None, tile=None,
               extra=None, colormap=None, sampleformat=None, planar=1):
    """A one-page TIFF from `rows` (lists of samples, top row first);
    planar 2 stores each sample plane's strips or tiles after the last's."""
    e = ">" if big else "<"
    blocks = []
    planes = [(rows, spp)] if planar == 1 else [([r[p::spp] for r in rows], 1) for p in range(spp)]
    for prows, n in planes:
        if tile:
            tw, th = tile
            for ty in range(0, height, th):
                for tx in range(0, width, tw):
                    trows = []
                    for y in range(ty, ty + th):
                        src = prows[y] if y < height else [0] * (width * n)
                        part = src[tx * n:(tx + tw) * n]
                        trows.append(part + [0] * (tw * n - len(part)))
                    blocks.append(tiff_block(trows, n, bps, big, predictor, sampleformat))
        else:
            rps = rows_per_strip or height
            for y in range(0, height, rps):
                blocks.append(tiff_block(prows[y:y + rps], n, bps, big, predictor, sampleformat))
    if compression == 32773:
        blocks = [packbits(b) for b in blocks]
    elif compression in (8, 32946):
        blocks = [zlib.compress(b) for b in blocks]
    elif compression == 5:
        blocks = [tiff_lzw(b) for b in blocks]
    if fillorder == 2:  # the bit order of the stored (compressed) bytes, as libtiff reads it
        blocks = [b.translate(REVERSE) for b in blocks]
    data = bytearray(struct.pack(e + "2sHI", b"MM" if big else b"II", 42, 0))
    offsets = []
    for b in blocks:
        offsets.append(len(data))
        data += b
        if len(data) % 2:
            data += b"\0"
    tags = {256: (LONG, [width]), 257: (LONG, [height]), 258: (SHORT, [bps] * spp),
            259: (SHORT, [compression]), 262: (SHORT, [photometric]), 277: (SHORT, [spp]),
            282: (RATIONAL, [(72, 1)]), 283: (RATIONAL, [(72, 1)]), 284: (SHORT, [planar]), 296: (SHORT, [2])}
    if fillorder != 1:
        tags[266] = (SHORT, [fillorder])
    if orientation:
        tags[274] = (SHORT, [orientation])
    if predictor != 1:
        tags[317] = (SHORT, [predictor])
    if colormap:
        tags[320] = (SHORT, colormap)
    if extra is not None:
        tags[338] = (SHORT, [extra])
    if sampleformat:
        tags[339] = (SHORT, [sampleformat] * spp)
    counts = [len(b) for b in blocks]
    if tile:
        tags.update({322: (LONG, [tile[0]]), 323: (LONG, [tile[1]]), 324: (LONG, offsets), 325: (LONG, counts)})
    else:
        tags.update({273: (LONG, offsets), 278: (LONG, [rows_per_strip or height]), 279: (LONG, counts)})
    ifd_at = len(data)
    entries, tail = b"", b""
    tail_at = ifd_at + 2 + 12 * len(tags) + 4
    for tag in sorted(tags):
        typ, vals = tags[tag]
        if typ == RATIONAL:
            raw = b"".join(struct.pack(e + "II", *v) for v in vals)
        else:
            raw = struct.pack(e + ("H" if typ == SHORT else "I") * len(vals), *vals)
        if len(raw) <= 4:
            entries += struct.pack(e + "HHI", tag, typ, len(vals)) + raw + bytes(4 - len(raw))
        else:
            entries += struct.pack(e + "HHII", tag, typ, len(vals), tail_at + len(tail))
            tail += raw + (b"\0" if len(raw) % 2 else b"")
    data += struct.pack(e + "H", len(tags)) + entries + struct.pack(e + "I", 0) + tail
    struct.pack_into(e + "I", data, 4, ifd_at)
    return bytes(data)


# (class, spp, bps, photometric, extra samples, palette?, sample format)
# (class, samples per pixel, bits per sample, photometric, ExtraSamples,
#  palette?, SampleFormat, the modes Pillow must open it as; None: Pillow
#  refuses these (design §2.1), so only a few files, printed, not compared)
TIFF_HAND = [
    ("minisblack 1", 1, 1, 1, None, False, None, {"1"}), ("miniswhite 1", 1, 1, 0, None, False, None, {"1"}),
    ("minisblack 2", 1, 2, 1, None, False, None, {"L"}), ("minisblack 4", 1, 4, 1, None, False, None, {"L"}),
    ("miniswhite 2", 1, 2, 0, None, False, None, {"L"}), ("miniswhite 4", 1, 4, 0, None, False, None, {"L"}),
    ("minisblack 8", 1, 8, 1, None, False, None, {"L"}), ("miniswhite 8", 1, 8, 0, None, False, None, {"L"}),
    ("minisblack 12", 1, 12, 1, None, False, None, {"I;16"}),
    ("minisblack 16", 1, 16, 1, None, False, None, {"I;16", "I;16B"}),
    ("miniswhite 16", 1, 16, 0, None, False, None, {"I;16"}),
    ("signed 16", 1, 16, 1, None, False, 2, {"I"}), ("float 32", 1, 32, 1, None, False, 3, {"F"}),
    ("palette 1", 1, 1, 3, None, True, None, {"P"}), ("palette 2", 1, 2, 3, None, True, None, {"P"}),
    ("palette 4", 1, 4, 3, None, True, None, {"P"}), ("palette 8", 1, 8, 3, None, True, None, {"P"}),
    ("rgb 8", 3, 8, 2, None, False, None, {"RGB"}), ("rgb 16", 3, 16, 2, None, False, None, {"RGB"}),
    ("rgba 8 unassoc", 4, 8, 2, 2, False, None, {"RGBA"}), ("rgba 8 assoc", 4, 8, 2, 1, False, None, {"RGBA"}),
    ("rgba 16 unassoc", 4, 16, 2, 2, False, None, {"RGBA"}), ("rgbx 8", 4, 8, 2, 0, False, None, {"RGB", "RGBX"}),
    ("la 8 unassoc", 2, 8, 1, 2, False, None, {"LA"}), ("cmyk 8", 4, 8, 5, None, False, None, {"CMYK"}),
    ("la 8 assoc", 2, 8, 1, 1, False, None, None),
    ("minisblack 3", 1, 3, 1, None, False, None, None), ("minisblack 5", 1, 5, 1, None, False, None, None),
    ("minisblack 10", 1, 10, 1, None, False, None, None), ("minisblack 14", 1, 14, 1, None, False, None, None),
    ("minisblack 24", 1, 24, 1, None, False, None, None),
]


def plan_tiff_hand(rng, gen):
    items = []
    for cls, spp, bps, phot, extra, pal, sf, expect in TIFF_HAND:
        todo = jobs(rng, [None], tall=(2, 40))
        if expect is None:
            todo = rng.sample(todo, 12)
        for _, w, h, pattern in todo:
            maxval = (1 << min(bps, 16)) - 1
            colormap = None
            if pal:
                n = 1 << bps
                p = gen.palette(rng.choice(["colour", "bw", "grey", "ramp", "edge"]), n)
                colormap = [c[k] << 8 | rng.choice([0, c[k], rng.randrange(256)]) for k in range(3) for c in p]
                px = gen.image(w, h, "noise" if pattern in ("noise", "edge") else "runs", 1, maxval)
            else:
                colour = 3 if phot == 2 else 4 if phot == 5 else 1
                px = gen.image(w, h, pattern, colour, maxval, alpha=extra is not None,
                               clip16=(bps in (12, 16) and colour == 1))
                if extra == 1:  # associated alpha: colour premultiplied, c <= a
                    px = [[tuple(c * p[-1] // maxval for c in p[:-1]) + (p[-1],) for p in row] for row in px]
            rows = [flat(row) for row in px]
            if sf == 2:  # signed: some below zero (Pillow clamps them to 0)
                rows = [[v - 150 if v < 32768 + 150 else v - 65536 for v in r] for r in rows]
            elif sf == 3:
                rows = [[v + rng.choice([0, 0.5, rng.random()]) - 20 for v in r] for r in rows]
            opts = dict(big=rng.random() < 0.3, orientation=None, sampleformat=sf)
            if spp > 1 and rng.random() < 0.25:
                opts["planar"] = 2
            comp = rng.choice([1, 1, 32773, 5, 5, 8, 32946])
            opts["compression"] = comp
            if comp in (5, 8, 32946) and bps in (8, 16) and not sf and rng.random() < 0.5:
                opts["predictor"] = 2
            # FillOrder 2 only where Pillow has a raw mode for it (1/2/4/8-bit
            # grey and palette, RGB 8-bit; elsewhere it cannot identify the file).
            if rng.random() < 0.15 and extra is None and (phot in (0, 1, 3) and bps <= 8 or cls == "rgb 8"):
                opts["fillorder"] = 2
            if rng.random() < 0.25:
                opts["orientation"] = rng.randrange(1, 9)
            if rng.random() < 0.2 and w >= 1:
                opts["tile"] = (rng.choice([16, 32, 48]), rng.choice([16, 32]))
            else:
                opts["rows_per_strip"] = rng.choice([None, 1, 2, 7, max(1, h // 3)])
            blob = write_tiff(rng, w, h, spp, bps, phot, rows, extra=extra, colormap=colormap, **opts)
            tags = [("MM" if opts["big"] else "II"), {1: "raw", 32773: "packbits", 5: "lzw", 8: "deflate",
                                                       32946: "deflate-old"}[comp]]
            if opts.get("predictor"):
                tags.append("pred2")
            if opts.get("fillorder"):
                tags.append("fill2")
            if opts.get("planar"):
                tags.append("planar2")
            if opts["orientation"]:
                tags.append(f"orient{opts['orientation']}")
            tags.append(f"tile{opts['tile'][0]}x{opts['tile'][1]}" if opts.get("tile") else
                        f"rps{opts['rows_per_strip'] or 'all'}")
            desc = f"{cls.replace(' ', '')}-{'-'.join(tags)}-w{w}-h{h}-{pattern}"
            items.append(Item("tiff", "hand " + cls, desc, blob, expect=expect))
    return items


TIFF_PILLOW_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "LA"]
TIFF_COMPRESSIONS = ["raw", "packbits", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate"]


def pillow_image(gen, rng, mode, w, h, pattern):
    """An image of `mode` built from generated samples."""
    if mode == "1":
        return Image.frombytes("L", (w, h), bytes(flat(flat(gen.image(w, h, "pure", 1, 255))))).convert(
            "1", dither=Image.Dither.NONE)
    if mode == "P":
        im = Image.frombytes("P", (w, h), bytes(flat(flat(gen.image(w, h, "runs", 1, 255)))))
        im.putpalette(b"".join(bytes(c) for c in gen.palette(rng.choice(["colour", "grey", "edge"]), 256)))
        return im
    if mode == "I;16":
        s = flat(flat(gen.image(w, h, pattern, 1, 65535, clip16=True)))
        return Image.frombytes("I;16", (w, h), struct.pack("<" + "H" * len(s), *s))
    chans = len(mode)
    alpha = mode in ("RGBA", "LA")
    s = flat(flat(gen.image(w, h, pattern, chans - alpha, 255, alpha=alpha)))
    return Image.frombytes(mode, (w, h), bytes(s))


def plan_tiff_pillow(rng, gen):
    items = []
    variants = [(m, c) for m in TIFF_PILLOW_MODES for c in TIFF_COMPRESSIONS] + \
        [("1", "group3"), ("1", "group4"), ("L", "pages"), ("1", "pages")]
    for (mode, comp), w, h, pattern in jobs(rng, variants, tall=(2, 30)):
        im = pillow_image(gen, rng, mode, w, h, pattern)
        buf = io.BytesIO()
        try:
            if comp == "pages":
                im.save(buf, "TIFF", save_all=True, append_images=[pillow_image(gen, rng, mode, w + 1, h, pattern)],
                        compression="tiff_lzw" if rng.random() < 0.5 else "raw")
            else:
                im.save(buf, "TIFF", compression=comp)
        except (OSError, ValueError, KeyError):
            continue  # a combination Pillow's saver does not write
        items.append(Item("tiff", f"pillow {mode} {comp}", f"pil-{mode.replace(';', '')}-{comp}-w{w}-h{h}-{pattern}",
                          buf.getvalue(), expect={mode}))
    return items


def plan_tiff(rng, gen):
    return plan_tiff_hand(rng, gen) + plan_tiff_pillow(rng, gen)


def plan_jpeg(rng, gen):
    items = []
    for mode, w, h, pattern in jobs(rng, ["L", "RGB", "CMYK"])[:60]:
        im = pillow_image(gen, rng, mode, w, h, pattern)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=rng.choice([50, 75, 95]))
        items.append(Item("jpeg", f"pillow {mode}", f"{mode}-w{w}-h{h}-{pattern}", buf.getvalue(), expect={mode}))
    return items


PLANS = {"png": plan_png, "pnm": plan_pnm, "gif": plan_gif, "tiff": plan_tiff, "jpeg": plan_jpeg}


# ------------------------------------------------------------ corpora

def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def pip_sdist(cache, spec):
    """An sdist from PyPI through pip (a venv with a current setuptools so
    that pip's metadata step does not build the build tools from source)."""
    have = glob.glob(os.path.join(cache, "sdist", spec.split("==")[0].lower() + "-*.tar.gz"))
    if have:
        return have[0]
    venv = os.path.join(cache, "venv")
    pip = os.path.join(venv, "bin", "pip")
    if not os.path.exists(pip):
        p = run([sys.executable, "-m", "venv", venv])
        p = p.returncode == 0 and run([pip, "install", "-q", "setuptools>=77", "pybind11"])
        if not p or p.returncode:
            raise RuntimeError(f"cannot make a venv for pip: {p.stdout[-300:] if p else ''}")
    p = run([pip, "download", "-q", "--no-binary", ":all:", "--no-deps", "--no-build-isolation", spec,
             "-d", os.path.join(cache, "sdist")], timeout=600)
    have = glob.glob(os.path.join(cache, "sdist", spec.split("==")[0].lower() + "-*.tar.gz"))
    if p.returncode or not have:
        raise RuntimeError(f"pip download {spec} failed: {p.stdout.strip()[-300:]}")
    return have[0]


def debian_source(cache, package):
    """A Debian source package's upstream tarball, through apt-get with
    private lists (deb-src of the running release; nothing of the system's
    apt configuration is touched)."""
    d = os.path.join(cache, "debian")
    have = glob.glob(os.path.join(d, package + "_*.orig.tar.*"))
    if have:
        return have[0]
    if not shutil.which("apt-get"):
        raise RuntimeError("no apt-get here")
    codename = "bookworm"
    if os.path.exists("/etc/os-release"):
        m = re.search(r"^VERSION_CODENAME=(\w+)", open("/etc/os-release").read(), re.M)
        codename = m.group(1) if m else codename
    os.makedirs(os.path.join(d, "lists", "partial"), exist_ok=True)
    src_list = os.path.join(d, "sources.list")
    with open(src_list, "w") as f:
        f.write(f"deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                f"http://deb.debian.org/debian {codename} main\n")
    opts = ["-o", f"Dir::Etc::SourceList={src_list}", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={d}/lists", "-o", f"Dir::Cache={d}/cache", "-qq"]
    if not glob.glob(os.path.join(d, "lists", "*Sources*")):
        p = run(["apt-get"] + opts + ["update"], timeout=600)
        if p.returncode:
            raise RuntimeError(f"apt-get update (deb-src) failed: {p.stdout.strip()[-300:]}")
    p = run(["apt-get"] + opts + ["source", "--download-only", package], cwd=d, timeout=600)
    have = glob.glob(os.path.join(d, package + "_*.orig.tar.*"))
    if not have:
        raise RuntimeError(f"apt-get source {package} failed: {p.stdout.strip()[-300:]}")
    return have[0]


def tar_members(path, pattern):
    """(name, bytes) of the regular files of a tarball whose path matches."""
    out = []
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile() and re.search(pattern, m.name) and m.size < 64 << 20:
                out.append((m.name, t.extractfile(m).read()))
    return out


def crate_has_images(cache):
    """Whether the newest `tiff` crate on crates.io ships tests/images."""
    import json
    import urllib.request
    req = urllib.request.Request("https://index.crates.io/ti/ff/tiff", headers={"User-Agent": "rlewatch-tests"})
    vers = [json.loads(line) for line in urllib.request.urlopen(req, timeout=60).read().splitlines()]
    ver = [v["vers"] for v in vers if not v["yanked"] and "-" not in v["vers"]][-1]
    path = os.path.join(cache, f"tiff-{ver}.crate")
    if not os.path.exists(path):
        req = urllib.request.Request(f"https://static.crates.io/crates/tiff/tiff-{ver}.crate",
                                     headers={"User-Agent": "rlewatch-tests"})
        data = urllib.request.urlopen(req, timeout=120).read()
        with open(path, "wb") as f:
            f.write(data)
    return ver, tar_members(path, r"/tests/images/")


CORPORA = [
    # (name, where it comes from, fetch -> [(member name, bytes)])
    ("pillow", "Pillow 13.0.0 sdist (PyPI) Tests/images",
     lambda c: tar_members(pip_sdist(c, "pillow==13.0.0"), r"/Tests/images/")),
    ("pypng-suite", "PngSuite as embedded in pypng's sdist (PyPI) code/pngsuite.py", None),
    ("libpng", "Debian source libpng1.6: contrib/pngsuite, contrib/testpngs",
     lambda c: tar_members(debian_source(c, "libpng1.6"), r"/contrib/(pngsuite|testpngs)/")),
    ("libtiff", "Debian source tiff: test/images",
     lambda c: tar_members(debian_source(c, "tiff"), r"/test/images/")),
    ("giflib", "Debian source giflib: pic/, doc/, tests/",
     lambda c: tar_members(debian_source(c, "giflib"), r"/(pic|doc|tests)/")),
    ("netpbm", "Debian source netpbm-free: test/, converter/, icon/",
     lambda c: tar_members(debian_source(c, "netpbm-free"), r"/(test|converter|icon)/")),
]


def pypng_suite(cache):
    path = pip_sdist(cache, "pypng")
    src = dict(tar_members(path, r"/code/pngsuite\.py$"))
    import types
    mod = types.ModuleType("pngsuite")  # it registers its images in its own module
    sys.modules["pngsuite"] = mod
    exec(compile(next(iter(src.values())), "pngsuite.py", "exec"), mod.__dict__)
    return [(k + ".png", v) for k, v in sorted(mod.png.items())]


def plan_corpora(cache, formats, notes):
    items = []
    os.makedirs(cache, exist_ok=True)
    for name, where, fetch in CORPORA:
        try:
            files = pypng_suite(cache) if name == "pypng-suite" else fetch(cache)
        except Exception as e:  # a corpus that cannot be had is reported, not fatal
            notes.append(f"corpus {name} ({where}): NOT FETCHED: {e}")
            continue
        n = 0
        for member, blob in files:
            fmt = sniff(blob[:4])
            if fmt not in formats:
                continue
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(member))
            base = os.path.splitext(base)[0][:60]
            items.append(Item(fmt, "corpus:" + name, f"{name}-{base}", blob))
            n += 1
        notes.append(f"corpus {name}: {n} files of {','.join(formats)} from {where}")
    try:
        ver, imgs = crate_has_images(cache)
        notes.append(f"corpus tiff-crate: the `tiff` crate {ver} on crates.io has "
                     + (f"{len(imgs)} files under tests/images" if imgs else
                        "no tests/images (its tarball leaves them out); libtiff's pictures come from Debian"))
        for member, blob in imgs:
            fmt = sniff(blob[:4])
            if fmt in formats:
                items.append(Item(fmt, "corpus:tiff-crate", "tiffcrate-" + os.path.basename(member)[:60], blob))
    except Exception as e:
        notes.append(f"corpus tiff-crate: not checked: {e}")
    return items


# ------------------------------------------------------------ Pillow

class QuietC:
    """Silences file descriptor 2 (libtiff's C-level warnings) for a while."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)


def pillow_verdict(path):
    """(mode, {dither: rle, threshold: rle}, image) or (None, refusal
    message, None)."""
    with QuietC():
        return pillow_verdict_loud(path)


def pillow_verdict_loud(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(path)
            mode = im.mode
            im.load()
            out = {}
            for key, dither in (("dither", True), ("threshold", False)):
                bw = im.convert("1") if dither else im.convert("1", dither=Image.Dither.NONE)
                out[key] = encode(im.width, im.height, bw.convert("L").tobytes())
            return mode, out, im
    except Exception as e:  # any refusal (OSError, ValueError, SyntaxError, …)
        return None, f"{type(e).__name__}: {e}", None


def bmp_twin(im):
    """Pillow's decoded pixels as a BMP it writes (1/L/P/RGB), or None."""
    m = im.mode
    if m not in ("1", "L", "P", "RGB"):
        m = "RGB" if m in ("RGBA", "RGBX", "CMYK", "YCbCr", "PA") else "L"
    im = im if m == im.mode else im.convert(m)
    if m == "P":
        # The palette padded to 256 entries with black (what indices past
        # its end mean): short palettes make BMPs Pillow misreads (a
        # 2-entry palette, a grey ramp with indices past its end; design §2).
        im = im.copy()
        pal = im.getpalette()
        im.putpalette(pal + [0] * (768 - len(pal)))
    try:
        buf = io.BytesIO()
        im.save(buf, "BMP")
        return buf.getvalue()
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------ rlewatch

BATCH = 400


def rlewatch_batches(binary, items, src, dst, flags):
    """Runs the binary over `items` in batches; returns {name: (ok, message)}
    and a list of failures (crashes, hangs, exit statuses, silent refusals)."""
    os.makedirs(dst, exist_ok=True)
    results, failures = {}, []

    def call(batch, timeout):
        paths = [os.path.join(src, it.name) for it in batch]
        try:
            p = subprocess.run([binary, "compress", "--force", "-o", dst + "/"] + flags + paths,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
            return p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            return "timeout", ""

    for i in range(0, len(items), BATCH):
        batch = items[i:i + BATCH]
        rc, err = call(batch, 600)
        if rc not in (0, 1):
            # A crash or hang: find the file by running them one by one.
            for it in batch:
                rc1, err1 = call([it], 60)
                if rc1 not in (0, 1):
                    failures.append((it, f"rlewatch crashed or hung on it: exit {rc1}: "
                                         f"{err1.strip()[-300:]}"))
            rc, err = None, None
            errs = {}
            for it in batch:
                rc1, err1 = call([it], 60)
                errs[it.name] = err1
        lines = err.splitlines() if err is not None else []
        any_failed = False
        for it in batch:
            out = os.path.join(dst, it.name.rsplit(".", 1)[0] + ".rle")
            said = [ln for ln in lines if it.name in ln] if err is not None else \
                [ln for ln in errs[it.name].splitlines() if it.name in ln]
            if os.path.exists(out):
                with open(out, "rb") as f:
                    results[it.name] = (True, f.read())
            else:
                any_failed = True
                if not said:
                    failures.append((it, "rlewatch wrote nothing and printed no reason naming the file"))
                results[it.name] = (False, " / ".join(said) or "(no message)")
        if rc is not None and rc != (1 if any_failed else 0):
            failures.append((batch[0], f"batch exit status {rc} but {'some' if any_failed else 'no'} file failed"))
    return results, failures


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rlewatch", help="the binary to check")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ",".join(FORMATS))
    ap.add_argument("--corpus-cache", metavar="DIR",
                    default=os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                         "rlewatch-corpora"))
    ap.add_argument("--offline", action="store_true", help="generated files only (no corpora)")
    ap.add_argument("--twins", action="store_true",
                    help="also compare BMP twins of the generated files (proves the comparison can pass)")
    ap.add_argument("--keep", metavar="DIR", help="write inputs and outputs under DIR (replaced) and keep them")
    ap.add_argument("--verbose", action="store_true", help="print every Pillow refusal and rlewatch's answer")
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = set(formats) - set(FORMATS)
    if bad:
        ap.error(f"unknown formats: {', '.join(sorted(bad))}")
    start = time.monotonic()
    print(f"Pillow {PIL.__version__}, seed {args.seed}, formats {','.join(formats)}")
    if PIL.__version__ != "13.0.0":
        print("warning: the reference is pinned to Pillow 13.0.0")

    rng = random.Random(args.seed)
    gen = Gen(rng)
    items = []
    for fmt in formats:
        for it in PLANS[fmt](rng, gen):
            it.cls = "gen " + it.cls
            items.append(it)
    notes = []
    if not args.offline:
        items += plan_corpora(args.corpus_cache, formats, notes)
    planned = time.monotonic()

    failures, info = [], []
    counts = collections.defaultdict(collections.Counter)
    tmp = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    root = os.path.abspath(args.keep) if args.keep else tmp
    try:
        src = os.path.join(root, "in")
        for d in ("in", "dither", "threshold"):
            shutil.rmtree(os.path.join(root, d), ignore_errors=True)
        os.makedirs(src)
        expected, modes, twins = {}, {}, []
        for seq, it in enumerate(items):
            it.name = f"{it.fmt}-{seq:05d}-{it.desc}.{it.ext}"
            path = os.path.join(src, it.name)
            with open(path, "wb") as f:
                f.write(it.blob)
            mode, ref, im = pillow_verdict(path)
            c = counts[(it.fmt, it.cls)]
            c["files"] += 1
            if mode is None:
                expected[it.name] = None
                modes[it.name] = ref
                c["pillow refuses"] += 1
                continue
            expected[it.name], modes[it.name] = ref, mode
            c["pillow " + mode] += 1
            if it.expect is not None and mode not in it.expect:
                # The file is not the layout meant: a defect of this script.
                failures.append(((it.fmt, it.cls), f"{it.name}: Pillow opens it as {mode}, but it was written "
                                                   f"to open as {' or '.join(sorted(it.expect))}"))
            if args.twins and it.cls.startswith("gen "):
                blob = bmp_twin(im)
                if blob:
                    tw = Item("bmp", f"twin of {it.fmt}", it.desc, blob)
                    tw.name = f"twin-{seq:05d}-{it.fmt}.bmp"
                    with open(os.path.join(src, tw.name), "wb") as f:
                        f.write(blob)
                    tmode, tref, _ = pillow_verdict(os.path.join(src, tw.name))
                    if tmode:
                        expected[tw.name], modes[tw.name] = tref, tmode
                        twins.append(tw)
                        counts[("bmp", tw.cls)]["files"] += 1
            it.blob = None  # keep memory small
        every = items + twins
        written = time.monotonic()

        for key, flags in (("dither", []), ("threshold", ["--threshold"])):
            dst = os.path.join(root, key)
            results, fails = rlewatch_batches(args.rlewatch, every, src, dst, flags)
            for it, why in fails:
                failures.append(((it.fmt, it.cls), f"{it.name} {key}: {why}"))
                counts[(it.fmt, it.cls)]["crash"] += 1
            for it in every:
                c = counts[(it.fmt, it.cls)]
                ok, got = results[it.name]
                want = expected[it.name]
                if want is None:
                    c[key + " pillow-refuses rlewatch-" + ("reads" if ok else "refuses")] += 1
                    if key == "dither":
                        said = "converts it" if ok else "refuses: " + got.replace(os.path.join(src, it.name), "FILE")
                        info.append((it, modes[it.name].replace(os.path.join(src, it.name), "FILE"), said))
                    continue
                want = want[key]
                if not ok:
                    allowed = next((why for fmt, rx, why in ALLOWED_REFUSALS
                                    if fmt in (None, it.fmt) and re.search(rx, got)), None)
                    if allowed:
                        c[key + " allowed refusal"] += 1
                    else:
                        c[key + " BAD"] += 1
                        failures.append(((it.fmt, it.cls), f"{it.name} {key} (Pillow mode {modes[it.name]}): "
                                        f"Pillow reads it, rlewatch refuses: {got[-300:]}"))
                    continue
                if got == want:
                    c[key + " ok"] += 1
                    continue
                c[key + " BAD"] += 1
                at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                          min(len(got), len(want)))
                row, x = locate(want, at)
                failures.append(((it.fmt, it.cls),
                    f"{it.name} {key} (Pillow mode {modes[it.name]}): first differing byte at offset {at} "
                    f"(row {row}, pixel {x}): Pillow gives {want[at:at + 8].hex(' ') or 'end of file'}, "
                    f"rlewatch {got[at:at + 8].hex(' ') or 'end of file'} (lengths {len(want)} and {len(got)})"))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    for n in notes:
        print(n)
    # What Pillow refuses, grouped by class, Pillow's message and
    # rlewatch's answer (digits folded so that sizes do not split groups).
    print(f"{len(info)} files Pillow refuses, and what rlewatch does with them "
          f"(--verbose lists every file):")
    groups = collections.OrderedDict()
    for it, pillow, said in info:
        key = (it.fmt, it.cls, re.sub(r"\d+", "N", pillow[:160]), re.sub(r"\d+", "N", said[:200]))
        groups.setdefault(key, []).append(it.name)
        if args.verbose:
            print(f"  {it.name}: Pillow: {pillow[:160]}; rlewatch {said[:200]}")
    for (fmt, cls, pillow, said), names in groups.items():
        print(f"  {fmt} {cls}: {len(names)}× Pillow \"{pillow}\"; rlewatch {said} (e.g. {names[0]})")
    print(f"\n{'format':<5} {'class':<30} {'files':>5} {'Pillow modes':<34} {'dither':>17} {'threshold':>17}"
          f"  Pillow refuses: rlewatch reads/refuses")
    total = collections.Counter()
    for (fmt, cls) in sorted(counts):
        c = counts[(fmt, cls)]
        total.update(c)
        pm = " ".join(f"{k[7:]}×{v}" for k, v in sorted(c.items())
                      if k.startswith("pillow ") and k != "pillow refuses")
        cells = []
        for key in ("dither", "threshold"):
            cell = f"{c[key + ' ok']} ok"
            if c[key + " BAD"]:
                cell += f" {c[key + ' BAD']} BAD"
            if c[key + " allowed refusal"]:
                cell += f" {c[key + ' allowed refusal']} refused*"
            cells.append(cell)
        ref = f"{c['pillow refuses']}: {c['dither pillow-refuses rlewatch-reads']}/" \
              f"{c['dither pillow-refuses rlewatch-refuses']}" if c["pillow refuses"] else ""
        if c["crash"]:
            ref += f" CRASH×{c['crash']}"
        print(f"{fmt:<5} {cls:<30} {c['files']:>5} {pm[:34]:<34} {cells[0]:>17} {cells[1]:>17}  {ref}")
    print("refused*: allowed refusals:", "; ".join(f"{f or 'any'}: {w}" for f, _, w in ALLOWED_REFUSALS))
    # At most 3 failures a class (and 200 in all), the rest counted.
    shown, by_class = 0, collections.Counter()
    for cls, failure in failures:
        by_class[cls] += 1
        if by_class[cls] <= 3 and shown < 200:
            print("FAILED:", failure)
            shown += 1
    for cls, n in sorted(by_class.items()):
        if n > 3:
            print(f"FAILED: ... {n - 3} more in {cls[0]} {cls[1]}")
    compared = sum(total[k + s] for k in ("dither", "threshold") for s in (" ok", " BAD"))
    print(f"{total['files']} files; {compared - total['dither BAD'] - total['threshold BAD']} of {compared} "
          f"comparisons passed; {len(failures)} failures; seed {args.seed} "
          f"({planned - start:.0f} s planning and corpora, {written - planned:.0f} s writing and Pillow, "
          f"{time.monotonic() - written:.0f} s rlewatch)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
