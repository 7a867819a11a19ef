//! `rlewatch where` through the real binary (docs/guide.md, "Finding a
//! file"): an archived file found by name, relative and absolute path,
//! glob and either digest, with the exact done/ path its ledger line
//! records; a quarantined file with its reason; a file waiting; a claim of
//! a dead host; the index missing or damaged (same answer); an unreadable
//! ledger line (named, the rest still shown); `--verify` on a damaged
//! archive; ledger lines of versions 1 and 2; the exit codes.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::{Daemon, FAST, LONG, bin, data, ledger, stderr, wait_until};

/// `rlewatch where -c CONFIG ARGS…` for the daemon's folders.
fn locate(d: &Daemon, args: &[&str]) -> Output {
    bin()
        .arg("where")
        .arg("-c")
        .arg(d.path("config.toml"))
        .args(args)
        .output()
        .expect("spawn rlewatch")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// XXH3-64 of a file's bytes, as the ledger writes digests.
fn xxh3_of(p: &Path) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&fs::read(p).unwrap()))
}

/// A daemon that archived `sub/a.bmp` while `done/sub/a.bmp` was taken
/// (so its original went to `done/sub/a-1.bmp`, its archive is
/// `sub/a.rle`), and quarantined `bad/x.bmp`; stopped, so the tests see a
/// still ledger (they also run beside a live daemon: see the first test).
fn archived_and_quarantined() -> Daemon {
    let mut d = Daemon::start(FAST);
    fs::create_dir_all(d.path("done/sub")).unwrap();
    fs::write(d.path("done/sub/a.bmp"), b"someone else's").unwrap();
    fs::create_dir_all(d.inbox().join("sub")).unwrap();
    fs::create_dir_all(d.inbox().join("bad")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("sub/a.bmp")).unwrap();
    fs::write(d.inbox().join("bad/x.bmp"), b"hello, not an image").unwrap();
    let archive = d.path("archive");
    assert!(
        wait_until(LONG, || ledger::events(&archive).len() >= 2),
        "{}",
        d.log()
    );
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    d
}

#[test]
fn the_ledger_records_the_exact_done_path_and_each_quarantine() {
    let d = archived_and_quarantined();
    let events = ledger::events(&d.path("archive"));
    let filed = events.iter().find(|e| e["kind"] == "filed").unwrap();
    assert_eq!(filed["v"], 3);
    assert_eq!(filed["source"], "sub/a.bmp");
    assert_eq!(filed["archive"], "sub/a.rle");
    assert_eq!(filed["fate"], "done");
    assert_eq!(filed["path"], "sub/a-1.bmp");
    assert_eq!(
        filed["source_xxh3"],
        xxh3_of(&d.path("done/sub/a-1.bmp")).as_str()
    );
    let q = events.iter().find(|e| e["kind"] == "quarantined").unwrap();
    assert_eq!(q["source"], "bad/x.bmp");
    assert_eq!(q["path"], "bad/x.bmp");
    assert_eq!(q["class"], "not_an_image");
    assert_eq!(q["attempts"], 1);
    assert_eq!(q["source_size"], 19);
    assert_eq!(
        q["source_xxh3"],
        xxh3_of(&d.path("failed/bad/x.bmp")).as_str()
    );
    // `audit` reads the new lines as what they are: clean.
    let audit = bin()
        .args(["audit"])
        .arg(d.path("archive"))
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", stdout(&audit));
    assert!(
        stdout(&audit).contains("0 unreadable"),
        "{}",
        stdout(&audit)
    );
}

#[test]
fn an_archived_file_is_found_by_name_path_glob_and_either_digest() {
    let d = archived_and_quarantined();
    let done = d.path("done/sub/a-1.bmp");
    let rle = d.path("archive/sub/a.rle");
    let abs = d.inbox().join("sub/a.bmp");
    for q in [
        "a.bmp",
        "sub/a.bmp",
        "./sub/a.bmp",
        abs.to_str().unwrap(),
        "sub/*.bmp",
        "a.[b]mp",
        &xxh3_of(&done),
        &xxh3_of(&rle),
        rle.to_str().unwrap(),
        done.to_str().unwrap(),
    ] {
        let o = locate(&d, &[q]);
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{q}: {text}{}", stderr(&o));
        assert!(text.starts_with("sub/a.bmp\n"), "{q}: {text}");
        assert!(
            text.contains("archived by ") && text.contains(rle.to_str().unwrap()),
            "{q}: {text}"
        );
        assert!(
            text.contains(&format!("now: original in {}", done.display())),
            "{q}: {text}"
        );
        assert!(!text.contains("x.bmp"), "{q}: {text}");
    }
    // One JSON document.
    let o = locate(&d, &["--json", "a.bmp"]);
    let v = json(&o);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{v}");
    assert_eq!(files[0]["source"], "sub/a.bmp");
    assert_eq!(files[0]["now"]["state"], "done");
    assert_eq!(files[0]["now"]["path"], done.to_str().unwrap());
    assert_eq!(files[0]["now"]["present"], true);
    let kinds: Vec<&str> = files[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["archived", "filed"]);
    // A glob for every .bmp: both files.
    let v = json(&locate(&d, &["--json", "*.bmp"]));
    let sources: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["bad/x.bmp", "sub/a.bmp"]);
}

