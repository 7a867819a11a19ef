#!/usr/bin/env python3
"""Differential check of rlewatch's TIFF reader against Pillow 13.0.0.

Writes TIFF files two ways:
  - with Pillow's saver (modes 1, L, P, RGB, RGBA, CMYK, I;16, I, F, LA;
    compressions raw, packbits, tiff_lzw, tiff_adobe_deflate, group3,
    group4; Orientation 1-8; strip sizes from one row to the whole image);
  - byte by byte with struct, for what Pillow cannot write: tiles, planar
    configuration 2, predictors 2 and 3, FillOrder 2, MinIsWhite at every
    depth, 2/4/12/16-bit grey, signed 16 and 32-bit, floats, palettes of
    1-8 bits, RGB(A) 8/16-bit with associated and unassociated alpha and
    extra samples, CMYK 8/16-bit, big-endian files, BigTIFF, old-style LZW;
  - uncompressed single strips and tiles Pillow memory-maps, with every
    Orientation (Pillow maps them at the turned size for 5-8);

at many widths (1-70, 127-129, 255-257, 300), then runs
`rlewatch compress` (dither, and --threshold) on every file and compares
its output byte for byte with Pillow's `Image.open(f).convert('1')` (and
`dither=NONE`) coded with the run-length coder of design section 1 (the
function of tests/pillow_differential.py). Files Pillow refuses must be
refused by rlewatch too (its message is printed per class).

usage: make.py [--seed N] [--keep DIR] [--quick] PATH/TO/rlewatch
With --vectors DIR it instead writes the few small files committed as unit
test vectors, with Pillow's expected .rle, into DIR.
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

# --------------------------------------------------------------- RLE coder
# Copied from tests/pillow_differential.py (design section 1).
RUN = re.compile(rb"\x00+|\xff+")


def encode(width, height, pixels):
    out = bytearray(struct.pack("<HH", width, height))
    for y in range(height):
        for x0 in range(y * width, (y + 1) * width, 127):
            for m in RUN.finditer(pixels, x0, min((y + 1) * width, x0 + 127)):
                out.append((0x80 if pixels[m.start()] else 0) | (m.end() - m.start()))
    return bytes(out)


def reference(path, dither):
    with Image.open(path) as im:
        bw = im.convert("1") if dither else im.convert("1", dither=Image.Dither.NONE)
        return encode(bw.width, bw.height, bw.convert("L").tobytes())


# ---------------------------------------------------------------- encoders
def packbits(data):
    out = bytearray()
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i >= 2:
            out += bytes([(257 - (j - i)) & 0xFF, data[i]])
            i = j
            continue
        j = i + 1
        while j < len(data) and j - i < 128 and not (j + 1 < len(data) and data[j] == data[j + 1]):
            j += 1
        out.append(j - i - 1)
        out += data[i:j]
        i = j
    return bytes(out)


def lzw(data, old_style=False):
    """TIFF LZW (MSB first, early change), or old-style (LSB first, no
    early change)."""
    out = bytearray()
    acc = nbits = 0
    width = 9

    def put(code):
        nonlocal acc, nbits
        if old_style:
            acc |= code << nbits
            nbits += width
            while nbits >= 8:
                out.append(acc & 0xFF)
                acc >>= 8
                nbits -= 8
        else:
            acc = (acc << width) | code
            nbits += width
            while nbits >= 8:
                out.append((acc >> (nbits - 8)) & 0xFF)
                nbits -= 8
                acc &= (1 << nbits) - 1

    early = 0 if old_style else 1
    table = {bytes([i]): i for i in range(256)}
    nxt = 258
    put(256)
    w = b""
    for b in data:
        wc = w + bytes([b])
        if wc in table:
            w = wc
            continue
        put(table[w])
        table[wc] = nxt
        nxt += 1
        if nxt + early > (1 << width) - 0 and width < 12:
            width += 1
        if nxt >= 4094 - early:
            put(256)
            table = {bytes([i]): i for i in range(256)}
            nxt = 258
            width = 9
        w = bytes([b])
    if w:
        put(table[w])
        nxt += 1
        if nxt + early > (1 << width) and width < 12:
            width += 1
    put(257)
    if nbits:
        if old_style:
            out.append(acc & 0xFF)
        else:
            out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


COMPRESS = {
    1: lambda d: d,
    5: lzw,
    8: zlib.compress,
    32946: zlib.compress,
    32773: packbits,
    "oldlzw": lambda d: lzw(d, old_style=True),
}


# ------------------------------------------------------------- TIFF writer
def tiff(width, height, *, bits, photometric, rows, sample_format=None, extra=None,
         fill=1, predictor=1, planar=1, compression=1, tile=None, big=False,
         bigtiff=False, colormap=None, orientation=None, spp=None, extra_tags=()):
    """A TIFF of `rows` (a function (plane, y, width) -> bytes of one row of
    samples, packed, in file byte order): strips of `rps` rows or tiles."""
    E = ">" if big else "<"
    nsamp = spp or len(bits)
    planes = nsamp if planar == 2 else 1
    code = compression
    comp = COMPRESS[compression]
    if compression == "oldlzw":
        code = 5
    bits_per_plane = sum(bits) if planes == 1 else bits[0]

    def rowbytes(w):
        return (w * bits_per_plane + 7) // 8

    def predict(row):
        if compression not in (5, 8, 32946, "oldlzw"):
            return row  # predictors go with LZW and Deflate only
        if predictor == 2:
            sz = bits[0] // 8
            per = nsamp if planes == 1 else 1
            fmt = {1: "B", 2: "H", 4: "I"}[sz]
            n = len(row) // sz
            vals = list(struct.unpack(f"{E}{n}{fmt}", row))
            mask = (1 << (8 * sz)) - 1
            for i in range(n - 1, per - 1, -1):
                vals[i] = (vals[i] - vals[i - per]) & mask
            return struct.pack(f"{E}{n}{fmt}", *vals)
        if predictor == 3:
            per = nsamp if planes == 1 else 1
            n = len(row) // 4
            vals = struct.unpack(f"{E}{n}I", row)
            planes_b = bytearray()
            for k in range(4):
                planes_b += bytes((v >> (24 - 8 * k)) & 0xFF for v in vals)
            b = bytearray(planes_b)
            for i in range(len(b) - 1, per - 1, -1):
                b[i] = (b[i] - b[i - per]) & 0xFF
            return bytes(b)
        return row

    def bitrev(data):
        return bytes(int(f"{b:08b}"[::-1], 2) for b in data) if fill == 2 else data

    chunks = []
    if tile:
        tw, tl = tile
        across, down = -(-width // tw), -(-height // tl)
        for p in range(planes):
            for ty in range(down):
                for tx in range(across):
                    data = bytearray()
                    for r in range(tl):
                        y = ty * tl + r
                        full = rows(p, min(y, height - 1), width + tw)
                        # the tile's part of a row that runs past the image
                        bpp = bits_per_plane
                        start = tx * tw * bpp
                        bitsrow = int.from_bytes(full, "big") if full else 0
                        total = len(full) * 8
                        seg = (bitsrow >> (total - start - tw * bpp)) & ((1 << (tw * bpp)) - 1)
                        rb = rowbytes(tw)
                        seg <<= rb * 8 - tw * bpp
                        data += predict(seg.to_bytes(rb, "big"))
                    chunks.append(bitrev(comp(bytes(data))))
    else:
        rps = tile_rows = None
        rps = extra_tags_dict(extra_tags).get(278, height)
        for p in range(planes):
            for s in range(-(-height // rps)):
                data = bytearray()
                for y in range(s * rps, min(height, (s + 1) * rps)):
                    data += predict(rows(p, y, width)[:rowbytes(width)])
                chunks.append(bitrev(comp(bytes(data))))

    tags = {256: (4, [width]), 257: (4, [height]), 258: (3, list(bits)),
            259: (3, [code]), 262: (3, [photometric]), 277: (3, [nsamp])}
    if fill != 1:
        tags[266] = (3, [fill])
    if sample_format:
        tags[339] = (3, list(sample_format))
    if extra is not None:
        tags[338] = (3, list(extra))
    if predictor != 1:
        tags[317] = (3, [predictor])
    if planar != 1:
        tags[284] = (3, [planar])
    if colormap:
        tags[320] = (3, colormap)
    if orientation:
        tags[274] = (3, [orientation])
    for t, v in extra_tags:
        tags[t] = v
    off_tag, cnt_tag = (324, 325) if tile else (273, 279)
    if tile:
        tags[322] = (4, [tile[0]])
        tags[323] = (4, [tile[1]])
    # layout: header, chunks, then directory and its out-of-line values
    head = 16 if bigtiff else 8
    body = bytearray()
    offsets = []
    for c in chunks:
        offsets.append(head + len(body))
        body += c
        if len(body) % 2:
            body += b"\0"
    tags[off_tag] = (16 if bigtiff else 4, offsets)
    tags[cnt_tag] = (16 if bigtiff else 4, [len(c) for c in chunks])
    ifd_at = head + len(body)
    entries = sorted(tags.items())
    esize, csize, word = (20, 8, 8) if bigtiff else (12, 2, 4)
    values_at = ifd_at + csize + esize * len(entries) + word
    ifd = bytearray(struct.pack(E + ("Q" if bigtiff else "H"), len(entries)))
    extra_data = bytearray()
    tsize = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}
    for t, (typ, vals) in entries:
        f, sz = tsize[typ]
        raw = struct.pack(E + f * len(vals), *vals)
        if len(raw) <= word:
            val = raw.ljust(word, b"\0")
        else:
            val = struct.pack(E + ("Q" if bigtiff else "I"), values_at + len(extra_data))
            extra_data += raw
            if len(extra_data) % 2:
                extra_data += b"\0"
        ifd += struct.pack(E + "HH" + ("Q" if bigtiff else "I"), t, typ, len(vals)) + val
    ifd += b"\0" * word
    if bigtiff:
        header = (b"MM" if big else b"II") + struct.pack(E + "HHHQ", 43, 8, 0, ifd_at)
    else:
        header = (b"MM" if big else b"II") + struct.pack(E + "HI", 42, ifd_at)
    return bytes(header + body + ifd + extra_data)


def extra_tags_dict(extra_tags):
    return {t: v[1][0] for t, v in extra_tags}


# ------------------------------------------------------------ sample rows
def sample_rows(seed, bits, nsamp, planes, pattern, height, floats=False):
    """A function (plane, y, width) -> packed big-endian bytes of one row of
    samples, the same for every width asked (tiles ask for more)."""
    cache = {}
    maxv = (1 << bits) - 1
    per = nsamp if planes == 1 else 1
    float_values = [-1.0, 0.0, 0.5, 100.7, 127.9, 128.0, 200.0, 255.0, 256.5, 1e9, float("nan")]

    def value(r, s, x, y):
        if floats:
            if pattern == "pure":
                return float_values[7 if ((x // 7) + y) % 3 else 1]
            return r.choice(float_values)
        if pattern == "noise":
            return r.getrandbits(bits)
        if pattern == "pure":
            return maxv if ((x // 7) + y + s // 3) % 3 else 0
        if pattern == "runs":
            return maxv if (x * 13 // 200 + y) % 2 else 0
        return (maxv // 2 + ((x * 7 + y * 3 + s) % 5) - 2) & maxv

    def rows(p, y, width):
        key = (p, y, width)
        if key in cache:
            return cache[key]
        r = random.Random(seed * 1000003 + p * 65537 + y)
        if floats:
            vals = [value(r, i % per, i // per, y) for i in range(width * per)]
            data = struct.pack(f">{len(vals)}f", *vals)
        else:
            acc = 0
            n = width * per
            for i in range(n):
                acc = (acc << bits) | (value(r, p + i % per, i // per, y) & maxv)
            total = n * bits
            pad = (-total) % 8
            data = (acc << pad).to_bytes((total + pad) // 8, "big")
        cache[key] = data
        return data

    return rows


def samples_big_endian(rows, bits, big):
    """Packed big-endian sample rows to the file's byte order."""
    if big or bits not in (16, 32):
        return rows
    sz = bits // 8
    fmt = {2: "H", 4: "I"}[sz]

    def conv(p, y, w):
        d = rows(p, y, w)
        n = len(d) // sz
        return struct.pack(f"<{n}{fmt}", *struct.unpack(f">{n}{fmt}", d[:n * sz]))
    return conv


