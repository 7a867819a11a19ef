//! TIFF (design §2.1): the first directory (page) of a classic or BigTIFF
//! file, decoded to the pixels Pillow 13.0.0 opens it as and handed over
//! row by row in a [`Layout`].
//!
//! - [`plan`]: the directory read into a [`Plan`] (geometry, compression,
//!   the Pillow mode of [`pixel::Kind`]).
//! - [`raster`]: the rows of one band (a strip, or a row of tiles) at a
//!   time, streamed for strips (O(row) memory), a row of tiles held for
//!   tiles and CCITT strips (O(width × band height)).
//! - this module: the Orientation tag, as Pillow applies it (1–2 streamed,
//!   3–4 read band by band from the bottom, 5–8 through a whole
//!   [`Frame`]), and [`whole`], the completion rule.
//!
//! Never trusts a size from the file: the image is checked against the
//! pixel limit before anything is allocated, tag tables stay in the file.

mod codec;
mod ifd;
mod pixel;
mod plan;
mod raster;

use super::{DecodeError, Decoder, Format, Frame, Header, Layout, Whole, check_size};
use crate::bmp::Source;
use plan::Plan;
use raster::Raster;

/// Bytes of rows held at once when a band must be read bottom-up
/// (Orientation 3/4); a taller band is decoded again for each window.
const REVERSE_WINDOW_BYTES: usize = 4 << 20;

/// A decoder for the TIFF file `src`.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    let plan = Plan::read(src)?.into_pillow_mapped();
    check_size(u64::from(plan.width), u64::from(plan.height), max_pixels)?;
    let layout = plan.layout.clone();
    let (width, height) = if plan.orientation >= 5 {
        (plan.height, plan.width)
    } else {
        (plan.width, plan.height)
    };
    let orientation = plan.orientation;
    let raster = Raster::new(src, plan)?;
    let order = match orientation {
        3 | 4 => {
            let row = layout.row_bytes(raster.width());
            let rows = (REVERSE_WINDOW_BYTES / row.max(1)).max(1);
            Order::Reverse(Reverse {
                band: raster.bands(),
                rows: Vec::new(),
                next: 0,
                window_rows: rows,
                window_end: 0,
            })
        }
        5..=8 => {
            // Made now, so that a page too large is refused before any
            // decoding; filled at the first row.
            let frame = Frame::new(
                raster.width(),
                raster.height(),
                max_pixels,
                "Orientation tag (rotated or transposed page)",
            )?;
            Order::Turned(Turned {
                frame,
                y: 0,
                filled: false,
            })
        }
        _ => Order::Forward,
    };
    let out_layout = match (&order, &layout) {
        // A turned frame of RGB pixels holds their grey levels.
        (Order::Turned(_), Layout::Bgr) => Layout::Grey,
        _ => layout,
    };
    let row = vec![0; out_layout.row_bytes(width)];
    Ok(Box::new(TiffDecoder {
        header: Header {
            format: Format::Tiff,
            width,
            height,
            layout: out_layout,
        },
        raster,
        order,
        orientation,
        y: 0,
        row,
    }))
}

/// The order rows are handed over in.
enum Order {
    /// Top to bottom as stored (Orientation 1 and 2).
    Forward,
    /// Bottom to top (3 and 4).
    Reverse(Reverse),
    /// Through a whole frame (5–8).
    Turned(Turned),
}

/// Rows of the band being read bottom-up: a window of them, the last
/// `window_rows` at most not yet handed over.
struct Reverse {
    /// The band being read (counting down; `bands()` before the first).
    band: u32,
    /// The window's rows, in layout bytes, top to bottom.
    rows: Vec<u8>,
    /// Rows of the window not yet handed over.
    next: usize,
    window_rows: usize,
    /// The end (exclusive, in rows from the band's top) of the window
    /// just read; 0 when the band is done.
    window_end: u32,
}

struct Turned {
    frame: Frame,
    y: u32,
    filled: bool,
}

struct TiffDecoder<'a> {
    header: Header,
    raster: Raster<'a>,
    order: Order,
    orientation: u16,
    /// Rows handed over.
    y: u32,
    row: Vec<u8>,
}

