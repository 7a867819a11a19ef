//! Image formats other than BMP (design §2.1): TIFF, PNG, PNM and GIF
//! decoded row by row into one of the layouts of an uncompressed top-down
//! BMP ([`Layout`]), so that the BMP path's converter (its kernels, the
//! dither, the lossless verdict) and the RLE encoder serve every format
//! unchanged. Each decoder knows its format's bytes and the mode Pillow
//! 13.0.0 opens it as, and turns that mode into a layout the way Pillow's
//! `convert` would (16-bit grey clipped, CMYK to RGB, alpha dropped, …);
//! it knows nothing of files' names or of the daemon.
//!
//! - [`Format`]: what a file is, by its first bytes (never by its name).
//! - [`open`]: a [`Decoder`] for a file of a known format.
//! - [`whole`]: whether a file of a known format is complete (the
//!   daemon's completion rule, design §4.2).
//! - [`Frame`]: a whole frame held at one byte per pixel, for the pixel
//!   orders that cannot be streamed (Adam7, interlaced GIF, TIFF
//!   Orientation 5–8), capped at Pillow's decompression-bomb limit.

use std::io::{self, Read};

use crate::bmp::{BmpInfo, Compression, Masks, PillowMode, Source};

pub(crate) mod ccitt;
mod gif;
mod png;
mod pnm;
mod tiff;

/// The largest image Pillow opens: above twice `Image.MAX_IMAGE_PIXELS`
/// (89,478,485) it raises `DecompressionBombError`. Frames that must be
/// held whole ([`Frame`]) are refused above it whatever the configured
/// limit.
pub const PILLOW_BOMB_PIXELS: u64 = 2 * 89_478_485;

/// An image format, known by its magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Bmp,
    Tiff,
    Png,
    Pnm,
    Gif,
    Jpeg,
}

impl Format {
    /// Every format, in the order they are listed to users.
    pub const ALL: [Format; 6] = [
        Format::Bmp,
        Format::Tiff,
        Format::Png,
        Format::Pnm,
        Format::Gif,
        Format::Jpeg,
    ];

    /// The format `head` (a file's first bytes; 3 are enough) starts as,
    /// if any.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"BM") || head.starts_with(b"BA") {
            // `BA`: an OS/2 bitmap array, which the BMP reader names and
            // refuses.
            Some(Format::Bmp)
        } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
            .iter()
            .any(|m| head.starts_with(*m))
        {
            // Classic TIFF and BigTIFF, either byte order.
            Some(Format::Tiff)
        } else if head.starts_with(b"\x89PNG") {
            Some(Format::Png)
        } else if head.starts_with(b"GIF8") {
            Some(Format::Gif)
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(Format::Jpeg)
        } else if head.len() >= 3
            && head[0] == b'P'
            && (b'1'..=b'7').contains(&head[1])
            // Python's whitespace, as Pillow's header reader takes it
            // (a vertical tab too), or a comment.
            && (head[2].is_ascii_whitespace() || head[2] == 0x0b || head[2] == b'#')
        {
            Some(Format::Pnm)
        } else {
            None
        }
    }

    /// The format of the file `src`, from its first bytes.
    pub fn of(src: &(impl Source + ?Sized)) -> io::Result<Option<Format>> {
        let mut head = [0u8; 4];
        let n = src.read_at(&mut head, 0)?;
        Ok(Format::sniff(&head[..n]))
    }

    /// The lowercase name used in configuration, the ledger and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Png => "png",
            Format::Pnm => "pnm",
            Format::Gif => "gif",
            Format::Jpeg => "jpeg",
        }
    }

    /// The format for a configuration or ledger name.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The name as written in messages ("TIFF").
    pub fn title(self) -> &'static str {
        match self {
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::Png => "PNG",
            Format::Pnm => "PNM",
            Format::Gif => "GIF",
            Format::Jpeg => "JPEG",
        }
    }

    /// File name extensions users give files of this format (lowercase,
    /// without the dot); together, [`ALL_EXTENSIONS`].
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Bmp => &["bmp", "dib"],
            Format::Tiff => &["tif", "tiff"],
            Format::Png => &["png"],
            Format::Pnm => &["pbm", "pgm", "ppm", "pnm"],
            Format::Gif => &["gif"],
            Format::Jpeg => &["jpg", "jpeg"],
        }
    }
}

/// A set of formats: those a daemon archives (`compress.formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormatSet(u8);

