//! Pixels → bits, exactly as Pillow's `convert('1')` does it (design §2),
//! row by row, plus the "lossless" verdict (every pixel pure black or pure
//! white and fully opaque).
//!
//! The rule depends on the mode Pillow would open the file as
//! ([`PillowMode`]): bilevel palettes use the index as the bit, other
//! palettes threshold each palette colour (never dithered), greyscale
//! palettes and direct colour go through a grey level that is dithered
//! (Floyd–Steinberg, Pillow's integer arithmetic) or thresholded at 128.
//! This module knows nothing of files.

use crate::bmp::{BmpInfo, Masks, PillowMode, RowData};
use crate::rle;

/// How grey levels become bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conversion {
    /// Floyd–Steinberg error diffusion (Pillow's default).
    #[default]
    Dither,
    /// Plain threshold at 128 (Pillow's `dither=NONE`).
    Threshold,
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conversion::Dither => "dither",
            Conversion::Threshold => "threshold",
        })
    }
}

/// One channel of a direct-colour pixel.
#[derive(Debug, Clone, Copy)]
struct Channel {
    shift: u32,
    /// Largest value (2^bits − 1); 0 for an absent channel.
    max: u32,
    /// Pillow's own 5/6-bit expansion truncates where the exact one rounds.
    truncate: bool,
}

impl Channel {
    fn new(mask: u32, truncate: bool) -> Channel {
        if mask == 0 {
            return Channel {
                shift: 0,
                max: 0,
                truncate,
            };
        }
        let shift = mask.trailing_zeros();
        Channel {
            shift,
            max: mask >> shift,
            truncate,
        }
    }

    #[inline]
    fn raw(&self, px: u32) -> u32 {
        (px >> self.shift) & self.max
    }

    /// Exact 8-bit value: round(v × 255 / max).
    #[inline]
    fn exact(&self, v: u32) -> u8 {
        if self.max == 0 {
            0
        } else {
            ((u64::from(v) * 255 + u64::from(self.max) / 2) / u64::from(self.max)) as u8
        }
    }

    /// The 8-bit value Pillow works with.
    #[inline]
    fn pillow(&self, v: u32) -> u8 {
        if self.truncate {
            (v * 255 / self.max) as u8
        } else {
            self.exact(v)
        }
    }
}

/// Decoding of direct-colour pixels.
#[derive(Debug, Clone, Copy)]
struct Direct {
    bytes: usize,
    r: Channel,
    g: Channel,
    b: Channel,
    a: Channel,
    /// Plain 8-bit B, G, R bytes at offsets 0, 1, 2 (24-bit and default
    /// 32-bit): a faster path.
    bgr8: bool,
}

impl Direct {
    fn new(bits: u16, m: Masks) -> Direct {
        // Pillow reads 16-bit 5-5-5 and 5-6-5 itself, truncating; every other
        // layout it reads has 8-bit channels or it refuses the file.
        let pillow_16 = bits == 16
            && matches!(
                (m.red, m.green, m.blue),
                (0x7c00, 0x03e0, 0x001f) | (0xf800, 0x07e0, 0x001f)
            );
        Direct {
            bytes: usize::from(bits / 8),
            r: Channel::new(m.red, pillow_16),
            g: Channel::new(m.green, pillow_16),
            b: Channel::new(m.blue, pillow_16),
            a: Channel::new(m.alpha, false),
            bgr8: bits >= 24 && (m.red, m.green, m.blue) == (0xff_0000, 0xff00, 0xff),
        }
    }

    #[inline]
    fn pixel(&self, row: &[u8], x: usize) -> u32 {
        let p = &row[x * self.bytes..];
        match self.bytes {
            2 => u32::from(u16::from_le_bytes([p[0], p[1]])),
            3 => u32::from_le_bytes([p[0], p[1], p[2], 0]),
            _ => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
        }
    }

    /// True when the pixel is pure black or pure white and fully opaque.
    #[inline]
    fn pure(&self, px: u32) -> bool {
        let opaque = self.a.max == 0 || self.a.raw(px) == self.a.max;
        let (r, g, b) = (self.r.raw(px), self.g.raw(px), self.b.raw(px));
        let black = r == 0 && g == 0 && b == 0;
        let white = r == self.r.max && g == self.g.max && b == self.b.max;
        opaque && (black || white)
    }
}

/// Pillow's luminance test, scaled by 1000: 299 R + 587 G + 114 B.
#[inline]
fn luma1000(r: u8, g: u8, b: u8) -> u32 {
    299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)
}

