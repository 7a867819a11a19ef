//! The bytes of one strip or tile, decompressed as a stream: none,
//! PackBits, LZW (new and old style), Deflate. Every reader holds O(1)
//! state plus a small input buffer, never a whole strip. FillOrder 2 is
//! undone on the compressed bytes, as libtiff does. CCITT fax strips have
//! their own path (rows, not bytes) in the parent module.

use std::io::{self, BufRead, BufReader, Read};

use crate::bmp::Source;

/// How strip bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    PackBits,
    Lzw,
    Deflate,
    /// CCITT modified Huffman (2), T.4 (3) or T.6 (4).
    Ccitt(u16),
}

/// Reads `len` bytes from `at` in `src`; past the file's end it fails with
/// `UnexpectedEof`.
pub struct Span<'a> {
    src: &'a (dyn Source + 'a),
    at: u64,
    left: u64,
    reverse_bits: bool,
}

impl<'a> Span<'a> {
    pub fn new(src: &'a (dyn Source + 'a), at: u64, len: u64, reverse_bits: bool) -> Span<'a> {
        src.will_need(at, len.min(1 << 20));
        Span {
            src,
            at,
            left: len,
            reverse_bits,
        }
    }
}

impl Read for Span<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.src.read_at(&mut buf[..n], self.at)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "strip data past the end of the file",
            ));
        }
        if self.reverse_bits {
            for b in &mut buf[..got] {
                *b = b.reverse_bits();
            }
        }
        self.at += got as u64;
        self.left -= got as u64;
        Ok(got)
    }
}

/// The decompressed bytes of one strip or tile.
pub fn reader<'a>(span: Span<'a>, compression: Compression) -> Box<dyn Read + 'a> {
    let input = BufReader::with_capacity(16 * 1024, span);
    match compression {
        Compression::None | Compression::Ccitt(_) => Box::new(input),
        Compression::PackBits => Box::new(PackBits {
            input,
            literal: 0,
            repeat: 0,
            value: 0,
        }),
        Compression::Lzw => Box::new(BufReader::with_capacity(
            LZW_OUT,
            Lzw {
                input,
                decoder: None,
                done: false,
            },
        )),
        Compression::Deflate => Box::new(flate2::bufread::ZlibDecoder::new(input)),
    }
}

/// PackBits (Apple's byte-oriented run length), written by hand: it is a
/// dozen lines, and no crate streams it.
struct PackBits<R> {
    input: R,
    /// Literal bytes still to copy.
    literal: usize,
    /// Copies of `value` still to give.
    repeat: usize,
    value: u8,
}

impl<R: BufRead> Read for PackBits<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.repeat > 0 {
                let k = self.repeat.min(buf.len() - n);
                buf[n..n + k].fill(self.value);
                self.repeat -= k;
                n += k;
            } else if self.literal > 0 {
                let avail = self.input.fill_buf()?;
                if avail.is_empty() {
                    break;
                }
                let k = self.literal.min(buf.len() - n).min(avail.len());
                buf[n..n + k].copy_from_slice(&avail[..k]);
                self.input.consume(k);
                self.literal -= k;
                n += k;
            } else {
                let mut op = [0u8; 1];
                if self.input.read(&mut op)? == 0 {
                    break;
                }
                let op = op[0] as i8;
                if op >= 0 {
                    self.literal = op as usize + 1;
                } else if op != -128 {
                    let mut v = [0u8; 1];
                    if self.input.read(&mut v)? == 0 {
                        break;
                    }
                    self.value = v[0];
                    self.repeat = (1 - isize::from(op)) as usize;
                }
            }
        }
        Ok(n)
    }
}

/// The output buffer `weezl` decodes into. Given a small one (a 4-byte
/// row), it can take the last input bytes while strings are still to come
/// out, and then, with no input left, make no progress: the strip would
/// end short (a Pillow-written 2-pixel LA page did). With room for several
/// of its longest strings (4096 bytes) it keeps input to the end.
const LZW_OUT: usize = 64 * 1024;

/// LZW through `weezl`: the TIFF flavour (MSB first, early code-size
/// switch), or the old-style one (LSB first, no early switch) that libtiff
/// still reads, told apart by the first two bytes as libtiff does.
struct Lzw<R> {
    input: R,
    decoder: Option<weezl::decode::Decoder>,
    done: bool,
}

impl<R: BufRead> Read for Lzw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let decoder = match &mut self.decoder {
            Some(d) => d,
            None => {
                let head = self.input.fill_buf()?;
                let old_style = head.len() >= 2 && head[0] == 0 && head[1] & 1 != 0;
                self.decoder.insert(if old_style {
                    weezl::decode::Decoder::new(weezl::BitOrder::Lsb, 8)
                } else {
                    weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
                })
            }
        };
        loop {
            let inp = self.input.fill_buf()?;
            let at_end = inp.is_empty();
            let r = decoder.decode_bytes(inp, buf);
            self.input.consume(r.consumed_in);
            match r.status {
                Ok(weezl::LzwStatus::Done) => {
                    self.done = true;
                    return Ok(r.consumed_out);
                }
                Ok(_) if r.consumed_out > 0 => return Ok(r.consumed_out),
                Ok(_) if at_end => {
                    // No end code: the data simply stops (libtiff warns
                    // and keeps what it has).
                    self.done = true;
                    return Ok(0);
                }
                Ok(_) if r.consumed_in == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "corrupt LZW data (the decoder makes no progress)",
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt LZW data ({e})"),
                    ));
                }
            }
        }
    }
}

/// Undoes horizontal differencing (predictor 2) on one row of `samples`
/// interleaved samples of `bytes` bytes each, in the file's byte order.
pub fn undo_horizontal(row: &mut [u8], spp: usize, bytes: usize, big_endian: bool) {
    match bytes {
        1 => {
            for i in spp..row.len() {
                row[i] = row[i].wrapping_add(row[i - spp]);
            }
        }
        2 => {
            let n = row.len() / 2;
            for i in spp..n {
                let get = |r: &[u8], k: usize| {
                    let b = [r[2 * k], r[2 * k + 1]];
                    if big_endian {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                };
                let v = get(row, i).wrapping_add(get(row, i - spp));
                let b = if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                row[2 * i..2 * i + 2].copy_from_slice(&b);
            }
        }
        4 => {
            let n = row.len() / 4;
            for i in spp..n {
                let get = |r: &[u8], k: usize| {
                    let b = [r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3]];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let v = get(row, i).wrapping_add(get(row, i - spp));
                let b = if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                row[4 * i..4 * i + 4].copy_from_slice(&b);
            }
        }
        _ => {}
    }
}

/// Undoes the floating-point predictor (3) on one row of `width` × `spp`
/// 32-bit floats: bytes differenced, then stored most significant byte
/// plane first; rewritten in the file's byte order.
pub fn undo_float(row: &mut [u8], scratch: &mut Vec<u8>, spp: usize, big_endian: bool) {
    for i in spp..row.len() {
        row[i] = row[i].wrapping_add(row[i - spp]);
    }
    let n = row.len() / 4;
    scratch.clear();
    scratch.extend_from_slice(row);
    for k in 0..n {
        // Byte plane 0 holds the most significant bytes.
        let be = [
            scratch[k],
            scratch[n + k],
            scratch[2 * n + k],
            scratch[3 * n + k],
        ];
        let v = u32::from_be_bytes(be);
        let b = if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        row[4 * k..4 * k + 4].copy_from_slice(&b);
    }
}
