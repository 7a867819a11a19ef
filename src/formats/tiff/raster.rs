//! The stored rows of a TIFF, top to bottom within one band at a time (a
//! strip, or a row of tiles), converted to the plan's [`Layout`]. Strips
//! are streamed: one decompressor per plane, one row of each held. A row
//! of tiles, or a CCITT strip (its codec delivers rows by callback), is
//! decoded whole into a buffer of O(width × band height); so is nothing
//! else.

use std::io::{self, Read};

use super::super::{DecodeError, Format, Frame, Layout};
use super::codec::{self, Compression, Span};
use super::plan::{Chunks, Plan, Predictor};
use crate::bmp::Source;

/// What one tile decompressor costs, about (its input buffer, a Deflate
/// window): a row of tiles is streamed tile by tile when holding it
/// decoded would cost more than its decoders.
const TILE_STREAM_BYTES: usize = 64 * 1024;

/// The most memory one band may take (a hostile file's tiles or fax
/// strips are refused above it; a 7200-wide page needs a few MB).
const MAX_BAND_BYTES: u64 = 64 << 20;

/// Bytes held for one band, the way [`Raster::start_band`] will read it.
fn band_memory(plan: &Plan) -> u64 {
    let planes = plan.planes() as u64;
    let rows = u64::from(plan.band_height());
    let row = plan.plane_row_bytes(plan.width) as u64;
    let fax = matches!(plan.compression, Compression::Ccitt(_));
    match plan.chunks {
        Chunks::Strips { .. } if fax => row * rows,
        Chunks::Strips { .. } => 0,
        Chunks::Tiles { width, .. } => {
            let held = row * planes * rows;
            if fax {
                held + plan.plane_row_bytes(width) as u64 * rows
            } else {
                held.min(TILE_STREAM_BYTES as u64 * planes * u64::from(plan.across()))
            }
        }
    }
}

fn invalid(why: impl Into<String>) -> DecodeError {
    DecodeError::invalid(Format::Tiff, why)
}

/// How the current band's rows come.
enum Band<'a> {
    /// Not started.
    None,
    /// One decompressor per plane.
    Streams(Vec<Box<dyn Read + 'a>>),
    /// Decoded rows: for each row, each plane's row of the image width.
    Held(Vec<u8>),
    /// One decompressor per tile across (plane-major), for tiles so tall
    /// that a row of them decoded would hold more than their decoders.
    Tiles(Vec<Box<dyn Read + 'a>>),
}

pub struct Raster<'a> {
    src: &'a (dyn Source + 'a),
    plan: Plan,
    file_len: u64,
    band: Band<'a>,
    /// Index of the current band and rows of it handed over.
    band_index: u32,
    row_in_band: u32,
    /// One plane row of the chunk width, per plane.
    plane_rows: Vec<Vec<u8>>,
    /// One chunky row of samples of the image width.
    raw: Vec<u8>,
    /// One row in the layout.
    out: Vec<u8>,
    scratch: Vec<u8>,
    /// One plane row of the image width, per plane (tile streams).
    wide_rows: Vec<Vec<u8>>,
    /// The CCITT strip or tile buffer, kept from one strip to the next.
    fax_rows: Vec<u8>,
    pure: bool,
    /// Samples reach Pillow's unpacker byte-swapped (see `Kind::convert`).
    swap: bool,
}

