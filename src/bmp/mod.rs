//! BMP files (design §3): header parsing and validation, with the mode
//! Pillow would open the file as ([`BmpInfo::parse`], `header.rs`), a
//! streaming row reader that hands out rows top row first, as stored
//! ([`Rows`], `rows.rs`), the one reader of the RLE8/RLE4 opcode grammar
//! that decoding and the completion check share ([`RleReader`],
//! `opcodes.rs`), and the 1-bit writer used by `decompress`
//! ([`write_1bit`], `writer.rs`), and the errors ([`BmpError`],
//! `error.rs`); here, the [`Source`] the reading goes through. Turning rows
//! into bits (and into exact colours, [`crate::bilevel::rgba_row`]) is
//! [`crate::bilevel`]'s.
//!
//! Written by hand rather than with the `image`/`bmp` crates because those
//! decode whole images into memory (O(width × height)), refuse several
//! variants design §2–3 requires (2 bpp, arbitrary bitfields, OS/2 v2, RLE
//! deltas and early ends) and do not expose the palette-level facts Pillow's
//! mode choice depends on. Nothing here allocates a size read from a header
//! before that size has been checked against the file and the pixel limit.

mod error;
mod header;
mod opcodes;
mod rows;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{BmpError, InvalidHeader, Unsupported};
pub use header::{BmpInfo, Compression, Masks, PillowMode};
pub use opcodes::{RleOp, RleReader};
pub use rows::{Blocks, RowData, Rows};
pub use writer::write_1bit;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Something BMP bytes can be read from at arbitrary offsets, so rows can be
/// read in display order without holding the whole image. `Sync` so that
/// large images can be read on one thread while another converts.
pub trait Source: Sync {
    /// Total length in bytes.
    fn byte_len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Reads as much as is there, up to `buf.len()`; returns the count.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Hints that `len` bytes at `offset` will be read soon, so that they
    /// can be fetched ahead. Only speed depends on it; the default does
    /// nothing.
    fn will_need(&self, _offset: u64, _len: u64) {}
}

impl Source for File {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match FileExt::read_at(self, &mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
    #[cfg(target_os = "linux")]
    fn will_need(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: no pointers; the descriptor is this open file's. The
        // result is ignored: a refused hint changes nothing but speed.
        unsafe {
            libc::posix_fadvise(self.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
        }
    }
}

impl Source for [u8] {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let n = Source::read_at(self, buf, offset)?;
        if n < buf.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(<[u8]>::len(self));
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl<T: Source + ?Sized> Source for &T {
    fn byte_len(&self) -> io::Result<u64> {
        (**self).byte_len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn will_need(&self, offset: u64, len: u64) {
        (**self).will_need(offset, len)
    }
}
