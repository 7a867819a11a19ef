use super::*;

#[test]
fn sub_samples_are_read_most_significant_first() {
    assert_eq!(sub_sample(&[0b1000_0001], 0, 1), 1);
    assert_eq!(sub_sample(&[0b1000_0001], 7, 1), 1);
    assert_eq!(sub_sample(&[0b1000_0001], 6, 1), 0);
    assert_eq!(sub_sample(&[0b1101_0010], 1, 2), 0b01);
    assert_eq!(sub_sample(&[0xa5], 1, 4), 5);
}

fn with_chunk_before_idat(png: &[u8], chunk_bytes: &[u8]) -> Vec<u8> {
    // Signature (8) + IHDR (25).
    let mut out = png[..33].to_vec();
    out.extend_from_slice(chunk_bytes);
    out.extend_from_slice(&png[33..]);
    out
}

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/formats/png")
            .join(name),
    )
    .expect("vector")
}

#[test]
fn checksums_are_checked_before_the_image_data_only() {
    let png = vector("grey2.png");
    let src: &dyn Source = &png.as_slice();
    assert!(open(src, 1 << 20).is_ok());
    // A bad CRC in an ancillary chunk before IDAT: Pillow refuses.
    let mut text = chunk(b"tEXt", b"a\0b");
    let n = text.len();
    text[n - 1] ^= 1;
    let bad = with_chunk_before_idat(&png, &text);
    let src: &dyn Source = &bad.as_slice();
    assert!(matches!(
        open(src, 1 << 20).err(),
        Some(DecodeError::Invalid { .. })
    ));
    // An unknown critical chunk there: Pillow reads on, and so do we.
    let odd = with_chunk_before_idat(&png, &chunk(b"ABCD", b"xyz"));
    let src: &dyn Source = &odd.as_slice();
    assert!(open(src, 1 << 20).is_ok());
}

#[test]
fn sixteen_bit_grey_is_clipped_and_impure() {
    // 1x3, grey 16: 0, 300, 65535 → 0, 255 (clipped), 255.
    let raw = [0u8, 0, 0, 0, 1, 0x2c, 0, 0xff, 0xff];
    let mut png = SIGNATURE.to_vec();
    png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 3, 16, 0, 0, 0, 0]));
    png.extend(chunk(b"IDAT", &zlib_stored(&raw)));
    png.extend(chunk(b"IEND", b""));
    let src: &dyn Source = &png.as_slice();
    let mut d = open(src, 1 << 20).expect("opens");
    assert_eq!(d.header().layout, Layout::Grey);
    let rows: Vec<Vec<u8>> =
        std::iter::from_fn(|| d.next_row().expect("row").map(<[u8]>::to_vec)).collect();
    assert_eq!(rows, [[0], [255], [255]]);
    assert!(!d.source_pure(), "300 shows white but is not");
}

/// A zlib stream of one stored block.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01, 1];
    let n = data.len() as u16;
    out.extend(n.to_le_bytes());
    out.extend((!n).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

#[test]
fn whole_needs_iend() {
    let png = vector("grey1.png");
    assert_eq!(whole(&png.as_slice()), Whole::Complete);
    assert!(matches!(whole(&&png[..png.len() - 12]), Whole::NotYet(_)));
    // Not a PNG after all: complete (decoding says why).
    assert_eq!(whole(&&b"\x89PNX\r\n\x1a\n"[..]), Whole::Complete);
}

#[test]
fn a_text_chunk_inflating_past_a_mebibyte_is_refused_as_by_pillow() {
    let png = vector("grey2.png");
    let ztxt = |n: usize| {
        let mut data = b"k\0\0".to_vec();
        data.extend(fdeflate::compress_to_vec(&vec![0u8; n]));
        chunk(b"zTXt", &data)
    };
    let decodes = |file: &[u8]| -> Result<(), DecodeError> {
        let src: &dyn Source = &file;
        let mut d = open(src, 1 << 20)?;
        while d.next_row()?.is_some() {}
        Ok(())
    };
    // Before the image data and after it (Pillow reads both).
    let small = with_chunk_before_idat(&png, &ztxt(1000));
    assert!(decodes(&small).is_ok());
    let big = with_chunk_before_idat(&png, &ztxt(2 << 20));
    assert!(matches!(decodes(&big), Err(DecodeError::Invalid { .. })));
    let iend = png.len() - 12;
    let mut after = png[..iend].to_vec();
    after.extend(ztxt(2 << 20));
    after.extend_from_slice(&png[iend..]);
    assert!(matches!(decodes(&after), Err(DecodeError::Invalid { .. })));
}