enum Plan {
    /// 1-bit uncompressed, bits mapped a word at a time: output =
    /// (input & keep) ^ flip, with `pure[i]` saying whether index i is pure.
    Words {
        keep: u64,
        flip: u64,
        pure: [bool; 2],
    },
    /// Palette images: per-index bit (One, P) or grey (L).
    Indexed {
        bit: Box<[u8; 256]>,
        grey: Box<[u8; 256]>,
        pure: Box<[bool; 256]>,
        via_grey: bool,
    },
    Direct(Direct),
}

/// Converts rows of one image to packed bits; see [`Converter::row`].
pub struct Converter {
    width: usize,
    bits_per_pixel: u16,
    conversion: Conversion,
    plan: Plan,
    /// Pillow's error array: width + 1 entries carried from row to row.
    errors: Vec<i32>,
    grey: Vec<u8>,
    indices: Vec<u8>,
    lossless: bool,
}

impl Converter {
    pub fn new(info: &BmpInfo, conversion: Conversion) -> Converter {
        let width = info.width as usize;
        let plan = match (info.mode, info.masks) {
            (PillowMode::Rgb, Some(m)) => Plan::Direct(Direct::new(info.bits_per_pixel, m)),
            (mode, _) => indexed_plan(info, mode),
        };
        Converter {
            width,
            bits_per_pixel: info.bits_per_pixel,
            conversion,
            plan,
            errors: vec![0; width + 1],
            grey: vec![0; width],
            indices: vec![0; width],
            lossless: true,
        }
    }

    /// True while every pixel converted so far was pure black or white and
    /// opaque.
    pub fn lossless(&self) -> bool {
        self.lossless
    }

    /// Converts the next row (top to bottom) into `out`, packed bits
    /// (`rle::words_for(width)` words; bits past the width are zero).
    pub fn row(&mut self, row: RowData<'_>, out: &mut [u64]) {
        let width = self.width;
        let out = &mut out[..width.div_ceil(64)];
        match (&self.plan, row) {
            (&Plan::Words { keep, flip, pure }, RowData::Packed(bytes)) => {
                // The row's bytes fill `full_words` words; a partial last
                // word (stride not a multiple of 8) is padded with zeros.
                let full = bytes.chunks_exact(8);
                let rest = full.remainder();
                let full_words = (bytes.len() / 8).min(out.len());
                for (w, chunk) in out[..full_words].iter_mut().zip(full) {
                    *w = u64::from_be_bytes(chunk.try_into().expect("BUG: chunks_exact(8)"));
                }
                if let Some(w) = out.get_mut(full_words) {
                    let mut be = [0u8; 8];
                    be[..rest.len()].copy_from_slice(rest);
                    *w = u64::from_be_bytes(be);
                }
                let last = out.len() - 1;
                let tail = rle::tail_mask(width);
                if self.lossless && !(pure[0] && pure[1]) {
                    // Is an impure index used anywhere in the row?
                    let used = |bit: bool| {
                        out.iter().enumerate().any(|(i, &w)| {
                            let valid = if i == last { tail } else { u64::MAX };
                            (if bit { w } else { !w }) & valid != 0
                        })
                    };
                    if (!pure[0] && used(false)) || (!pure[1] && used(true)) {
                        self.lossless = false;
                    }
                }
                if (keep, flip) != (u64::MAX, 0) {
                    for w in out.iter_mut() {
                        *w = (*w & keep) ^ flip;
                    }
                }
                out[last] &= tail;
            }
            (Plan::Indexed { .. }, row) => {
                let indices: &[u8] = match row {
                    RowData::Indices(ix) => ix,
                    RowData::Packed(bytes) => {
                        unpack_indices(bytes, self.bits_per_pixel, &mut self.indices);
                        &self.indices
                    }
                };
                let Plan::Indexed {
                    bit,
                    grey,
                    pure,
                    via_grey,
                } = &self.plan
                else {
                    unreachable!()
                };
                if self.lossless && !indices.iter().all(|&i| pure[usize::from(i)]) {
                    self.lossless = false;
                }
                if *via_grey {
                    for (g, &i) in self.grey.iter_mut().zip(indices) {
                        *g = grey[usize::from(i)];
                    }
                    bilevel(&self.grey, self.conversion, &mut self.errors, out);
                } else {
                    pack(indices, |i| bit[usize::from(i)] != 0, out);
                }
            }
            (Plan::Direct(d), RowData::Packed(bytes)) => {
                let d = *d;
                if self.lossless && !(0..width).all(|x| d.pure(d.pixel(bytes, x))) {
                    self.lossless = false;
                }
                if d.bgr8 {
                    for (g, p) in self.grey.iter_mut().zip(bytes.chunks_exact(d.bytes)) {
                        *g = (luma1000(p[2], p[1], p[0]) / 1000) as u8;
                    }
                } else {
                    for (x, g) in self.grey.iter_mut().enumerate() {
                        let px = d.pixel(bytes, x);
                        let (r, gg, b) = (
                            d.r.pillow(d.r.raw(px)),
                            d.g.pillow(d.g.raw(px)),
                            d.b.pillow(d.b.raw(px)),
                        );
                        *g = (luma1000(r, gg, b) / 1000) as u8;
                    }
                }
                bilevel(&self.grey, self.conversion, &mut self.errors, out);
            }
            (Plan::Words { .. } | Plan::Direct(_), RowData::Indices(_)) => {
                unreachable!("BUG: RLE rows are only produced for palette images")
            }
        }
    }
}

