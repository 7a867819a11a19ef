//! Knowing when a file is complete (design §4.2): what the kernel says
//! about writers (a lease probe, [`durable::has_writers`]) and what the file
//! says about its own length: for a BMP, uncompressed, the rows its header
//! declares; RLE4/RLE8, `bfOffBits + biSizeImage` (or `bfSize`) when set,
//! and the end-of-bitmap marker; for the other formats, their own rule
//! ([`formats::whole`]: a PNG's `IEND`, a TIFF's strips, a GIF's first
//! frame, a PNM's raster). Only reads; never holds a lease past the probe.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::bmp::{BmpError, BmpInfo, Compression, RleOp, RleReader};
use crate::durable;
use crate::formats::{self, Format, Whole};

/// Set once the lease probe has been refused, so that is logged once.
static PROBE_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What the file itself says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// As long as declared (and, for RLE, its end marker is there), or so
    /// plainly not a valid BMP that waiting cannot help (the worker will
    /// say why).
    Complete,
    /// It may still be being written: empty, too short to identify, no
    /// signature yet (a header written last), shorter than declared, an
    /// RLE stream without its end marker.
    NotYet(&'static str),
}

/// What is known of a file's completion right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// `Some(true)` while a process on this host holds it open for
    /// writing; `None` when the lease probe cannot tell.
    pub writers: Option<bool>,
    pub declared: Declared,
}

/// Opens `path` beneath `inbox` (no symlink followed anywhere on the way,
/// no blocking on a FIFO: `durable::open_beneath`) and looks. `probe` asks
/// the kernel about writers (local filesystems with the native backend);
/// without it `writers` is `None`. A file that cannot be opened counts as
/// complete: the worker will report why.
pub fn check(inbox: &Path, path: &Path, max_pixels: u64, probe: bool) -> Completion {
    let rel = path.strip_prefix(inbox).unwrap_or(path);
    let file = File::open(inbox)
        .and_then(|base| durable::open_beneath(&base, rel, libc::O_RDONLY | libc::O_NONBLOCK));
    let Ok(file) = file else {
        return Completion {
            writers: None,
            declared: Declared::Complete,
        };
    };
    match file.metadata() {
        Ok(m) if m.file_type().is_file() => {}
        _ => {
            return Completion {
                writers: None,
                declared: Declared::Complete,
            };
        }
    }
    Completion {
        writers: if probe {
            match durable::has_writers(&file) {
                Ok(open) => Some(open),
                Err(e) => {
                    if !PROBE_REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(
                            "cannot observe writers ({}: lease probe: {e}); such files are taken \
                             once unchanged for settle_ms. Run with CAP_LEASE (the shipped \
                             unit grants it) or as the files' owner",
                            crate::display::shown(path)
                        );
                    }
                    None
                }
            }
        } else {
            None
        },
        declared: declared(&file, max_pixels),
    }
}

/// Whether `file` is as long as it says it is.
pub fn declared(file: &File, max_pixels: u64) -> Declared {
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(_) => return Declared::Complete,
    };
    if len == 0 {
        return Declared::NotYet("it is empty");
    }
    match Format::of(file) {
        Ok(Some(Format::Bmp)) => {}
        // Too short to know yet, or a header written last.
        Ok(None) => return Declared::NotYet("no image signature (yet)"),
        // Refused whatever its length (the worker says why).
        Ok(Some(Format::Jpeg)) | Err(_) => return Declared::Complete,
        Ok(Some(format)) => {
            return match formats::whole(file, format) {
                Whole::Complete if has_hole(file, 0, len) => {
                    Declared::NotYet("parts of it are not written yet (preallocated)")
                }
                Whole::Complete => Declared::Complete,
                Whole::NotYet(why) => Declared::NotYet(why),
            };
        }
    }
    let info = match BmpInfo::parse(&file, max_pixels) {
        Ok(info) => info,
        Err(BmpError::NotBmp(_)) => return Declared::NotYet("no image signature (yet)"),
        Err(BmpError::Truncated { .. }) => return Declared::NotYet("its header is incomplete"),
        Err(BmpError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Declared::NotYet("its header is incomplete");
        }
        Err(_) => return Declared::Complete,
    };
    match info.compression {
        Compression::None => {
            let end = info.data_offset + info.stride * u64::from(info.height);
            if len < end {
                Declared::NotYet("shorter than its header says")
            } else if has_hole(file, 0, end) {
                Declared::NotYet("parts of it are not written yet (preallocated)")
            } else {
                Declared::Complete
            }
        }
        Compression::Rle4 | Compression::Rle8 => {
            let end = declared_end(file, info.data_offset);
            if end.is_some_and(|end| len < end) {
                return Declared::NotYet("shorter than its header says");
            }
            let limit = end.unwrap_or(len).min(len);
            if has_hole(file, 0, limit) {
                return Declared::NotYet("parts of it are not written yet (preallocated)");
            }
            match has_end_marker(file, info.data_offset, limit, info.compression) {
                Ok(true) => Declared::Complete,
                Ok(false) => Declared::NotYet("no end-of-bitmap marker (yet)"),
                Err(_) => Declared::Complete,
            }
        }
    }
}

