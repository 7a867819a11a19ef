//! Unit tests of the TIFF decoder's own parts; the decoder through the
//! whole conversion is tested in `compress` (`compress/tiff_vectors.rs`).

/// Bilevel rows mirrored in place (Orientation 2 and 3) against a
/// pixel-by-pixel reversal, at every width up to 70 and with junk in the
/// padding bits.
#[test]
fn bilevel_rows_mirror_pixel_by_pixel() {
    let mut seed = 0x2545_f491_u32;
    for w in 1..=70usize {
        let n = w.div_ceil(8);
        let mut row: Vec<u8> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let bit = |r: &[u8], x: usize| r[x / 8] >> (7 - x % 8) & 1;
        let want: Vec<u8> = (0..w).map(|x| bit(&row, w - 1 - x)).collect();
        super::mirror_row(&mut row, &super::Layout::One, w as u32);
        let got: Vec<u8> = (0..w).map(|x| bit(&row, x)).collect();
        assert_eq!(got, want, "width {w}");
    }
}
