//! GIF (design §2.1): the first frame, as Pillow 13.0.0 reads it.
//!
//! - Mode `P` with the frame's palette (local, else global), or `L` — the
//!   indices as grey levels, and so dithered — when there is no palette
//!   or the palette is exactly the ramp (i, i, i) over all its entries
//!   (Pillow's `_is_palette_needed`, which looks at the whole table of
//!   2^n entries as stored). A local ramp with a global table that is no
//!   ramp converts as `P` with the global table (Pillow's `load` puts it
//!   on the `L` image, which turns the image into `P`).
//! - The canvas is the logical screen, grown to hold the frame if it
//!   sticks out (as Pillow grows it); pixels outside the frame take the
//!   transparency index if the frame has one, else index 0 (not the
//!   background colour).
//! - Interlaced frames are gathered in a [`Frame`]; others stream.
//!
//! Written by hand rather than with the `gif` crate: its decoder refuses
//! a frame without any colour table (Pillow opens it as `L`), and the
//! archive must reproduce Pillow's own block walk and LZW decoder
//! (`GifImagePlugin._seek` and `GifDecode.c`, ported below) where files
//! are odd: an extension without sub-blocks swallows the next block,
//! bytes that start no block are skipped, the frame ends at its last
//! pixel whether or not an end code or block terminator follows, an
//! end code before the last pixel is a truncated image, a minimum code
//! size of 0 or 1 is read, the table stops growing at 4096 codes.

use std::io;

use super::pnm::Cursor;
use super::{DecodeError, Decoder, Format, Frame, Header, Layout, Whole, check_size};
use crate::bmp::Source;

const F: Format = Format::Gif;

/// Pillow's GIF decoder limits (Gif.h): 12-bit codes, 4096 entries.
const GIFBITS: u32 = 12;
const GIFTABLE: usize = 1 << GIFBITS;

fn truncated(what: &str) -> DecodeError {
    DecodeError::truncated(F, what.to_string())
}

/// Python's `fp.read(n)`.
fn read_n(cur: &mut Cursor<'_>, n: usize) -> io::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(n);
    cur.read_up_to(&mut v, n)?;
    Ok(v)
}

/// Pillow's `data()`: a sub-block's bytes, or `None` at a zero length
/// byte or the end of the file.
fn data(cur: &mut Cursor<'_>) -> io::Result<Option<Vec<u8>>> {
    match cur.byte()? {
        Some(n) if n > 0 => Ok(Some(read_n(cur, usize::from(n))?)),
        _ => Ok(None),
    }
}

/// Pillow's `_is_palette_needed`: false for the ramp (i, i, i).
fn palette_needed(p: &[u8]) -> bool {
    p.chunks(3)
        .enumerate()
        .any(|(i, c)| c.len() < 3 || !(i == usize::from(c[0]) && c[0] == c[1] && c[1] == c[2]))
}

/// What the header and the blocks before the first image say.
struct Gif {
    width: u32,
    height: u32,
    x0: u32,
    y0: u32,
    fw: u32,
    fh: u32,
    interlaced: bool,
    /// `None`: mode `L`.
    palette: Option<Vec<[u8; 3]>>,
    transparency: Option<u8>,
    min_code_size: u8,
    /// Where the image's sub-blocks start.
    data_offset: u64,
}