impl<'a> Raster<'a> {
    pub fn new(src: &'a (dyn Source + 'a), plan: Plan) -> Result<Raster<'a>, DecodeError> {
        let need = band_memory(&plan);
        if need > MAX_BAND_BYTES {
            return Err(DecodeError::unsupported(
                Format::Tiff,
                format!(
                    "its strips or tiles are too large to decode in bounded memory \
                     ({} MB for one band; at most {} MB)",
                    need >> 20,
                    MAX_BAND_BYTES >> 20
                ),
            ));
        }
        let file_len = src.byte_len()?;
        let planes = plan.planes();
        let chunk_row = plan.plane_row_bytes(plan.chunk_width());
        let row = plan.plane_row_bytes(plan.width);
        // libtiff hands samples over in native (little-endian) order; the
        // few raw modes that still read big-endian then see them swapped.
        let swap = plan.big_endian && plan.compression != Compression::None;
        let raw_len = if plan.planar { row * planes } else { row };
        Ok(Raster {
            src,
            file_len,
            band: Band::None,
            band_index: 0,
            row_in_band: 0,
            plane_rows: vec![vec![0; chunk_row]; planes],
            raw: vec![0; raw_len],
            out: vec![0; plan.layout.row_bytes(plan.width)],
            scratch: Vec::new(),
            fax_rows: Vec::new(),
            wide_rows: Vec::new(),
            pure: true,
            swap,
            plan,
        })
    }

    pub fn width(&self) -> u32 {
        self.plan.width
    }

    pub fn height(&self) -> u32 {
        self.plan.height
    }

    pub fn bands(&self) -> u32 {
        self.plan.bands()
    }

    /// Rows in band `b`.
    pub fn band_rows(&self, b: u32) -> u32 {
        let bh = self.plan.band_height();
        (self.plan.height - b * bh).min(bh)
    }

    pub fn pure(&self) -> bool {
        self.pure
    }

    /// The span of chunk `i` for `rows` rows, checked against the file.
    fn span(&self, i: u64, rows: u32) -> Result<Span<'a>, DecodeError> {
        let (at, len) = self.plan.chunk_span(self.src, i, rows)?;
        if at.saturating_add(len) > self.file_len {
            return Err(DecodeError::truncated(
                Format::Tiff,
                format!("strip/tile {i} lies past the end of the file"),
            ));
        }
        if len == 0 && rows > 0 {
            return Err(invalid(format!("strip/tile {i} has no bytes")));
        }
        let reverse =
            self.plan.lsb_first && !matches!(self.plan.compression, Compression::Ccitt(_));
        Ok(Span::new(self.src, at, len, reverse))
    }

    /// Starts band `b` (bands may be started in any order, again and
    /// again).
    pub fn start_band(&mut self, b: u32) -> Result<(), DecodeError> {
        let rows = self.band_rows(b);
        let plan = &self.plan;
        let bands = u64::from(plan.bands());
        let across = u64::from(plan.across());
        let planes = plan.planes();
        if let (Band::Held(v), Compression::Ccitt(_), Chunks::Strips { .. }) = (
            std::mem::replace(&mut self.band, Band::None),
            plan.compression,
            plan.chunks,
        ) {
            self.fax_rows = v;
        }
        match (plan.chunks, plan.compression) {
            (Chunks::Strips { rows: full }, Compression::Ccitt(_)) => {
                // Rows a strip does not reach keep what the previous strip
                // left there (Pillow reuses one strip buffer).
                let row = plan.plane_row_bytes(plan.width);
                let mut held = std::mem::take(&mut self.fax_rows);
                held.resize(row * full as usize, 0);
                let span = self.span(u64::from(b), rows)?;
                fax_strip(span, &self.plan, self.plan.width, rows, &mut held)?;
                self.band = Band::Held(held);
            }
            (Chunks::Strips { .. }, Compression::None) if plan.row_stride.is_some() => {
                let (at, _) = plan.chunk_span(self.src, u64::from(b), rows)?;
                // Checked against the file when the plan was made.
                let stride = plan.row_stride.unwrap_or(0);
                let row = plan.plane_row_bytes(plan.width);
                self.band = Band::Streams(vec![Box::new(Strided {
                    src: self.src,
                    at,
                    stride,
                    row,
                    done: 0,
                })]);
            }
            (Chunks::Strips { .. }, c) => {
                let mut streams = Vec::with_capacity(planes);
                for p in 0..planes as u64 {
                    let span = self.span(p * bands + u64::from(b), rows)?;
                    streams.push(codec::reader(span, c));
                }
                self.band = Band::Streams(streams);
            }
            (Chunks::Tiles { .. }, c)
                if !matches!(c, Compression::Ccitt(_))
                    && plan.plane_row_bytes(plan.width) * planes * rows as usize
                        > TILE_STREAM_BYTES * planes * across as usize =>
            {
                let mut streams = Vec::with_capacity(planes * across as usize);
                for p in 0..planes as u64 {
                    for tx in 0..across {
                        let i = (p * bands + u64::from(b)) * across + tx;
                        streams.push(codec::reader(self.span(i, rows)?, c));
                    }
                }
                self.wide_rows
                    .resize(planes, vec![0; plan.plane_row_bytes(plan.width)]);
                self.band = Band::Tiles(streams);
            }
            (Chunks::Tiles { width: tw, .. }, c) => {
                let row = plan.plane_row_bytes(plan.width);
                let stride = row * planes;
                let mut held = vec![0u8; stride * rows as usize];
                let bits_pp = u64::from(plan.bits) * (plan.spp / planes) as u64;
                for p in 0..planes {
                    for tx in 0..across {
                        let i = (p as u64 * bands + u64::from(b)) * across + tx;
                        let x0 = tx as u32 * tw;
                        let cw = (self.plan.width - x0).min(tw);
                        let span = self.span(i, rows)?;
                        if let Compression::Ccitt(_) = c {
                            // One tile buffer for all tiles, as in Pillow.
                            let trow = self.plan.plane_row_bytes(tw);
                            let mut tile = std::mem::take(&mut self.fax_rows);
                            tile.resize(trow * self.plan.band_height() as usize, 0);
                            fax_strip(span, &self.plan, tw, rows, &mut tile)?;
                            for r in 0..rows as usize {
                                let dst = &mut held[r * stride + p * row..][..row];
                                copy_bits(
                                    &tile[r * trow..][..trow],
                                    dst,
                                    x0 as u64 * bits_pp,
                                    u64::from(cw) * bits_pp,
                                );
                            }
                            self.fax_rows = tile;
                            continue;
                        }
                        let mut reader = codec::reader(span, c);
                        let skip = edge_skip(&self.plan, x0);
                        for r in 0..rows as usize {
                            let pr = &mut self.plane_rows[p];
                            read_tile_row(&mut reader, pr, skip, i)?;
                            undo_predictor(&self.plan, pr, &mut self.scratch);
                            let dst = &mut held[r * stride + p * row..][..row];
                            copy_bits(pr, dst, x0 as u64 * bits_pp, u64::from(cw) * bits_pp);
                        }
                    }
                }
                self.band = Band::Held(held);
            }
        }
        self.band_index = b;
        self.row_in_band = 0;
        Ok(())
    }

    /// The next row of the image, in the layout (starting the next band
    /// when one is done).
    pub fn next_row(&mut self) -> Result<&[u8], DecodeError> {
        if matches!(self.band, Band::None) {
            self.start_band(0)?;
        } else if self.row_in_band >= self.band_rows(self.band_index) {
            let next = self.band_index + 1;
            if next >= self.bands() {
                return Err(invalid("BUG: read past the last row"));
            }
            self.start_band(next)?;
        }
        let plan = &self.plan;
        let planes = plan.planes();
        let row = plan.plane_row_bytes(plan.width);
        let r = self.row_in_band as usize;
        match &mut self.band {
            Band::None => unreachable!("a band was started above"),
            Band::Streams(streams) => {
                let bands = u64::from(plan.bands());
                for (p, s) in streams.iter_mut().enumerate() {
                    let pr = &mut self.plane_rows[p];
                    let i = p as u64 * bands + u64::from(self.band_index);
                    read_row(s, pr, i)?;
                    undo_predictor(plan, pr, &mut self.scratch);
                }
                if planes == 1 {
                    self.raw.copy_from_slice(&self.plane_rows[0][..row]);
                } else {
                    let rows: Vec<&[u8]> = self.plane_rows.iter().map(|r| &r[..row]).collect();
                    interleave(
                        &rows,
                        &mut self.raw,
                        plan.bits as usize / 8,
                        plan.width as usize,
                    );
                }
            }
            Band::Tiles(streams) => {
                let across = plan.across() as usize;
                let Chunks::Tiles { width: tw, .. } = plan.chunks else {
                    unreachable!("tile streams are made for tiles")
                };
                let bits_pp = u64::from(plan.bits) * (plan.spp / planes) as u64;
                let bands = u64::from(plan.bands());
                for (k, s) in streams.iter_mut().enumerate() {
                    let (p, tx) = (k / across, k % across);
                    let i =
                        (p as u64 * bands + u64::from(self.band_index)) * across as u64 + tx as u64;
                    let pr = &mut self.plane_rows[p];
                    let x0 = tx as u32 * tw;
                    read_tile_row(s, pr, edge_skip(plan, x0), i)?;
                    undo_predictor(plan, pr, &mut self.scratch);
                    let cw = (plan.width - x0).min(tw);
                    copy_bits(
                        pr,
                        &mut self.wide_rows[p],
                        u64::from(x0) * bits_pp,
                        u64::from(cw) * bits_pp,
                    );
                }
                if planes == 1 {
                    self.raw.copy_from_slice(&self.wide_rows[0][..row]);
                } else {
                    let rows: Vec<&[u8]> = self.wide_rows.iter().map(|r| &r[..row]).collect();
                    interleave(
                        &rows,
                        &mut self.raw,
                        plan.bits as usize / 8,
                        plan.width as usize,
                    );
                }
            }
            Band::Held(held) => {
                let stride = row * planes;
                let src = &held[r * stride..(r + 1) * stride];
                if planes == 1 {
                    self.raw.copy_from_slice(src);
                } else {
                    let rows: Vec<&[u8]> = src.chunks_exact(row).collect();
                    interleave(
                        &rows,
                        &mut self.raw,
                        plan.bits as usize / 8,
                        plan.width as usize,
                    );
                }
            }
        }
        self.row_in_band += 1;
        plan.kind.convert(
            &self.raw,
            plan.width as usize,
            self.swap,
            &mut self.out,
            &mut self.pure,
        );
        Ok(&self.out)
    }

    /// Reads the whole image into `frame`, one byte a pixel: grey level,
    /// palette index, 0/255 for bits, and for RGB the grey level
    /// (299 R + 587 G + 114 B) / 1000 the converter would compute.
    pub fn read_frame(&mut self, frame: &mut Frame) -> Result<(), DecodeError> {
        let w = self.plan.width as usize;
        let (bits, rgb) = match self.plan.layout {
            Layout::One => (true, false),
            Layout::Grey | Layout::Palette(_) => (false, false),
            Layout::Bgr => (false, true),
        };
        for y in 0..self.plan.height as usize {
            let row = self.next_row()?;
            let mut impure = false;
            let dst = frame.row_mut(y);
            if bits {
                for (x, d) in dst.iter_mut().enumerate() {
                    *d = if row[x / 8] >> (7 - x % 8) & 1 == 1 {
                        255
                    } else {
                        0
                    };
                }
            } else if rgb {
                for (d, p) in dst.iter_mut().zip(row.chunks_exact(3)) {
                    let l = 299 * u32::from(p[2]) + 587 * u32::from(p[1]) + 114 * u32::from(p[0]);
                    *d = (l / 1000) as u8;
                    // A dark colour whose grey level is 0 is not black.
                    if *d == 0 && l != 0 {
                        impure = true;
                    }
                }
            } else {
                dst.copy_from_slice(&row[..w]);
            }
            if impure {
                self.pure = false;
            }
        }
        Ok(())
    }
}

