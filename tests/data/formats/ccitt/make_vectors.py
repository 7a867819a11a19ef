"""Makes the CCITT test vectors of src/formats/ccitt.rs: NAME.tif, and what
Pillow 13.0.0 decodes it to, NAME.bits = Image.open(f).convert('1').tobytes()
(1 = white, rows of ceil(width/8) bytes), or NAME.err (Pillow's error) when
Pillow fails. Needs Pillow with libtiff and libtiff-tools (tiffcp, tiffset).
Run from this folder: python3 make_vectors.py"""
import os, random, struct, subprocess
from PIL import Image, ImageDraw, ImageFont

rng = random.Random(22)


def text(w, h):
    im = Image.new('L', (w, h), 255)
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=11)
    for y in range(-4, h, 11):
        d.text((rng.randint(-6, 4), y), 'Fax Group 4 abc 0123 xyz QWERTY', fill=0, font=font)
    d.rectangle((w // 3, h // 2, w // 3 + 20, h // 2 + 1), fill=0)
    return im.convert('1', dither=Image.Dither.NONE)


def noise(w, h, p):
    im = Image.new('1', (w, h), 1)
    px = im.load()
    for y in range(h):
        for x in range(w):
            if rng.random() < p:
                px[x, y] = 0
    return im


def tiffcp(src, dst, *args):
    subprocess.run(['tiffcp', *args, src, dst], check=True, stderr=subprocess.DEVNULL)


def tiffset(path, tag, value):
    subprocess.run(['tiffset', '-s', str(tag), str(value), path], check=True, stderr=subprocess.DEVNULL)


def entries(b):
    """{tag: (type, count, file offset of its values)} of the first IFD."""
    e = '<' if b[:2] == b'II' else '>'
    ifd = struct.unpack(e + 'I', b[4:8])[0]
    out = {}
    for i in range(struct.unpack(e + 'H', b[ifd:ifd + 2])[0]):
        at = ifd + 2 + 12 * i
        tag, typ, count = struct.unpack(e + 'HHI', b[at:at + 8])
        size = (2 if typ == 3 else 4) * count
        out[tag] = (typ, count, at + 8 if size <= 4 else struct.unpack(e + 'I', b[at + 8:at + 12])[0])
    return e, out


def strip(b, k):
    """(offset, byte count, where the byte count is) of strip k."""
    e, t = entries(b)
    def value(tag):
        typ, _, at = t[tag]
        size = 2 if typ == 3 else 4
        at += size * k
        return struct.unpack(e + ('H' if typ == 3 else 'I'), b[at:at + size])[0], at, size
    off = value(273)[0]
    count, at, size = value(279)
    return e, off, count, at, size


def damage(src, dst, how, k=0):
    b = bytearray(open(src, 'rb').read())
    e, off, count, at, size = strip(b, k)
    if how == 'cut':  # the strip's byte count halved: data ending early
        b[at:at + size] = struct.pack(e + ('H' if size == 2 else 'I'), count // 2)
    elif how == 'ones':  # four bytes in the middle of the strip set to 0xff
        m = off + count // 2 - 2
        b[m:m + 4] = b'\xff' * 4
    elif how == 'flip':  # three bits flipped
        for i in (count // 4, count // 2, 3 * count // 4):
            b[off + i] ^= 0x10
    open(dst, 'wb').write(b)


def expect(path):
    base = path[:-4]
    for old in (base + '.bits', base + '.err'):
        if os.path.exists(old):
            os.remove(old)
    try:
        with Image.open(path) as im:
            bits = im.convert('1').tobytes()
        open(base + '.bits', 'wb').write(bits)
    except Exception as ex:
        open(base + '.err', 'w').write(repr(ex) + '\n')


made = []
def save(im, name, compression):
    im.save(name + '.tif', compression=compression)
    made.append(name + '.tif')

# Undamaged: every coding, widths not a multiple of 8, fill order 2,
# several strips, MinIsWhite.
t = text(61, 23)
t.save('src.tif')
save(t, 'text61_g4', 'group4')
save(t, 'text61_g3', 'group3')
save(t, 'text61_mh', 'tiff_ccitt')
for name, args in [('text61_g3_2d_fill', ['-c', 'g3:2d:fill']),
                   ('text61_g3_1d_fill_lsb', ['-c', 'g3:1d:fill', '-f', 'lsb2msb']),
                   ('text61_g3_2d_strips', ['-c', 'g3:2d', '-r', '5']),
                   ('text61_g4_strips', ['-c', 'g4', '-r', '4']),
                   ('text61_g4_lsb', ['-c', 'g4', '-f', 'lsb2msb'])]:
    tiffcp('src.tif', name + '.tif', *args)
    made.append(name + '.tif')
tiffcp('text61_mh.tif', 'text61_mh_lsb_strips.tif', '-f', 'lsb2msb', '-r', '7')
made.append('text61_mh_lsb_strips.tif')
tiffcp('src.tif', 'text61_g4_miw.tif', '-c', 'g4')
tiffset('text61_g4_miw.tif', 262, 0)  # the same data read as MinIsWhite
made.append('text61_g4_miw.tif')
n = noise(203, 9, 0.3)
n.save('src.tif')
save(n, 'noise203_g4', 'group4')
save(n, 'noise203_mh', 'tiff_ccitt')
tiffcp('src.tif', 'noise203_g3_2d.tif', '-c', 'g3:2d')
made.append('noise203_g3_2d.tif')
one = noise(1, 5, 0.5)
save(one, 'w1_g4', 'group4')
save(one, 'w1_g3', 'group3')
save(one, 'w1_mh', 'tiff_ccitt')
os.remove('src.tif')

# Damaged: what libtiff (through Pillow) makes of it.
for src, how, k in [('text61_g4', 'cut', 0), ('text61_g3', 'cut', 0), ('text61_mh', 'cut', 0),
                    ('text61_g3_2d_fill', 'cut', 0), ('text61_g4', 'flip', 0),
                    ('text61_mh', 'flip', 0), ('text61_g3', 'ones', 0),
                    ('text61_g3_2d_strips', 'ones', 1), ('text61_g4_strips', 'cut', 2),
                    ('noise203_g4', 'ones', 0)]:
    dst = f'bad_{src}_{how}{k}.tif'
    damage(src + '.tif', dst, how, k)
    made.append(dst)
# Group 4 data of 23 rows in an image said to have 26: an EOFB ends it.
b = bytearray(open('text61_g4.tif', 'rb').read())
e, tags = entries(b)
for tag in (257, 278):
    typ, _, at = tags[tag]
    b[at:at + (2 if typ == 3 else 4)] = struct.pack(e + ('H' if typ == 3 else 'I'), 26)
open('bad_text61_g4_eofb.tif', 'wb').write(b)
made.append('bad_text61_g4_eofb.tif')


# Hand-made strips (codes of T.4 tables 1-3 and T.6 table 1) in a minimal
# TIFF: edge cases the encoders above never write.
def hand_tiff(path, w, h, comp, data, photometric=0, t4=None, t6=None, fill=1):
    entries = [(256, 4, w), (257, 4, h), (258, 3, 1), (259, 3, comp), (262, 3, photometric),
               (266, 3, fill), (273, 4, 8), (277, 3, 1), (278, 4, h), (279, 4, len(data))]
    if t4 is not None:
        entries.append((292, 4, t4))
    if t6 is not None:
        entries.append((293, 4, t6))
    entries.sort()
    pad = len(data) & 1
    out = bytearray(b'II*\0' + struct.pack('<I', 8 + len(data) + pad) + data + b'\0' * pad)
    out += struct.pack('<H', len(entries))
    for tag, typ, val in entries:
        out += struct.pack('<HHI', tag, typ, 1)
        out += struct.pack('<HH', val, 0) if typ == 3 else struct.pack('<I', val)
    out += b'\0\0\0\0'
    open(path, 'wb').write(out)
    made.append(path)


def pack(s):
    s = s.replace(' ', '')
    s += '0' * (-len(s) % 8)
    return bytes(int(s[i:i+8], 2) for i in range(0, len(s), 8))
EOL = '000000000001'
# G4, width 16: row 1 is horizontal (white 3, black 2), then the extension code
# that starts uncompressed mode (0000001 111, T6Options bit 1); then V0s.
hand_tiff('hand_g4_ext.tif', 16, 3, 4, pack('001 1000 11 0000001111 1 1 1 1' + EOL + EOL), t6=2)
# G4 with an EOL in the middle of row 2 (not an EOFB).
hand_tiff('hand_g4_eol_mid.tif', 16, 4, 4, pack('1 001 1000 11 ' + EOL + ' 1 1'))
# G3 2-D ending with RTC, 3 rows coded (a 1-D white row, two 2-D V0 rows),
# 6 or 3 declared.
rows = EOL + '1' + '10011' + (EOL + '0' + '1') * 2
rtc = (EOL + '1') * 6
hand_tiff('hand_g3_2d_rtc_more_rows.tif', 8, 6, 3, pack(rows + rtc), t4=1)
hand_tiff('hand_g3_2d_rtc_exact.tif', 8, 3, 3, pack(rows + rtc), t4=1)
# MH, width 3000: white 2560 (extended make-up) + 384 + 56 = 3000, and the
# terminating white 0 and black 0 codes.
hand_tiff('hand_mh_long.tif', 3000, 2, 2, pack('000000011111 00110111 01011001 0011010 1') + pack('000000011111 00110111 01011001 0011010 1'))
# MH with a black run past the end: width 10, white 2, black 64 + 0.
hand_tiff('hand_mh_past.tif', 10, 1, 2, pack('0111 0000001111 0000110111'))
# G3 1-D with bits before the first EOL, and fill bits.
hand_tiff('hand_g3_garbage.tif', 8, 2, 3, pack('1011011 0000 ' + EOL + '1011 011 0000000' + EOL + '10011'), t4=4)
# G3 1-D without any EOL (libtiff restarts without EOLs).
hand_tiff('hand_g3_noeol.tif', 8, 2, 3, pack('1011 011 10011'), t4=0)
# G4 with FillOrder 2.
d = pack('001 0111 10 1 011 010 1' + EOL + EOL)
hand_tiff('hand_g4_lsb.tif', 8, 2, 4, bytes(int(format(x, '08b')[::-1], 2) for x in d), fill=2)

for p in made:
    expect(p)