fn indexed_plan(info: &BmpInfo, mode: PillowMode) -> Plan {
    let pal = &info.palette;
    // Indices past the palette's end are black (as Pillow ≥ 10.1).
    let colour = |i: usize| pal.get(i).copied().unwrap_or([0, 0, 0]);
    let bit_of = |i: usize| match mode {
        PillowMode::One => i == 1,
        _ => {
            let [r, g, b] = colour(i);
            luma1000(r, g, b) >= 128_000
        }
    };
    let pure_of = |i: usize| matches!(colour(i), [0, 0, 0] | [255, 255, 255]);
    if info.bits_per_pixel == 1
        && mode != PillowMode::L
        && info.compression == crate::bmp::Compression::None
    {
        let (b0, b1) = (bit_of(0), bit_of(1));
        let (keep, flip) = match (b0, b1) {
            (false, true) => (u64::MAX, 0),
            (true, false) => (u64::MAX, u64::MAX),
            (false, false) => (0, 0),
            (true, true) => (0, u64::MAX),
        };
        return Plan::Words {
            keep,
            flip,
            pure: [pure_of(0), pure_of(1)],
        };
    }
    let mut bit = Box::new([0u8; 256]);
    let mut grey = Box::new([0u8; 256]);
    let mut pure = Box::new([false; 256]);
    for i in 0..256 {
        bit[i] = u8::from(bit_of(i));
        grey[i] = colour(i)[0];
        pure[i] = pure_of(i);
    }
    Plan::Indexed {
        bit,
        grey,
        pure,
        via_grey: mode == PillowMode::L,
    }
}

/// Spreads 1/2/4/8-bit packed indices (most significant first) into bytes.
fn unpack_indices(bytes: &[u8], bits: u16, out: &mut [u8]) {
    match bits {
        8 => out.copy_from_slice(&bytes[..out.len()]),
        _ => {
            let per_byte = 8 / usize::from(bits);
            let mask = (1u8 << bits) - 1;
            for (x, o) in out.iter_mut().enumerate() {
                let shift = 8 - bits as usize * (x % per_byte + 1);
                *o = (bytes[x / per_byte] >> shift) & mask;
            }
        }
    }
}

/// Packs bits (first pixel first) into words, most significant bit first.
/// Packs `bit(v)` of every byte into words, most significant bit first, 64
/// pixels per inner loop so the compiler can vectorise it.
#[inline]
fn pack(values: &[u8], bit: impl Fn(u8) -> bool, out: &mut [u64]) {
    for (chunk, word) in values.chunks(64).zip(out.iter_mut()) {
        let mut w = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            w |= u64::from(bit(v)) << (63 - i);
        }
        *word = w;
    }
}

/// Grey levels → packed bits, by Pillow's rules.
fn bilevel(grey: &[u8], conversion: Conversion, errors: &mut [i32], out: &mut [u64]) {
    match conversion {
        Conversion::Threshold => pack(grey, |g| g >= 128, out),
        Conversion::Dither => dither_row(grey, errors, out),
    }
}