/// Rows of `row` bytes, `stride` bytes apart, from `at` (Pillow's mapping
/// of a tile larger than the image at the turned size).
struct Strided<'a> {
    src: &'a (dyn Source + 'a),
    at: u64,
    stride: u64,
    row: usize,
    /// Bytes of the current row given.
    done: usize,
}

impl Read for Strided<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.row - self.done);
        self.src
            .read_exact_at(&mut buf[..n], self.at + self.done as u64)?;
        self.done += n;
        if self.done == self.row {
            self.at += self.stride;
            self.done = 0;
        }
        Ok(n)
    }
}

/// Bytes after each row of the tile at `x0` that Pillow's longer row
/// length for edge tiles passes over (see `Plan::edge_row_bytes`).
fn edge_skip(plan: &Plan, x0: u32) -> usize {
    match (plan.chunks, plan.edge_row_bytes) {
        (Chunks::Tiles { width, .. }, Some(edge))
            if u64::from(x0) + u64::from(width) > u64::from(plan.width) =>
        {
            edge.saturating_sub(plan.plane_row_bytes(width))
        }
        _ => 0,
    }
}

/// Fills `row` from `r`, the data of tile `i`, then passes over `skip`
/// bytes.
fn read_tile_row(r: &mut dyn Read, row: &mut [u8], skip: usize, i: u64) -> Result<(), DecodeError> {
    read_row(r, row, i)?;
    if skip > 0 {
        let n = io::copy(&mut r.take(skip as u64), &mut io::sink()).map_err(DecodeError::Io)?;
        if n < skip as u64 {
            return Err(invalid(format!(
                "strip/tile {i} decodes to fewer bytes than its rows need"
            )));
        }
    }
    Ok(())
}

