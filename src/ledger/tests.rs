//! Tests of the ledger: lookups after reopening, torn lines, exact names,
//! concurrent appends.

use super::record::path_of;
use super::*;

fn entry(source: &str, digest: u64, archive: &str, time: &str) -> Record {
    Record {
        v: VERSION,
        time: time.into(),
        host: "h".into(),
        source: source.into(),
        source_raw: None,
        source_size: 10,
        source_xxh3: hex(digest),
        archive: archive.into(),
        archive_raw: None,
        archive_size: 5,
        archive_xxh3: hex(7),
        width: 1,
        height: 1,
        conversion: "dither".into(),
        lossless: true,
        format: "bmp".into(),
    }
}

#[test]
fn entries_are_found_by_path_size_and_digest_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    l.append(&entry("a/x.bmp", 1, "a/x.rle", "2026-11-25T23:59:59Z"))
        .unwrap();
    l.append(&entry("a/x.bmp", 2, "a/x-1.rle", "2026-11-26T00:00:01Z"))
        .unwrap();
    // A day per file.
    let files = files(dir.path()).unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0].1.ends_with("h/2026-11-25.jsonl"));
    let again = Ledger::open(dir.path(), "other").unwrap();
    assert_eq!(
        again.find(Path::new("a/x.bmp"), 10, 1),
        Some(path_hash(Path::new("a/x.rle")))
    );
    assert_eq!(
        again.find(Path::new("a/x.bmp"), 10, 2),
        Some(path_hash(Path::new("a/x-1.rle")))
    );
    assert_eq!(again.find(Path::new("a/x.bmp"), 10, 3), None);
    assert_eq!(again.find(Path::new("b/x.bmp"), 10, 1), None);
    assert_eq!(again.find(Path::new("a/x.bmp"), 11, 1), None);
    assert!(again.records_archive(Path::new("a/x-1.rle")));
    assert!(!again.records_archive(Path::new("a/x-2.rle")));
}

#[test]
fn a_torn_last_line_does_not_swallow_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    l.append(&entry("x.bmp", 1, "x.rle", "2026-11-26T10:00:00Z"))
        .unwrap();
    drop(l);
    let path = ArchiveLayout::new(dir.path())
        .ledger()
        .join("h/2026-11-26.jsonl");
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{\"v\":1,\"time\":\"2026-").unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    l.append(&entry("y.bmp", 2, "y.rle", "2026-11-26T10:00:01Z"))
        .unwrap();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for_each_record(&path, |n, e| match e {
        Ok(e) => good.push(e.source),
        Err(_) => bad.push(n),
    })
    .unwrap();
    assert_eq!(good, ["x.bmp", "y.bmp"]);
    assert_eq!(bad, [2]);
}

#[test]
fn names_that_are_not_utf8_are_kept_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let p = Path::new(std::ffi::OsStr::from_bytes(b"sub/bad\xffname.bmp"));
    let (text, raw) = path_fields(p);
    assert_eq!(text, "sub/bad\u{fffd}name.bmp");
    assert_eq!(path_of(&text, raw.as_deref()), p);
    assert_eq!(path_fields(Path::new("a/b.bmp")), ("a/b.bmp".into(), None));
}

#[test]
fn concurrent_appends_are_all_kept_and_made_durable_together() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    std::thread::scope(|sc| {
        for t in 0..8 {
            let l = &l;
            sc.spawn(move || {
                for i in 0..50 {
                    let name = format!("{t}-{i}.bmp");
                    l.append(&entry(&name, i, &name, "2026-11-26T10:00:00Z"))
                        .unwrap();
                }
            });
        }
    });
    let g = l.syncs.lock().unwrap();
    assert_eq!((g.written, g.durable, g.busy), (400, 400, false));
    drop(g);
    let mut n = 0;
    for_each_record(
        &ArchiveLayout::new(dir.path())
            .ledger()
            .join("h/2026-11-26.jsonl"),
        |_, e| {
            e.unwrap();
            n += 1;
        },
    )
    .unwrap();
    assert_eq!(n, 400);
}

