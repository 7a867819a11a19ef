//! The first directory read into what decoding needs, with Pillow 13.0.0's
//! rules for defaults and for which files it opens (design §2.1), and the
//! completion rule built on the same reading.

use super::super::{DecodeError, Format, Layout, Whole};
use super::codec::Compression;
use super::ifd::{self, Array, Ifd, Order};
use super::pixel::{Alpha, Key, Kind};
use crate::bmp::Source;

fn invalid(why: impl Into<String>) -> DecodeError {
    DecodeError::invalid(Format::Tiff, why)
}

fn unsupported(why: impl Into<String>) -> DecodeError {
    DecodeError::unsupported(Format::Tiff, why)
}

/// Tag numbers.
mod tag {
    pub const WIDTH: u16 = 256;
    pub const LENGTH: u16 = 257;
    pub const BITS: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const FILL_ORDER: u16 = 266;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const ORIENTATION: u16 = 274;
    pub const SAMPLES: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTES: u16 = 279;
    pub const PLANAR: u16 = 284;
    pub const T4_OPTIONS: u16 = 292;
    pub const PREDICTOR: u16 = 317;
    pub const COLORMAP: u16 = 320;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTES: u16 = 325;
    pub const EXTRA_SAMPLES: u16 = 338;
    pub const SAMPLE_FORMAT: u16 = 339;
    pub const WINDOWS_MEDIA_PHOTO: u16 = 0xBC01;
}

/// How the pixel data is cut up.
#[derive(Debug, Clone, Copy)]
pub enum Chunks {
    Strips { rows: u32 },
    Tiles { width: u32, length: u32 },
}

/// Predictor applied before compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
    None,
    Horizontal,
    Float,
}

/// Everything decoding needs from the first directory.
#[derive(Debug, Clone)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    pub kind: Kind,
    pub layout: Layout,
    /// Bits of one sample (all samples have the same).
    pub bits: u32,
    /// Samples of one pixel as decoded (after Pillow's trimming of unused
    /// planes).
    pub spp: usize,
    /// Each sample in its own plane.
    pub planar: bool,
    pub compression: Compression,
    pub predictor: Predictor,
    /// FillOrder 2: bits of each byte stored least significant first.
    pub lsb_first: bool,
    pub big_endian: bool,
    /// T4Options (CCITT Group 3).
    pub t4_options: u32,
    pub orientation: u16,
    pub chunks: Chunks,
    pub offsets: Array,
    pub byte_counts: Option<Array>,
    /// Uncompressed data Pillow reads as one tile from this offset (its
    /// "every tile covers the image: only the last offset" rule).
    pub fixed_offset: Option<u64>,
    /// Pillow memory-maps this uncompressed image (one tile, raw mode the
    /// image's mode); with Orientation 5–8 it then maps the bytes at the
    /// turned size (see [`Plan::into_pillow_mapped`]).
    pub pillow_maps: bool,
    /// Bytes from one row to the next of uncompressed data when they are
    /// not the rows' own length (the mapped turn of a single tile larger
    /// than the image).
    pub row_stride: Option<u64>,
    /// The row length Pillow reads uncompressed separate-plane tiles
    /// reaching past the right edge with (None: their rows' own).
    pub edge_row_bytes: Option<usize>,
    /// The row stride Pillow maps a single large tile with (see
    /// [`Plan::into_pillow_mapped`]).
    map_stride: Option<u64>,
}

impl Plan {
    /// Reads and checks the header and first directory of `src`.
    pub fn read(src: &dyn Source) -> Result<Plan, DecodeError> {
        let (order, at) = ifd::header(src)?;
        let ifd = ifd::read_ifd(src, order, at)?;
        Plan::from_ifd(src, order, &ifd)
    }