/// Fills `row` from `r`, the data of chunk `i`.
fn read_row(r: &mut dyn Read, row: &mut [u8], i: u64) -> Result<(), DecodeError> {
    r.read_exact(row).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => invalid(format!(
            "strip/tile {i} decodes to fewer bytes than its rows need"
        )),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            invalid(format!("strip/tile {i}: {e}"))
        }
        _ => DecodeError::Io(e),
    })
}

fn undo_predictor(plan: &Plan, row: &mut [u8], scratch: &mut Vec<u8>) {
    let spp = plan.spp / plan.planes();
    match plan.predictor {
        Predictor::None => {}
        Predictor::Horizontal => {
            codec::undo_horizontal(row, spp, plan.bits as usize / 8, plan.big_endian)
        }
        Predictor::Float => codec::undo_float(row, scratch, spp, plan.big_endian),
    }
}

/// Chunky samples of `bytes` bytes each from one row per plane.
fn interleave(planes: &[&[u8]], out: &mut [u8], bytes: usize, width: usize) {
    let n = planes.len();
    for (p, plane) in planes.iter().enumerate() {
        for x in 0..width {
            let d = (x * n + p) * bytes;
            out[d..d + bytes].copy_from_slice(&plane[x * bytes..(x + 1) * bytes]);
        }
    }
}

