//! The audit in bounded memory against the map of every entry it
//! replaced (kept here as the reference), on a planted mix of every kind
//! of finding, with budgets that keep everything in memory and that spill
//! every item to its own run.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::ledger::Record;

/// The audit as it was before it streamed (design §4.7): every entry in
/// a map, the findings in vectors. The reference the streamed audit must
/// agree with.
fn audit_in_memory(archive: &Path, threads: usize) -> Findings {
    let mut f = Findings::default();
    let mut recorded: HashMap<PathBuf, Vec<Record>> = HashMap::new();
    for (_, file) in ledger::files(archive).unwrap() {
        ledger::for_each_line_in(&file, |at, line| match line {
            Ok(ledger::Line::Archived(e)) => {
                f.entries += 1;
                recorded.entry(e.archive_path()).or_default().push(e);
            }
            Ok(ledger::Line::Filed(e)) => f
                .fates_without_entry
                .push((e.archive_path(), format!("{}:{}", shown(&file), at.number))),
            Ok(_) => {}
            Err(why) => f
                .unreadable
                .push(format!("{}:{}: {why}", shown(&file), at.number)),
        })
        .unwrap();
    }
    f.fates_without_entry
        .retain(|(archive, _)| !recorded.contains_key(archive));
    let mut on_disk = Vec::new();
    let mut m = archive_files(archive, Budget::default()).unwrap();
    while let Some(p) = m.next().unwrap() {
        on_disk.push(p);
    }
    // Sorted by the reference's own means, not the spill's.
    on_disk.sort();
    for rel in &on_disk {
        if !recorded.contains_key(rel) {
            f.unrecorded.push(rel.clone());
        }
    }
    let present: std::collections::HashSet<&PathBuf> = on_disk.iter().collect();
    let mut work: Vec<(PathBuf, Record)> = Vec::new();
    let mut names: Vec<&PathBuf> = recorded.keys().collect();
    names.sort();
    for rel in names {
        let entries = &recorded[rel];
        if entries.len() > 1 {
            f.doubly_recorded.push(rel.clone());
        }
        if present.contains(rel) {
            work.push((rel.clone(), entries[entries.len() - 1].clone()));
        } else {
            f.missing.push(rel.clone());
        }
    }
    let next = AtomicUsize::new(0);
    let corrupt = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some((rel, entry)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(why) = check(&archive.join(rel), entry) {
                        corrupt.lock().unwrap().push((rel.clone(), why.to_string()));
                    }
                }
            });
        }
    });
    f.corrupt = corrupt.into_inner().unwrap();
    f.corrupt.sort_by(|a, b| a.0.cmp(&b.0));
    f.checked = work.len();
    f.bytes = work.iter().map(|(_, e)| e.archive_size).sum();
    f
}

/// A real archive of `bmp` (under tests/data) and its entry naming
/// `archive` (relative path, any bytes).
fn archived(root: &Path, bmp: &str, archive: &Path, time: &str) -> Record {
    let source = fs::File::open(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(bmp),
    )
    .unwrap();
    let mut rle = Vec::new();
    let o =
        crate::compress::compress(&source, &mut rle, crate::compress::Options::default()).unwrap();
    let path = root.join(archive);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &rle).unwrap();
    let (text, raw) = ledger::path_fields(archive);
    Record {
        v: ledger::VERSION,
        time: time.into(),
        host: "alpha".into(),
        source: bmp.into(),
        source_raw: None,
        source_size: source.metadata().unwrap().len(),
        source_xxh3: ledger::hex(1),
        archive: text,
        archive_raw: raw,
        archive_size: o.bytes_out,
        archive_xxh3: ledger::hex(o.digest),
        width: o.width,
        height: o.height,
        conversion: "dither".into(),
        lossless: o.lossless,
        format: o.format.name().into(),
    }
}

fn line(e: &Record) -> String {
    serde_json::to_string(e).unwrap()
}