impl FormatSet {
    /// Every format rlewatch decodes (all but JPEG).
    pub const DECODED: FormatSet = FormatSet(0b01_1111);

    pub fn of(formats: &[Format]) -> FormatSet {
        FormatSet(formats.iter().fold(0, |set, f| set | 1 << *f as u8))
    }

    pub fn contains(self, f: Format) -> bool {
        self.0 & (1 << f as u8) != 0
    }

    /// The formats in the set, in [`Format::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Format> {
        Format::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl Default for FormatSet {
    fn default() -> Self {
        FormatSet::DECODED
    }
}

/// Every format's extensions, BMP first: what `compress` takes from
/// folders and the daemon's default patterns.
pub const ALL_EXTENSIONS: &[&str] = &[
    "bmp", "dib", "tif", "tiff", "png", "pbm", "pgm", "ppm", "pnm", "gif", "jpg", "jpeg",
];

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

/// How a decoder hands its rows over: one of the layouts of an
/// uncompressed top-down BMP, so that [`crate::bilevel::Converter`] applies
/// the rule of the matching Pillow mode (design §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Pillow mode `1`: ⌈width/8⌉ bytes a row, most significant bit first,
    /// 1 = white; bits past the width are ignored.
    One,
    /// Pillow mode `L`: one grey byte a pixel; dithered.
    Grey,
    /// Pillow mode `P`: one index byte a pixel into this palette (at most
    /// 256 entries; indices past its end are black); never dithered.
    Palette(Vec<[u8; 3]>),
    /// Pillow mode `RGB`: three bytes a pixel in the order B, G, R (as a
    /// 24-bit BMP stores them); dithered.
    Bgr,
}

impl Layout {
    /// Bytes in one row of `width` pixels.
    pub fn row_bytes(&self, width: u32) -> usize {
        let w = width as usize;
        match self {
            Layout::One => w.div_ceil(8),
            Layout::Grey | Layout::Palette(_) => w,
            Layout::Bgr => 3 * w,
        }
    }
}

/// What a decoder knows once its header is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
}

impl Header {
    /// The uncompressed top-down BMP whose rows look like this decoder's,
    /// for the converter.
    pub fn bmp_info(&self, file_len: u64) -> BmpInfo {
        let (bits_per_pixel, palette, mode, masks) = match &self.layout {
            Layout::One => (1, vec![[0, 0, 0], [255, 255, 255]], PillowMode::One, None),
            Layout::Grey => (
                8,
                (0..=255u8).map(|i| [i, i, i]).collect(),
                PillowMode::L,
                None,
            ),
            Layout::Palette(p) => (8, p.clone(), PillowMode::P, None),
            Layout::Bgr => (
                24,
                Vec::new(),
                PillowMode::Rgb,
                Some(Masks {
                    red: 0x00ff_0000,
                    green: 0x0000_ff00,
                    blue: 0x0000_00ff,
                    alpha: 0,
                }),
            ),
        };
        BmpInfo {
            width: self.width,
            height: self.height,
            top_down: true,
            bits_per_pixel,
            compression: Compression::None,
            masks,
            palette,
            mode,
            data_offset: 0,
            stride: self.layout.row_bytes(self.width) as u64,
            file_len,
        }
    }
}

/// Rows of one image, top to bottom, in its [`Layout`].
pub trait Decoder {
    fn header(&self) -> &Header;
    /// The next row (exactly [`Layout::row_bytes`] bytes), or `None` after
    /// the last. An error ends the image.
    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError>;
    /// False once a source pixel was decoded that its row shows as pure
    /// black or white although it is not (alpha below opaque, a 16-bit
    /// value clipped to 255, a CMYK pixel, …): the lossless verdict is
    /// the converter's judgement of the rows AND this.
    fn source_pure(&self) -> bool {
        true
    }
}

/// Whether a file is all there (design §4.2), as its own bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// As long as declared, its end marker present, or so plainly invalid
    /// that waiting cannot help (decoding will say why).
    Complete,
    /// It may still be being written.
    NotYet(&'static str),
}