# ------------------------------------------------------------- the cases
ALL_STRUCTURES = False
WIDTHS = list(range(1, 71)) + [127, 128, 129, 255, 256, 257, 300]


def hand_cases(rng, quick):
    """(class name, kwargs for tiff(), width, height, pattern) tuples."""
    kinds = [
        # name, photometric, bits, sample_format, extra
        ("bilevel-miniswhite", 0, (1,), None, None),
        ("bilevel-minisblack", 1, (1,), None, None),
        ("grey2-miw", 0, (2,), None, None),
        ("grey2", 1, (2,), None, None),
        ("grey4-miw", 0, (4,), None, None),
        ("grey4", 1, (4,), None, None),
        ("grey8-miw", 0, (8,), None, None),
        ("grey8", 1, (8,), None, None),
        ("grey8-signed", 1, (8,), (2,), None),
        ("grey12", 1, (12,), None, None),
        ("grey16", 1, (16,), None, None),
        ("grey16-miw", 0, (16,), None, None),
        ("int16", 1, (16,), (2,), None),
        ("int32", 1, (32,), (2,), None),
        ("uint32", 1, (32,), (1,), None),
        ("float32", 1, (32,), (3,), None),
        ("float32-miw", 0, (32,), (3,), None),
        ("grey-x", 1, (8, 8), None, (0,)),
        ("grey-alpha", 1, (8, 8), None, (2,)),
        ("grey-assoc", 1, (8, 8), None, (1,)),
        ("pal1", 3, (1,), None, None),
        ("pal2", 3, (2,), None, None),
        ("pal4", 3, (4,), None, None),
        ("pal8", 3, (8,), None, None),
        ("pal-x", 3, (8, 8), None, (0,)),
        ("pal-alpha", 3, (8, 8), None, (2,)),
        ("rgb8", 2, (8, 8, 8), None, None),
        ("rgba8-noextra", 2, (8, 8, 8, 8), None, None),
        ("rgbx8", 2, (8, 8, 8, 8), None, (0,)),
        ("rgba8", 2, (8, 8, 8, 8), None, (2,)),
        ("rgba8-assoc", 2, (8, 8, 8, 8), None, (1,)),
        ("rgbxx8", 2, (8, 8, 8, 8, 8), None, (0, 0)),
        ("rgbax8", 2, (8, 8, 8, 8, 8), None, (2, 0)),
        ("rgbaxx8-assoc", 2, (8, 8, 8, 8, 8, 8), None, (1, 0, 0)),
        ("rgb16", 2, (16, 16, 16), None, None),
        ("rgba16", 2, (16, 16, 16, 16), None, (2,)),
        ("rgba16-assoc", 2, (16, 16, 16, 16), None, (1,)),
        ("rgbx16", 2, (16, 16, 16, 16), None, (0,)),
        ("cmyk8", 5, (8, 8, 8, 8), None, None),
        ("cmykx8", 5, (8, 8, 8, 8, 8), None, (0,)),
        ("cmyk16", 5, (16, 16, 16, 16), None, None),
        # refused by Pillow
        ("grey3", 1, (3,), None, None),
        ("grey24", 1, (24,), None, None),
        ("rgb-int8", 2, (8, 8, 8), (2,), None),
        ("float16", 1, (16,), (3,), None),
        ("float64", 1, (64,), (3,), None),
    ]
    widths = [1, 2, 3, 7, 8, 9, 17, 33, 64, 129, 257] if quick else WIDTHS
    for name, photo, bits, sf, extra in kinds:
        nsamp = len(bits)
        for big in (False, True):
            for comp in (1, 5, 8, 32773):
                ws = widths if (comp == 1 and not big) else widths[::5] + [widths[-1]]
                for w in ws:
                    h = 1 + (w * 7) % 9
                    pattern = ["noise", "pure", "runs", "edge"][w % 4]
                    colormap = None
                    if photo == 3:
                        n = 1 << bits[0]
                        pal = [rng.randrange(65536) for _ in range(3 * n)]
                        if w % 3 == 0:  # black and white
                            pal = [0] * n + [65535] * n
                            pal = pal[:n] + pal[:n] + pal[:n]
                            pal = ([0] + [65535] * (n - 1)) * 3
                        colormap = pal
                    kw = dict(bits=bits, photometric=photo, sample_format=sf, extra=extra,
                              compression=comp, big=big, colormap=colormap,
                              extra_tags=[(278, (3, [1 + w % 5]))])
                    yield name, kw, w, h, pattern, bits[0], nsamp
    # structure variants on a few kinds
    struct_kinds = [k for k in kinds if ALL_STRUCTURES or k[0] in (
        "bilevel-miniswhite", "grey8", "grey4-miw", "grey16", "rgb8", "rgba8-assoc", "cmyk8",
        "rgb16", "pal4", "float32", "int16", "cmyk16", "rgba8-noextra", "grey-alpha")]
    for name, photo, bits, sf, extra in struct_kinds:
        nsamp = len(bits)
        for w in ([5, 16, 33, 70, 129] if quick else [1, 5, 16, 17, 33, 70, 127, 129, 255, 300]):
            h = 3 + w % 11
            base = dict(bits=bits, photometric=photo, sample_format=sf, extra=extra,
                        colormap=([rng.randrange(65536) for _ in range(3 << bits[0])]
                                  if photo == 3 else None))
            variants = []
            for comp in (1, 5, 8, 32773):
                for tile in ((16, 16), (32, 48), (64, 16)):
                    variants.append((f"tiles{tile[0]}x{tile[1]}-c{comp}",
                                     dict(compression=comp, tile=tile)))
                if nsamp == 1:
                    variants.append((f"planar1-c{comp}", dict(compression=comp, planar=2)))
                if nsamp > 1:
                    variants.append((f"planar-c{comp}", dict(compression=comp, planar=2,
                                                             extra_tags=[(278, (3, [2]))])))
                    variants.append((f"planar-tiles-c{comp}", dict(compression=comp, planar=2,
                                                                   tile=(16, 16))))
                variants.append((f"fill2-c{comp}", dict(compression=comp, fill=2)))
                for o in range(1, 9):
                    variants.append((f"orient{o}-c{comp}",
                                     dict(compression=comp, orientation=o,
                                          extra_tags=[(278, (3, [1 + w % 4]))])))
            for comp in (5, 8):
                if bits[0] in (8, 16, 32) and sf != (3,):
                    variants.append((f"pred2-c{comp}", dict(compression=comp, predictor=2,
                                                            extra_tags=[(278, (3, [3]))])))
                    if nsamp > 1:
                        variants.append((f"pred2-planar-c{comp}",
                                         dict(compression=comp, predictor=2, planar=2)))
                    variants.append((f"pred2-tiles-c{comp}", dict(compression=comp, predictor=2,
                                                                  tile=(16, 32))))
                if sf == (3,) and bits[0] == 32:
                    variants.append((f"pred3-c{comp}", dict(compression=comp, predictor=3)))
                    variants.append((f"pred3-tiles-c{comp}", dict(compression=comp, predictor=3,
                                                                  tile=(32, 16))))
            variants.append(("oldlzw", dict(compression="oldlzw")))
            variants.append(("pred2-raw", dict(compression=1, predictor=2)))
            variants.append(("bigtiff", dict(compression=8, bigtiff=True)))
            variants.append(("bigtiff-mm", dict(compression=5, bigtiff=True, big=True)))
            for vname, v in variants:
                kw = dict(base)
                kw.update(v)
                pattern = ["noise", "pure", "runs", "edge"][(w + len(vname)) % 4]
                yield f"{name}/{vname.split('-c')[0]}", kw, w, h, pattern, bits[0], nsamp