fn parse(src: &dyn Source) -> Result<Gif, DecodeError> {
    let mut cur = Cursor::new(src, 0);
    let s = read_n(&mut cur, 13)?;
    if !(s.starts_with(b"GIF87a") || s.starts_with(b"GIF89a")) {
        return Err(DecodeError::invalid(
            F,
            "not a GIF file (no GIF87a or GIF89a signature)",
        ));
    }
    if s.len() < 13 {
        return Err(truncated("the file ends inside the screen descriptor"));
    }
    let le16 = |b: &[u8], i: usize| u32::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let (mut width, mut height) = (le16(&s, 6), le16(&s, 8));
    let flags = s[10];
    let mut global = None;
    if flags & 0x80 != 0 {
        let p = read_n(&mut cur, 3 << ((flags & 7) + 1))?;
        if p.len() < 3 << ((flags & 7) + 1) {
            return Err(truncated("the file ends inside the global colour table"));
        }
        if palette_needed(&p) {
            global = Some(p);
        }
    }
    let mut transparency = None;
    let mut s = cur.byte()?;
    if s.is_none() || s == Some(b';') {
        return Err(DecodeError::invalid(F, "no image in the file"));
    }
    loop {
        if s.is_none() {
            s = cur.byte()?;
        }
        match s {
            None | Some(b';') => {
                return Err(DecodeError::invalid(F, "no image in the file"));
            }
            Some(b'!') => {
                let Some(label) = cur.byte()? else {
                    return Err(truncated("the file ends inside an extension"));
                };
                let block = data(&mut cur)?;
                match (label, block) {
                    (249, Some(b)) => {
                        if b.len() < 3 || (b[0] & 1 != 0 && b.len() < 4) {
                            return Err(DecodeError::invalid(
                                F,
                                "graphic control extension too short",
                            ));
                        }
                        if b[0] & 1 != 0 {
                            transparency = Some(b[3]);
                        }
                    }
                    (254, mut block) => {
                        while block.is_some() {
                            block = data(&mut cur)?;
                        }
                        s = None;
                        continue;
                    }
                    (255, Some(b)) if b.starts_with(b"NETSCAPE2.0") => {
                        data(&mut cur)?;
                    }
                    _ => {}
                }
                while data(&mut cur)?.is_some() {}
            }
            Some(b',') => {
                let d = read_n(&mut cur, 9)?;
                if d.len() < 9 {
                    return Err(truncated("the file ends inside the image descriptor"));
                }
                let (x0, y0, fw, fh) = (le16(&d, 0), le16(&d, 2), le16(&d, 4), le16(&d, 6));
                if fw == 0 || fh == 0 {
                    return Err(DecodeError::invalid(
                        F,
                        format!("the first frame is empty ({fw}x{fh})"),
                    ));
                }
                width = width.max(x0 + fw);
                height = height.max(y0 + fh);
                let lflags = d[8];
                let mut local = None;
                if lflags & 0x80 != 0 {
                    let n = 3 << ((lflags & 7) + 1);
                    let p = read_n(&mut cur, n)?;
                    if p.len() < n {
                        return Err(truncated("the file ends inside the local colour table"));
                    }
                    local = Some(palette_needed(&p).then_some(p));
                }
                let Some(min_code_size) = cur.byte()? else {
                    return Err(truncated("the file ends before the image data"));
                };
                // A local table that is the ramp leaves Pillow's mode `L`,
                // but its `load` then puts the global palette (if any) on
                // the image, which so converts as `P` with that palette.
                let palette = local.flatten().or(global);
                return Ok(Gif {
                    width,
                    height,
                    x0,
                    y0,
                    fw,
                    fh,
                    interlaced: lflags & 0x40 != 0,
                    palette: palette.map(|p| {
                        p.chunks_exact(3)
                            .take(256)
                            .map(|c| [c[0], c[1], c[2]])
                            .collect()
                    }),
                    transparency,
                    min_code_size,
                    data_offset: cur.offset(),
                });
            }
            // Any other byte starts no block: Pillow skips it.
            Some(_) => {}
        }
        s = None;
    }
}

/// Pillow's LZW decoder (GifDecode.c), pulling sub-blocks from the file.
struct Lzw<'a> {
    cur: Cursor<'a>,
    /// The file's length: Pillow starts no sub-block that is not all
    /// there.
    len: u64,
    bits: u32,
    clear: usize,
    end: usize,
    next: usize,
    codesize: u32,
    codemask: usize,
    bitbuffer: u32,
    bitcount: u32,
    blocksize: u32,
    /// 1: reset the table; 2: first code after a clear; 3: decoding.
    state: u8,
    lastcode: usize,
    lastdata: u8,
    link: Vec<u16>,
    data: Vec<u8>,
    /// The current string, last pixel first, and how much of it is out.
    stack: Vec<u8>,
}