#[test]
fn only_the_newest_entries_are_remembered() {
    let mut s = State::default();
    for i in 0..INDEX_MAX + 3 {
        s.remember(&entry(&format!("{i}.bmp"), 1, "x.rle", "t"));
    }
    assert_eq!(s.index.len(), INDEX_MAX);
    assert!(!s.index.contains_key(&key(Path::new("0.bmp"), 10, 1)));
    let newest = format!("{}.bmp", INDEX_MAX + 2);
    assert!(s.index.contains_key(&key(Path::new(&newest), 10, 1)));
}

#[test]
fn an_archive_is_recorded_while_an_entry_in_memory_names_it_and_no_longer() {
    let mut s = State::default();
    let recorded = |s: &State, a: &str| s.archives.contains_key(&path_hash(Path::new(a)));
    // The same source archived again under a new name: the old name is no
    // longer this daemon's record of it; two sources on one archive keep it.
    s.remember(&entry("a.bmp", 1, "a.rle", "t"));
    s.remember(&entry("b.bmp", 2, "shared.rle", "t"));
    s.remember(&entry("c.bmp", 3, "shared.rle", "t"));
    s.remember(&entry("a.bmp", 1, "a-1.rle", "t"));
    assert!(!recorded(&s, "a.rle"));
    assert!(recorded(&s, "a-1.rle"));
    s.remember(&entry("b.bmp", 2, "b.rle", "t"));
    assert!(recorded(&s, "shared.rle"), "still named by c.bmp's entry");
    s.remember(&entry("c.bmp", 3, "c.rle", "t"));
    assert!(!recorded(&s, "shared.rle"));
    // Entries pushed out of memory take their archives with them.
    let mut s = State::default();
    for i in 0..INDEX_MAX + 3 {
        s.remember(&entry(&format!("{i}.bmp"), 1, &format!("{i}.rle"), "t"));
    }
    assert_eq!(s.archives.len(), INDEX_MAX);
    assert!(!recorded(&s, "0.rle"));
    assert!(recorded(&s, &format!("{}.rle", INDEX_MAX + 2)));
}

#[test]
fn a_refresh_reads_another_hosts_newest_day_files() {
    let t = tempfile::tempdir().unwrap();
    let ours = Ledger::open(t.path(), "h1").unwrap();
    // Another host's ledger, written after this one was opened: three
    // day files, the entry in the newest.
    let theirs = ArchiveLayout::new(t.path()).ledger().join("h2");
    fs::create_dir_all(&theirs).unwrap();
    let line = |e: &Record| format!("{}\n", serde_json::to_string(e).unwrap());
    for (day, e) in [
        ("2026-01-01", entry("old.bmp", 1, "old.rle", "t")),
        ("2026-01-02", entry("older.bmp", 2, "older.rle", "t")),
        ("2026-01-03", entry("new.bmp", 3, "new.rle", "t")),
    ] {
        fs::write(theirs.join(format!("{day}.jsonl")), line(&e)).unwrap();
    }
    assert_eq!(ours.find(Path::new("new.bmp"), 10, 3), None);
    ours.refresh();
    assert_eq!(
        ours.find(Path::new("new.bmp"), 10, 3),
        Some(path_hash(Path::new("new.rle")))
    );
    assert!(ours.records_archive(Path::new("new.rle")));
}

/// `e` as a ledger line.
fn line(e: &Record) -> String {
    format!("{}\n", serde_json::to_string(e).unwrap())
}

#[test]
fn a_line_being_appended_is_read_once_it_is_whole_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-11-26.jsonl");
    let a = entry("a.bmp", 1, "a.rle", "2026-11-26T10:00:00Z");
    let b = entry("b.bmp", 2, "b.rle", "2026-11-26T10:00:01Z");
    let (la, lb) = (line(&a), line(&b));
    // Another host's daemon is half-way through appending b.
    let half = lb.len() / 2;
    fs::write(&path, format!("{la}{}", &lb[..half])).unwrap();
    let (got, offset) = read_from(&path, 0).unwrap();
    assert_eq!(got, vec![a]);
    assert_eq!(offset, la.len() as u64);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&lb.as_bytes()[half..]).unwrap();
    let (got, end) = read_from(&path, offset).unwrap();
    assert_eq!(got, vec![b]);
    assert_eq!(end, (la.len() + lb.len()) as u64);
}

