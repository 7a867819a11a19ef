//! The TIFF header and first image file directory (classic and BigTIFF),
//! read with positioned reads. Small tags are read whole; the strip and
//! tile tables stay in the file ([`Array`]) and are read an entry at a
//! time, so that a directory naming a million strips costs no memory.
//! This module knows the container, never what the pixels mean.
//!
//! Written by hand rather than with the `tiff` crate: its directory reader
//! loads every tag's values (strip tables included) into memory, and only
//! the few tags below are needed.

use std::io;

use super::super::{DecodeError, Format};
use crate::bmp::Source;

fn invalid(why: impl Into<String>) -> DecodeError {
    DecodeError::invalid(Format::Tiff, why)
}

fn truncated(what: impl Into<String>) -> DecodeError {
    DecodeError::truncated(Format::Tiff, what)
}

/// Reads `buf.len()` bytes at `at`, a short read being the file's fault.
pub fn read_exact(
    src: &dyn Source,
    buf: &mut [u8],
    at: u64,
    what: &str,
) -> Result<(), DecodeError> {
    match src.read_exact_at(buf, at) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(truncated(format!("the file ends inside {what}")))
        }
        Err(e) => Err(DecodeError::Io(e)),
    }
}

/// Byte order and offset size of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub big_endian: bool,
    pub big_tiff: bool,
}

impl Order {
    pub fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    pub fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
    /// An offset or count field (4 bytes, or 8 in BigTIFF).
    fn word(self, b: &[u8]) -> u64 {
        if self.big_tiff {
            self.u64(b)
        } else {
            u64::from(self.u32(b))
        }
    }
    fn word_len(self) -> usize {
        if self.big_tiff { 8 } else { 4 }
    }
}

/// Reads the 8 (16 for BigTIFF) byte header: byte order and the offset of
/// the first directory.
pub fn header(src: &dyn Source) -> Result<(Order, u64), DecodeError> {
    let mut h = [0u8; 16];
    let n = src.read_at(&mut h, 0)?;
    if n < 8 {
        return Err(truncated("the file ends inside the header"));
    }
    let big_endian = match &h[..2] {
        b"II" => false,
        b"MM" => true,
        _ => return Err(invalid("not a TIFF file (no II/MM byte order mark)")),
    };
    let mut order = Order {
        big_endian,
        big_tiff: false,
    };
    match order.u16(&h[2..]) {
        42 => Ok((order, u64::from(order.u32(&h[4..])))),
        43 if big_endian => Err(DecodeError::unsupported(
            Format::Tiff,
            "big-endian BigTIFF, which Pillow cannot read (it takes it for a classic TIFF)",
        )),
        43 => {
            order.big_tiff = true;
            if n < 16 {
                return Err(truncated("the file ends inside the BigTIFF header"));
            }
            if order.u16(&h[4..]) != 8 || order.u16(&h[6..]) != 0 {
                return Err(invalid("BigTIFF header with an offset size other than 8"));
            }
            Ok((order, order.u64(&h[8..])))
        }
        v => Err(invalid(format!(
            "bad version number {v} (expected 42 or 43)"
        ))),
    }
}

/// Values of one tag, left in the file.
#[derive(Debug, Clone, Copy)]
pub struct Array {
    order: Order,
    kind: u16,
    pub count: u64,
    /// Where the values are; for values held in the entry itself, the
    /// entry's bytes are kept in `inline`.
    at: u64,
    inline: [u8; 8],
    is_inline: bool,
}