impl<'a> Lzw<'a> {
    fn new(cur: Cursor<'a>, len: u64, bits: u8) -> Result<Lzw<'a>, DecodeError> {
        if bits > 12 {
            return Err(DecodeError::invalid(
                F,
                format!("LZW minimum code size {bits} is above 12"),
            ));
        }
        let bits = u32::from(bits);
        let clear = 1usize << bits;
        Ok(Lzw {
            cur,
            len,
            bits,
            clear,
            end: clear + 1,
            next: 0,
            codesize: 0,
            codemask: 0,
            bitbuffer: 0,
            bitcount: 0,
            blocksize: 0,
            state: 1,
            lastcode: 0,
            lastdata: 0,
            link: vec![0; GIFTABLE],
            data: vec![0; GIFTABLE],
            stack: Vec::with_capacity(GIFTABLE),
        })
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        self.cur
            .byte()?
            .ok_or_else(|| truncated("the image data ends before the last pixel"))
    }

    fn broken() -> DecodeError {
        DecodeError::invalid(F, "broken LZW data (a code out of sequence)")
    }

    /// The next string of pixels, pushed onto `self.stack` last pixel
    /// first.
    fn next_string(&mut self) -> Result<(), DecodeError> {
        self.stack.clear();
        loop {
            if self.state == 1 {
                self.next = self.clear + 2;
                self.codesize = self.bits + 1;
                self.codemask = (1 << self.codesize) - 1;
                self.state = 2;
            }
            while self.bitcount < self.codesize {
                if self.blocksize > 0 {
                    let c = self.byte()?;
                    self.blocksize -= 1;
                    self.bitbuffer |= u32::from(c) << self.bitcount;
                    self.bitcount += 8;
                } else {
                    // A new sub-block (a zero length is read past, as
                    // Pillow does), decoded only once all of it is there.
                    self.blocksize = u32::from(self.byte()?);
                    if self.cur.offset() + u64::from(self.blocksize) > self.len {
                        return Err(truncated("the file ends inside the image data"));
                    }
                }
            }
            let c = self.bitbuffer as usize & self.codemask;
            self.bitbuffer >>= self.codesize;
            self.bitcount -= self.codesize;
            if c == self.clear {
                if self.state != 2 {
                    self.state = 1;
                }
                continue;
            }
            if c == self.end {
                // Pillow stops here and asks for more of the file, which
                // it then has not: "image file is truncated".
                return Err(truncated(
                    "the image data ends (end code) before the last pixel",
                ));
            }
            if self.state == 2 {
                if c > self.clear {
                    return Err(Self::broken());
                }
                self.lastdata = c as u8;
                self.lastcode = c;
                self.state = 3;
                self.stack.push(c as u8);
                return Ok(());
            }
            let thiscode = c;
            if c > self.next {
                return Err(Self::broken());
            }
            let mut c = c;
            if c == self.next {
                self.stack.push(self.lastdata);
                c = self.lastcode;
            }
            while c >= self.clear {
                if self.stack.len() >= GIFTABLE || c >= GIFTABLE {
                    return Err(Self::broken());
                }
                self.stack.push(self.data[c]);
                c = usize::from(self.link[c]);
            }
            self.lastdata = c as u8;
            if self.next < GIFTABLE {
                self.data[self.next] = c as u8;
                self.link[self.next] = self.lastcode as u16;
                if self.next == self.codemask && self.codesize < GIFBITS {
                    self.codesize += 1;
                    self.codemask = (1 << self.codesize) - 1;
                }
                self.next += 1;
            }
            self.lastcode = thiscode;
            self.stack.push(c as u8);
            return Ok(());
        }
    }

    /// Fills `out` with the next pixels.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), DecodeError> {
        let mut at = 0;
        while at < out.len() {
            if self.stack.is_empty() {
                self.next_string()?;
            }
            while at < out.len() {
                let Some(p) = self.stack.pop() else { break };
                out[at] = p;
                at += 1;
            }
        }
        Ok(())
    }
}

/// Rows of a GIF file's first frame (see the module's documentation).
pub struct GifDecoder<'a> {
    header: Header,
    gif: Gif,
    lzw: Lzw<'a>,
    fill: u8,
    frame: Option<Frame>,
    row: Vec<u8>,
    y: u32,
    pure: bool,
}

/// A decoder for the GIF file `src`.
pub fn open<'a>(
    src: &'a (dyn Source + 'a),
    max_pixels: u64,
) -> Result<Box<dyn Decoder + 'a>, DecodeError> {
    let gif = parse(src)?;
    check_size(u64::from(gif.width), u64::from(gif.height), max_pixels)?;
    let layout = match &gif.palette {
        Some(p) => Layout::Palette(p.clone()),
        None => Layout::Grey,
    };
    let header = Header {
        format: F,
        width: gif.width,
        height: gif.height,
        layout,
    };
    let fill = gif.transparency.unwrap_or(0);
    let lzw = Lzw::new(
        Cursor::new(src, gif.data_offset),
        src.byte_len()?,
        gif.min_code_size,
    )?;
    let frame = if gif.interlaced {
        Some(Frame::new(
            gif.width,
            gif.height,
            max_pixels,
            "GIF interlacing",
        )?)
    } else {
        None
    };
    let mut dec = GifDecoder {
        row: vec![fill; gif.width as usize],
        header,
        gif,
        lzw,
        fill,
        frame,
        y: 0,
        pure: true,
    };
    if dec.frame.is_some() {
        dec.fill_frame()?;
    }
    Ok(Box::new(dec))
}