#[test]
fn lines_of_another_format_version_or_none_are_skipped_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-11-26.jsonl");
    let good = entry("a.bmp", 1, "a.rle", "2026-11-26T10:00:00Z");
    let mut later = serde_json::to_value(&good).unwrap();
    later["v"] = (VERSION + 1).into();
    let mut none = later.clone();
    none.as_object_mut().unwrap().remove("v");
    fs::write(&path, format!("{later}\n{none}\n{}", line(&good))).unwrap();
    assert_eq!(read_from(&path, 0).unwrap().0, vec![good]);
}

#[test]
fn a_ledger_folder_that_cannot_be_read_is_an_error_and_a_missing_one_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert!(files(dir.path()).unwrap().is_empty());
    // Where the ledger's folder should be there is a file: not "no ledger
    // yet", which would let files archived before be archived again.
    fs::create_dir_all(ArchiveLayout::new(dir.path()).ledger().parent().unwrap()).unwrap();
    fs::write(ArchiveLayout::new(dir.path()).ledger(), b"").unwrap();
    let e = files(dir.path()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{e}");
}

/// `append` returns only once its line is durable (the original is filed
/// away right after): an fsync of the day file holding the line, for the
/// first line of a day (a new file) and for the next one.
#[test]
fn an_append_returns_once_its_line_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    for (i, source) in ["a.bmp", "b.bmp"].into_iter().enumerate() {
        let e = entry(
            source,
            i as u64,
            &source.replace(".bmp", ".rle"),
            "2026-01-02T03:04:05Z",
        );
        let (appended, journal) = crate::durable::tests::recording(|| l.append(&e));
        appended.unwrap();
        let line = line(&e);
        crate::durable::tests::first(&journal, &format!("the line for {source}"), |s| {
            s.path.extension().is_some_and(|x| x == "jsonl") && s.bytes.ends_with(line.as_bytes())
        });
    }
}

