//! What a TIFF's samples mean (design §2.1): the Pillow mode the file opens
//! as, found from the same key Pillow 13.0.0 builds (byte order,
//! photometric interpretation, sample format, fill order, bits per sample,
//! extra samples), and the conversion of one row of samples to the
//! [`Layout`] row Pillow's `convert` would hand its bilevel rule. Files
//! whose key Pillow does not know are refused with the reason.

use super::super::{DecodeError, Format, Layout};

fn unsupported(why: impl Into<String>) -> DecodeError {
    DecodeError::unsupported(Format::Tiff, why)
}

/// The alpha (extra sample 1 or 2) of an RGB(A) file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpha {
    /// No alpha, or unspecified extra samples: ignored.
    None,
    /// Unassociated alpha: dropped.
    Straight,
    /// Associated (premultiplied): colours are unpremultiplied, c·255/a.
    Premultiplied,
}

/// A Pillow mode with what its raw mode needs to unpack a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Mode `1`; MinIsWhite files are inverted.
    Bilevel { invert: bool },
    /// Mode `L` from 2/4/8-bit samples (scaled ×0x55 / ×0x11), the first of
    /// `spp` samples (LX, LA); `alpha`: the second sample is an alpha.
    Grey {
        bits: u8,
        invert: bool,
        spp: usize,
        alpha: bool,
    },
    /// Mode `I;16` from 12-bit samples (0…4095), clipped.
    Grey12,
    /// Mode `I;16`/`I;16B`: unsigned 16-bit, clipped, never inverted.
    Grey16 { big_endian: bool },
    /// Mode `I` from signed 16-bit or 32-bit integers, clamped.
    Int { bytes: usize, big_endian: bool },
    /// Mode `F`: 32-bit floats, clamped and truncated.
    Float { big_endian: bool },
    /// Mode `P` (or `PA`): indices of `bits` bits, the first of `spp`
    /// samples; `alpha`: the second sample is an alpha.
    Palette { bits: u8, spp: usize, alpha: bool },
    /// Mode `RGB`/`RGBA` from 8 or 16-bit samples (16: the high byte), the
    /// first three of `spp`.
    Rgb {
        sixteen: bool,
        big_endian: bool,
        spp: usize,
        alpha: Alpha,
    },
    /// Mode `CMYK` from 8 or 16-bit samples (16: the high byte), the first
    /// four of `spp`.
    Cmyk {
        sixteen: bool,
        big_endian: bool,
        spp: usize,
    },
}

/// Tag values that decide the mode, already normalised as Pillow does.
#[derive(Debug, Clone)]
pub struct Key {
    pub big_endian: bool,
    pub photometric: u64,
    pub sample_format: Vec<u64>,
    pub fill_order: u64,
    pub bits: Vec<u64>,
    pub extra: Vec<u64>,
}

