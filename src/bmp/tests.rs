//! The errors' wording, and the header fields that give each.

use super::*;

#[test]
fn each_refusal_reads_as_the_wording_users_and_tests_match() {
    use InvalidHeader as I;
    use Unsupported as U;
    let cases: &[(BmpError, &str)] = &[
        (
            BmpError::Unsupported(U::Os2BitmapArray),
            "unsupported BMP variant: OS/2 bitmap array",
        ),
        (
            BmpError::Unsupported(U::InfoHeaderSize { size: 200 }),
            "unsupported BMP variant: info header size 200",
        ),
        (
            BmpError::Unsupported(U::Huffman1D),
            "unsupported BMP variant: Huffman 1D compression",
        ),
        (
            BmpError::Unsupported(U::Rle24),
            "unsupported BMP variant: RLE24 compression",
        ),
        (
            BmpError::Unsupported(U::EmbeddedJpeg),
            "unsupported BMP variant: embedded JPEG",
        ),
        (
            BmpError::Unsupported(U::EmbeddedPng),
            "unsupported BMP variant: embedded PNG",
        ),
        (
            BmpError::Unsupported(U::Cmyk { compression: 12 }),
            "unsupported BMP variant: CMYK",
        ),
        (
            BmpError::Unsupported(U::Bits64),
            "unsupported BMP variant: 64 bits per pixel",
        ),
        (
            BmpError::Unsupported(U::NonContiguousMask {
                channel: "green",
                mask: 0x0f0f,
            }),
            "unsupported BMP variant: non-contiguous green mask 0xf0f",
        ),
        (
            BmpError::Invalid(I::UnknownCompression { compression: 9 }),
            "invalid BMP header: unknown compression 9",
        ),
        (
            BmpError::Invalid(I::BitCount { bits: 7 }),
            "invalid BMP header: bit count 7",
        ),
        (
            BmpError::Invalid(I::RleBitCount {
                compression: Compression::Rle8,
                bits: 4,
            }),
            "invalid BMP header: RLE8 with 4 bits per pixel",
        ),
        (
            BmpError::Invalid(I::RleBitCount {
                compression: Compression::Rle4,
                bits: 8,
            }),
            "invalid BMP header: RLE4 with 8 bits per pixel",
        ),
        (
            BmpError::Invalid(I::BitfieldsBitCount { bits: 8 }),
            "invalid BMP header: bitfields with 8 bits per pixel",
        ),
        (
            BmpError::Invalid(I::Width { width: -3 }),
            "invalid BMP header: width -3",
        ),
        (
            BmpError::Invalid(I::Height { height: 0 }),
            "invalid BMP header: height 0",
        ),
        (
            BmpError::Invalid(I::MaskTooWide {
                channel: "red",
                mask: 0x1_0000,
                bits: 16,
            }),
            "invalid BMP header: red mask 0x10000 does not fit in 16 bits",
        ),
        (
            BmpError::Invalid(I::PaletteSizeExceeded { colors_used: 70000 }),
            "invalid BMP header: palette size 70000",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), *text);
        assert!(error.is_bad_input(), "{text}");
    }
}

/// An INFO header (40 bytes) after the file header, with the given
/// width, height, bit count, compression code and colour count.
fn header(width: i32, height: i32, bits: u16, compression: u32, colors: u32) -> Vec<u8> {
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(&compression.to_le_bytes());
    b.extend_from_slice(&[0; 12]);
    b.extend_from_slice(&colors.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.resize(4096, 0);
    b
}

#[test]
fn header_fields_no_bmp_has_are_refused_with_the_field_and_its_value() {
    let parse = |b: Vec<u8>| BmpInfo::parse(&b.as_slice(), 1 << 20).unwrap_err();
    let cases = [
        (
            header(4, 4, 8, 9, 0),
            "invalid BMP header: unknown compression 9",
        ),
        (header(4, 4, 7, 0, 0), "invalid BMP header: bit count 7"),
        (
            header(4, 4, 4, 1, 0),
            "invalid BMP header: RLE8 with 4 bits per pixel",
        ),
        (
            header(4, 4, 8, 2, 0),
            "invalid BMP header: RLE4 with 8 bits per pixel",
        ),
        (
            header(4, 4, 8, 3, 0),
            "invalid BMP header: bitfields with 8 bits per pixel",
        ),
        (header(0, 4, 8, 0, 0), "invalid BMP header: width 0"),
        (header(4, 0, 8, 0, 0), "invalid BMP header: height 0"),
        (
            header(4, 4, 8, 0, 70000),
            "invalid BMP header: palette size 70000",
        ),
        (
            header(4, 4, 8, 5, 0),
            "unsupported BMP variant: embedded PNG",
        ),
        // Code 4 is BI_JPEG in a Windows header; RLE24 only in OS/2 2.x.
        (
            header(4, 4, 24, 4, 0),
            "unsupported BMP variant: embedded JPEG",
        ),
        (
            {
                let mut os2 = header(4, 4, 24, 4, 0);
                os2[14..18].copy_from_slice(&64u32.to_le_bytes());
                os2
            },
            "unsupported BMP variant: RLE24 compression",
        ),
        (
            header(4, 4, 64, 0, 0),
            "unsupported BMP variant: 64 bits per pixel",
        ),
        (header(4, 4, 32, 12, 0), "unsupported BMP variant: CMYK"),
    ];
    for (bytes, text) in cases {
        assert_eq!(parse(bytes).to_string(), text);
    }
    let mut masks = header(4, 4, 16, 3, 0);
    masks[54..66].copy_from_slice(&[0x00, 0x7c, 0, 0, 0xe0, 0x03, 0, 0, 0x1f, 0, 1, 0]);
    assert_eq!(
        parse(masks).to_string(),
        "invalid BMP header: blue mask 0x1001f does not fit in 16 bits"
    );
    let mut masks = header(4, 4, 16, 3, 0);
    masks[54..66].copy_from_slice(&[0x00, 0x7c, 0, 0, 0xe0, 0x02, 0, 0, 0x1f, 0, 0, 0]);
    assert_eq!(
        parse(masks).to_string(),
        "unsupported BMP variant: non-contiguous green mask 0x2e0"
    );
    assert!(matches!(
        parse(header(4, 4, 8, 9, 0)),
        BmpError::Invalid(InvalidHeader::UnknownCompression { compression: 9 })
    ));
}