#[test]
fn a_version_1_line_is_read_as_a_bmp_source_beside_version_2_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-11-26.jsonl");
    // A line as version 1 wrote it (no `format`), spelled out by hand.
    let v1 = r#"{"v":1,"time":"2026-11-26T10:00:00Z","host":"h","source":"a.bmp","source_size":10,"source_xxh3":"0000000000000001","archive":"a.rle","archive_size":5,"archive_xxh3":"0000000000000007","width":1,"height":1,"conversion":"dither","lossless":true}"#;
    let mut png = entry("b.png", 2, "b.rle", "2026-11-26T10:00:01Z");
    png.format = "png".into();
    png.v = 2;
    fs::write(&path, format!("{v1}\n{}", line(&png))).unwrap();
    let got = read_from(&path, 0).unwrap().0;
    let mut want_v1 = entry("a.bmp", 1, "a.rle", "2026-11-26T10:00:00Z");
    want_v1.v = 1;
    assert_eq!(got, vec![want_v1, png]);
    assert!(line(&got[1]).contains(r#""v":2"#), "{}", line(&got[1]));
    assert!(
        line(&got[1]).contains(r#""format":"png""#),
        "{}",
        line(&got[1])
    );
}

/// Version-3 event lines, spelled out by hand as design §4.7 gives them.
const FILED: &str = r#"{"v":3,"kind":"filed","time":"2026-11-26T10:00:02Z","host":"h","source":"a.bmp","source_xxh3":"0000000000000001","archive":"a.rle","fate":"done","path":"a-2.bmp"}"#;
const QUARANTINED: &str = r#"{"v":3,"kind":"quarantined","time":"2026-11-26T10:00:03Z","host":"h","source":"c/bad.bmp","source_size":4,"path":"c/bad.bmp","reason":"not an image","class":"not_an_image","attempts":1}"#;
const REMOVED: &str = r#"{"v":3,"kind":"removed","time":"2026-11-26T10:00:04Z","host":"h","what":"done","path":"a-2.bmp","source_xxh3":"0000000000000001","why":"older than 30 days"}"#;
const RETRIED: &str = r#"{"v":3,"kind":"retried","time":"2026-11-26T10:00:05Z","host":"h","path":"c/bad.bmp","source":"c/bad.bmp"}"#;

#[test]
fn every_kind_of_version_3_line_is_read_beside_versions_1_and_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-11-26.jsonl");
    let v1 = r#"{"v":1,"time":"2026-11-26T10:00:00Z","host":"h","source":"a.bmp","source_size":10,"source_xxh3":"0000000000000001","archive":"a.rle","archive_size":5,"archive_xxh3":"0000000000000007","width":1,"height":1,"conversion":"dither","lossless":true}"#;
    let mut v2 = entry("b.png", 2, "b.rle", "2026-11-26T10:00:01Z");
    v2.v = 2;
    let v3 = entry("d.bmp", 3, "d.rle", "2026-11-26T10:00:06Z");
    fs::write(
        &path,
        format!(
            "{v1}\n{}{FILED}\n{QUARANTINED}\n{REMOVED}\n{RETRIED}\n{}",
            line(&v2),
            line(&v3)
        ),
    )
    .unwrap();
    let mut kinds = Vec::new();
    let mut offsets = Vec::new();
    for_each_line_in(&path, |at, l| {
        let l = l.unwrap();
        kinds.push(l.kind());
        offsets.push((at.number, at.offset, at.len));
    })
    .unwrap();
    assert_eq!(
        kinds,
        [
            "archived",
            "archived",
            "filed",
            "quarantined",
            "removed",
            "retried",
            "archived"
        ]
    );
    // Offsets and lengths point at each line exactly.
    let text = fs::read(&path).unwrap();
    let file = File::open(&path).unwrap();
    for (n, offset, len) in offsets {
        let want = text.split(|&b| b == b'\n').nth(n - 1).unwrap();
        assert_eq!(&text[offset as usize..offset as usize + len], want);
        assert_eq!(
            read_line_at(&file, offset, len).unwrap().as_deref(),
            Some(want)
        );
    }
    // Not a line's start: no line.
    assert_eq!(read_line_at(&file, 1, 5).unwrap(), None);
    // The records' readers see the archived entries only, events are not
    // "unreadable".
    let mut records = Vec::new();
    for_each_record(&path, |_, e| records.push(e.unwrap().source)).unwrap();
    assert_eq!(records, ["a.bmp", "b.png", "d.bmp"]);
    assert_eq!(read_from(&path, 0).unwrap().0.len(), 3);
    // The fields, typed.
    let Ok(Line::Filed(f)) = parse_line(FILED.as_bytes()) else {
        panic!()
    };
    assert_eq!(f.fate, Fate::Done);
    assert_eq!(f.done_path(), Some(PathBuf::from("a-2.bmp")));
    let Ok(Line::Quarantined(q)) = parse_line(QUARANTINED.as_bytes()) else {
        panic!()
    };
    assert_eq!(
        (q.class, q.source_xxh3, q.attempts),
        (ReasonClass::NotAnImage, None, 1)
    );
}

#[test]
fn an_event_line_round_trips_and_is_appended_without_disturbing_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), "h").unwrap();
    let e = entry("a.bmp", 1, "a.rle", "2026-11-26T10:00:00Z");
    l.append(&e).unwrap();
    for text in [FILED, QUARANTINED, REMOVED, RETRIED] {
        let parsed = parse_line(text.as_bytes()).unwrap();
        // Written back, it parses to the same line (field order aside).
        let again = parsed.to_json().unwrap();
        assert_eq!(parse_line(&again).unwrap(), parsed);
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&again).unwrap();
        assert_eq!(a, b);
        l.append_event(&parsed).unwrap();
    }
    let files = files(dir.path()).unwrap();
    assert_eq!(files.len(), 1);
    let written = fs::read_to_string(&files[0].1).unwrap();
    assert_eq!(written.lines().count(), 5);
    let again = Ledger::open(dir.path(), "other").unwrap();
    assert_eq!(
        again.find(Path::new("a.bmp"), 10, 1),
        Some(path_hash(Path::new("a.rle")))
    );
}