/// Why an image could not be decoded. Messages are what users, logs and
/// quarantine notes read; the caller adds the file's name.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid {format}: {why}")]
    Invalid { format: Format, why: String },
    #[error("unsupported {format}: {why}")]
    Unsupported { format: Format, why: String },
    #[error("truncated {format}: {what}")]
    Truncated { format: Format, what: String },
    #[error(
        "image too large: {width}x{height} exceeds the .rle format's limit of 65535 pixels per side"
    )]
    TooLargeForFormat { width: u64, height: u64 },
    #[error(
        "image too large: {width}x{height} = {pixels} pixels exceeds the configured limit of {limit}"
    )]
    PixelLimit {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    #[error(
        "image too large to decode here: {width}x{height} = {pixels} pixels, and its {why} \
         needs the whole frame in memory; Pillow refuses such images too (decompression bomb, \
         above {limit} pixels)"
    )]
    WholeFrameLimit {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
        why: &'static str,
    },
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

impl DecodeError {
    /// True when the input is at fault (quarantine it), false for I/O
    /// trouble that may pass (retry).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DecodeError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof)
    }

    pub fn invalid(format: Format, why: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            format,
            why: why.into(),
        }
    }

    pub fn unsupported(format: Format, why: impl Into<String>) -> DecodeError {
        DecodeError::Unsupported {
            format,
            why: why.into(),
        }
    }

    pub fn truncated(format: Format, what: impl Into<String>) -> DecodeError {
        DecodeError::Truncated {
            format,
            what: what.into(),
        }
    }
}

/// Checks a decoded size against the `.rle` format's limit and the
/// configured pixel limit, before anything is allocated.
pub fn check_size(width: u64, height: u64, max_pixels: u64) -> Result<(), DecodeError> {
    if width > 65535 || height > 65535 {
        return Err(DecodeError::TooLargeForFormat { width, height });
    }
    let pixels = width * height;
    if pixels > max_pixels {
        return Err(DecodeError::PixelLimit {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    Ok(())
}

/// A decoder for `src`, a file of format `format` (not BMP or JPEG, which
/// have their own paths). `max_pixels` is checked before anything is
/// allocated.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    format: Format,
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    match format {
        Format::Tiff => tiff::open(src, max_pixels),
        Format::Png => png::open(src, max_pixels),
        Format::Pnm => pnm::open(src, max_pixels),
        Format::Gif => gif::open(src, max_pixels),
        Format::Bmp | Format::Jpeg => Err(DecodeError::unsupported(
            format,
            "not decoded through this path (BUG if seen)",
        )),
    }
}

/// Whether `src`, a file of format `format`, is complete (design §4.2).
pub fn whole(src: &dyn Source, format: Format) -> Whole {
    match format {
        Format::Tiff => tiff::whole(src),
        Format::Png => png::whole(src),
        Format::Pnm => pnm::whole(src),
        Format::Gif => gif::whole(src),
        Format::Bmp | Format::Jpeg => Whole::Complete,
    }
}

/// A `Read` over a [`Source`] from its start, for decoders built on
/// stream readers (wrap it in a `BufReader`).
pub struct SourceReader<'a> {
    src: &'a (dyn Source + 'a),
    at: u64,
}