def mapped_cases(rng):
    """Uncompressed images Pillow memory-maps (one tile or strip covering
    the image, raw mode = mode): with Orientation 5-8 Pillow maps them at
    the turned size."""
    kinds = [("grey8", 1, (8,), None), ("pal8", 3, (8,), None), ("rgba8", 2, (8, 8, 8, 8), (2,)),
             ("cmyk8", 5, (8, 8, 8, 8), None), ("grey16", 1, (16,), None),
             ("grey16-miw", 0, (16,), None)]
    for name, photo, bits, extra in kinds:
        for (w, h, big) in ((16, 32, 0), (32, 16, 0), (48, 48, 0), (7, 10, 0), (13, 5, 0),
                            (7, 10, 1), (13, 5, 1), (20, 40, 1)):
            for o in range(1, 9):
                tile = (w, h) if w % 16 == 0 and h % 16 == 0 else None
                if big:  # one tile larger than the image
                    tile = (-(-w // 16) * 16 + 16, -(-h // 16) * 16)
                kw = dict(bits=bits, photometric=photo, extra=extra, orientation=o, tile=tile,
                          colormap=[rng.randrange(65536) for _ in range(768)] if photo == 3 else None)
                yield f"mapped-{name}{'-bigtile' if big else '-tile' if tile else ''}", kw, w, h, "noise", bits[0], len(bits)


def pillow_cases(quick):
    modes = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA"]
    comps = ["raw", "packbits", "tiff_lzw", "tiff_adobe_deflate", "group3", "group4"]
    widths = [1, 2, 7, 8, 9, 33, 127, 128, 129, 257] if quick else WIDTHS
    for mode in modes:
        for comp in comps:
            if comp.startswith("group") and mode != "1":
                continue
            for w in (widths if comp in ("raw", "tiff_lzw") else widths[::3]):
                h = 1 + (w * 5) % 13
                o = 1 + w % 8
                strip = [1, 64, 1000, 65536][w % 4]
                yield f"pillow-{mode}-{comp}", mode, comp, w, h, o, strip


def pillow_image(mode, w, h, seed):
    rng = random.Random(seed)
    if mode == "1":
        im = Image.frombytes("L", (w, h), bytes(rng.choice((0, 255, 255)) for _ in range(w * h)))
        return im.convert("1", dither=Image.Dither.NONE)
    if mode == "I;16":
        return Image.frombytes("I;16", (w, h), bytes(rng.choice((0, 1, 2, 255)) for _ in range(2 * w * h)))
    if mode in ("I", "F"):
        vals = [rng.choice((-5, 0, 100, 127.5, 128, 200, 255, 300, 70000)) for _ in range(w * h)]
        im = Image.new(mode, (w, h))
        im.putdata([int(v) if mode == "I" else float(v) for v in vals])
        return im
    bands = len(Image.new(mode, (1, 1)).getbands())
    data = bytes(rng.choice((0, 40, 128, 129, 200, 255)) for _ in range(w * h * bands))
    if mode == "P":
        im = Image.frombytes("P", (w, h), data)
        im.putpalette([rng.randrange(256) for _ in range(768)])
        return im
    return Image.frombytes(mode, (w, h), data)


# ------------------------------------------------------------------- main
def run(rlewatch, root, files, expected, counts, failures, refused_ok, cls_of):
    for mode, flags in (("dither", []), ("threshold", ["--threshold"])):
        dst = os.path.join(root, mode) + "/"
        os.makedirs(dst, exist_ok=True)
        names = sorted(files)
        errs = {}
        for i in range(0, len(names), 400):
            batch = [os.path.join(root, "in", n) for n in names[i:i + 400]]
            proc = subprocess.run([rlewatch, "compress", "--force", "-j", "2", "-o", dst] + flags + batch,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for line in proc.stderr.splitlines():
                for n in names[i:i + 400]:
                    if n in line:
                        errs[n] = line
        for n in names:
            cls = cls_of[n]
            out = os.path.join(dst, n[:-4] + ".rle")
            want = expected[n].get(mode)
            got = open(out, "rb").read() if os.path.exists(out) else None
            if want is None:  # Pillow refuses
                if got is None:
                    counts[cls]["refused"] += 1
                    refused_ok[cls] = (expected[n]["why"], errs.get(n, "?"))
                else:
                    counts[cls]["pillow refuses, rlewatch reads"] += 1
                    failures.append(f"{n} {mode}: Pillow refuses ({expected[n]['why']}), rlewatch wrote output")
                continue
            if got == want:
                counts[cls][mode + " ok"] += 1
                continue
            counts[cls][mode + " BAD"] += 1
            if got is None:
                failures.append(f"{n} {mode}: rlewatch wrote nothing: {errs.get(n, '?')}")
            else:
                at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                          min(len(got), len(want)))
                failures.append(f"{n} {mode}: first difference at byte {at}: Pillow "
                                f"{want[at:at + 8].hex(' ')}, rlewatch {got[at:at + 8].hex(' ')} "
                                f"(lengths {len(want)}, {len(got)})")


def vectors(out):
    """The small files committed as unit-test vectors (src/formats/tiff/
    tests.rs), each with Pillow's .rle in both modes."""
    rng = random.Random(22)
    pal = [rng.randrange(65536) for _ in range(48)]
    cases = [
        ("miniswhite-packbits", 37, 9, dict(bits=(1,), photometric=0, compression=32773,
                                           extra_tags=[(278, (3, [4]))]), "pure"),
        ("grey8-lzw-pred2", 29, 11, dict(bits=(8,), photometric=1, compression=5, predictor=2,
                                        extra_tags=[(278, (3, [3]))]), "noise"),
        ("rgb16-deflate-tiles", 40, 20, dict(bits=(16, 16, 16), photometric=2, compression=8,
                                            tile=(16, 16)), "noise"),
        ("rgba-assoc-planar-lzw", 19, 6, dict(bits=(8, 8, 8, 8), photometric=2, extra=(1,),
                                             compression=5, planar=2), "noise"),
        ("cmyk-o6", 23, 10, dict(bits=(8, 8, 8, 8), photometric=5, compression=8,
                                 orientation=6, extra_tags=[(278, (3, [3]))]), "noise"),
        ("pal4-mm-o3", 27, 13, dict(bits=(4,), photometric=3, colormap=pal, big=True,
                                    compression=32773, orientation=3,
                                    extra_tags=[(278, (3, [5]))]), "noise"),
        ("grey8-raw-o8", 12, 7, dict(bits=(8,), photometric=1, compression=1, orientation=8),
         "edge"),
        ("float-pred3", 9, 5, dict(bits=(32,), photometric=1, sample_format=(3,),
                                   compression=8, predictor=3), "noise"),
        ("grey16-miw-lzw", 15, 4, dict(bits=(16,), photometric=0, compression=5), "pure"),
        ("bigtiff-rgb-deflate", 21, 6, dict(bits=(8, 8, 8), photometric=2, compression=8,
                                            bigtiff=True, extra_tags=[(278, (3, [4]))]),
         "noise"),
    ]
    readme = []
    for n, (name, w, h, kw, pattern) in enumerate(cases):
        planes = len(kw["bits"]) if kw.get("planar") == 2 else 1
        rows = sample_rows(100 + n, kw["bits"][0], len(kw["bits"]), planes, pattern, h,
                           floats=kw.get("sample_format") == (3,))
        rows = samples_big_endian(rows, kw["bits"][0], kw.get("big", False))
        path = os.path.join(out, name + ".tif")
        with open(path, "wb") as f:
            f.write(tiff(w, h, rows=rows, **kw))
        for mode, dither in (("dither", True), ("threshold", False)):
            with open(os.path.join(out, f"{name}.{mode}.rle"), "wb") as f:
                f.write(reference(path, dither))
        print(name, Image.open(path).mode)
    # Pillow's own saver: directory first, then the strips.
    im = Image.frombytes("L", (33, 21), bytes(rng.choice((0, 90, 200, 255)) for _ in range(33 * 21)))
    path = os.path.join(out, "pillow-grey-lzw-o4.tif")
    im.save(path, compression="tiff_lzw", strip_size=200, tiffinfo={274: 4})
    for mode, dither in (("dither", True), ("threshold", False)):
        with open(os.path.join(out, f"pillow-grey-lzw-o4.{mode}.rle"), "wb") as f:
            f.write(reference(path, dither))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rlewatch", nargs="?")
    ap.add_argument("--vectors", metavar="DIR", help="write the unit-test vectors to DIR and stop")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="regex on class names")
    ap.add_argument("--all-structures", action="store_true",
                    help="tiles, planes, predictors, orientations for every pixel type")
    ap.add_argument("--images", help="also compare every *.tif* of this folder (Pillow's Tests/images)")
    args = ap.parse_args()
    if args.vectors:
        return vectors(args.vectors)
    if not args.rlewatch:
        ap.error("the rlewatch binary is needed")
    global ALL_STRUCTURES
    ALL_STRUCTURES = args.all_structures
    rng = random.Random(args.seed)
    root = args.keep or tempfile.mkdtemp(prefix="tiffdiff")
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    files, expected, cls_of = set(), {}, {}
    counts = collections.defaultdict(collections.Counter)
    only = re.compile(args.only) if args.only else None

    def add(cls, name, data=None, src=None):
        path = os.path.join(root, "in", name)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        else:
            if os.path.lexists(path):
                os.remove(path)
            os.symlink(os.path.abspath(src), path)
        files.add(name)
        cls_of[name] = cls
        try:
            expected[name] = {"dither": reference(path, True), "threshold": reference(path, False)}
        except Exception as e:  # Pillow refuses
            expected[name] = {"why": f"{type(e).__name__}: {e}"}

    n = 0
    for cls, kw, w, h, pattern, bits, nsamp in list(hand_cases(rng, args.quick)) + list(mapped_cases(rng)):
        if only and not only.search(cls):
            continue
        planes = nsamp if kw.get("planar") == 2 else 1
        rows = sample_rows(args.seed + n, bits, nsamp, planes, pattern, h,
                           floats=kw.get("sample_format") == (3,) and bits == 32)
        rows = samples_big_endian(rows, bits, kw.get("big", False))
        try:
            data = tiff(w, h, rows=rows, **kw)
        except Exception as e:
            print(f"cannot write {cls} {w}x{h}: {e}")
            raise
        add(cls, f"h{n:05d}.tif", data)
        n += 1
    for cls, mode, comp, w, h, o, strip in pillow_cases(args.quick):
        if only and not only.search(cls):
            continue
        im = pillow_image(mode, w, h, args.seed + n)
        buf = io.BytesIO()
        try:
            im.save(buf, "TIFF", compression=comp, tiffinfo={274: o}, strip_size=strip)
        except Exception as e:
            print(f"Pillow cannot write {cls}: {e}")
            continue
        add(f"{cls}-o", f"p{n:05d}.tif", buf.getvalue())
        n += 1
    if args.images:
        for f in sorted(os.listdir(args.images)):
            if re.search(r"\.tiff?$", f, re.I):
                add("pillow-tests-images", f"t-{f.rsplit('.', 1)[0]}.tif",
                    src=os.path.join(args.images, f))
    failures, refused_ok = [], {}
    run(args.rlewatch, root, files, expected, counts, failures, refused_ok, cls_of)
    with open(os.path.join(root, "failures.txt"), "w") as fh:
        fh.write("".join(f + "\n" for f in failures))
    for f in failures[:60]:
        print(f)
    if len(failures) > 60:
        print(f"... {len(failures) - 60} more")
    print(f"\n{'class':<34} {'dither':>12} {'threshold':>12} {'refused':>8}")
    tot = collections.Counter()
    for cls in sorted(counts):
        c = counts[cls]
        tot.update(c)
        cell = lambda m: f"{c[m + ' ok']}" + (f"/{c[m + ' BAD']}BAD" if c[m + " BAD"] else "")
        extra = f"  {c['pillow refuses, rlewatch reads']} read though Pillow refuses" if c['pillow refuses, rlewatch reads'] else ""
        print(f"{cls:<34} {cell('dither'):>12} {cell('threshold'):>12} {c['refused']:>8}{extra}")
    print(f"\ntotal: {tot['dither ok'] + tot['threshold ok']} comparisons equal, "
          f"{tot['dither BAD'] + tot['threshold BAD']} differ, {tot['refused']} refusals agreed, "
          f"{tot['pillow refuses, rlewatch reads']} read though Pillow refuses; {len(files)} files in {root}")
    for cls, (why, ours) in sorted(refused_ok.items()):
        print(f"refused {cls}: Pillow: {why[:100]} | rlewatch: {ours.split(': ', 1)[-1][:160]}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