#[test]
fn a_kind_in_an_older_version_or_an_unknown_kind_is_an_error_that_says_so() {
    let v2 = FILED.replace(r#""v":3"#, r#""v":2"#);
    let e = parse_line(v2.as_bytes()).unwrap_err();
    assert!(matches!(e, LineError::UnknownKind { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        r#"a line of kind "filed" in ledger version 2"#
    );
    let other = FILED.replace("filed", "shredded");
    let e = parse_line(other.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("shredded"), "{e}");
    // A later version: unknown, whatever its kind.
    let v4 = FILED.replace(r#""v":3"#, r#""v":4"#);
    assert!(matches!(
        parse_line(v4.as_bytes()).unwrap_err(),
        LineError::UnknownVersion(4)
    ));
    // A filed line missing its fate, or with an unknown one.
    let bad = FILED.replace(r#","fate":"done""#, "");
    let e = parse_line(bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("fate"), "{e}");
    let bad = FILED.replace(r#""fate":"done""#, r#""fate":"eaten""#);
    assert!(matches!(
        parse_line(bad.as_bytes()),
        Err(LineError::Json(_))
    ));
    // Not JSON; JSON without a version.
    assert!(matches!(parse_line(b"{\"v\":3,"), Err(LineError::Json(_))));
    assert!(matches!(parse_line(b"{}"), Err(LineError::NoVersion)));
}

#[test]
fn the_tail_of_a_large_day_file_is_its_newest_lines_read_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2026-11-26.jsonl");
    // More than one 256 KiB block, a torn last line, an unreadable line
    // among the newest.
    let all: Vec<Record> = (0..3000)
        .map(|i| entry(&format!("{i}.bmp"), i, "x.rle", "2026-11-26T10:00:00Z"))
        .collect();
    // Each entry followed by an event line (ledger v3: where its original
    // went), which is not an entry and does not count towards `max`.
    let filed = |e: &Record| {
        format!(
            "{{\"v\":3,\"kind\":\"filed\",\"time\":\"{}\",\"host\":\"h\",\"source\":\"{}\",\"source_xxh3\":\"{}\",\"archive\":\"{}\",\"fate\":\"deleted\"}}\n",
            e.time, e.source, e.source_xxh3, e.archive
        )
    };
    let mut text: String = all.iter().map(|e| line(e) + &filed(e)).collect();
    text.push_str("not json\n");
    let whole = text.len() as u64;
    text.push_str(&line(&all[0])[..20]);
    fs::write(&path, &text).unwrap();
    for max in [1, 10, 2999, 3000, 5000] {
        let (got, end) = read_tail(&path, max).unwrap();
        assert_eq!(end, whole, "max {max}");
        assert_eq!(got, all[3000 - max.min(3000)..], "max {max}");
    }
    assert_eq!(read_from(&path, 0).unwrap(), (all, whole));
    assert!(matches!(
        parse_line(filed(&entry("a", 1, "a.rle", "t")).trim_end().as_bytes()),
        Ok(Line::Filed(_))
    ));
    let empty = dir.path().join("2026-11-27.jsonl");
    fs::write(&empty, "").unwrap();
    assert_eq!(read_tail(&empty, 4).unwrap(), (vec![], 0));
}

#[test]
fn a_refresh_after_the_start_does_not_read_a_day_file_older_than_the_entries_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join(".rlewatch/ledger/h");
    fs::create_dir_all(&host).unwrap();
    // Yesterday's file, then today's with more than INDEX_MAX entries:
    // the start reads only the end of today's.
    let old = entry("old.bmp", 1, "old.rle", "2026-11-25T10:00:00Z");
    fs::write(host.join("2026-11-25.jsonl"), line(&old)).unwrap();
    let today: String = (0..INDEX_MAX as u64 + 1)
        .map(|i| {
            line(&entry(
                &format!("{i}.bmp"),
                i,
                "x.rle",
                "2026-11-26T10:00:00Z",
            ))
        })
        .collect();
    fs::write(host.join("2026-11-26.jsonl"), today).unwrap();
    let l = Ledger::open(dir.path(), "other").unwrap();
    l.refresh();
    assert_eq!(l.find(Path::new("old.bmp"), 10, 1), None);
    assert!(l.find(Path::new("1.bmp"), 10, 1).is_some());
    // What is appended to yesterday's file later is read.
    let late = entry("late.bmp", 2, "late.rle", "2026-11-25T23:59:59Z");
    let mut f = OpenOptions::new()
        .append(true)
        .open(host.join("2026-11-25.jsonl"))
        .unwrap();
    f.write_all(line(&late).as_bytes()).unwrap();
    l.refresh();
    assert!(l.find(Path::new("late.bmp"), 10, 2).is_some());
}

/// `parse_for_audit` reads archived and `filed` lines through borrowed
/// views: on every shape of line it must answer as `parse_line` does.
#[test]
fn the_audits_reading_of_a_line_is_parse_lines() {
    use std::os::unix::ffi::OsStrExt;
    let e = entry("a/x.bmp", 1, "a/x.rle", "2026-11-26T00:00:01Z");
    let good = serde_json::to_string(&e).unwrap();
    let mut not_hex = e.clone();
    not_hex.archive_xxh3 = "xyz".into();
    let mut raw = e.clone();
    (raw.archive, raw.archive_raw) =
        path_fields(Path::new(std::ffi::OsStr::from_bytes(b"r\xff.rle")));
    let filed = r#"{"kind":"filed","v":3,"time":"t","host":"h","source":"s","source_xxh3":"00","archive":"a/x.rle","fate":"done","path":"d/x.bmp"}"#;
    let lines: Vec<String> = vec![
        good.clone(),
        serde_json::to_string(&not_hex).unwrap(),
        serde_json::to_string(&raw).unwrap(),
        good.replace("a/x.rle", "a/\\u0078.rle"),
        good.replace("\"format\":\"bmp\"", "\"format\":null"),
        good.replace(",\"format\":\"bmp\"", ""),
        good.replace("\"format\":\"bmp\"", "\"format\":\"tiff\""),
        good.replace("\"format\":\"bmp\"", "\"format\":\"nope\""),
        good.replace("\"v\":3", "\"v\":1"),
        good.replace("\"v\":3", "\"v\":4"),
        good.replace("\"v\":3", "\"v\":-1"),
        good.replace("\"width\":1", "\"width\":\"1\""),
        good.replace("\"lossless\":true", "\"lossless\":true,\"extra\":1"),
        good.replace("\"lossless\":true", "\"lossless\":true,\"lossless\":true"),
        good.replace("\"source_raw\"", "\"x\"") + " ",
        good.clone() + "x",
        filed.to_string(),
        filed.replace("\"v\":3", "\"v\":2"),
        filed.replace("\"v\":3", "\"v\":4"),
        filed.replace("\"done\"", "\"lost\""),
        filed.replace("\"path\":\"d/x.bmp\"", "\"path\":null"),
        filed.replace("a/x.rle", "a/\\\"x.rle"),
        filed.replace("\"fate\"", "\"archive_raw\":\"72ff\",\"fate\""),
        filed.replace("\"fate\"", "\"extra\":1,\"fate\""),
        filed.replace("\"filed\"", "\"bogus\""),
        filed.replace("\"kind\":\"filed\",", ""),
        r#"{"kind":"retried","v":3,"time":"t","host":"h","path":"x.bmp","source":"x.bmp"}"#
            .to_string(),
        "{}".to_string(),
        "nonsense".to_string(),
        "{\"v\":3,\"time\":\"2026".to_string(),
    ];
    for line in &lines {
        let expected = match parse_line(line.as_bytes()) {
            Ok(Line::Archived(e)) => Ok(AuditLine::Archived(Checked::of(&e))),
            Ok(Line::Filed(f)) => Ok(AuditLine::Filed(f.archive_path())),
            Ok(_) => Ok(AuditLine::Other),
            Err(e) => Err(e.to_string()),
        };
        let got = parse_for_audit(line.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(got, expected, "{line}");
    }
    // What they read, known from the lines themselves.
    let Ok(AuditLine::Archived(c)) = parse_for_audit(lines[2].as_bytes()) else {
        panic!("not an entry");
    };
    assert_eq!(c.archive.as_os_str().as_bytes(), b"r\xff.rle");
    assert_eq!(c.archive_xxh3, Ok(7));
    assert!(
        matches!(parse_for_audit(lines[1].as_bytes()), Ok(AuditLine::Archived(c)) if c.archive_xxh3 == Err("xyz".into()))
    );
    assert!(
        matches!(parse_for_audit(lines[6].as_bytes()), Ok(AuditLine::Archived(c)) if c.format == crate::formats::Format::Tiff)
    );
    assert_eq!(
        parse_for_audit(lines[22].as_bytes()).unwrap(),
        AuditLine::Filed(PathBuf::from(std::ffi::OsStr::from_bytes(b"r\xff")))
    );
}