fn filed(archive: &str, time: &str) -> String {
    format!(
        r#"{{"kind":"filed","v":3,"time":"{time}","host":"beta","source":"s.bmp","source_xxh3":"0000000000000001","archive":"{archive}","fate":"deleted"}}"#
    )
}

/// An archive with every kind of finding, in two hosts' ledgers over two
/// days, with names that sort differently as bytes and as paths
/// (`a/b.rle`, `a.b/x.rle`), one that is not UTF-8 and one with a quote.
fn planted(root: &Path) {
    let t1 = "2026-11-25T10:00:00Z";
    let t2 = "2026-11-26T10:00:00Z";
    let odd = Path::new(std::ffi::OsStr::from_bytes(b"odd\xff/n\x01.rle"));
    let mut alpha = String::new();
    let mut beta = String::new();
    for (bmp, name) in [
        ("pal1.bmp", "a/b.rle"),
        ("pal8.bmp", "a.b/x.rle"),
        ("rgb24.bmp", "a/b/c.rle"),
        ("pal1wb.bmp", "q\"uote.rle"),
    ] {
        alpha += &(line(&archived(root, bmp, Path::new(name), t1)) + "\n");
    }
    alpha += &(line(&archived(root, "pal4rle.bmp", odd, t1)) + "\n");
    // Corrupt: a byte flipped; cut short; a digest that is not hex.
    let flipped = archived(root, "pal8.bmp", Path::new("c/flipped.rle"), t1);
    let mut bytes = fs::read(root.join("c/flipped.rle")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(root.join("c/flipped.rle"), bytes).unwrap();
    let short = archived(root, "rgb16.bmp", Path::new("c/short.rle"), t1);
    let bytes = fs::read(root.join("c/short.rle")).unwrap();
    fs::write(root.join("c/short.rle"), &bytes[..bytes.len() / 2]).unwrap();
    let mut not_hex = archived(root, "pal1.bmp", Path::new("c/nothex.rle"), t1);
    not_hex.archive_xxh3 = "zz".into();
    for e in [&flipped, &short, &not_hex] {
        alpha += &(line(e) + "\n");
    }
    // Missing: recorded, then removed (one twice: also doubly recorded).
    for name in ["m/gone.rle", "m/gone-twice.rle", "zz.rle"] {
        let e = archived(root, "pal1.bmp", Path::new(name), t1);
        fs::remove_file(root.join(name)).unwrap();
        alpha += &(line(&e) + "\n");
        if name == "m/gone-twice.rle" {
            beta += &(line(&e) + "\n");
        }
    }
    // Doubly recorded: the same entry twice; and three entries, the last
    // of another archive's size (so corrupt by the last one).
    let twice = archived(root, "pal8.bmp", Path::new("d/twice.rle"), t1);
    alpha += &(line(&twice) + "\n");
    beta += &(line(&twice) + "\n");
    let thrice = archived(root, "rgb24.bmp", Path::new("d/thrice.rle"), t1);
    let mut other = thrice.clone();
    other.archive_size += 1;
    alpha += &(line(&thrice) + "\n");
    alpha += &(line(&thrice) + "\n");
    beta += &(line(&other) + "\n");
    // Unrecorded, and files the audit does not look at.
    fs::write(root.join("a/stray.rle"), b"x").unwrap();
    fs::create_dir_all(root.join("u/v")).unwrap();
    fs::write(root.join("u/v/deep.rle"), b"").unwrap();
    fs::write(root.join("u/not-an-archive.txt"), b"x").unwrap();
    fs::create_dir_all(root.join(".rlewatch/claims")).unwrap();
    fs::write(root.join(".rlewatch/claims/x.rle"), b"x").unwrap();
    // Unreadable lines, every kind; event lines; `filed` lines with and
    // without their entry (one before its entry, in another host's file).
    alpha += "not json\n";
    alpha += "{\"v\":9,\"kind\":\"filed\"}\n";
    alpha += "{\"v\":2,\"kind\":\"filed\"}\n";
    alpha += "{\"v\":3,\"kind\":\"bogus\"}\n";
    alpha += "{\"kind\":\"filed\"}\n";
    alpha += &(line(&archived(root, "pal1.bmp", Path::new("n/null.rle"), t1))
        .replace("\"format\":\"bmp\"", "\"format\":null")
        + "\n");
    alpha += &(filed("zz.rle", t2) + "\n");
    alpha += &(filed("no/such.rle", t2) + "\n");
    alpha += &(filed("q\\\"uote.rle", t2) + "\n");
    alpha += "   \n";
    beta = filed("a/b.rle", t1) + "\n" + &filed("never.rle", t1) + "\n" + &beta;
    beta += r#"{"kind":"retried","v":3,"time":"2026-11-25T11:00:00Z","host":"beta","path":"x.bmp","source":"x.bmp"}"#;
    beta += "\n{\"kind\":\"filed\",\"v\":3,\"time\":5}\n";
    // Then the torn last line of a crash, without its newline.
    beta += "{\"v\":3,\"time\":\"2026-11-";
    let ledger = ArchiveLayout::new(root).ledger();
    for (host, day, text) in [
        ("alpha", "2026-11-25", &alpha[..alpha.len() / 2]),
        ("alpha", "2026-11-26", &alpha[alpha.len() / 2..]),
        ("beta", "2026-11-25", &beta[..]),
    ] {
        fs::create_dir_all(ledger.join(host)).unwrap();
        fs::write(ledger.join(host).join(format!("{day}.jsonl")), text).unwrap();
    }
    // Halves cut mid-line: join the two alpha files at a line boundary.
    let a1 = ledger.join("alpha/2026-11-25.jsonl");
    let a2 = ledger.join("alpha/2026-11-26.jsonl");
    let (one, two) = (
        fs::read_to_string(&a1).unwrap(),
        fs::read_to_string(&a2).unwrap(),
    );
    let cut = one.rfind('\n').unwrap() + 1;
    fs::write(&a1, &one[..cut]).unwrap();
    fs::write(&a2, one[cut..].to_string() + &two).unwrap();
}

fn show(f: &Findings) -> String {
    format!("{f:#?}")
}

#[test]
fn the_streamed_audit_finds_what_the_map_of_every_entry_found_at_every_budget() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    fs::create_dir(&root).unwrap();
    planted(&root);
    let reference = audit_in_memory(&root, 2);
    // What was planted, known independently of both audits.
    let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    assert_eq!(
        reference.missing,
        paths(&["m/gone-twice.rle", "m/gone.rle", "zz.rle"])
    );
    assert_eq!(
        reference
            .corrupt
            .iter()
            .map(|c| c.0.clone())
            .collect::<Vec<_>>(),
        paths(&[
            "c/flipped.rle",
            "c/nothex.rle",
            "c/short.rle",
            "d/thrice.rle"
        ])
    );
    assert_eq!(
        reference.unrecorded,
        paths(&["a/stray.rle", "n/null.rle", "u/v/deep.rle"])
    );
    assert_eq!(
        reference.doubly_recorded,
        paths(&["d/thrice.rle", "d/twice.rle", "m/gone-twice.rle"])
    );
    assert_eq!(reference.unreadable.len(), 8, "{:#?}", reference.unreadable);
    assert_eq!(
        reference
            .fates_without_entry
            .iter()
            .map(|f| f.0.clone())
            .collect::<Vec<_>>(),
        paths(&["no/such.rle", "never.rle"])
    );
    // a/b.rle, a/b/c.rle, a.b/x.rle, q"uote.rle, the odd name, d/twice.rle
    // and the corrupt four.
    assert_eq!(reference.checked, 10);
    assert_eq!(reference.entries, 17);

    for budget in [
        Budget::default(),
        Budget {
            bytes: 1,
            fan_in: 2,
        },
        Budget {
            bytes: 200,
            fan_in: 3,
        },
    ] {
        for threads in [1, 3] {
            let streamed = audit_within(&root, threads, false, budget)
                .unwrap()
                .findings()
                .unwrap();
            assert_eq!(
                show(&streamed),
                show(&reference),
                "{budget:?}, {threads} thread(s)"
            );
        }
    }
}