#[test]
fn a_quarantined_file_shows_where_it_is_and_why() {
    let d = archived_and_quarantined();
    let o = locate(&d, &["x.bmp"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let failed = d.path("failed/bad/x.bmp");
    assert!(text.contains("quarantined by "), "{text}");
    assert!(text.contains("class not_an_image, attempt 1"), "{text}");
    assert!(
        text.contains(&format!(
            "now: in the failed folder: {}: not an image",
            failed.display()
        )),
        "{text}"
    );
    let v = json(&locate(&d, &["--json", "bad/x.bmp"]));
    assert_eq!(v["files"][0]["now"]["state"], "failed");
    assert_eq!(v["files"][0]["seen"][0]["where"], "failed");
    assert!(
        v["files"][0]["seen"][0]["note"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not an image"),
        "{v}"
    );
}

#[test]
fn a_waiting_file_and_a_dead_hosts_claim_are_found_without_a_daemon() {
    let d = archived_and_quarantined();
    fs::write(d.inbox().join("w.bmp"), b"still being scanned").unwrap();
    let claims = d.inbox().join(".rlewatch/claims/gone-host/sub");
    fs::create_dir_all(&claims).unwrap();
    fs::write(claims.join("c.bmp"), b"half done").unwrap();
    let o = locate(&d, &["w.bmp", "sub/c.bmp"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "now: waiting in the inbox: {} (19 bytes",
            d.inbox().join("w.bmp").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("now: claimed by host gone-host since "),
        "{text}"
    );
    assert!(text.contains("it has no heartbeat"), "{text}");
    let v = json(&locate(&d, &["--json", "c.bmp"]));
    assert_eq!(v["files"][0]["seen"][0]["where"], "claim");
    assert_eq!(v["files"][0]["seen"][0]["host"], "gone-host");
}

#[test]
fn a_missing_or_damaged_index_gives_the_same_answer() {
    let d = archived_and_quarantined();
    let rle = d.path("archive/sub/a.rle");
    let queries = ["a.bmp", "bad/x.bmp", &xxh3_of(&rle)];
    let index = d.path("archive/.rlewatch/index");
    // The first query builds the tables.
    let first: Vec<String> = queries.iter().map(|q| stdout(&locate(&d, &[q]))).collect();
    let tables = tables_below(&index);
    assert!(!tables.is_empty(), "no index written");
    assert!(
        tables
            .iter()
            .all(|t| t.extension().is_some_and(|x| x == "idx"))
    );
    let again: Vec<String> = queries.iter().map(|q| stdout(&locate(&d, &[q]))).collect();
    assert_eq!(first, again);
    // Missing.
    fs::remove_dir_all(&index).unwrap();
    let o = locate(&d, &["--json", "a.bmp"]);
    assert_eq!(json(&o)["ledger_files"]["scanned"], 1);
    let missing: Vec<String> = queries.iter().map(|q| stdout(&locate(&d, &[q]))).collect();
    assert_eq!(first, missing);
    let o = locate(&d, &["--json", "a.bmp"]);
    assert_eq!(json(&o)["ledger_files"]["indexed"], 1);
    // Damaged: every byte of every table flipped in turn, a few at a time.
    for table in tables_below(&index) {
        let good = fs::read(&table).unwrap();
        for i in (0..good.len()).step_by(good.len() / 16 + 1) {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            fs::write(&table, &bad).unwrap();
            let damaged: Vec<String> = queries.iter().map(|q| stdout(&locate(&d, &[q]))).collect();
            assert_eq!(first, damaged, "byte {i} of {}", table.display());
            fs::write(&table, &good).unwrap();
        }
        // Cut short; emptied.
        fs::write(&table, &good[..good.len() / 2]).unwrap();
        assert_eq!(first[0], stdout(&locate(&d, &[queries[0]])));
        fs::write(&table, b"").unwrap();
        assert_eq!(first[0], stdout(&locate(&d, &[queries[0]])));
    }
    // Lines appended since the table was built are found too.
    let ledger_file = &ledger::files(&d.path("archive"))[0];
    let mut text = fs::read_to_string(ledger_file).unwrap();
    text.push_str(
        &text
            .lines()
            .next()
            .unwrap()
            .replace("sub/a.bmp", "sub/late.bmp"),
    );
    text.push('\n');
    fs::write(ledger_file, text).unwrap();
    let o = locate(&d, &["late.bmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn an_unreadable_ledger_line_is_named_and_the_rest_still_found() {
    let d = archived_and_quarantined();
    let file = ledger::files(&d.path("archive"))[0].clone();
    let lines = fs::read_to_string(&file).unwrap().lines().count();
    let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
    use std::io::Write;
    f.write_all(b"{\"v\":3,\"time\":\"2026-01-0\n").unwrap();
    for _ in 0..2 {
        // Without an index, then with one.
        let o = locate(&d, &["a.bmp"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("now: original in "), "{}", stdout(&o));
        let want = format!("{}:{}: ", file.display(), lines + 1);
        assert!(
            stderr(&o).contains(&want) && stderr(&o).contains("unreadable ledger line"),
            "{want}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn verify_says_when_an_archive_no_longer_decodes_to_its_digest() {
    let d = archived_and_quarantined();
    let o = locate(&d, &["--verify", "a.bmp"]);
    assert!(
        stdout(&o).contains("archive verified: decodes to its recorded digest"),
        "{}",
        stdout(&o)
    );
    let rle = d.path("archive/sub/a.rle");
    let mut bytes = fs::read(&rle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&rle, &bytes).unwrap();
    let o = locate(&d, &["--verify", "a.bmp"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("archive DAMAGED: "), "{}", stdout(&o));
    let v = json(&locate(&d, &["--verify", "--json", "a.bmp"]));
    assert_eq!(v["files"][0]["events"][0]["verified"]["ok"], false);
}

#[test]
fn nothing_found_exits_1_a_bad_query_2_and_a_missing_archive_names_it() {
    let d = archived_and_quarantined();
    let o = locate(&d, &["nope.bmp"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(stdout(&o), "nope.bmp: nothing found\n");
    let o = locate(&d, &["--json", "0123456789abcdef"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["not_found"][0], "0123456789abcdef");
    // One found, one not: found (exit 0), the other named.
    let o = locate(&d, &["nope.bmp", "a.bmp"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).ends_with("nope.bmp: nothing found\n"),
        "{}",
        stdout(&o)
    );
    let o = locate(&d, &["/etc/passwd"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not below the inbox"), "{}", stderr(&o));
    let o = locate(&d, &["../a.bmp"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    fs::rename(d.path("archive"), d.path("archive.moved")).unwrap();
    let o = locate(&d, &["a.bmp"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: the archive folder: ",
            d.path("archive").display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn ledger_lines_of_versions_1_and_2_are_found() {
    let d = archived_and_quarantined();
    let dir = d.path("archive/.rlewatch/ledger/old-host");
    fs::create_dir_all(&dir).unwrap();
    // As versions 1 and 2 wrote them, spelled out by hand.
    let v1 = r#"{"v":1,"time":"2025-01-02T03:04:05.000000Z","host":"old-host","source":"old/one.bmp","source_size":10,"source_xxh3":"00000000000000aa","archive":"old/one.rle","archive_size":5,"archive_xxh3":"00000000000000bb","width":1,"height":1,"conversion":"dither","lossless":true}"#;
    let v2 = r#"{"v":2,"time":"2025-01-02T03:04:06.000000Z","host":"old-host","source":"old/two.png","source_size":10,"source_xxh3":"00000000000000cc","archive":"old/two.rle","archive_size":5,"archive_xxh3":"00000000000000dd","width":1,"height":1,"conversion":"dither","lossless":true,"format":"png"}"#;
    fs::write(dir.join("2025-01-02.jsonl"), format!("{v1}\n{v2}\n")).unwrap();
    for (q, want) in [
        ("one.bmp", "old/one.bmp\n"),
        ("00000000000000aa", "old/one.bmp\n"),
        ("old/two.png", "old/two.png\n"),
        ("00000000000000dd", "old/two.png\n"),
    ] {
        let o = locate(&d, &[q]);
        let text = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{q}: {text}");
        assert!(text.starts_with(want), "{q}: {text}");
        assert!(
            text.contains("now: archived; where the original went is not recorded"),
            "{q}: {text}"
        );
    }
}

/// The index tables below `dir`.
fn tables_below(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// `audit` reads version-3 lines; a `filed` line whose archived entry is
/// gone (a ledger file edited, or an older one moved away) is a finding.
#[test]
fn audit_reports_a_filed_line_without_its_archived_entry() {
    let d = archived_and_quarantined();
    let file = ledger::files(&d.path("archive"))[0].clone();
    let kept: Vec<String> = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\""))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&file, kept.concat()).unwrap();
    let n = 1 + kept.iter().position(|l| l.contains("\"filed\"")).unwrap();
    let o = bin().arg("audit").arg(d.path("archive")).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!(
            "fate without entry: sub/a.rle (the `filed` line at {}:{n} names it",
            file.display()
        )),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("0 unreadable"), "{}", stdout(&o));
}

/// A name that is not UTF-8 is found by its exact bytes, and shown
/// escaped; in JSON its bytes are given in hex.
#[test]
fn a_name_that_is_not_utf8_is_found_by_its_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let d = Daemon::start(FAST);
    let name = OsStr::from_bytes(b"caf\xe9.bmp");
    fs::copy(data("pal8.bmp"), d.inbox().join(name)).unwrap();
    let archive = d.path("archive");
    assert!(
        wait_until(LONG, || !ledger::events(&archive).is_empty()),
        "{}",
        d.log()
    );
    let o = bin()
        .arg("where")
        .arg("-c")
        .arg(d.path("config.toml"))
        .arg(name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("caf\\xe9.bmp\n"), "{}", stdout(&o));
    let v = json(
        &bin()
            .arg("where")
            .arg("-c")
            .arg(d.path("config.toml"))
            .arg("--json")
            .arg(d.inbox().join(name))
            .output()
            .unwrap(),
    );
    assert_eq!(v["files"][0]["source"]["raw"], "636166e92e626d70", "{v}");
    assert_eq!(v["files"][0]["now"]["state"], "done", "{v}");
}

/// Where the index cannot be written, the answer comes from the ledger
/// and the reason is said once.
#[test]
fn an_index_that_cannot_be_written_is_said_once_and_the_answer_is_the_same() {
    let d = archived_and_quarantined();
    let want = stdout(&locate(&d, &["--no-index", "a.bmp"]));
    fs::write(d.path("archive/.rlewatch/index"), b"in the way").unwrap();
    let o = locate(&d, &["a.bmp"]);
    assert_eq!(stdout(&o), want);
    let err = stderr(&o);
    assert_eq!(
        err.matches("the index could not be written").count(),
        1,
        "{err}"
    );
    assert!(err.contains("Not a directory"), "{err}");
}

/// Lines written by retention and by `rlewatch retry` (spelled out here as
/// design §4.7 gives them) join the history of the file they are about:
/// a removal from done/ by its done/ path, a retry by its paths.
#[test]
fn removals_and_retries_join_the_history_of_their_file() {
    let d = archived_and_quarantined();
    let done = d.path("done/sub/a-1.bmp");
    let digest = xxh3_of(&done);
    fs::remove_file(&done).unwrap();
    let file = ledger::files(&d.path("archive"))[0].clone();
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "{{\"kind\":\"removed\",\"v\":3,\"time\":\"2099-01-01T00:00:00.000000Z\",\"host\":\"h9\",\
         \"what\":\"done\",\"path\":\"sub/a-1.bmp\",\"source_xxh3\":\"{digest}\",\
         \"why\":\"older than 30 days; archive sub/a.rle verified\"}}\n\
         {{\"kind\":\"retried\",\"v\":3,\"time\":\"2099-01-01T00:00:01.000000Z\",\"host\":\"h9\",\
         \"path\":\"bad/x.bmp\",\"source\":\"bad/x.bmp\"}}\n"
    ));
    fs::write(&file, text).unwrap();
    let o = locate(&d, &["a.bmp"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "now: removed by retention: {} (older than 30 days; archive sub/a.rle verified)",
            done.display()
        )),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| !l.starts_with(' ')).count(),
        1,
        "{out}"
    );
    // Put back, and waiting in the inbox again.
    fs::rename(d.path("failed/bad/x.bmp"), d.inbox().join("bad/x.bmp")).unwrap();
    let v = json(&locate(&d, &["--json", "x.bmp"]));
    let kinds: Vec<&str> = v["files"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["quarantined", "retried"], "{v}");
    assert_eq!(v["files"][0]["now"]["state"], "waiting", "{v}");
}

/// Output piped into a reader that has gone (`where … | head`, `grep
/// -q`) ends the command quietly by SIGPIPE, as it ends `cat`: no panic,
/// nothing on stderr.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let d = archived_and_quarantined();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = bin()
        .arg("where")
        .arg("-c")
        .arg(d.path("config.toml"))
        .arg("*")
        .stdout(writer)
        .output()
        .expect("spawn rlewatch");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}