impl Kind {
    /// The mode Pillow opens a file of `key` as, or the reason it refuses
    /// it (Pillow's `OPEN_INFO` table, design §2.1).
    pub fn from_key(key: &Key) -> Result<Kind, DecodeError> {
        let k = key;
        let sf = k.sample_format.as_slice();
        let bits = k.bits.as_slice();
        let extra = k.extra.as_slice();
        let be = k.big_endian;
        let fo = k.fill_order;
        let fo_any = fo == 1 || fo == 2;
        let refuse = || {
            unsupported(format!(
                "pixel format not read by Pillow: photometric {}, sample format {:?}, \
                 {} byte order, fill order {}, bits per sample {:?}, extra samples {:?}",
                k.photometric,
                sf,
                if be { "big-endian" } else { "little-endian" },
                fo,
                bits,
                extra
            ))
        };
        let kind = match (k.photometric, sf, bits, extra) {
            (0 | 1, [1], [1], []) if fo_any => Kind::Bilevel {
                invert: k.photometric == 0,
            },
            (0 | 1, [1], [b @ (2 | 4)], []) if fo_any => Kind::Grey {
                bits: *b as u8,
                invert: k.photometric == 0,
                spp: 1,
                alpha: false,
            },
            (0, [1], [8], []) if fo_any => Kind::Grey {
                bits: 8,
                invert: true,
                spp: 1,
                alpha: false,
            },
            (1, [1], [8], []) if fo_any => Kind::Grey {
                bits: 8,
                invert: false,
                spp: 1,
                alpha: false,
            },
            // Signed 8-bit grey is read as unsigned by Pillow.
            (1, [2], [8], []) if fo == 1 => Kind::Grey {
                bits: 8,
                invert: false,
                spp: 1,
                alpha: false,
            },
            (1, [1], [12], []) if fo == 1 && !be => Kind::Grey12,
            (0, [1], [16], []) if fo == 1 && !be => Kind::Grey16 { big_endian: false },
            (1, [1], [16], []) if fo == 1 => Kind::Grey16 { big_endian: be },
            (1, [1], [16], []) if fo == 2 && !be => Kind::Grey16 { big_endian: false },
            (1, [2], [16], []) if fo == 1 => Kind::Int {
                bytes: 2,
                big_endian: be,
            },
            (0 | 1, [3], [32], []) if fo == 1 => Kind::Float { big_endian: be },
            (1, [1], [32], []) if fo == 1 && !be => Kind::Int {
                bytes: 4,
                big_endian: false,
            },
            (1, [2], [32], []) if fo == 1 => Kind::Int {
                bytes: 4,
                big_endian: be,
            },
            (1, [1], [8, 8], [0]) if fo == 1 => Kind::Grey {
                bits: 8,
                invert: false,
                spp: 2,
                alpha: false,
            },
            (1, [1], [8, 8], [1]) if fo == 1 => {
                return Err(unsupported(
                    "grey with associated alpha (Pillow mode La), which Pillow refuses",
                ));
            }
            (1, [1], [8, 8], [2]) if fo == 1 => Kind::Grey {
                bits: 8,
                invert: false,
                spp: 2,
                alpha: true,
            },
            (2, [1], [8, 8, 8], []) if fo_any => Kind::Rgb {
                sixteen: false,
                big_endian: be,
                spp: 3,
                alpha: Alpha::None,
            },
            (2, [1], [8, 8, 8, 8], [] | [2] | [999]) if fo == 1 => Kind::Rgb {
                sixteen: false,
                big_endian: be,
                spp: 4,
                alpha: Alpha::Straight,
            },
            (2, [1], [8, 8, 8, 8], [0]) if fo == 1 => Kind::Rgb {
                sixteen: false,
                big_endian: be,
                spp: 4,
                alpha: Alpha::None,
            },
            (2, [1], [8, 8, 8, 8, 8], [0, 0]) | (2, [1], [8, 8, 8, 8, 8, 8], [0, 0, 0])
                if fo == 1 =>
            {
                Kind::Rgb {
                    sixteen: false,
                    big_endian: be,
                    spp: bits.len(),
                    alpha: Alpha::None,
                }
            }
            (2, [1], [8, 8, 8, 8], [1])
            | (2, [1], [8, 8, 8, 8, 8], [1, 0])
            | (2, [1], [8, 8, 8, 8, 8, 8], [1, 0, 0])
                if fo == 1 =>
            {
                Kind::Rgb {
                    sixteen: false,
                    big_endian: be,
                    spp: bits.len(),
                    alpha: Alpha::Premultiplied,
                }
            }
            (2, [1], [8, 8, 8, 8, 8], [2, 0]) | (2, [1], [8, 8, 8, 8, 8, 8], [2, 0, 0])
                if fo == 1 =>
            {
                Kind::Rgb {
                    sixteen: false,
                    big_endian: be,
                    spp: bits.len(),
                    alpha: Alpha::Straight,
                }
            }
            (2, [1], [16, 16, 16], []) if fo == 1 => Kind::Rgb {
                sixteen: true,
                big_endian: be,
                spp: 3,
                alpha: Alpha::None,
            },
            (2, [1], [16, 16, 16, 16], [] | [2]) if fo == 1 => Kind::Rgb {
                sixteen: true,
                big_endian: be,
                spp: 4,
                alpha: Alpha::Straight,
            },
            (2, [1], [16, 16, 16, 16], [0]) if fo == 1 => Kind::Rgb {
                sixteen: true,
                big_endian: be,
                spp: 4,
                alpha: Alpha::None,
            },
            (2, [1], [16, 16, 16, 16], [1]) if fo == 1 => Kind::Rgb {
                sixteen: true,
                big_endian: be,
                spp: 4,
                alpha: Alpha::Premultiplied,
            },
            (3, [1], [b @ (1 | 2 | 4)], []) if fo_any => Kind::Palette {
                bits: *b as u8,
                spp: 1,
                alpha: false,
            },
            (3, [1], [8], []) if fo_any => Kind::Palette {
                bits: 8,
                spp: 1,
                alpha: false,
            },
            (3, [1], [8, 8], [0]) if fo == 1 => Kind::Palette {
                bits: 8,
                spp: 2,
                alpha: false,
            },
            (3, [1], [8, 8], [2]) if fo == 1 => Kind::Palette {
                bits: 8,
                spp: 2,
                alpha: true,
            },
            (5, [1], [8, 8, 8, 8], []) if fo == 1 => Kind::Cmyk {
                sixteen: false,
                big_endian: be,
                spp: 4,
            },
            (5, [1], [8, 8, 8, 8, 8], [0]) | (5, [1], [8, 8, 8, 8, 8, 8], [0, 0]) if fo == 1 => {
                Kind::Cmyk {
                    sixteen: false,
                    big_endian: be,
                    spp: bits.len(),
                }
            }
            (5, [1], [16, 16, 16, 16], []) if fo == 1 => Kind::Cmyk {
                sixteen: true,
                big_endian: be,
                spp: 4,
            },
            (6, ..) => {
                return Err(unsupported(
                    "YCbCr colour (usually JPEG-compressed): not archived, as JPEG files \
                     are not; save the page as bilevel, grey or RGB TIFF",
                ));
            }
            (8, ..) => return Err(unsupported("CIE L*a*b* colour is not read")),
            _ => return Err(refuse()),
        };
        Ok(kind)
    }

