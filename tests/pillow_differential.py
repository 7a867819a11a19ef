#!/usr/bin/env python3
"""Differential check of `rlewatch compress` against the reference program's
method: Pillow's `Image.open(path).convert('1')` (dither and threshold)
followed by a straightforward run-length coder written from design §1.

Random BMPs are written with Pillow in every mode it saves (1, L, P with 4
and 8 bits, RGB) at many widths (every width up to 69 and the chunk and word
edges), so row layouts the BMP Suite (all ~127 pixels wide) never shows are
covered. Deterministic (fixed seed). Needs Pillow; `.ci/run` installs it.

usage: pillow_differential.py PATH/TO/rlewatch
"""
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image


def reference(path, dither):
    im = Image.open(path)
    im = im.convert("1") if dither else im.convert("1", dither=Image.Dither.NONE)
    w, h = im.size
    out = bytearray(w.to_bytes(2, "little") + h.to_bytes(2, "little"))
    px = im.load()
    for y in range(h):
        for x0 in range(0, w, 127):
            cur, n = None, 0
            for x in range(x0, min(w, x0 + 127)):
                b = 1 if px[x, y] else 0
                if b == cur:
                    n += 1
                else:
                    if cur is not None:
                        out.append((cur << 7) | n)
                    cur, n = b, 1
            out.append((cur << 7) | n)
    return bytes(out)


def main():
    rlewatch = sys.argv[1]
    rng = random.Random(7)
    widths = list(range(1, 70)) + [127, 128, 129, 254, 255, 256, 500, 1001, 2550]
    failures, checked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.bmp"), os.path.join(tmp, "out.rle")
        for w in widths:
            h = rng.randrange(1, 6)
            for mode in ["1", "L", "P8", "P4", "RGB"]:
                m = mode[0] if mode.startswith("P") else mode
                im = Image.new(m, (w, h))
                if m == "P":
                    colours = 16 if mode == "P4" else 256
                    im.putpalette([rng.randrange(256) for _ in range(colours * 3)])
                    im.putdata([rng.randrange(colours) for _ in range(w * h)])
                elif m == "RGB":
                    im.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(w * h)])
                elif m == "L":
                    im.putdata([rng.randrange(256) for _ in range(w * h)])
                else:
                    im.putdata([rng.choice([0, 255]) for _ in range(w * h)])
                im.save(src, **({"bits": 4} if mode == "P4" else {}))
                for dither, flags in ((True, []), (False, ["--threshold"])):
                    expected = reference(src, dither)
                    subprocess.run([rlewatch, "compress", "--force", "-o", dst, src] + flags, check=True)
                    with open(dst, "rb") as f:
                        if f.read() != expected:
                            failures.append(f"width {w} height {h} mode {mode} dither {dither}")
                    checked += 1
    for f in failures:
        print("DIFFERS:", f)
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
