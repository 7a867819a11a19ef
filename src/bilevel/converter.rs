//! [`Converter`]: one image's rows → packed bits by the rule of design §2
//! for its Pillow mode, keeping the lossless verdict (design §2, §4.4) as
//! it goes. Set up once per image (plan, kernels, tables), then one call
//! per row, top to bottom; each plan has a row function, and direct colour
//! one per way of reading its pixels (kernels, 16-bit table, scalar).

use super::Conversion;
use super::direct::{Direct, FastDirect, Table16, direct_grey};
use super::lossless;
use super::plan::{Plan, indexed_plan};
use super::simd::{self, Isa};
use super::threshold::{bilevel, pack, pack_from, unpack_indices};
use crate::bmp::{BmpInfo, PillowMode, RowData};
use crate::rle;

/// Converts rows of one image to packed bits; see [`Converter::row`].
pub struct Converter {
    width: usize,
    bits_per_pixel: u16,
    conversion: Conversion,
    plan: Plan,
    /// Pillow's error array: width + 1 entries carried from row to row.
    pub(super) errors: Vec<i32>,
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

    /// [`Converter::new`] with a given instruction set (tests compare
    /// them all).
    pub(super) fn with_isa(info: &BmpInfo, conversion: Conversion, isa: Isa) -> Converter {
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
    ///
    /// Each plan has its row function: `words_row`, `indexed_row`,
    /// `direct_row`.
    pub fn row(&mut self, row: RowData<'_>, out: &mut [u64]) {
        let out = &mut out[..self.width.div_ceil(64)];
        match (&self.plan, row) {
            (&Plan::Words { keep, flip, pure }, RowData::Packed(bytes)) => {
                self.words_row(bytes, keep, flip, pure, out);
            }
            (Plan::Indexed { .. }, row) => self.indexed_row(row, out),
            (&Plan::Direct(d), RowData::Packed(bytes)) => self.direct_row(&d, bytes, out),
            (Plan::Words { .. } | Plan::Direct(_), RowData::Indices(_)) => {
                unreachable!("BUG: RLE rows are only produced for palette images")
            }
        }
    }

    /// The first half of [`Converter::row`] for an image that
    /// [dithers](Converter::dithers): the row's grey levels into `grey`
    /// (width entries), and whether all its pixels are pure (`scratch`:
    /// width bytes for a palette row's indices). Changes nothing, so
    /// that two threads can share the converter; the dither is then
    /// [`Wavefront`](super::Wavefront)'s, and the verdict
    /// [`Converter::note_pure`]'s.
    pub fn grey_row(&self, row: RowData<'_>, grey: &mut [u8], scratch: &mut [u8]) -> bool {
        debug_assert!(self.dithers());
        match (&self.plan, row) {
            (Plan::Direct(d), RowData::Packed(bytes)) => match (self.fast, &self.table16) {
                (Some(f), _) => {
                    let (done, pure) = simd::bgr8_grey(self.isa, bytes, f.bpp, f.alpha, grey);
                    direct_grey(d, bytes, done, &mut grey[done..], pure) && pure
                }
                (None, Some(t)) => {
                    let mut pure = true;
                    for (g, p) in grey.iter_mut().zip(bytes.chunks_exact(2)) {
                        let (level, is_pure) = t.lookup(u16::from_le_bytes([p[0], p[1]]));
                        *g = level;
                        pure &= is_pure;
                    }
                    pure
                }
                (None, None) => direct_grey(d, bytes, 0, grey, true),
            },
            (
                Plan::Indexed {
                    grey: levels, pure, ..
                },
                row,
            ) => {
                let indices: &[u8] = match row {
                    RowData::Indices(ix) => ix,
                    RowData::Packed(bytes) => {
                        unpack_indices(bytes, self.bits_per_pixel, scratch);
                        scratch
                    }
                };
                for (g, &i) in grey.iter_mut().zip(indices) {
                    *g = levels[usize::from(i)];
                }
                lossless::indices_pure(indices, pure)
            }
            (Plan::Words { .. } | Plan::Direct(_), _) => {
                unreachable!("BUG: grey_row is only for images that dither")
            }
        }
    }

    /// Folds the purity of rows converted elsewhere (see
    /// [`Converter::grey_row`]) into the lossless verdict.
    pub fn note_pure(&mut self, pure: bool) {
        self.lossless &= pure;
    }

    /// Pillow's error array as the rows converted so far left it.
    pub fn errors(&self) -> &[i32] {
        &self.errors
    }

    /// The row's bytes when they are its bits as they are, for the
    /// encoder to read straight ([`rle::RowLayout::encode_bytes_into`]):
    /// a 1-bit uncompressed row whose index is the bit (palette black,
    /// white) and whose both colours are pure, so that the lossless
    /// verdict cannot change. `None`: convert it with [`Converter::row`].
    pub fn as_bits<'r>(&self, row: RowData<'r>) -> Option<&'r [u8]> {
        match (&self.plan, row) {
            (
                &Plan::Words {
                    keep: u64::MAX,
                    flip: 0,
                    pure: [true, true],
                },
                RowData::Packed(bytes),
            ) => Some(bytes),
            _ => None,
        }
    }

    /// A 1-bit uncompressed row ([`Plan::Words`]): the row's bytes are the
    /// bits, mapped a word at a time as (input & keep) ^ flip.
    fn words_row(&mut self, bytes: &[u8], keep: u64, flip: u64, pure: [bool; 2], out: &mut [u64]) {
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
        let tail = rle::tail_mask(self.width);
        if self.lossless && !(pure[0] && pure[1]) && !lossless::words_pure(out, tail, pure) {
            self.lossless = false;
        }
        if (keep, flip) != (u64::MAX, 0) {
            for w in out.iter_mut() {
                *w = (*w & keep) ^ flip;
            }
        }
        out[last] &= tail;
    }

    /// A palette row ([`Plan::Indexed`]), packed or as RLE indices: the
    /// index's bit, or for "L" its grey level dithered or thresholded.
    fn indexed_row(&mut self, row: RowData<'_>, out: &mut [u64]) {
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
        if self.lossless && !lossless::indices_pure(indices, pure) {
            self.lossless = false;
        }
        if *via_grey {
            for (g, &i) in self.grey.iter_mut().zip(indices) {
                *g = grey[usize::from(i)];
            }
            self.serial += bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
        } else {
            pack(indices, |i| bit[usize::from(i)] != 0, out);
        }
    }

    /// A direct-colour row, by what can read its layout: the kernels
    /// (thresholded or dithered), the 16-bit table, or the scalar code.
    fn direct_row(&mut self, d: &Direct, bytes: &[u8], out: &mut [u64]) {
        match (self.fast, self.conversion) {
            (Some(f), Conversion::Threshold) => self.fast_threshold_row(d, f, bytes, out),
            (Some(f), Conversion::Dither) => self.fast_dither_row(d, f, bytes, out),
            (None, _) if self.table16.is_some() => self.table16_row(bytes, out),
            (None, _) => self.scalar_direct_row(d, bytes, out),
        }
    }

    /// Thresholded direct colour the kernels read: one pass makes the bits
    /// and the purity; the scalar code does the pixels past the kernel's
    /// last whole block.
    fn fast_threshold_row(&mut self, d: &Direct, f: FastDirect, bytes: &[u8], out: &mut [u64]) {
        let width = self.width;
        let (done, pure) = simd::bgr8_threshold(self.isa, bytes, f.bpp, f.alpha, width, out);
        if done < width {
            let grey = &mut self.grey[done..];
            let pure = direct_grey(d, bytes, done, grey, self.lossless && pure);
            self.lossless &= pure;
            pack_from(grey, done, |g| g >= 128, out);
        }
        self.lossless &= pure;
    }

    /// Dithered direct colour the kernels read: a quiet row if it is one
    /// ([`Converter::quiet_row`]), else one pass makes grey and purity and
    /// the dither follows.
    fn fast_dither_row(&mut self, d: &Direct, f: FastDirect, bytes: &[u8], out: &mut [u64]) {
        if self.errors_zero && self.quiet_row(d, f, bytes, out) {
            return;
        }
        let (done, pure) = simd::bgr8_grey(self.isa, bytes, f.bpp, f.alpha, &mut self.grey);
        let rest = &mut self.grey[done..];
        let rest_pure = direct_grey(d, bytes, done, rest, self.lossless && pure);
        self.lossless &= pure && rest_pure;
        let serial = bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
        // Every pixel skipped: every error written was zero.
        self.errors_zero = serial == 0;
        self.serial += serial;
    }

    /// Under zero errors, a row of pure pixels is quiet throughout (see
    /// `dither_row_fast`): its bits are the threshold's and the errors stay
    /// zero. Tries the cheaper threshold pass; false, with `out` and the
    /// grey levels to be written again, if a pixel is impure.
    fn quiet_row(&mut self, d: &Direct, f: FastDirect, bytes: &[u8], out: &mut [u64]) -> bool {
        let (done, pure) = simd::bgr8_threshold(self.isa, bytes, f.bpp, f.alpha, self.width, out);
        if !pure {
            return false;
        }
        let rest = &mut self.grey[done..];
        if !direct_grey(d, bytes, done, rest, true) {
            return false;
        }
        pack_from(rest, done, |g| g >= 128, out);
        true
    }

    /// 16-bit direct colour through the table of every value's grey level
    /// and purity.
    fn table16_row(&mut self, bytes: &[u8], out: &mut [u64]) {
        let t = self.table16.as_ref().expect("BUG: checked");
        let mut pure = true;
        for (g, p) in self.grey.iter_mut().zip(bytes.chunks_exact(2)) {
            let (grey, is_pure) = t.lookup(u16::from_le_bytes([p[0], p[1]]));
            *g = grey;
            pure &= is_pure;
        }
        self.lossless &= pure;
        self.serial += bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
    }

    /// Direct colour by the scalar reference code alone.
    fn scalar_direct_row(&mut self, d: &Direct, bytes: &[u8], out: &mut [u64]) {
        if self.lossless && !d.all_pure(bytes, 0..self.width) {
            self.lossless = false;
        }
        direct_grey(d, bytes, 0, &mut self.grey, false);
        self.serial += bilevel(self.isa, &self.grey, self.conversion, &mut self.errors, out);
    }
}