    /// Bands of the Pillow mode (the planes Pillow reads of a file with
    /// separate planes).
    pub fn bands(&self) -> usize {
        match self {
            Kind::Grey { alpha, .. } | Kind::Palette { alpha, .. } => 1 + usize::from(*alpha),
            Kind::Rgb {
                alpha: Alpha::None, ..
            } => 3,
            Kind::Rgb { .. } | Kind::Cmyk { .. } => 4,
            _ => 1,
        }
    }

    /// The layout its rows are handed over in.
    pub fn layout(&self, palette: Option<Vec<[u8; 3]>>) -> Layout {
        match self {
            Kind::Bilevel { .. } => Layout::One,
            Kind::Grey { .. }
            | Kind::Grey12
            | Kind::Grey16 { .. }
            | Kind::Int { .. }
            | Kind::Float { .. } => Layout::Grey,
            Kind::Palette { .. } => Layout::Palette(palette.unwrap_or_default()),
            Kind::Rgb { .. } | Kind::Cmyk { .. } => Layout::Bgr,
        }
    }

    /// Turns `raw` (one row of `width` pixels of samples, chunky, bits
    /// packed most significant first, in the file's byte order) into `out`
    /// (one row of [`Kind::layout`]). `swap`: the samples reach Pillow's
    /// unpacker byte-swapped (libtiff hands them over in native order, and
    /// a few of Pillow's raw modes read big-endian regardless). Clears
    /// `pure` when a pixel is not pure black or white although its row byte
    /// may look so (design §2.1, lossless verdict).
    pub fn convert(&self, raw: &[u8], width: usize, swap: bool, out: &mut [u8], pure: &mut bool) {
        match *self {
            Kind::Bilevel { invert } => {
                let n = width.div_ceil(8);
                if invert {
                    for (o, r) in out[..n].iter_mut().zip(raw) {
                        *o = !r;
                    }
                } else {
                    out[..n].copy_from_slice(&raw[..n]);
                }
            }
            Kind::Grey {
                bits,
                invert,
                spp,
                alpha,
            } => match bits {
                8 => {
                    for (x, o) in out[..width].iter_mut().enumerate() {
                        let v = raw[x * spp];
                        *o = if invert { 255 - v } else { v };
                        if alpha && raw[x * spp + 1] != 255 {
                            *pure = false;
                        }
                    }
                }
                _ => {
                    let b = usize::from(bits);
                    let max = (1u16 << b) - 1;
                    let scale = 255 / max;
                    for (x, o) in out[..width].iter_mut().enumerate() {
                        let bit = x * b;
                        let v = u16::from(raw[bit / 8] >> (8 - b - bit % 8)) & max;
                        let g = (v * scale) as u8;
                        *o = if invert { 255 - g } else { g };
                    }
                }
            },
            Kind::Grey12 => {
                for (x, o) in out[..width].iter_mut().enumerate() {
                    let i = x / 2 * 3;
                    let v = if x % 2 == 0 {
                        (u16::from(raw[i]) << 4) | u16::from(raw[i + 1] >> 4)
                    } else {
                        (u16::from(raw[i + 1] & 0x0f) << 8) | u16::from(raw[i + 2])
                    };
                    *o = clip(i64::from(v), 4095, pure);
                }
            }
            Kind::Grey16 { big_endian } => {
                for (x, o) in out[..width].iter_mut().enumerate() {
                    let v = sample16(&raw[x * 2..], big_endian);
                    *o = clip(i64::from(v), 65535, pure);
                }
            }
            Kind::Int { bytes, big_endian } => {
                let be = big_endian ^ swap;
                for (x, o) in out[..width].iter_mut().enumerate() {
                    let s = &raw[x * bytes..];
                    let v = if bytes == 2 {
                        i64::from(sample16(s, be) as i16)
                    } else {
                        i64::from(sample32(s, be) as i32)
                    };
                    // No value of a signed or 32-bit integer means white:
                    // only black is pure.
                    *o = clip(v, 0, pure);
                }
            }
            Kind::Float { big_endian } => {
                let be = big_endian ^ swap;
                for (x, o) in out[..width].iter_mut().enumerate() {
                    let v = f32::from_bits(sample32(&raw[x * 4..], be));
                    // Pillow's f2l: clamp, then truncate (NaN gives 0).
                    *o = if v <= 0.0 {
                        0
                    } else if v >= 255.0 {
                        255
                    } else {
                        v as u8
                    };
                    // No float value means white: only black is pure.
                    if v != 0.0 {
                        *pure = false;
                    }
                }
            }
            Kind::Palette { bits, spp, alpha } => {
                if bits == 8 {
                    for (x, o) in out[..width].iter_mut().enumerate() {
                        *o = raw[x * spp];
                        if alpha && raw[x * spp + 1] != 255 {
                            *pure = false;
                        }
                    }
                } else {
                    let b = usize::from(bits);
                    let mask = (1u8 << b) - 1;
                    for (x, o) in out[..width].iter_mut().enumerate() {
                        let bit = x * b;
                        *o = (raw[bit / 8] >> (8 - b - bit % 8)) & mask;
                    }
                }
            }
            Kind::Rgb {
                sixteen,
                big_endian,
                spp,
                alpha,
            } => {
                let size = if sixteen { 2 } else { 1 };
                let px = spp * size;
                for x in 0..width {
                    let p = &raw[x * px..(x + 1) * px];
                    // 16-bit samples: their high byte (Pillow's RGB;16 raw
                    // modes); a value between 0 and 65535 is not pure.
                    let mut s = |i: usize| -> u8 {
                        if sixteen {
                            let v = sample16(&p[i * 2..], big_endian);
                            if v != 0 && v != 0xffff {
                                *pure = false;
                            }
                            (v >> 8) as u8
                        } else {
                            p[i]
                        }
                    };
                    let (mut r, mut g, mut b) = (s(0), s(1), s(2));
                    match alpha {
                        Alpha::None => {}
                        Alpha::Straight => {
                            if s(3) != 255 {
                                *pure = false;
                            }
                        }
                        Alpha::Premultiplied => {
                            let a = s(3);
                            if a != 255 {
                                *pure = false;
                                if a == 0 {
                                    (r, g, b) = (0, 0, 0);
                                } else {
                                    let un =
                                        |c: u8| (u32::from(c) * 255 / u32::from(a)).min(255) as u8;
                                    (r, g, b) = (un(r), un(g), un(b));
                                }
                            }
                        }
                    }
                    out[x * 3..x * 3 + 3].copy_from_slice(&[b, g, r]);
                }
            }
            Kind::Cmyk {
                sixteen,
                big_endian,
                spp,
            } => {
                if width > 0 {
                    *pure = false;
                }
                let size = if sixteen { 2 } else { 1 };
                let px = spp * size;
                for x in 0..width {
                    let p = &raw[x * px..(x + 1) * px];
                    let s = |i: usize| -> i32 {
                        if sixteen {
                            i32::from(sample16(&p[i * 2..], big_endian) >> 8)
                        } else {
                            i32::from(p[i])
                        }
                    };
                    // Pillow's cmyk2rgb, with its MULDIV255 rounding.
                    let nk = 255 - s(3);
                    let ch = |c: i32| -> u8 {
                        let t = c * nk + 128;
                        (nk - (((t >> 8) + t) >> 8)).clamp(0, 255) as u8
                    };
                    out[x * 3..x * 3 + 3].copy_from_slice(&[ch(s(2)), ch(s(1)), ch(s(0))]);
                }
            }
        }
    }
}

fn sample16(b: &[u8], big_endian: bool) -> u16 {
    if big_endian {
        u16::from_be_bytes([b[0], b[1]])
    } else {
        u16::from_le_bytes([b[0], b[1]])
    }
}

fn sample32(b: &[u8], big_endian: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Pillow's clamp of an integer sample to 0…255. The source pixel is pure
/// only when it is 0 or `white` (the depth's maximum, 0 when no value
/// means white): a 16-bit 255 comes out white but is near black, and an
/// archive of it must not let its original be deleted (design §2.1,
/// "lossless").
fn clip(v: i64, white: i64, pure: &mut bool) -> u8 {
    if v != 0 && v != white {
        *pure = false;
    }
    v.clamp(0, 255) as u8
}
