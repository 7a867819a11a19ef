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
//!
//! The scalar code here is the definition; `simd` speeds up the hot
//! loops (direct colour → bits or grey with the lossless check in the same
//! pass, grey → bits, and the dither's skip over spans where it provably
//! has nothing to do) and must agree with it bit for bit.

mod simd;

use crate::bmp::{BmpInfo, Masks, PillowMode, RowData};
use crate::rle;
use simd::Isa;

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

    /// The grey level Pillow computes for a pixel (any layout).
    #[inline]
    fn grey(&self, px: u32) -> u8 {
        let (r, g, b) = (
            self.r.pillow(self.r.raw(px)),
            self.g.pillow(self.g.raw(px)),
            self.b.pillow(self.b.raw(px)),
        );
        (luma1000(r, g, b) / 1000) as u8
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

/// Every 16-bit pixel value's grey level and purity, tabulated with the
/// scalar rules ([`Direct::grey`], [`Direct::pure`]).
struct Table16 {
    grey: Box<[u8]>,
    /// Bit `v % 64` of word `v / 64`: value v is pure.
    pure: Box<[u64]>,
}

impl Table16 {
    fn new(d: &Direct) -> Table16 {
        let mut grey = vec![0u8; 1 << 16].into_boxed_slice();
        let mut pure = vec![0u64; 1 << 10].into_boxed_slice();
        for (v, g) in grey.iter_mut().enumerate() {
            *g = d.grey(v as u32);
            pure[v / 64] |= u64::from(d.pure(v as u32)) << (v % 64);
        }
        Table16 { grey, pure }
    }

    /// (grey level, pure) of a pixel value.
    #[inline]
    fn lookup(&self, px: u16) -> (u8, bool) {
        let v = usize::from(px);
        (self.grey[v], self.pure[v / 64] >> (v % 64) & 1 == 1)
    }
}

/// Direct colour the kernels handle: 8-bit B, G, R at offsets 0, 1, 2 of
/// `bpp`-byte pixels, and either no alpha or an 8-bit alpha in byte 3.
#[derive(Debug, Clone, Copy)]
struct FastDirect {
    bpp: usize,
    alpha: bool,
}

impl FastDirect {
    fn of(d: &Direct, masks: Masks) -> Option<FastDirect> {
        if !d.bgr8 {
            return None;
        }
        match (d.bytes, masks.alpha) {
            (3, 0) | (4, 0) => Some(FastDirect {
                bpp: d.bytes,
                alpha: false,
            }),
            (4, 0xff00_0000) => Some(FastDirect {
                bpp: 4,
                alpha: true,
            }),
            _ => None,
        }
    }
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
    /// Pixels that went through the dither's serial step (not skipped).
    serial: u64,
    /// Every entry of `errors` is zero (kept for direct colour under the
    /// kernels only; false is always safe).
    errors_zero: bool,
    /// Instruction set for the kernels ([`Isa::Scalar`]: reference code only).
    isa: Isa,
    /// Set when the kernels can read this image's direct-colour pixels.
    fast: Option<FastDirect>,
    /// Set for large 16-bit images: every pixel value's grey and purity.
    table16: Option<Table16>,
}

impl Converter {
    /// A converter for the rows of `info`'s image, using the best
    /// instruction set this CPU has.
    pub fn new(info: &BmpInfo, conversion: Conversion) -> Converter {
        Converter::with_isa(info, conversion, Isa::detect())
    }

    fn with_isa(info: &BmpInfo, conversion: Conversion, isa: Isa) -> Converter {
        let width = info.width as usize;
        let mut fast = None;
        let mut table16 = None;
        let plan = match (info.mode, info.masks) {
            (PillowMode::Rgb, Some(m)) => {
                let d = Direct::new(info.bits_per_pixel, m);
                fast = FastDirect::of(&d, m);
                // 65536 entries cost about as much as converting that many
                // pixels one by one (channel scaling divides); unit tests
                // build it for every size so that it is compared too.
                let pixels = u64::from(info.width) * u64::from(info.height);
                if d.bytes == 2 && isa != Isa::Scalar && (pixels >= 1 << 18 || cfg!(test)) {
                    table16 = Some(Table16::new(&d));
                }
                Plan::Direct(d)
            }
            (mode, _) => indexed_plan(info, mode),
        };
        Converter {
            isa,
            fast: if isa == Isa::Scalar { None } else { fast },
            table16,
            width,
            bits_per_pixel: info.bits_per_pixel,
            conversion,
            plan,
            errors: vec![0; width + 1],
            grey: vec![0; width],
            indices: vec![0; width],
            lossless: true,
            serial: 0,
            errors_zero: true,
        }
    }

    /// True when rows go through the serial Floyd–Steinberg loop (dither
    /// mode, and a greyscale or direct-colour image).
    pub fn dithers(&self) -> bool {
        self.conversion == Conversion::Dither
            && matches!(
                self.plan,
                Plan::Direct(_) | Plan::Indexed { via_grey: true, .. }
            )
    }

    /// Pixels converted so far that went through the dither's serial loop
    /// (those of quiet spans, see `dither_row_fast`, are skipped): how
    /// much of the image's work is serial.
    pub fn serial_pixels(&self) -> u64 {
        self.serial
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
                    self.serial +=
                        bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
                } else {
                    pack(indices, |i| bit[usize::from(i)] != 0, out);
                }
            }
            (Plan::Direct(d), RowData::Packed(bytes)) => {
                let d = *d;
                match (self.fast, self.conversion) {
                    (Some(f), Conversion::Threshold) => {
                        // One pass: pixels → bits and purity.
                        let (done, pure) =
                            simd::bgr8_threshold(self.isa, bytes, f.bpp, f.alpha, width, out);
                        if done < width {
                            let grey = &mut self.grey[done..];
                            let pure = direct_grey(&d, bytes, done, grey, self.lossless && pure);
                            self.lossless &= pure;
                            pack_from(grey, done, |g| g >= 128, out);
                        }
                        self.lossless &= pure;
                    }
                    (Some(f), Conversion::Dither) => {
                        if self.errors_zero {
                            // A row of pure pixels under zero errors is quiet
                            // throughout (see `dither_row_fast`): its bits are
                            // the threshold's and the errors stay zero. Try the
                            // cheaper threshold pass; fall through if impure.
                            let (done, pure) =
                                simd::bgr8_threshold(self.isa, bytes, f.bpp, f.alpha, width, out);
                            if pure {
                                let rest = &mut self.grey[done..];
                                if direct_grey(&d, bytes, done, rest, true) {
                                    pack_from(rest, done, |g| g >= 128, out);
                                    return;
                                }
                            }
                        }
                        // One pass: pixels → grey and purity.
                        let (done, pure) =
                            simd::bgr8_grey(self.isa, bytes, f.bpp, f.alpha, &mut self.grey);
                        let rest = &mut self.grey[done..];
                        let rest_pure = direct_grey(&d, bytes, done, rest, self.lossless && pure);
                        self.lossless &= pure && rest_pure;
                        let serial =
                            bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
                        // Every pixel skipped: every error written was zero.
                        self.errors_zero = serial == 0;
                        self.serial += serial;
                    }
                    (None, _) if self.table16.is_some() => {
                        let t = self.table16.as_ref().expect("BUG: checked");
                        let mut pure = true;
                        for (g, p) in self.grey.iter_mut().zip(bytes.chunks_exact(2)) {
                            let (grey, is_pure) = t.lookup(u16::from_le_bytes([p[0], p[1]]));
                            *g = grey;
                            pure &= is_pure;
                        }
                        self.lossless &= pure;
                        self.serial +=
                            bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
                    }
                    (None, _) => {
                        if self.lossless && !(0..width).all(|x| d.pure(d.pixel(bytes, x))) {
                            self.lossless = false;
                        }
                        direct_grey(&d, bytes, 0, &mut self.grey, false);
                        self.serial +=
                            bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
                    }
                }
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

/// The scalar reference for direct colour: grey levels of pixels
/// `start..start + grey.len()` of the row into `grey`; with `check`,
/// returns whether all of them are pure (else true).
fn direct_grey(d: &Direct, bytes: &[u8], start: usize, grey: &mut [u8], check: bool) -> bool {
    let pure = !check || (start..start + grey.len()).all(|x| d.pure(d.pixel(bytes, x)));
    if d.bgr8 {
        let pixels = bytes[start * d.bytes..].chunks_exact(d.bytes);
        for (g, p) in grey.iter_mut().zip(pixels) {
            *g = (luma1000(p[2], p[1], p[0]) / 1000) as u8;
        }
    } else {
        for (x, g) in (start..).zip(grey.iter_mut()) {
            *g = d.grey(d.pixel(bytes, x));
        }
    }
    pure
}

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

/// [`pack`] for the pixels from `start` (a multiple of 64) on, `values`
/// being those pixels' values.
#[inline]
fn pack_from(values: &[u8], start: usize, bit: impl Fn(u8) -> bool, out: &mut [u64]) {
    debug_assert_eq!(start % 64, 0);
    pack(values, bit, &mut out[start / 64..]);
}

/// Grey levels → packed bits, by Pillow's rules. Returns the number of
/// pixels that went through the dither's serial step.
fn bilevel(
    isa: Isa,
    grey: &[u8],
    conversion: Conversion,
    errors: &mut [i32],
    out: &mut [u64],
) -> u64 {
    match (conversion, isa) {
        (Conversion::Threshold, _) => {
            let done = simd::grey_threshold(isa, grey, out);
            pack_from(&grey[done..], done, |g| g >= 128, out);
            0
        }
        (Conversion::Dither, Isa::Scalar) => {
            dither_row(grey, errors, out);
            grey.len() as u64
        }
        (Conversion::Dither, _) => dither_row_fast(isa, grey, errors, out),
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

/// [`dither_row`] with the same arithmetic and results, skipping the work
/// where it provably has none.
///
/// At pixel x the loop's state is the error carried right (`l`), the two
/// pending below-row sums (`l0`, `l1`) and the error waiting from the row
/// above (`errors[x + 1]`). When all four are zero and the grey level is
/// 0 or 255, v is the grey level itself, so the pixel's error e is 0: the
/// pixel is black or white as its grey says, writes `errors[x] = 0`, and
/// leaves the state all zero — a "quiet" span that needs no serial work.
/// [`simd::quiet64`] finds the quiet pixels (grey and the error above; the
/// row above's errors ahead of x are not touched by this row's loop before
/// x, so the mask holds for the whole word) and the loop jumps over them
/// whenever its own state is zero. Pure black-and-white pages are quiet
/// everywhere and run at threshold speed.
///
/// Returns the number of pixels that were not skipped.
fn dither_row_fast(isa: Isa, grey: &[u8], errors: &mut [i32], out: &mut [u64]) -> u64 {
    let width = grey.len();
    debug_assert_eq!(errors.len(), width + 1);
    let mut state = FsState::ZERO;
    let mut skipped = 0;
    for (wi, word) in out.iter_mut().enumerate() {
        let base = wi * 64;
        let n = (width - base).min(64);
        let g = &grey[base..base + n];
        // errors[base..=base + n]: e[i + 1] waits for pixel i, e[i] is written by it.
        let e = &mut errors[base..=base + n];
        let (quiet, white) = match (g.try_into(), e[1..].try_into()) {
            (Ok(g64), Ok(e64)) => simd::quiet64(isa, g64, e64).unwrap_or((0, 0)),
            _ => {
                let (mut quiet, mut white) = (0u64, 0u64);
                for i in 0..n {
                    quiet |= u64::from((g[i] == 0 || g[i] == 255) && e[i + 1] == 0) << i;
                    white |= u64::from(g[i] >= 128) << i;
                }
                (quiet, white)
            }
        };
        // Bit i for pixel base + i, reversed into the row's order at the end.
        let mut bits = 0u64;
        let mut i = 0;
        while i < n {
            if quiet >> i == 0 {
                // Nothing left to skip in this word: the plain loop.
                for j in i..n {
                    let (white, below) = fs_step(g[j], e[j + 1], &mut state);
                    bits |= u64::from(white) << j;
                    e[j] = below;
                }
                break;
            }
            if state == FsState::ZERO {
                let run = ((quiet >> i).trailing_ones() as usize).min(n - i);
                if run > 0 {
                    let span = if run == 64 {
                        u64::MAX
                    } else {
                        ((1u64 << run) - 1) << i
                    };
                    bits |= white & span;
                    // 3e + l0 = 0; the rest of the span's entries are already 0.
                    e[i] = 0;
                    i += run;
                    skipped += run;
                    continue;
                }
            }
            let (is_white, below) = fs_step(g[i], e[i + 1], &mut state);
            bits |= u64::from(is_white) << i;
            e[i] = below;
            i += 1;
        }
        *word = bits.reverse_bits();
    }
    errors[width] = state.l0;
    (width - skipped) as u64
}

/// The serial state of [`dither_row`]: `l` the error flowing right (×16),
/// `l0`, `l1` the pending sums for the row below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FsState {
    l: i32,
    l0: i32,
    l1: i32,
}

impl FsState {
    const ZERO: FsState = FsState { l: 0, l0: 0, l1: 0 };
}

/// One pixel of [`dither_row`]: grey `g` and the error waiting from the row
/// above; returns (white, the value to store for the row below) and
/// advances the state. The same arithmetic, arranged for a shorter
/// dependency chain from one pixel's error to the next: with s = g +
/// (l + below) / 16, white is s > 128 (clamping to 0..=255 cannot cross
/// 128), and the error is min(s − 255, 0) if white, else max(s, 0) — both
/// computed while the comparison is made, then picked with a mask.
#[inline(always)]
fn fs_step(g: u8, below: i32, st: &mut FsState) -> (bool, i32) {
    let s = i32::from(g) + (st.l + below) / 16;
    let white = s > 128;
    // A mask, not `if`: the compiler turns a select of two values into a
    // branch here, which mispredicts on every other pixel of a photograph.
    let mask = -i32::from(white);
    let (if_white, if_black) = ((s - 255).min(0), s.max(0));
    let err = if_black ^ ((if_white ^ if_black) & mask);
    let store = 3 * err + st.l0;
    st.l0 = 5 * err + st.l1;
    st.l1 = err;
    st.l = 7 * err;
    (white, store)
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
    fn div1000_is_exact_for_every_luma() {
        for luma in 0..=255_000u32 {
            assert_eq!(simd::div1000(luma), luma / 1000, "luma {luma}");
        }
    }

    /// Pixel formats the kernels and the scalar code share: (bits per
    /// pixel, masks, mode).
    const FORMATS: &[(u16, Masks, PillowMode)] = &[
        (24, RGB8, PillowMode::Rgb),
        (32, RGB8, PillowMode::Rgb),
        (
            32,
            Masks {
                alpha: 0xff00_0000,
                ..RGB8
            },
            PillowMode::Rgb,
        ),
        (
            16,
            Masks {
                red: 0xf800,
                green: 0x07e0,
                blue: 0x1f,
                alpha: 0,
            },
            PillowMode::Rgb,
        ),
        // 4-4-4-4 with alpha: not a layout Pillow reads itself (exact
        // scaling, alpha in the lossless verdict).
        (
            16,
            Masks {
                red: 0x0f00,
                green: 0x00f0,
                blue: 0x000f,
                alpha: 0xf000,
            },
            PillowMode::Rgb,
        ),
        // Bytes are indices into a greyscale palette (Pillow's "L").
        (8, RGB8, PillowMode::L),
    ];
    const RGB8: Masks = Masks {
        red: 0xff_0000,
        green: 0xff00,
        blue: 0xff,
        alpha: 0,
    };

    fn info(width: usize, (bits, masks, mode): (u16, Masks, PillowMode)) -> BmpInfo {
        let grey = mode == PillowMode::L;
        BmpInfo {
            width: width as u32,
            height: 1,
            top_down: true,
            bits_per_pixel: bits,
            compression: crate::bmp::Compression::None,
            masks: (!grey).then_some(masks),
            palette: if grey {
                (0..=255u8).map(|i| [i, i, i]).collect()
            } else {
                Vec::new()
            },
            mode,
            data_offset: 0,
            stride: 0,
            file_len: 0,
        }
    }

    /// Kinds of rows: random bytes, pure black/white pixels, pure pixels
    /// with a sprinkling of near-pure ones (one channel or alpha off by one).
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        Random,
        Pure,
        NearPure,
    }

    /// `rows` rows of `width` pixels of `bits` bits, each `slack` bytes
    /// longer than its pixels, from a seeded generator.
    fn make_rows(
        width: usize,
        bits: u16,
        kind: Kind,
        rows: usize,
        slack: usize,
        seed: u64,
    ) -> Vec<Vec<u8>> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let bpp = usize::from(bits / 8);
        (0..rows)
            .map(|_| {
                let mut row = vec![0u8; width * bpp + slack];
                for px in row.chunks_exact_mut(bpp).take(width) {
                    let r = next();
                    match kind {
                        Kind::Random => px.copy_from_slice(&r.to_le_bytes()[..bpp]),
                        Kind::Pure | Kind::NearPure => {
                            px.fill(if r & 1 == 1 { 255 } else { 0 });
                            if bpp == 4 {
                                px[3] = 255; // opaque, where alpha counts
                            }
                            if matches!(kind, Kind::NearPure) && (r >> 8) % 5 == 0 {
                                let i = (r >> 16) as usize % bpp;
                                px[i] = if px[i] == 0 { 1 } else { 254 };
                            }
                        }
                    }
                }
                for b in &mut row[width * bpp..] {
                    *b = next() as u8;
                }
                row
            })
            .collect()
    }

    /// Converts `rows` (each read at byte `offset` of its own buffer) with
    /// every instruction set this CPU has and checks each against the
    /// scalar reference: the bits, the lossless verdict and the error row.
    fn check_isas(
        width: usize,
        format: usize,
        rows: &[Vec<u8>],
        offset: usize,
        conversion: Conversion,
    ) {
        let info = info(width, FORMATS[format]);
        let run = |isa| {
            let mut c = Converter::with_isa(&info, conversion, isa);
            let mut out = Vec::new();
            for row in rows {
                let mut buf = vec![0xa5u8; offset];
                buf.extend_from_slice(row);
                let mut bits = vec![u64::MAX; rle::words_for(width)];
                c.row(RowData::Packed(&buf[offset..]), &mut bits);
                out.push(bits);
            }
            (out, c.lossless(), c.errors)
        };
        let expected = run(Isa::Scalar);
        for isa in Isa::available() {
            assert_eq!(
                run(isa),
                expected,
                "{isa:?} width {width} format {:?} offset {offset} {conversion}",
                FORMATS[format]
            );
        }
    }

    #[test]
    fn kernels_match_the_scalar_code_at_every_width() {
        for width in 1..=300 {
            for (format, &(bits, ..)) in FORMATS.iter().enumerate() {
                for (k, kind) in [Kind::Random, Kind::Pure, Kind::NearPure]
                    .into_iter()
                    .enumerate()
                {
                    let slack = (width + k) % 8;
                    let rows = make_rows(
                        width,
                        bits,
                        kind,
                        3,
                        slack,
                        (width * 31 + format * 7 + k) as u64,
                    );
                    for conversion in [Conversion::Dither, Conversion::Threshold] {
                        check_isas(width, format, &rows, (width * 3 + k) % 32, conversion);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        // Failure seeds live with the integration tests' (tests/), not in a
        // folder of their own at the top of the repository.
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "tests/proptest-regressions/bilevel.txt",
                ),
            )),
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn kernels_match_the_scalar_code_on_random_rows(
            width in 1usize..=300,
            format in 0..FORMATS.len(),
            kind in proptest::prop_oneof![
                proptest::prelude::Just(Kind::Random),
                proptest::prelude::Just(Kind::Pure),
                proptest::prelude::Just(Kind::NearPure),
            ],
            rows in 1usize..=4,
            slack in 0usize..8,
            offset in 0usize..64,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let rows = make_rows(width, FORMATS[format].0, kind, rows, slack, seed);
            for conversion in [Conversion::Dither, Conversion::Threshold] {
                check_isas(width, format, &rows, offset, conversion);
            }
        }
    }

    /// The scalar reference against a literal reading of design §2 for
    /// 24- and 32-bit rows: g = (299 R + 587 G + 114 B) / 1000, then
    /// g ≥ 128 or the spec's Floyd–Steinberg; lossless iff every pixel is
    /// (0,0,0) or (255,255,255).
    #[test]
    fn scalar_direct_colour_matches_the_spec_transcription() {
        for (format, width, kind) in [
            (0, 130, Kind::Random),
            (1, 65, Kind::Random),
            (0, 200, Kind::Pure),
            (1, 7, Kind::NearPure),
        ] {
            let bits = FORMATS[format].0;
            let bpp = usize::from(bits / 8);
            let rows = make_rows(width, bits, kind, 5, 1, 99);
            let greys: Vec<Vec<u8>> = rows
                .iter()
                .map(|r| {
                    r.chunks_exact(bpp)
                        .take(width)
                        .map(|p| {
                            ((299 * u32::from(p[2])
                                + 587 * u32::from(p[1])
                                + 114 * u32::from(p[0]))
                                / 1000) as u8
                        })
                        .collect()
                })
                .collect();
            let pure = rows.iter().all(|r| {
                r.chunks_exact(bpp)
                    .take(width)
                    .all(|p| p[..3] == [0; 3] || p[..3] == [255; 3])
            });
            let dithered = dither_reference(&greys);
            for conversion in [Conversion::Dither, Conversion::Threshold] {
                let mut c =
                    Converter::with_isa(&info(width, FORMATS[format]), conversion, Isa::Scalar);
                for (y, row) in rows.iter().enumerate() {
                    let mut out = vec![0u64; rle::words_for(width)];
                    c.row(RowData::Packed(row), &mut out);
                    let got: Vec<bool> = (0..width)
                        .map(|x| out[x / 64] >> (63 - x % 64) & 1 == 1)
                        .collect();
                    let want: Vec<bool> = match conversion {
                        Conversion::Dither => dithered[y].clone(),
                        Conversion::Threshold => greys[y].iter().map(|&g| g >= 128).collect(),
                    };
                    assert_eq!(
                        got, want,
                        "format {format} width {width} row {y} {conversion}"
                    );
                }
                assert_eq!(c.lossless(), pure);
            }
        }
    }

    #[test]
    fn the_16_bit_table_agrees_with_the_scalar_rules_for_every_value() {
        for &(bits, masks, _) in FORMATS.iter().filter(|f| f.0 == 16) {
            let d = Direct::new(bits, masks);
            let t = Table16::new(&d);
            for px in 0..=u16::MAX {
                let want = (d.grey(u32::from(px)), d.pure(u32::from(px)));
                assert_eq!(t.lookup(px), want, "pixel {px:#06x}");
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