    fn from_ifd(src: &dyn Source, order: Order, ifd: &Ifd) -> Result<Plan, DecodeError> {
        let one = |t: u16, default: u64| -> Result<u64, DecodeError> {
            match ifd.get(t) {
                Some(a) if a.count > 0 => a.first(src),
                _ => Ok(default),
            }
        };
        let list = |t: u16, default: &[u64], name: &str| -> Result<Vec<u64>, DecodeError> {
            match ifd.get(t) {
                Some(a) if a.count > 0 => a.all(src, 64, name),
                _ => Ok(default.to_vec()),
            }
        };
        if ifd.get(tag::WINDOWS_MEDIA_PHOTO).is_some() {
            return Err(unsupported(
                "Windows Media Photo (JPEG XR) data is not read",
            ));
        }
        let compression_tag = one(tag::COMPRESSION, 1)?;
        let compression = match compression_tag {
            1 => Compression::None,
            2..=4 => Compression::Ccitt(compression_tag as u16),
            5 => Compression::Lzw,
            8 | 32946 => Compression::Deflate,
            32773 => Compression::PackBits,
            6 | 7 => {
                return Err(unsupported(
                    "JPEG-compressed TIFF: not archived, as JPEG files are not (its pixels \
                     depend on the JPEG decoder); save the page as LZW, Deflate or G4 TIFF",
                ));
            }
            c => {
                return Err(unsupported(format!(
                    "compression {c} (rlewatch reads none, PackBits, LZW, Deflate and CCITT G3/G4)"
                )));
            }
        };
        let mut photometric = one(tag::PHOTOMETRIC, 0)?;
        if compression_tag == 6 {
            photometric = 6;
        }
        let fill_order = one(tag::FILL_ORDER, 1)?;
        let (Some(w), Some(h)) = (ifd.get(tag::WIDTH), ifd.get(tag::LENGTH)) else {
            return Err(invalid("missing image width or length"));
        };
        let width = w.first(src)?;
        let height = h.first(src)?;
        if width == 0 || height == 0 {
            return Err(invalid(format!("image size {width}x{height}")));
        }
        if width > u64::from(u32::MAX) || height > u64::from(u32::MAX) {
            return Err(invalid(format!("image size {width}x{height}")));
        }
        let orientation = one(tag::ORIENTATION, 1)?;
        let orientation = if (1..=8).contains(&orientation) {
            orientation as u16
        } else {
            1
        };

        // Pillow's normalisation of the mode key (TiffImageFile._setup).
        let mut sample_format = list(tag::SAMPLE_FORMAT, &[1], "SampleFormat")?;
        if sample_format.len() > 1 && sample_format.iter().all(|&s| s == sample_format[0]) {
            sample_format.truncate(1);
        }
        let mut bits = list(tag::BITS, &[1], "BitsPerSample")?;
        let mut extra = match ifd.get(tag::EXTRA_SAMPLES) {
            Some(a) => a.all(src, 64, "ExtraSamples")?,
            None => Vec::new(),
        };
        let mut spp = one(tag::SAMPLES, 1)?;
        let planar_tag = one(tag::PLANAR, 1)?;
        let planar = match planar_tag {
            1 => false,
            2 => true,
            p => return Err(invalid(format!("PlanarConfiguration {p}"))),
        };
        if planar && !extra.is_empty() && extra.iter().all(|&e| e == 0) {
            // Unspecified extra planes at the end are not read.
            let n = extra.len().min(bits.len());
            bits.truncate(bits.len() - n);
            spp = spp.saturating_sub(extra.len() as u64);
            extra.clear();
        }
        if spp > 6 {
            return Err(unsupported(format!(
                "{spp} samples per pixel (Pillow reads at most 6)"
            )));
        }
        let spp = spp as usize;
        if spp < bits.len() {
            bits.truncate(spp);
        } else if spp > bits.len() && bits.len() == 1 {
            bits = vec![bits[0]; spp];
        }
        if bits.len() != spp || spp == 0 {
            return Err(invalid(format!(
                "{spp} samples per pixel but {} bits-per-sample values",
                bits.len()
            )));
        }
        let key = Key {
            big_endian: order.big_endian,
            photometric,
            sample_format,
            fill_order,
            bits: bits.clone(),
            extra,
        };
        let kind = Kind::from_key(&key)?;
        let sample_bits = bits[0] as u32;

        let palette = match kind {
            Kind::Palette { .. } => {
                let Some(map) = ifd.get(tag::COLORMAP) else {
                    return Err(invalid("palette image without a ColorMap"));
                };
                let n = (map.count / 3).min(65536);
                let per = n.min(256) as usize;
                let mut r = vec![0u64; per];
                let mut g = vec![0u64; per];
                let mut b = vec![0u64; per];
                map.get_range(src, 0, &mut r)?;
                map.get_range(src, n, &mut g)?;
                map.get_range(src, 2 * n, &mut b)?;
                Some(
                    (0..per)
                        .map(|i| [(r[i] >> 8) as u8, (g[i] >> 8) as u8, (b[i] >> 8) as u8])
                        .collect(),
                )
            }
            _ => None,
        };
        let layout = kind.layout(palette);

        let predictor = match (one(tag::PREDICTOR, 1)?, compression) {
            // libtiff applies a predictor only with LZW and Deflate; Pillow's
            // own reader of uncompressed data ignores it.
            (_, Compression::None | Compression::PackBits | Compression::Ccitt(_)) => {
                Predictor::None
            }
            (1, _) => Predictor::None,
            (2, _) => {
                if !matches!(sample_bits, 8 | 16 | 32) {
                    return Err(unsupported(format!(
                        "horizontal predictor with {sample_bits}-bit samples (libtiff refuses it)"
                    )));
                }
                Predictor::Horizontal
            }
            (3, _) => {
                if !matches!(kind, Kind::Float { .. }) {
                    return Err(unsupported(
                        "floating-point predictor on integer samples (libtiff refuses it)",
                    ));
                }
                Predictor::Float
            }
            (p, _) => return Err(invalid(format!("Predictor {p}"))),
        };
        if let Compression::Ccitt(c) = compression
            && !matches!(kind, Kind::Bilevel { .. })
        {
            return Err(invalid(format!(
                "CCITT compression {c} needs 1 bit per pixel, one sample"
            )));
        }
        let t4_options = one(tag::T4_OPTIONS, 0)? as u32;
        let tiled = ifd.get(tag::TILE_WIDTH).is_some() || ifd.get(tag::TILE_LENGTH).is_some();
        let mut kind = kind;
        if compression == Compression::None {
            // Pillow reads uncompressed data itself, with raw modes that do
            // not all exist or fit.
            kind = pillow_raw_quirks(kind, fill_order == 2, planar && spp > 1)?;
        }
        // libtiff calls a fourth sample no ExtraSamples tag names an
        // unspecified extra sample, and Pillow unpremultiplies separate
        // planes whose first extra sample is unspecified or associated.
        if compression != Compression::None
            && planar
            && key.extra.is_empty()
            && let Kind::Rgb {
                sixteen,
                big_endian,
                spp: 4,
                alpha: Alpha::Straight,
            } = kind
        {
            kind = Kind::Rgb {
                sixteen,
                big_endian,
                spp: 4,
                alpha: Alpha::Premultiplied,
            };
        }
        // Pillow's row length for an uncompressed tile reaching past the
        // right edge: the tile width × the bits of all samples / 8 / the
        // samples its photometric names, as a float cut to an integer;
        // it differs from the rows' own length only for 16-bit samples
        // read as 8-bit planes.
        let edge_row_bytes = if compression == Compression::None && tiled && planar && spp > 1 {
            let tw = one(tag::TILE_WIDTH, 0)? as f64;
            let named = match photometric {
                2 | 6 | 8 => 3,
                5 => 4,
                _ => 1,
            } + key.extra.len();
            let sum: u64 = bits.iter().sum();
            Some((tw * sum as f64 / 8.0 / named as f64) as usize)
        } else {
            None
        };

        // RowsPerStrip 0 is refused by libtiff as a value and so taken as
        // unset: one strip of the whole image, as Pillow reads it.
        let rows_tag = match one(tag::ROWS_PER_STRIP, height)? {
            0 => height,
            rows => rows,
        };
        let covers = !planar
            && if tiled {
                one(tag::TILE_WIDTH, 0)? == width && one(tag::TILE_LENGTH, 0)? == height
            } else {
                rows_tag == height
            };
        let (chunks, offsets, byte_counts) = if tiled {
            let tw = one(tag::TILE_WIDTH, 0)?;
            let tl = one(tag::TILE_LENGTH, 0)?;
            if tw == 0 || tl == 0 || tw > 65536 || tl > 65536 {
                return Err(invalid(format!("tile size {tw}x{tl}")));
            }
            let Some(off) = ifd.get(tag::TILE_OFFSETS).or(ifd.get(tag::STRIP_OFFSETS)) else {
                return Err(invalid("tiled image without TileOffsets"));
            };
            let counts = ifd.get(tag::TILE_BYTES).or(ifd.get(tag::STRIP_BYTES));
            (
                Chunks::Tiles {
                    width: tw as u32,
                    length: tl as u32,
                },
                *off,
                counts.copied(),
            )
        } else {
            let rows = rows_tag;
            let Some(off) = ifd.get(tag::STRIP_OFFSETS) else {
                return Err(invalid("no StripOffsets: no pixel data"));
            };
            (
                Chunks::Strips {
                    rows: rows.min(height) as u32,
                },
                *off,
                ifd.get(tag::STRIP_BYTES).copied(),
            )
        };
        if planar && spp > kind.bands() {
            return Err(unsupported(format!(
                "{spp} samples in separate planes for a {}-band Pillow mode (Pillow cannot \
                 read the extra planes)",
                kind.bands()
            )));
        }
        let mut lsb_first = fill_order == 2;
        if compression == Compression::None && planar && spp == 1 {
            // Pillow reads each plane with the first letter of the raw mode.
            kind = single_plane_letter(kind)?;
            lsb_first = false;
        }
        let sample_bits = match kind {
            Kind::Rgb { sixteen: false, .. } | Kind::Cmyk { sixteen: false, .. } => 8,
            Kind::Grey { bits, .. } | Kind::Palette { bits, .. } => u32::from(bits),
            Kind::Int { bytes, .. } => 8 * bytes as u32,
            _ => sample_bits,
        };
        let raw = compression == Compression::None;
        let fixed_offset = (raw && covers).then(|| offsets.count.saturating_sub(1));
        let one_tile = covers || offsets.count == 1;
        let map_mode = fill_order == 1
            && !(planar && spp > 1)
            && match &kind {
                Kind::Grey {
                    bits: 8,
                    invert: false,
                    spp: 1,
                    ..
                } => photometric == 1,
                Kind::Palette {
                    bits: 8, spp: 1, ..
                }
                | Kind::Grey16 { .. } => true,
                Kind::Rgb {
                    sixteen: false,
                    spp: 4,
                    alpha: Alpha::Straight,
                    ..
                } => true,
                Kind::Cmyk {
                    sixteen: false,
                    spp: 4,
                    ..
                } => true,
                _ => false,
            };
        // A single tile larger than the image is mapped with its tile
        // stride, rows overlapping; not reproduced (decoded as stored).
        let mut pillow_maps = raw && map_mode && (covers || one_tile);
        let mut map_stride = None;
        if pillow_maps && tiled && !covers && orientation >= 5 {
            // One tile larger than the image: Pillow maps the turned
            // rows (`height` pixels) at the larger of the tile's row
            // length and theirs, unless that runs past the file's end
            // (then it decodes the tile as stored).
            let tw = one(tag::TILE_WIDTH, 0)?;
            let px = u64::from(sample_bits) * spp as u64 / 8;
            let stride = (tw * px).max(height * px);
            let at = offsets.first(src)?;
            if at.saturating_add(width.saturating_mul(stride)) <= src.byte_len()? {
                map_stride = Some(stride);
            } else {
                pillow_maps = false;
            }
        }
        let plan = Plan {
            width: width as u32,
            height: height as u32,
            kind,
            layout,
            bits: sample_bits,
            spp,
            planar: planar && spp > 1,
            compression,
            predictor,
            lsb_first,
            big_endian: order.big_endian,
            t4_options,
            orientation,
            chunks,
            offsets,
            byte_counts,
            fixed_offset,
            pillow_maps,
            row_stride: None,
            map_stride,
            edge_row_bytes,
        };
        let needed = plan.chunk_count();
        if plan.offsets.count < needed {
            return Err(invalid(format!(
                "{} strip/tile offsets for {needed} strips/tiles",
                plan.offsets.count
            )));
        }
        if raw && planar && plan.offsets.count > needed {
            // Pillow reads every offset as the next plane's, and has no
            // plane past the last sample.
            return Err(unsupported(format!(
                "{} strip offsets for {needed} strips of separate planes (Pillow refuses it)",
                plan.offsets.count
            )));
        }
        if compression != Compression::None {
            match &plan.byte_counts {
                Some(c) if c.count >= needed => {}
                _ => return Err(invalid("missing or short StripByteCounts/TileByteCounts")),
            }
        }
        Ok(plan)
    }

