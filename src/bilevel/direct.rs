//! Direct-colour pixels (16/24/32 bpp, any masks; design §2–3): a
//! channel's value as Pillow scales it (truncating 5/6-bit expansion) and
//! exactly, the grey level g = (299 R + 587 G + 114 B) / 1000, purity for
//! the lossless verdict, every 16-bit value tabulated, and the layouts the
//! kernels in `simd` read.

use super::luma1000;
use crate::bmp::Masks;

/// One channel of a direct-colour pixel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Channel {
    shift: u32,
    /// Largest value (2^bits − 1); 0 for an absent channel.
    pub(super) max: u32,
    /// Pillow's own 5/6-bit expansion truncates where the exact one rounds.
    truncate: bool,
}

impl Channel {
    pub(super) fn new(mask: u32, truncate: bool) -> Channel {
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
    pub(super) fn raw(&self, px: u32) -> u32 {
        (px >> self.shift) & self.max
    }

    /// Exact 8-bit value: round(v × 255 / max).
    #[inline]
    pub(super) fn exact(&self, v: u32) -> u8 {
        if self.max == 0 {
            0
        } else {
            ((u64::from(v) * 255 + u64::from(self.max) / 2) / u64::from(self.max)) as u8
        }
    }

    /// The 8-bit value Pillow works with.
    #[inline]
    pub(super) fn pillow(&self, v: u32) -> u8 {
        if self.truncate {
            (v * 255 / self.max) as u8
        } else {
            self.exact(v)
        }
    }
}

/// Decoding of direct-colour pixels.
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct {
    pub(super) bytes: usize,
    pub(super) r: Channel,
    pub(super) g: Channel,
    pub(super) b: Channel,
    pub(super) a: Channel,
    /// Plain 8-bit B, G, R bytes at offsets 0, 1, 2 (24-bit and default
    /// 32-bit): a faster path.
    pub(super) bgr8: bool,
}

impl Direct {
    pub(super) fn new(bits: u16, m: Masks) -> Direct {
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
    pub(super) fn pixel(&self, row: &[u8], x: usize) -> u32 {
        let p = &row[x * self.bytes..];
        match self.bytes {
            2 => u32::from(u16::from_le_bytes([p[0], p[1]])),
            3 => u32::from_le_bytes([p[0], p[1], p[2], 0]),
            _ => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
        }
    }

    /// The grey level Pillow computes for a pixel (any layout).
    #[inline]
    pub(super) fn grey(&self, px: u32) -> u8 {
        let (r, g, b) = (
            self.r.pillow(self.r.raw(px)),
            self.g.pillow(self.g.raw(px)),
            self.b.pillow(self.b.raw(px)),
        );
        (luma1000(r, g, b) / 1000) as u8
    }

    /// True when the pixel is pure black or pure white and fully opaque.
    #[inline]
    pub(super) fn pure(&self, px: u32) -> bool {
        let opaque = self.a.max == 0 || self.a.raw(px) == self.a.max;
        let (r, g, b) = (self.r.raw(px), self.g.raw(px), self.b.raw(px));
        let black = r == 0 && g == 0 && b == 0;
        let white = r == self.r.max && g == self.g.max && b == self.b.max;
        opaque && (black || white)
    }

    /// The pixels `pixels` of a row are all pure ([`Direct::pure`]): the
    /// scalar lossless verdict for direct colour (design §2 "Lossless").
    pub(super) fn all_pure(&self, bytes: &[u8], mut pixels: std::ops::Range<usize>) -> bool {
        pixels.all(|x| self.pure(self.pixel(bytes, x)))
    }
}

/// Every 16-bit pixel value's grey level and purity, tabulated with the
/// scalar rules ([`Direct::grey`], [`Direct::pure`]).
pub(super) struct Table16 {
    grey: Box<[u8]>,
    /// Bit `v % 64` of word `v / 64`: value v is pure.
    pure: Box<[u64]>,
}

impl Table16 {
    pub(super) fn new(d: &Direct) -> Table16 {
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
    pub(super) fn lookup(&self, px: u16) -> (u8, bool) {
        let v = usize::from(px);
        (self.grey[v], self.pure[v / 64] >> (v % 64) & 1 == 1)
    }
}

/// Direct colour the kernels handle: 8-bit B, G, R at offsets 0, 1, 2 of
/// `bpp`-byte pixels, and either no alpha or an 8-bit alpha in byte 3.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastDirect {
    pub(super) bpp: usize,
    pub(super) alpha: bool,
}

impl FastDirect {
    pub(super) fn of(d: &Direct, masks: Masks) -> Option<FastDirect> {
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

/// The scalar reference for direct colour: grey levels of pixels
/// `start..start + grey.len()` of the row into `grey`; with `check`,
/// returns whether all of them are pure (else true).
pub(super) fn direct_grey(
    d: &Direct,
    bytes: &[u8],
    start: usize,
    grey: &mut [u8],
    check: bool,
) -> bool {
    let pure = !check || d.all_pure(bytes, start..start + grey.len());
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

#[cfg(test)]
mod tests {
    use super::*;

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