impl GifDecoder<'_> {
    /// Decodes an interlaced frame: rows 0, 8, 16, …, then 4, 12, …, then
    /// 2, 6, …, then 1, 3, … of the frame's rectangle.
    fn fill_frame(&mut self) -> Result<(), DecodeError> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok(());
        };
        for y in 0..self.gif.height as usize {
            frame.row_mut(y).fill(self.fill);
        }
        let (x0, x1) = (self.gif.x0 as usize, (self.gif.x0 + self.gif.fw) as usize);
        for (start, step) in [(0, 8), (4, 8), (2, 4), (1, 2)] {
            for y in (start..self.gif.fh).step_by(step) {
                let row = frame.row_mut((self.gif.y0 + y) as usize);
                self.lzw.fill(&mut row[x0..x1])?;
            }
        }
        Ok(())
    }
}

impl Decoder for GifDecoder<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.y == self.header.height {
            return Ok(None);
        }
        let y = self.y;
        if let Some(frame) = &self.frame {
            self.row.copy_from_slice(frame.row(y as usize));
        } else {
            self.row.fill(self.fill);
            if (self.gif.y0..self.gif.y0 + self.gif.fh).contains(&y) {
                let (x0, x1) = (self.gif.x0 as usize, (self.gif.x0 + self.gif.fw) as usize);
                self.lzw.fill(&mut self.row[x0..x1])?;
            }
        }
        if let Some(t) = self.gif.transparency
            && self.row.contains(&t)
        {
            // A transparent pixel is not an opaque black or white one.
            self.pure = false;
        }
        self.y += 1;
        Ok(Some(&self.row))
    }

    fn source_pure(&self) -> bool {
        self.pure
    }
}

/// Whether the GIF file `src` is complete: its blocks walked (sub-block
/// lengths only) up to the trailer `;` that every writer ends with —
/// frames after the first may still be being written before it. A file
/// whose blocks make no sense is complete (decoding will say why).
pub fn whole(src: &dyn Source) -> Whole {
    match walk(src) {
        Ok(w) => w,
        Err(_) => Whole::NotYet("the GIF file could not be read"),
    }
}

fn walk(src: &dyn Source) -> io::Result<Whole> {
    const NOT_YET: Whole = Whole::NotYet("no GIF trailer yet");
    let mut cur = Cursor::new(src, 0);
    let s = read_n(&mut cur, 13)?;
    if s.len() < 13 {
        return Ok(Whole::NotYet("the GIF header is not all there yet"));
    }
    // A screen of zero width or height is a descriptor not written yet (a
    // writer that fills its header in last), not a GIF to take now: the
    // grace bounds the wait.
    if s[6..10].chunks(2).any(|d| d == [0, 0]) {
        return Ok(Whole::NotYet("the GIF's screen size is not written yet"));
    }
    let skip =
        |cur: &mut Cursor<'_>, n: usize| -> io::Result<bool> { Ok(read_n(cur, n)?.len() == n) };
    // Sub-blocks up to their terminator; false at the end of the file.
    let sub_blocks = |cur: &mut Cursor<'_>| -> io::Result<bool> {
        loop {
            match cur.byte()? {
                None => return Ok(false),
                Some(0) => return Ok(true),
                Some(n) => {
                    if read_n(cur, usize::from(n))?.len() < usize::from(n) {
                        return Ok(false);
                    }
                }
            }
        }
    };
    if s[10] & 0x80 != 0 && !skip(&mut cur, 3 << ((s[10] & 7) + 1))? {
        return Ok(NOT_YET);
    }
    loop {
        match cur.byte()? {
            None => return Ok(NOT_YET),
            Some(b';') => return Ok(Whole::Complete),
            Some(b'!') => {
                if cur.byte()?.is_none() || !sub_blocks(&mut cur)? {
                    return Ok(NOT_YET);
                }
            }
            Some(b',') => {
                let d = read_n(&mut cur, 9)?;
                if d.len() < 9 {
                    return Ok(NOT_YET);
                }
                if d[8] & 0x80 != 0 && !skip(&mut cur, 3 << ((d[8] & 7) + 1))? {
                    return Ok(NOT_YET);
                }
                if cur.byte()?.is_none() || !sub_blocks(&mut cur)? {
                    return Ok(NOT_YET);
                }
            }
            Some(_) => return Ok(Whole::Complete),
        }
    }
}

#[cfg(test)]
mod tests;