    /// The plan Pillow 13.0.0 actually decodes for a memory-mapped image
    /// with Orientation 5–8: it maps the stored bytes at the turned size
    /// (rows of `height` pixels, `width` of them) and then turns that, so
    /// the page comes out scrambled; the reference's output is what
    /// counts (design §2.1), so it is reproduced.
    pub fn into_pillow_mapped(mut self) -> Plan {
        if self.pillow_maps && self.orientation >= 5 {
            (self.width, self.height) = (self.height, self.width);
            self.chunks = Chunks::Strips { rows: self.height };
            self.fixed_offset = Some(self.fixed_offset.unwrap_or(0));
            self.row_stride = self.map_stride;
        }
        self
    }

    /// Planes of separately stored samples (1 when chunky).
    pub fn planes(&self) -> usize {
        if self.planar { self.spp } else { 1 }
    }

    /// Bands (strips, or rows of tiles) down the image.
    pub fn bands(&self) -> u32 {
        self.height.div_ceil(self.band_height())
    }

    /// Rows of a full band.
    pub fn band_height(&self) -> u32 {
        match self.chunks {
            Chunks::Strips { rows } => rows,
            Chunks::Tiles { length, .. } => length,
        }
    }

    /// Tiles across (1 for strips).
    pub fn across(&self) -> u32 {
        match self.chunks {
            Chunks::Strips { .. } => 1,
            Chunks::Tiles { width, .. } => self.width.div_ceil(width),
        }
    }

