//! Tests of the index tables: every term finds its line through a table
//! on disk; missing, stale, damaged and grown ledgers; a last line not
//! whole.

use super::*;
use crate::ledger::{Record, VERSION, hex};
use std::io::Write;

fn entry(n: u64) -> Record {
    Record {
        v: VERSION,
        time: "2026-11-26T10:00:00Z".into(),
        host: "h".into(),
        source: format!("d{}/page-{n}.bmp", n % 7),
        source_raw: None,
        source_size: 10,
        source_xxh3: hex(n * 3 + 1),
        archive: format!("d{}/page-{n}.rle", n % 7),
        archive_raw: None,
        archive_size: 5,
        archive_xxh3: hex(n * 3 + 2),
        width: 1,
        height: 1,
        conversion: "dither".into(),
        lossless: true,
        format: "bmp".into(),
    }
}

/// A ledger file of `n` entries (and one bad line, line 3), its table.
fn ledger_of(dir: &Path, n: u64) -> (std::path::PathBuf, Vec<u64>) {
    let path = dir.join("2026-11-26.jsonl");
    let mut f = File::create(&path).unwrap();
    let mut offsets = Vec::new();
    let mut at = 0u64;
    for i in 0..n {
        if i == 2 {
            let bad = b"{\"v\":3,\"oops\n";
            f.write_all(bad).unwrap();
            at += bad.len() as u64;
        }
        let mut line = serde_json::to_vec(&entry(i)).unwrap();
        line.push(b'\n');
        f.write_all(&line).unwrap();
        offsets.push(at);
        at += line.len() as u64;
    }
    (path, offsets)
}

fn build(path: &Path) -> Built {
    build_from(&File::open(path).unwrap(), 0, 0, &mut |_, _, _, _| {}).unwrap()
}

#[test]
fn every_term_of_every_line_finds_that_line_through_the_table_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Enough entries for several buckets.
    let (path, offsets) = ledger_of(dir.path(), 3000);
    let built = build(&path);
    assert_eq!(built.bad.len(), 1);
    assert_eq!((built.bad[0].0, built.bad[0].1), (3, offsets[2] - 13));
    let idx = dir.path().join("i/2026-11-26.idx");
    let ledger = File::open(&path).unwrap();
    write(&idx, &built.to_bytes(&ledger).unwrap()).unwrap();
    let index = Index::open(&idx, &ledger).unwrap();
    assert!(index.bits > 0);
    assert_eq!(index.bad, vec![(3, offsets[2] - 13)]);
    for (i, &o) in offsets.iter().enumerate() {
        let e = entry(i as u64);
        let name = format!("page-{i}.bmp");
        for t in [
            path_term(Tag::Path, Path::new(&e.source)),
            path_term(Tag::Name, Path::new(&name)),
            digest_term(i as u64 * 3 + 1),
            digest_term(i as u64 * 3 + 2),
            path_term(Tag::Archive, Path::new(&e.archive)),
        ] {
            assert_eq!(index.lookup(key(&t)).unwrap(), vec![o], "{i} {t:?}");
            assert_eq!(built.lookup(key(&t)).collect::<Vec<_>>(), vec![o]);
        }
        let line = read_line_from(&ledger, o).unwrap().unwrap();
        assert_eq!(parse_line(&line).unwrap(), Line::Archived(e));
    }
    // Not a term of any line; not a line's start.
    assert!(index.lookup(key(&digest_term(0))).unwrap().is_empty());
    assert_eq!(read_line_from(&ledger, offsets[5] + 1).unwrap(), None);
}

#[test]
fn a_missing_stale_or_damaged_table_is_refused_and_a_grown_ledger_is_covered_up_to_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = ledger_of(dir.path(), 50);
    let idx = dir.path().join("2026-11-26.idx");
    let ledger = File::open(&path).unwrap();
    assert!(matches!(Index::open(&idx, &ledger), Err(Unusable::Missing)));
    let bytes = build(&path).to_bytes(&ledger).unwrap();
    write(&idx, &bytes).unwrap();
    let covered = Index::open(&idx, &ledger).unwrap().covered;
    // Grown: still used, for the length it covers.
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    more.write_all(b"{\"v\":3}\n").unwrap();
    assert_eq!(Index::open(&idx, &ledger).unwrap().covered, covered);
    // Every single flipped byte of the header is noticed; a flipped
    // byte among the entries fails its bucket's lookup.
    let header = bytes.len() - build(&path).entries.len() * 16;
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        write(&idx, &bad).unwrap();
        match Index::open(&idx, &ledger) {
            Err(Unusable::Damaged(_) | Unusable::Stale) => assert!(i < header, "{i}"),
            Ok(index) => {
                assert!(i >= header, "{i}");
                let entry = (i - header) / 16;
                let k = u64_at(&bytes, header + entry * 16);
                assert!(matches!(index.lookup(k), Err(Unusable::Damaged(_))), "{i}");
            }
            Err(e) => panic!("{i}: {e}"),
        }
    }
    // Truncated.
    write(&idx, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(
        Index::open(&idx, &ledger),
        Err(Unusable::Damaged(_))
    ));
    // The ledger rewritten (same length, other content at its end),
    // or replaced by another file.
    write(&idx, &bytes).unwrap();
    let mut text = std::fs::read(&path).unwrap();
    let at = covered as usize - 10;
    text[at] = if text[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&path, &text).unwrap();
    assert!(matches!(Index::open(&idx, &ledger), Err(Unusable::Stale)));
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &text).unwrap();
    let other = File::open(&path).unwrap();
    assert!(matches!(Index::open(&idx, &other), Err(Unusable::Stale)));
}

#[test]
fn a_last_line_not_whole_is_not_covered() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = ledger_of(dir.path(), 3);
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"v\":3,\"time\"").unwrap();
    let b = build(&path);
    assert_eq!(b.covered, whole);
    assert_eq!(b.lines, 4);
}