impl<'a> SourceReader<'a> {
    pub fn new(src: &'a (dyn Source + 'a)) -> SourceReader<'a> {
        SourceReader { src, at: 0 }
    }
    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.at
    }
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A whole frame held at one byte per pixel (a grey level, a palette
/// index, or 0/255 for bits), for pixel orders that cannot be streamed.
/// Refused above [`PILLOW_BOMB_PIXELS`] (and `max_pixels`), so at most
/// 179 MB.
pub struct Frame {
    width: usize,
    pixels: Vec<u8>,
}

impl Frame {
    /// A zeroed `width` × `height` frame, or the reason it is refused
    /// (`why`: what needs the whole frame, for the message).
    pub fn new(
        width: u32,
        height: u32,
        max_pixels: u64,
        why: &'static str,
    ) -> Result<Frame, DecodeError> {
        let (w, h) = (u64::from(width), u64::from(height));
        check_size(w, h, max_pixels)?;
        let pixels = w * h;
        if pixels > PILLOW_BOMB_PIXELS {
            return Err(DecodeError::WholeFrameLimit {
                width: w,
                height: h,
                pixels,
                limit: PILLOW_BOMB_PIXELS,
                why,
            });
        }
        Ok(Frame {
            width: width as usize,
            pixels: vec![0; pixels as usize],
        })
    }

    /// Row `y`, to read or fill.
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        &mut self.pixels[y * self.width..(y + 1) * self.width]
    }

    /// Row `y`.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.pixels[y * self.width..(y + 1) * self.width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_extensions_are_each_formats_extensions_in_order() {
        let each: Vec<&str> = Format::ALL
            .iter()
            .flat_map(|f| f.extensions().iter().copied())
            .collect();
        assert_eq!(each, ALL_EXTENSIONS);
    }

    /// Decoders hand rows without a BMP's padding: a 1-pixel RGB row is 3
    /// bytes, shorter than the kernels' loads; the scalar code takes it.
    #[test]
    fn unpadded_rows_of_every_layout_and_width_convert_as_pillow_would() {
        use crate::bilevel::{Conversion, Converter};
        use crate::bmp::RowData;
        for width in 1..=130u32 {
            for conversion in [Conversion::Dither, Conversion::Threshold] {
                let layouts = [
                    Layout::One,
                    Layout::Grey,
                    Layout::Palette(vec![[0, 0, 0], [255, 255, 255], [200, 10, 10]]),
                    Layout::Bgr,
                ];
                for layout in layouts {
                    let head = Header {
                        format: Format::Png,
                        width,
                        height: 1,
                        layout: layout.clone(),
                    };
                    let info = head.bmp_info(0);
                    let mut conv = Converter::new(&info, conversion);
                    // Every pixel white (255 / index 1 / bit 1): all ones.
                    let row: Vec<u8> = match layout {
                        Layout::Palette(_) => vec![1; width as usize],
                        _ => vec![255; layout.row_bytes(width)],
                    };
                    let mut bits = vec![0u64; crate::rle::words_for(width as usize)];
                    conv.row(RowData::Packed(&row), &mut bits);
                    let ones: u32 = bits.iter().map(|w| w.count_ones()).sum();
                    assert_eq!(ones, width, "{layout:?} {width} {conversion}");
                    assert!(conv.lossless(), "{layout:?} {width}");
                }
            }
        }
    }

    /// A writer that fills its header in last leaves zeros where the
    /// sizes go: not complete yet (the daemon's grace bounds the wait),
    /// rather than plainly invalid and quarantined at once.
    #[test]
    fn a_header_of_zeros_after_the_magic_number_is_not_complete_yet() {
        let png = [
            &b"\x89PNG\r\n\x1a\n"[..],
            &[0; 25],
            b"\0\0\0\0IEND\xaeB`\x82",
        ]
        .concat();
        let gif = [&b"GIF89a"[..], &[0; 7], b";"].concat();
        let pnm = b"P5\n0 0\n255\n".to_vec();
        for (format, bytes) in [(Format::Png, png), (Format::Gif, gif), (Format::Pnm, pnm)] {
            assert!(
                matches!(whole(&bytes.as_slice(), format), Whole::NotYet(_)),
                "{format}"
            );
        }
    }

    #[test]
    fn the_decoded_set_is_every_format_but_jpeg() {
        let all: Vec<Format> = FormatSet::DECODED.iter().collect();
        assert_eq!(all, &Format::ALL[..5]);
        assert!(!FormatSet::DECODED.contains(Format::Jpeg));
        let two = FormatSet::of(&[Format::Png, Format::Bmp]);
        assert_eq!(two.iter().collect::<Vec<_>>(), [Format::Bmp, Format::Png]);
    }

    #[test]
    fn formats_are_known_by_their_first_bytes_only() {
        let cases: [(&[u8], Option<Format>); 14] = [
            (b"BM\x36\0", Some(Format::Bmp)),
            (b"II*\0\x08\0", Some(Format::Tiff)),
            (b"MM\0*\0\0", Some(Format::Tiff)),
            (b"II+\0\x08\0", Some(Format::Tiff)),
            (b"\x89PNG\r\n\x1a\n", Some(Format::Png)),
            (b"GIF89a", Some(Format::Gif)),
            (b"GIF87a", Some(Format::Gif)),
            (&[0xff, 0xd8, 0xff, 0xe0], Some(Format::Jpeg)),
            (b"P4\n8 1\n", Some(Format::Pnm)),
            (b"P1#c\n", Some(Format::Pnm)),
            (b"P5\x0b1 1 255\n", Some(Format::Pnm)),
            // PAM: the PNM decoder says why it is refused.
            (b"P7\nWIDTH", Some(Format::Pnm)),
            (b"PX ", None),
            (b"", None),
        ];
        for (head, want) in cases {
            assert_eq!(Format::sniff(head), want, "{head:?}");
        }
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
    }
}