    /// Strips or tiles in the file the image needs.
    pub fn chunk_count(&self) -> u64 {
        u64::from(self.bands()) * u64::from(self.across()) * self.planes() as u64
    }

    /// The width in pixels of one chunk's rows (the tile width, or the
    /// image width).
    pub fn chunk_width(&self) -> u32 {
        match self.chunks {
            Chunks::Strips { .. } => self.width,
            Chunks::Tiles { width, .. } => width,
        }
    }

    /// Bytes of one row of `pixels` pixels in one plane.
    pub fn plane_row_bytes(&self, pixels: u32) -> usize {
        let per = u64::from(self.bits) * (self.spp / self.planes()) as u64;
        (u64::from(pixels) * per).div_ceil(8) as usize
    }

    /// Where chunk `i` (plane-major, then band, then tile across) is, and
    /// how many bytes are read from there for `rows` rows: the byte count
    /// for compressed data, the rows' bytes for uncompressed data (read as
    /// Pillow does, which ignores StripByteCounts).
    pub fn chunk_span(
        &self,
        src: &dyn Source,
        i: u64,
        rows: u32,
    ) -> Result<(u64, u64), DecodeError> {
        let index = self.fixed_offset.unwrap_or(i);
        let at = self.offsets.get(src, index)?;
        let mut row = self.plane_row_bytes(self.chunk_width()) as u64;
        if let (Chunks::Tiles { width, .. }, Some(edge)) = (self.chunks, self.edge_row_bytes) {
            let tx = i % u64::from(self.across());
            if (tx + 1) * u64::from(width) > u64::from(self.width) {
                row = edge as u64;
            }
        }
        let len = if let (Some(stride), true) = (self.row_stride, rows > 0) {
            stride * u64::from(rows - 1) + row
        } else if self.compression == Compression::None {
            row * u64::from(rows)
        } else {
            match &self.byte_counts {
                Some(c) => c.get(src, i)?,
                None => 0,
            }
        };
        Ok((at, len))
    }
}