/// Copies the first `len` bits of `src` to `dst` from bit `at` on (most
/// significant bit first).
fn copy_bits(src: &[u8], dst: &mut [u8], at: u64, len: u64) {
    if at.is_multiple_of(8) {
        let (a, n) = ((at / 8) as usize, len.div_ceil(8) as usize);
        let n = n.min(dst.len() - a).min(src.len());
        dst[a..a + n].copy_from_slice(&src[..n]);
        return;
    }
    for k in 0..len {
        let bit = src[(k / 8) as usize] >> (7 - k % 8) & 1;
        let d = at + k;
        let (i, s) = ((d / 8) as usize, 7 - d % 8);
        if i >= dst.len() {
            break;
        }
        dst[i] = (dst[i] & !(1 << s)) | (bit << s);
    }
}

use fax::fax_strip;

/// The CCITT codec (`src/formats/ccitt.rs`) on strips and tiles.
mod fax {
    use super::super::super::ccitt::{self, CcittError, Coding, Params};
    use super::*;

    /// Decodes a CCITT strip or tile of `rows` rows of `width` pixels into
    /// `out` (rows of packed sample bits); rows the data does not reach
    /// keep what `out` held, as in Pillow.
    pub fn fax_strip(
        span: Span<'_>,
        plan: &Plan,
        width: u32,
        rows: u32,
        out: &mut [u8],
    ) -> Result<(), DecodeError> {
        let Compression::Ccitt(c) = plan.compression else {
            return Err(invalid("BUG: not a CCITT image"));
        };
        let coding = match c {
            2 => Coding::ModifiedHuffman,
            3 => Coding::Group3 {
                two_d: plan.t4_options & 1 != 0,
                fill_bits: plan.t4_options & 4 != 0,
            },
            _ => Coding::Group4,
        };
        let params = Params {
            width,
            coding,
            lsb_first: plan.lsb_first,
        };
        let n = width.div_ceil(8) as usize;
        let mut y = 0;
        ccitt::decode(span, &params, rows, |row| {
            out[y * n..(y + 1) * n].copy_from_slice(&row[..n]);
            y += 1;
            Ok(())
        })
        .map_err(|e| match e {
            CcittError::Io(e) => DecodeError::Io(e),
            e => invalid(format!("fax data: {e}")),
        })?;
        Ok(())
    }
}