impl Array {
    fn elem_size(kind: u16) -> Option<u64> {
        Some(match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16 | 17 | 18 => 8,
            _ => return None,
        })
    }

    /// Entry `i` as an unsigned integer (signed types are taken as their
    /// bits; rationals and floats are not integers).
    pub fn get(&self, src: &dyn Source, i: u64) -> Result<u64, DecodeError> {
        if i >= self.count {
            return Err(invalid("a tag has fewer values than needed"));
        }
        let size = Array::elem_size(self.kind).unwrap_or(1);
        let mut b = [0u8; 8];
        let off = i * size;
        if self.is_inline {
            let s = off as usize;
            b[..size as usize].copy_from_slice(&self.inline[s..s + size as usize]);
        } else {
            read_exact(
                src,
                &mut b[..size as usize],
                self.at + off,
                "a tag's values",
            )?;
        }
        let o = self.order;
        Ok(match self.kind {
            1 | 6 | 7 => u64::from(b[0]),
            3 => u64::from(o.u16(&b)),
            8 => o.u16(&b) as i16 as i64 as u64,
            4 | 13 => u64::from(o.u32(&b)),
            9 => o.u32(&b) as i32 as i64 as u64,
            16..=18 => o.u64(&b),
            _ => return Err(invalid("a tag that must hold integers holds another type")),
        })
    }

    /// Entries `start..start + out.len()` (one read).
    pub fn get_range(
        &self,
        src: &dyn Source,
        start: u64,
        out: &mut [u64],
    ) -> Result<(), DecodeError> {
        let n = out.len() as u64;
        if start.saturating_add(n) > self.count {
            return Err(invalid("a tag has fewer values than needed"));
        }
        let size = Array::elem_size(self.kind).unwrap_or(1);
        if self.is_inline || !matches!(self.kind, 3 | 4 | 16) {
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.get(src, start + i as u64)?;
            }
            return Ok(());
        }
        let mut buf = vec![0u8; (n * size) as usize];
        read_exact(src, &mut buf, self.at + start * size, "a tag's values")?;
        let o = self.order;
        for (v, b) in out.iter_mut().zip(buf.chunks_exact(size as usize)) {
            *v = match size {
                2 => u64::from(o.u16(b)),
                4 => u64::from(o.u32(b)),
                _ => o.u64(b),
            };
        }
        Ok(())
    }

    /// Every entry, when there are at most `max` of them.
    pub fn all(&self, src: &dyn Source, max: u64, name: &str) -> Result<Vec<u64>, DecodeError> {
        if self.count > max {
            return Err(invalid(format!(
                "{name} has {} values (at most {max} expected)",
                self.count
            )));
        }
        (0..self.count).map(|i| self.get(src, i)).collect()
    }

    /// The first entry.
    pub fn first(&self, src: &dyn Source) -> Result<u64, DecodeError> {
        self.get(src, 0)
    }

    /// Byte range of the values in the file (None when held inline).
    pub fn span(&self) -> Option<(u64, u64)> {
        if self.is_inline {
            None
        } else {
            let size = Array::elem_size(self.kind).unwrap_or(1);
            Some((self.at, self.count.saturating_mul(size)))
        }
    }
}

/// The tags of the first directory that rlewatch reads.
#[derive(Debug, Default)]
pub struct Ifd {
    pub tags: Vec<(u16, Array)>,
}

impl Ifd {
    pub fn get(&self, tag: u16) -> Option<&Array> {
        // The first of duplicated tags wins, as in Pillow (a file with two
        // ImageWidth entries, 8 then 5, opens 8 wide).
        self.tags.iter().find(|(t, _)| *t == tag).map(|(_, a)| a)
    }
}

/// Tags kept from the directory (everything else is skipped).
const KEPT: [u16; 23] = [
    256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 284, 292, 293, 317, 320, 322, 323, 324,
    325, 338, 339, 0xBC01,
];

/// Reads the directory at `at`: its entries and nothing else.
pub fn read_ifd(src: &dyn Source, order: Order, at: u64) -> Result<Ifd, DecodeError> {
    if at == 0 {
        // libtiff writes the header first and the directory's offset
        // when it closes the file.
        return Err(truncated("no image directory yet (its offset is still 0)"));
    }
    if at < 8 {
        return Err(invalid(format!(
            "first directory offset {at} points into the header"
        )));
    }
    let (count_len, entry_len) = if order.big_tiff { (8, 20) } else { (2, 12) };
    let mut c = [0u8; 8];
    read_exact(src, &mut c[..count_len], at, "the first directory")?;
    let n = if order.big_tiff {
        order.u64(&c)
    } else {
        u64::from(order.u16(&c))
    };
    if n == 0 {
        return Err(invalid("the first directory is empty"));
    }
    // At most 65535 entries in a classic file; BigTIFF can say more but no
    // real file needs more than that.
    if n > 65535 {
        return Err(invalid(format!("the first directory claims {n} entries")));
    }
    let mut raw = vec![0u8; n as usize * entry_len];
    read_exact(src, &mut raw, at + count_len as u64, "the first directory")?;
    let mut ifd = Ifd::default();
    let wl = order.word_len();
    for e in raw.chunks_exact(entry_len) {
        let tag = order.u16(e);
        if !KEPT.contains(&tag) {
            continue;
        }
        let kind = order.u16(&e[2..]);
        let count = order.word(&e[4..]);
        let Some(size) = Array::elem_size(kind) else {
            // Pillow skips tags of unknown types.
            continue;
        };
        let value = &e[4 + wl..4 + 2 * wl];
        let bytes = count.saturating_mul(size);
        let mut inline = [0u8; 8];
        inline[..wl].copy_from_slice(value);
        let is_inline = bytes <= wl as u64;
        let at = if is_inline { 0 } else { order.word(value) };
        ifd.tags.push((
            tag,
            Array {
                order,
                kind,
                count,
                at,
                inline,
                is_inline,
            },
        ));
    }
    Ok(ifd)
}