/// How Pillow's own reader takes uncompressed data in one separate plane:
/// with the raw mode's first letter ("1;I" as "1", "L;4" as "L", "I;16S"
/// as "I"), so without inversion or bit reversal, sub-byte samples read as
/// bytes, 16-bit integers as 32-bit ones; 12 and 16-bit grey has no such
/// raw mode.
fn single_plane_letter(kind: Kind) -> Result<Kind, DecodeError> {
    Ok(match kind {
        Kind::Bilevel { .. } => Kind::Bilevel { invert: false },
        Kind::Grey { spp: 1, .. } => Kind::Grey {
            bits: 8,
            invert: false,
            spp: 1,
            alpha: false,
        },
        Kind::Palette { spp: 1, .. } => Kind::Palette {
            bits: 8,
            spp: 1,
            alpha: false,
        },
        Kind::Int { .. } => Kind::Int {
            bytes: 4,
            big_endian: false,
        },
        Kind::Float { .. } => Kind::Float { big_endian: false },
        Kind::Grey12 | Kind::Grey16 { .. } => {
            return Err(unsupported(
                "uncompressed 12/16-bit grey marked as separate planes, which Pillow has no \
                 raw mode for (it refuses the file)",
            ));
        }
        k => k,
    })
}

/// What Pillow's own reader of uncompressed data does differently from
/// libtiff (design §2.1: Pillow wins): FillOrder 2 has no raw mode for
/// MinIsWhite 8-bit grey nor for 1/2/4-bit palettes; separate planes are
/// read with 8-bit band modes, so 16-bit planes are read as 8-bit samples
/// (the first bytes of each plane's rows; see [`Plan::edge_row_bytes`] for
/// tiles) and an associated alpha plane has no raw mode at all.
fn pillow_raw_quirks(kind: Kind, lsb_first: bool, planar: bool) -> Result<Kind, DecodeError> {
    let no_raw_mode = || {
        unsupported(
            "uncompressed data in a layout Pillow has no raw mode for (it refuses the file)",
        )
    };
    if lsb_first && planar {
        // Pillow's raw modes for bit-reversed bands read some layouts and
        // not others (checked against it: wrong pixels, not a refusal), so
        // an archive of this rare layout could differ from the reference's.
        return Err(unsupported(
            "uncompressed samples in separate planes with FillOrder 2 (bits stored least \
             significant first), which the reference reads inconsistently; save the page \
             with FillOrder 1 or compressed",
        ));
    }
    match kind {
        Kind::Grey {
            bits: 8,
            invert: true,
            ..
        }
        | Kind::Palette {
            bits: 1 | 2 | 4, ..
        } if lsb_first => Err(no_raw_mode()),
        Kind::Rgb {
            alpha: Alpha::Premultiplied,
            ..
        }
        | Kind::Grey { spp: 2, .. }
        | Kind::Palette { spp: 2, .. }
            if planar =>
        {
            Err(no_raw_mode())
        }
        Kind::Rgb {
            sixteen: true,
            big_endian,
            spp,
            alpha,
        } if planar => Ok(Kind::Rgb {
            sixteen: false,
            big_endian,
            spp,
            alpha,
        }),
        Kind::Cmyk {
            sixteen: true,
            big_endian,
            spp,
        } if planar => Ok(Kind::Cmyk {
            sixteen: false,
            big_endian,
            spp,
        }),
        k => Ok(k),
    }
}