/// True when the filesystem reports a hole between `from` and `to`: space
/// preallocated (`ftruncate`, and `fallocate` on filesystems that report
/// unwritten extents as holes) and not written yet. A file a writer has
/// filled has none; where `SEEK_HOLE` is unsupported this says no.
fn has_hole(file: &File, from: u64, to: u64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(from) = libc::off_t::try_from(from) else {
        return false;
    };
    // SAFETY: lseek on a descriptor we own; it only moves its offset.
    let hole = unsafe { libc::lseek(file.as_raw_fd(), from, libc::SEEK_HOLE) };
    hole >= 0 && (hole as u64) < to
}

/// `bfOffBits + biSizeImage` when `biSizeImage` is set (INFO headers and
/// later), else `bfSize` when set: where the pixel data should end.
fn declared_end(file: &File, data_offset: u64) -> Option<u64> {
    let mut head = [0u8; 38];
    file.read_exact_at(&mut head, 0).ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let (bf_size, header_size, size_image) = (u32_at(2), u32_at(14), u32_at(34));
    if header_size >= 40 && size_image > 0 {
        Some(data_offset + u64::from(size_image))
    } else if bf_size > 0 {
        Some(u64::from(bf_size))
    } else {
        None
    }
}

/// Walks the RLE opcodes from `offset` up to `limit` (without decoding
/// pixels, [`RleReader`]) and says whether an end-of-bitmap marker (00 01)
/// comes before the data runs out. A stream that stops inside an
/// instruction has no marker yet. A read that fails while looking for the
/// next instruction counts as no marker yet; one that fails inside an
/// absolute run is the error (and the worker will say why).
fn has_end_marker(file: &File, offset: u64, limit: u64, kind: Compression) -> io::Result<bool> {
    let mut ops = RleReader::new(file, kind, offset, limit);
    loop {
        let Ok(Some(op)) = ops.next_op() else {
            return Ok(false);
        };
        match op {
            RleOp::EndOfBitmap => return Ok(true),
            RleOp::Absolute { .. } => {
                if !ops.skip(op.data_len())? {
                    return Ok(false);
                }
            }
            RleOp::Run { .. } | RleOp::EndOfLine | RleOp::Delta { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn declared_of(bytes: &[u8]) -> Declared {
        let mut t = tempfile::tempfile().unwrap();
        t.write_all(bytes).unwrap();
        declared(&t, crate::compress::DEFAULT_MAX_PIXELS)
    }

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn every_proper_prefix_of_a_bmp_is_not_yet_complete_and_the_whole_is() {
        for name in [
            "pal1.bmp",
            "pal8.bmp",
            "rgb24.bmp",
            "rgb16.bmp",
            "pal4rle.bmp",
            "pal8rle.bmp",
        ] {
            let bytes = vector(name);
            assert_eq!(declared_of(&bytes), Declared::Complete, "{name}");
            for cut in 0..bytes.len() {
                assert!(
                    matches!(declared_of(&bytes[..cut]), Declared::NotYet(_)),
                    "{name} cut at {cut} of {}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_preallocated_file_not_yet_filled_is_not_yet_complete() {
        let bytes = vector("rgb24.bmp");
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("p.bmp"))
            .unwrap();
        // Header and first rows written, the rest only reserved.
        f.set_len(bytes.len() as u64).unwrap();
        f.write_all(&bytes[..4096]).unwrap();
        let d = declared(&f, crate::compress::DEFAULT_MAX_PIXELS);
        // Only where the filesystem reports holes (ext4, tmpfs, xfs do).
        if has_hole(&f, 0, bytes.len() as u64) {
            assert!(matches!(d, Declared::NotYet(_)), "{d:?}");
        }
        f.write_all(&bytes[4096..]).unwrap();
        assert_eq!(
            declared(&f, crate::compress::DEFAULT_MAX_PIXELS),
            Declared::Complete
        );
    }

    #[test]
    fn an_rle_stream_without_its_end_marker_is_not_yet_complete() {
        let mut bytes = vector("pal8rle.bmp");
        let n = bytes.len();
        assert_eq!(&bytes[n - 2..], [0, 1]);
        // Same length (say, preallocated), marker not written yet.
        bytes[n - 2..].copy_from_slice(&[0, 0]);
        assert_eq!(
            declared_of(&bytes),
            Declared::NotYet("no end-of-bitmap marker (yet)")
        );
    }

    #[test]
    fn bytes_after_the_declared_end_do_not_make_a_file_wait() {
        for name in ["rgb24.bmp", "pal8rle.bmp"] {
            let mut bytes = vector(name);
            // Trailing bytes the header does not count (some writers pad).
            bytes.extend_from_slice(&[0xAA; 7]);
            assert_eq!(declared_of(&bytes), Declared::Complete, "{name}");
        }
    }

    /// Sets the little-endian u32 at `at`.
    fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
        bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn an_rle_file_waits_for_its_declared_length_even_past_its_end_marker() {
        // pal8rle.bmp with four more bytes after its end marker, counted
        // in biSizeImage (which wins over bfSize), in bfSize alone, or in
        // neither (then the end marker decides).
        let whole = vector("pal8rle.bmp");
        let n = whole.len() + 4;
        assert_eq!(&whole[whole.len() - 2..], [0, 1]);
        let size_image = u32::from_le_bytes(whole[34..38].try_into().unwrap());
        for (bf_size, bi_size_image, waits) in [
            (whole.len() as u32, size_image + 4, true),
            (n as u32, 0, true),
            (0, 0, false),
        ] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&[0; 4]);
            set_u32(&mut bytes, 2, bf_size);
            set_u32(&mut bytes, 34, bi_size_image);
            assert_eq!(declared_of(&bytes), Declared::Complete);
            for cut in n - 4..n {
                let seen = declared_of(&bytes[..cut]);
                let why = (bf_size, bi_size_image, cut);
                if waits {
                    assert_eq!(
                        seen,
                        Declared::NotYet("shorter than its header says"),
                        "{why:?}"
                    );
                } else {
                    assert_eq!(seen, Declared::Complete, "{why:?}");
                }
            }
        }
    }

    #[test]
    fn the_end_marker_is_found_by_walking_deltas_and_absolute_runs_not_by_bytes() {
        // Hand-made streams (only the opcodes matter here, not the
        // picture) after the headers of pal8rle.bmp and pal4rle.bmp.
        let rle8: &[u8] = &[
            4, 7, // a run
            0, 2, 1, 0, // a delta
            0, 3, 5, 6, 0, 1, // 3 pixels, then a pad byte that is 1
            0, 0, // end of line
            0, 1, // end of bitmap
        ];
        let rle4: &[u8] = &[
            4, 0x11, // a run
            0, 5, 0x12, 0x34, 0x50, 0, // 5 pixels in 3 bytes, padded
            0, 1, // end of bitmap
        ];
        for (name, stream) in [("pal8rle.bmp", rle8), ("pal4rle.bmp", rle4)] {
            let header = vector(name);
            let offset = u32::from_le_bytes(header[10..14].try_into().unwrap()) as usize;
            let mut bytes = header[..offset].to_vec();
            bytes.extend_from_slice(stream);
            let len = bytes.len() as u32;
            set_u32(&mut bytes, 2, len);
            set_u32(&mut bytes, 34, stream.len() as u32);
            assert_eq!(declared_of(&bytes), Declared::Complete, "{name}");
            for cut in 0..bytes.len() {
                assert!(
                    matches!(declared_of(&bytes[..cut]), Declared::NotYet(_)),
                    "{name} cut at {cut}"
                );
            }
            // Without the size fields only the walk can tell.
            set_u32(&mut bytes, 2, 0);
            set_u32(&mut bytes, 34, 0);
            assert_eq!(declared_of(&bytes), Declared::Complete, "{name}");
            for cut in offset..bytes.len() {
                assert_eq!(
                    declared_of(&bytes[..cut]),
                    Declared::NotYet("no end-of-bitmap marker (yet)"),
                    "{name} cut at {cut}, no sizes"
                );
            }
        }
    }

    #[test]
    fn a_fifo_is_looked_at_without_waiting_for_a_writer_and_left_to_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.bmp");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // No writer will ever open it: an open that waits for one never
        // ends, so the look runs on a thread the test can give up on.
        let (tx, rx) = std::sync::mpsc::channel();
        let inbox = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(check(
                &inbox,
                &fifo,
                crate::compress::DEFAULT_MAX_PIXELS,
                false,
            ));
        });
        let seen = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("looking at a FIFO blocked");
        // Complete: the worker takes it and quarantines it at once rather
        // than it waiting out the grace as an empty file.
        assert_eq!(seen.declared, Declared::Complete);
    }

    #[test]
    fn a_header_of_zeros_and_a_png_cut_inside_its_header_are_not_yet_complete() {
        let bytes = vector("pal8.bmp");
        let mut zeros = bytes.clone();
        zeros[..54].fill(0);
        assert!(matches!(declared_of(&zeros), Declared::NotYet(_)));
        // A PNG cut after its IHDR's length and type: its own rule (no
        // IEND yet) says it is not there yet; the coordinator's grace
        // bounds the wait.
        assert!(matches!(
            declared_of(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Declared::NotYet(_)
        ));
    }

    #[test]
    fn the_lease_probe_sees_a_writer_on_this_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bmp");
        let writer = std::fs::File::create(&path).unwrap();
        let probe =
            |p: &Path| check(dir.path(), p, crate::compress::DEFAULT_MAX_PIXELS, true).writers;
        // Some(true), or None where leases cannot be had here at all.
        let while_open = probe(&path);
        assert_ne!(while_open, Some(false));
        drop(writer);
        let after = probe(&path);
        assert_ne!(after, Some(true));
        if while_open.is_some() {
            assert_eq!(after, Some(false));
        }
    }
}
