use super::*;

fn decode(data: &[u8]) -> Result<(Header, Vec<Vec<u8>>, bool), DecodeError> {
    let mut d = open(&data, 1 << 24)?;
    let mut rows = Vec::new();
    while let Some(r) = d.next_row()? {
        rows.push(r.to_vec());
    }
    Ok((d.header().clone(), rows, d.source_pure()))
}

#[test]
fn python_int() {
    assert_eq!(py_int(b"+5"), Some(5));
    assert_eq!(py_int(b"1_0"), Some(10));
    assert_eq!(py_int(b"-0"), Some(0));
    assert_eq!(py_int(b"007"), Some(7));
    assert_eq!(py_int(b"1__0"), None);
    assert_eq!(py_int(b"_1"), None);
    assert_eq!(py_int(b"1_"), None);
    assert_eq!(py_int(b"0x1"), None);
    assert_eq!(py_int(b""), None);
    assert_eq!(py_int(b"+"), None);
}

#[test]
fn scaling_rounds_half_to_even() {
    // design §2.1: maxval 10, 7 → 178 (177.5 → 178).
    assert_eq!(scale(7, 10, 255), 178);
    // 127.5 → 128, 0.5 → 0 (even), 1.5 → 2
    assert_eq!(scale(1, 2, 255), 128);
    assert_eq!(scale(1, 510, 255), 0);
    assert_eq!(scale(3, 510, 255), 2);
    // mode I: 300 of 65535 → 300, clamped to 255
    assert_eq!(scale(300, 65535, 65535), 255);
}

#[test]
fn header_quirks_are_pillows() {
    // A comment inside a token does not end it: width "1" + "2" = 12.
    let (h, rows, _) = decode(b"P5 1#x\n2 1 255\n............").expect("decodes");
    assert_eq!((h.width, h.height), (12, 1));
    assert_eq!(rows[0], b"............");
    // Plain samples past maxval are refused; raw ones are clamped.
    assert!(matches!(
        decode(b"P2 1 1 10 11\n"),
        Err(DecodeError::Invalid { .. })
    ));
    let (_, rows, pure) = decode(b"P5 2 1 10\n\x0b\x0a").expect("decodes");
    assert_eq!(rows[0], [255, 255]);
    assert!(!pure, "11 of 10 shows white but is no white sample");
    // Plain P1: every token of a block is checked, even past the last
    // sample needed.
    assert!(matches!(
        decode(b"P1 2 1 01 x"),
        Err(DecodeError::Invalid { .. })
    ));
    assert_eq!(decode(b"P1 2 1 0 1").expect("decodes").1[0], [0x80]);
    for bad in [
        &b"P7 1 1\n"[..],
        b"P5 0 1 255\n",
        b"P5 1 1 0\n",
        b"P5 1 1 65536\n",
        b"P5 123456789012 1 255\n",
    ] {
        assert!(decode(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        decode(b"P5 2 2 255\n\x00\x00\x00"),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode(b"P2 2 1 255\n7"),
        Err(DecodeError::Truncated { .. })
    ));
}

/// A plain file cut inside its last number has every sample, the last
/// one wrong: not complete until the number is ended (design §4.2).
#[test]
fn a_plain_pnm_cut_inside_its_last_number_is_not_complete() {
    use crate::formats::{Format, Whole, whole};
    let full: &[u8] = b"P2\n3 2\n255\n0 128 255\n100 200 255\n";
    assert_eq!(whole(&full, Format::Pnm), Whole::Complete);
    for cut in [full.len() - 2, full.len() - 3] {
        assert!(
            matches!(whole(&&full[..cut], Format::Pnm), Whole::NotYet(_)),
            "{:?}",
            String::from_utf8_lossy(&full[..cut])
        );
    }
    let ppm: &[u8] = b"P3 1 1 1000 0 0 1000\n";
    assert_eq!(whole(&ppm, Format::Pnm), Whole::Complete);
    assert!(matches!(
        whole(&&ppm[..ppm.len() - 2], Format::Pnm),
        Whole::NotYet(_)
    ));
    // P1 samples are single digits: a cut leaves fewer of them.
    assert_eq!(whole(&&b"P1 2 1 0 1"[..], Format::Pnm), Whole::Complete);
}