/// The completion rule (design §4.2): `NotYet` while the header, the
/// first directory or any strip/tile it names lies past the end of the
/// file; `Complete` when all is there or the file is plainly invalid.
pub fn whole(src: &dyn Source) -> Whole {
    let Ok(len) = src.byte_len() else {
        return Whole::Complete;
    };
    if len < 8 {
        return Whole::NotYet("the TIFF header is not all there yet");
    }
    let (order, at) = match ifd::header(src) {
        Ok(h) => h,
        Err(DecodeError::Truncated { .. }) => {
            return Whole::NotYet("the TIFF header is not all there yet");
        }
        Err(_) => return Whole::Complete,
    };
    if at >= len {
        return Whole::NotYet("the first TIFF directory is not written yet");
    }
    let ifd = match ifd::read_ifd(src, order, at) {
        Ok(i) => i,
        Err(DecodeError::Truncated { .. }) => {
            return Whole::NotYet("the first TIFF directory is not all there yet");
        }
        Err(_) => return Whole::Complete,
    };
    // Tag values stored past the end (the strip tables among them).
    for (_, a) in &ifd.tags {
        if let Some((at, n)) = a.span()
            && at.saturating_add(n) > len
        {
            return Whole::NotYet("a TIFF tag's values are not all there yet");
        }
    }
    let plan = match Plan::from_ifd(src, order, &ifd) {
        Ok(p) => p,
        Err(DecodeError::Truncated { .. }) => {
            return Whole::NotYet("the first TIFF directory is not all there yet");
        }
        Err(_) => return Whole::Complete,
    };
    if plan.width > 65535 || plan.height > 65535 {
        return Whole::Complete;
    }
    match chunks_present(src, &plan, len) {
        Ok(true) => Whole::Complete,
        Ok(false) => Whole::NotYet("some TIFF strip or tile data is not written yet"),
        Err(_) => Whole::Complete,
    }
}