/// One row of Pillow's Floyd–Steinberg (`tobilevel` in Convert.c): left to
/// right, errors carried in `errors` (width + 1 entries) to the next row,
/// with its exact integer arithmetic: the summed error is divided by 16
/// with truncation toward zero.
fn dither_row(grey: &[u8], errors: &mut [i32], out: &mut [u64]) {
    out.fill(0);
    // l: 7/16-scaled error flowing right; l0, l1: the pending below-row sums.
    let (mut l, mut l0, mut l1) = (0i32, 0i32, 0i32);
    for (x, &g) in grey.iter().enumerate() {
        let v = (i32::from(g) + (l + errors[x + 1]) / 16).clamp(0, 255);
        let white = v > 128;
        if white {
            out[x / 64] |= 1 << (63 - x % 64);
        }
        let e = v - if white { 255 } else { 0 };
        errors[x] = 3 * e + l0;
        l0 = 5 * e + l1;
        l1 = e;
        l = 7 * e;
    }
    errors[grey.len()] = l0;
}

/// The exact colour of each pixel of a row as RGBA (direct colour channels
/// rounded to 8 bits; alpha 255 where the file has none). For inspection
/// and tests; the conversion itself does not go through this.
pub fn rgba_row(info: &BmpInfo, row: RowData<'_>) -> Vec<[u8; 4]> {
    let width = info.width as usize;
    let colour = |i: u8| {
        let [r, g, b] = info
            .palette
            .get(usize::from(i))
            .copied()
            .unwrap_or([0, 0, 0]);
        [r, g, b, 255]
    };
    match (info.masks, row) {
        (_, RowData::Indices(ix)) => ix.iter().map(|&i| colour(i)).collect(),
        (None, RowData::Packed(bytes)) => {
            let mut ix = vec![0u8; width];
            unpack_indices(bytes, info.bits_per_pixel, &mut ix);
            ix.into_iter().map(colour).collect()
        }
        (Some(m), RowData::Packed(bytes)) => {
            let d = Direct::new(info.bits_per_pixel, m);
            (0..width)
                .map(|x| {
                    let px = d.pixel(bytes, x);
                    let a = if d.a.max == 0 {
                        255
                    } else {
                        d.a.exact(d.a.raw(px))
                    };
                    [
                        d.r.exact(d.r.raw(px)),
                        d.g.exact(d.g.raw(px)),
                        d.b.exact(d.b.raw(px)),
                        a,
                    ]
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent, literal transcription of the rule in design §2
    /// (errors kept per target pixel, not in Pillow's rolling form).
    fn dither_reference(grey: &[Vec<u8>]) -> Vec<Vec<bool>> {
        let w = grey[0].len();
        let mut below = vec![0i32; w + 1]; // errors for the current row, from the row above
        let mut out = Vec::new();
        for row in grey {
            let mut next = vec![0i32; w + 1];
            let mut right = 0;
            let mut bits = Vec::new();
            for x in 0..w {
                let v = (i32::from(row[x]) + (right + below[x]) / 16).clamp(0, 255);
                let white = v > 128;
                bits.push(white);
                let e = v - if white { 255 } else { 0 };
                right = 7 * e;
                if x > 0 {
                    next[x - 1] += 3 * e;
                }
                next[x] += 5 * e;
                next[x + 1] += e;
            }
            below = next;
            out.push(bits);
        }
        out
    }

    #[test]
    fn dither_matches_the_spec_transcription() {
        let mut seed = 12345u32;
        for &w in &[1usize, 2, 3, 63, 64, 65, 130] {
            let rows: Vec<Vec<u8>> = (0..17)
                .map(|_| {
                    (0..w)
                        .map(|_| {
                            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                            (seed >> 16) as u8
                        })
                        .collect()
                })
                .collect();
            let expected = dither_reference(&rows);
            let mut errors = vec![0; w + 1];
            let mut out = vec![0u64; w.div_ceil(64)];
            for (row, exp) in rows.iter().zip(&expected) {
                dither_row(row, &mut errors, &mut out);
                let got: Vec<bool> = (0..w)
                    .map(|x| out[x / 64] >> (63 - x % 64) & 1 == 1)
                    .collect();
                assert_eq!(&got, exp, "width {w}");
            }
        }
    }

    #[test]
    fn five_bit_channels_round_exactly_and_truncate_for_pillow() {
        let exact = Channel::new(0x1f, false);
        let pillow = Channel::new(0x1f, true);
        assert_eq!(exact.exact(16), 132); // 16 × 255 / 31 = 131.6
        assert_eq!(pillow.pillow(16), 131);
        assert_eq!(exact.exact(31), 255);
        assert_eq!(pillow.pillow(31), 255);
    }
}