impl Decoder for TiffDecoder<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.y >= self.header.height {
            return Ok(None);
        }
        let width = self.header.width;
        let mirror = matches!(self.orientation, 2 | 3);
        match &mut self.order {
            Order::Forward => {
                let row = self.raster.next_row()?;
                self.row.copy_from_slice(row);
            }
            Order::Reverse(r) => {
                let len = self.row.len();
                if r.next == 0 {
                    if r.window_end == 0 {
                        // The next band up, its last window first.
                        r.band -= 1;
                        r.window_end = self.raster.band_rows(r.band);
                    }
                    let start = r.window_end.saturating_sub(r.window_rows as u32);
                    self.raster.start_band(r.band)?;
                    for _ in 0..start {
                        self.raster.next_row()?;
                    }
                    r.rows.clear();
                    for _ in start..r.window_end {
                        r.rows.extend_from_slice(self.raster.next_row()?);
                    }
                    r.next = (r.window_end - start) as usize;
                    r.window_end = start;
                }
                r.next -= 1;
                self.row
                    .copy_from_slice(&r.rows[r.next * len..(r.next + 1) * len]);
            }
            Order::Turned(t) => {
                if !t.filled {
                    self.raster.read_frame(&mut t.frame)?;
                    t.filled = true;
                }
                turned_row(
                    &t.frame,
                    self.orientation,
                    t.y,
                    self.raster.width(),
                    self.raster.height(),
                    &self.header.layout,
                    &mut self.row,
                );
                t.y += 1;
            }
        }
        if mirror {
            mirror_row(&mut self.row, &self.header.layout, width);
        }
        self.y += 1;
        Ok(Some(&self.row))
    }

    fn source_pure(&self) -> bool {
        self.raster.pure()
    }
}

/// Reverses a row left to right.
fn mirror_row(row: &mut [u8], layout: &Layout, width: u32) {
    let w = width as usize;
    match layout {
        Layout::One => {
            // Reverse the bytes and the bits in each, then shift the
            // padding (8·len − w bits, now in front) out to the right.
            let len = w.div_ceil(8);
            let row = &mut row[..len];
            row.reverse();
            for b in row.iter_mut() {
                *b = b.reverse_bits();
            }
            let shift = (8 * len - w) as u32;
            if shift > 0 {
                for i in 0..len {
                    let next = row.get(i + 1).copied().unwrap_or(0);
                    row[i] = (row[i] << shift) | (next >> (8 - shift));
                }
            }
        }
        Layout::Grey | Layout::Palette(_) => row[..w].reverse(),
        Layout::Bgr => {
            row[..3 * w].reverse();
            for p in row[..3 * w].chunks_exact_mut(3) {
                p.reverse();
            }
        }
    }
}

/// Row `y` of the turned image (Orientation 5–8, as Pillow's
/// `exif_transpose`) from `frame`, the stored `width` × `height` image.
fn turned_row(
    frame: &Frame,
    orientation: u16,
    y: u32,
    width: u32,
    height: u32,
    layout: &Layout,
    out: &mut [u8],
) {
    let (w, h, y) = (width as usize, height as usize, y as usize);
    // Output row y is stored column x = y (5, 6) or w-1-y (7, 8), read
    // down (5, 8) or up (6, 7).
    let col = if matches!(orientation, 5 | 6) {
        y
    } else {
        w - 1 - y
    };
    let up = matches!(orientation, 6 | 7);
    if matches!(layout, Layout::One) {
        out.fill(0);
    }
    for x in 0..h {
        let sy = if up { h - 1 - x } else { x };
        let v = frame.row(sy)[col];
        match layout {
            Layout::One => {
                if v != 0 {
                    out[x / 8] |= 0x80 >> (x % 8);
                }
            }
            _ => out[x] = v,
        }
    }
}

/// Whether the TIFF file `src` is complete (design §4.2): its header and
/// first directory readable, and every strip or tile the directory names
/// within the file.
pub fn whole(src: &dyn Source) -> Whole {
    plan::whole(src)
}

#[cfg(test)]
mod tests;