/// The most strip/tile table entries the completion rule reads (32 MB of
/// tables; a 65535-row page in one-row strips of six planes has 393,210).
const MAX_CHECKED_CHUNKS: u64 = 4 << 20;

/// Whether every strip/tile of `plan` lies within `len` bytes (strip
/// tables read in blocks: at most 65535 × 6 entries for a valid image).
fn chunks_present(src: &dyn Source, plan: &Plan, len: u64) -> Result<bool, DecodeError> {
    let n = plan.chunk_count();
    if n > MAX_CHECKED_CHUNKS {
        // Bounded work for a poll: such a file is taken as it is, and
        // decoding says whether its data is there.
        return Ok(true);
    }
    let bh = plan.band_height();
    let bands = u64::from(plan.bands());
    let per_band = u64::from(plan.across());
    const BLOCK: u64 = 4096;
    let mut offs = vec![0u64; BLOCK as usize];
    let mut counts = vec![0u64; BLOCK as usize];
    let raw = plan.compression == Compression::None;
    let mut start = 0;
    while start < n {
        let k = (n - start).min(BLOCK) as usize;
        plan.offsets.get_range(src, start, &mut offs[..k])?;
        if !raw && let Some(c) = &plan.byte_counts {
            c.get_range(src, start, &mut counts[..k])?;
        }
        for j in 0..k {
            let i = start + j as u64;
            let len_i = if raw {
                let band = (i / per_band) % bands;
                let rows = (plan.height - band as u32 * bh).min(bh);
                plan.chunk_span(src, i, rows)?.1
            } else {
                counts[j]
            };
            let at = if raw {
                plan.chunk_span(src, i, 0)?.0
            } else {
                offs[j]
            };
            if at.saturating_add(len_i) > len {
                return Ok(false);
            }
        }
        start += k as u64;
    }
    Ok(true)
}