#[test]
fn the_printed_report_lists_every_finding_then_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    fs::create_dir(&root).unwrap();
    planted(&root);
    let reference = audit_in_memory(&root, 2);
    let report = audit_within(
        &root,
        2,
        false,
        Budget {
            bytes: 1,
            fan_in: 2,
        },
    )
    .unwrap();
    assert!(!report.clean());
    let mut out = Vec::new();
    print(&mut out, report, 1.0).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut expected: Vec<String> = Vec::new();
    for rel in &reference.missing {
        expected.push(format!(
            "missing: {} (recorded in the ledger, not in the archive)",
            shown(rel)
        ));
    }
    for (rel, why) in &reference.corrupt {
        expected.push(format!("corrupt: {}: {why}", shown(rel)));
    }
    for rel in &reference.unrecorded {
        expected.push(format!("unrecorded: {} (no ledger entry)", shown(rel)));
    }
    for rel in &reference.doubly_recorded {
        expected.push(format!(
            "doubly recorded: {} (more than one ledger entry)",
            shown(rel)
        ));
    }
    for l in &reference.unreadable {
        expected.push(format!("unreadable ledger line: {l}"));
    }
    for (rel, at) in &reference.fates_without_entry {
        expected.push(format!(
            "fate without entry: {} (the `filed` line at {at} names it; no archived entry does: \
             a ledger file missing or moved away?)",
            shown(rel)
        ));
    }
    let n = expected.len();
    assert_eq!(
        lines[..n],
        expected.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert_eq!(
        lines[n..],
        [
            format!(
                "audited 10 recorded archive(s), {} bytes, against 17 ledger entries in 1.00 s\
                 {}: 3 missing, 4 corrupt, 3 unrecorded, 3 doubly recorded, 8 unreadable \
                 ledger line(s)",
                reference.bytes,
                rate(reference.bytes, 1.0)
            ),
            "and 2 `filed` line(s) naming no archived entry".to_string()
        ]
    );
}

