//! A synthetic scanned text page for benchmarks: lines of "glyphs" made of
//! strokes on a white page, as 1-bit and as 24-bit BMP (the 24-bit one with
//! scanner-like noise so that dithering has real work to do).

#![allow(dead_code)]

/// Page size: a letter page at about 650 dpi.
pub const WIDTH: usize = 7200;
pub const HEIGHT: usize = 5600;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.next() as usize % (hi - lo)
    }
}

/// Ink mask, row-major, `true` = black.
pub fn ink(width: usize, height: usize) -> Vec<bool> {
    let mut ink = vec![false; width * height];
    let mut rng = Lcg(42);
    let margin = width / 12;
    let mut top = height / 14;
    while top + 120 < height - height / 14 {
        let mut x = margin;
        while x + 60 < width - margin {
            // A word of 2..9 glyphs.
            for _ in 0..rng.range(2, 9) {
                let gw = rng.range(24, 48);
                let (gh, base) = (rng.range(40, 64), top + 64);
                for _ in 0..rng.range(2, 5) {
                    // Vertical or horizontal strokes, 6 px thick.
                    if rng.next().is_multiple_of(2) {
                        let sx = x + rng.range(0, gw - 6);
                        for y in base - gh..base {
                            ink[y * width + sx..y * width + sx + 6].fill(true);
                        }
                    } else {
                        let sy = base - rng.range(6, gh);
                        for y in sy..sy + 6 {
                            ink[y * width + x..y * width + x + gw].fill(true);
                        }
                    }
                }
                x += gw + 8;
                if x + 60 >= width - margin {
                    break;
                }
            }
            x += rng.range(30, 50);
        }
        top += 100;
    }
    ink
}

fn file_header(
    out: &mut Vec<u8>,
    data_offset: u32,
    file_size: u32,
    width: usize,
    height: usize,
    bits: u16,
    colours: u32,
) {
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&file_size.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&data_offset.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(width as i32).to_le_bytes());
    out.extend_from_slice(&(height as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[0x13, 0x0b, 0, 0, 0x13, 0x0b, 0, 0]);
    out.extend_from_slice(&colours.to_le_bytes());
    out.extend_from_slice(&colours.to_le_bytes());
}

/// 1-bit BMP, palette black, white; bottom-up.
pub fn bmp_1bit(ink: &[bool], width: usize, height: usize) -> Vec<u8> {
    let stride = width.div_ceil(32) * 4;
    let offset = 14 + 40 + 8;
    let mut out = Vec::with_capacity(offset + stride * height);
    file_header(
        &mut out,
        offset as u32,
        (offset + stride * height) as u32,
        width,
        height,
        1,
        2,
    );
    out.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 0]);
    for y in (0..height).rev() {
        let mut row = vec![0u8; stride];
        for x in 0..width {
            if !ink[y * width + x] {
                row[x / 8] |= 0x80 >> (x % 8);
            }
        }
        out.extend_from_slice(&row);
    }
    out
}

/// 24-bit BMP with paper and ink noise; bottom-up.
pub fn bmp_24bit(ink: &[bool], width: usize, height: usize) -> Vec<u8> {
    let stride = (width * 3).div_ceil(4) * 4;
    let offset = 14 + 40;
    let mut out = Vec::with_capacity(offset + stride * height);
    file_header(
        &mut out,
        offset as u32,
        (offset + stride * height) as u32,
        width,
        height,
        24,
        0,
    );
    let mut rng = Lcg(7);
    for y in (0..height).rev() {
        let start = out.len();
        for x in 0..width {
            let level = if ink[y * width + x] {
                10 + rng.range(0, 50)
            } else {
                225 + rng.range(0, 31)
            } as u8;
            out.extend_from_slice(&[level, level, level.saturating_sub(3)]);
        }
        out.resize(start + stride, 0);
    }
    out
}

/// A 24-bit BMP, bottom-up, whose pixel (x, y) is `colour(x, y)` as
/// [blue, green, red].
pub fn bmp_24bit_with(
    width: usize,
    height: usize,
    mut colour: impl FnMut(usize, usize) -> [u8; 3],
) -> Vec<u8> {
    let stride = (width * 3).div_ceil(4) * 4;
    let offset = 14 + 40;
    let mut out = Vec::with_capacity(offset + stride * height);
    file_header(
        &mut out,
        offset as u32,
        (offset + stride * height) as u32,
        width,
        height,
        24,
        0,
    );
    for y in (0..height).rev() {
        let start = out.len();
        for x in 0..width {
            out.extend_from_slice(&colour(x, y));
        }
        out.resize(start + stride, 0);
    }
    out
}

/// 24-bit BMP of the ink mask with every pixel pure black (0, 0, 0) or
/// pure white (255, 255, 255), like the reference program's own samples.
pub fn bmp_24bit_bw(ink: &[bool], width: usize, height: usize) -> Vec<u8> {
    bmp_24bit_with(width, height, |x, y| {
        if ink[y * width + x] { [0; 3] } else { [255; 3] }
    })
}

/// A photo-like 24-bit BMP: smooth colour gradients and soft shapes over
/// the whole page plus sensor noise, so no pixel is pure and dithering
/// works on continuous tone everywhere.
pub fn bmp_24bit_photo(width: usize, height: usize) -> Vec<u8> {
    let mut rng = Lcg(99);
    let (w, h) = (width as f32, height as f32);
    bmp_24bit_with(width, height, |x, y| {
        let (u, v) = (x as f32 / w, y as f32 / h);
        let wave = (u * 17.0).sin() * (v * 11.0).cos();
        let blob = (-((u - 0.4).powi(2) + (v - 0.6).powi(2)) * 12.0).exp();
        let base = 40.0 + 150.0 * u * (1.0 - v) + 40.0 * wave + 60.0 * blob;
        let mut ch = |k: f32| {
            let noise = rng.range(0, 13) as f32 - 6.0;
            (base * k + noise).clamp(1.0, 254.0) as u8
        };
        [ch(0.8), ch(1.0), ch(1.15)]
    })
}
