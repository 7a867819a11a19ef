#!/usr/bin/env python3
"""Makes the scanner-style vectors of tests/data/formats/ from the BMP Suite
images of tests/data/, and their expected .rle by the reference's method
(Pillow 13.0.0 `Image.open(f).convert('1')`, with and without dither, then
the run-length coder of design §1 written here from the spec):

  scan-g4.tif   pal1.bmp as a 1-bit TIFF, CCITT Group 4 (MinIsWhite)
  scan.png      rgb24.bmp as an 8-bit grey PNG
  NAME.dither.rle, NAME.threshold.rle

Run from this folder: python3 make.py
"""
import re
import struct

from PIL import Image

RUN = re.compile(rb"\x00+|\xff+")


def encode(width, height, pixels):
    out = bytearray(struct.pack("<HH", width, height))
    for y in range(height):
        for x0 in range(y * width, (y + 1) * width, 127):
            for m in RUN.finditer(pixels, x0, min((y + 1) * width, x0 + 127)):
                out.append((0x80 if pixels[m.start()] else 0) | (m.end() - m.start()))
    return bytes(out)


def expect(name):
    im = Image.open(name)
    for mode, bw in [("dither", im.convert("1")), ("threshold", im.convert("1", dither=Image.Dither.NONE))]:
        stem = name.rsplit(".", 1)[0]
        with open(f"{stem}.{mode}.rle", "wb") as f:
            f.write(encode(im.width, im.height, bw.convert("L").tobytes()))


Image.open("../pal1.bmp").convert("1").save("scan-g4.tif", compression="group4")
Image.open("../rgb24.bmp").convert("L").save("scan.png")
for name in ["scan-g4.tif", "scan.png"]:
    expect(name)
    print(name, Image.open(name).mode, Image.open(name).info.get("compression", ""))