#[test]
fn blocks_of_lines_are_the_lines_the_ledger_reader_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.jsonl");
    // Lines longer than a block, blank lines, a block boundary inside a
    // line, a torn last line.
    let long = "x".repeat(BLOCK * 2 + 17);
    let mut text = String::from("{\"v\":1}\n\n  \n");
    for i in 0..40_000 {
        text += &format!("line {i}\n");
    }
    text += &long;
    text += "\n\r\nnot json\n";
    text += &long;
    text += "\n{\"v\":3,\"time\":\"torn";
    fs::write(&path, &text).unwrap();
    let mut expected = Vec::new();
    ledger::for_each_raw_line_in(&path, |at, line| {
        expected.push(format!(
            "{}: {:?}",
            at.number,
            ledger::parse_for_audit(line)
        ));
    })
    .unwrap();
    let mut got = Vec::new();
    let mut blocks = 0;
    read_blocks(&path, |b| {
        blocks += 1;
        for (n, line) in parse_block(&b) {
            got.push(format!("{n}: {line:?}"));
        }
    })
    .unwrap();
    assert!(blocks >= 3, "{blocks} block(s)");
    // `{"v":1}`, 40,000 lines, two long ones, `not json`, the torn one
    // (blank lines, `\r` among them, are skipped).
    assert_eq!(expected.len(), 1 + 40_000 + 2 + 1 + 1);
    assert_eq!(got, expected);
}
