//! `rlewatch run` end to end: the real binary, real inotify, real files,
//! real signals. Expected archives come from the reference program's output
//! bundled in `tests/data`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::harness::{
    Daemon, FAST, data, files_below, ledger_lines, run_in, stderr, tempdir, wait_until,
};

const LONG: Duration = Duration::from_secs(60);

fn expected(name: &str) -> Vec<u8> {
    fs::read(data(name)).unwrap()
}

/// Waits until `rel` exists under `dir` of the daemon.
fn wait_file(d: &Daemon, rel: &str) -> bool {
    let p = d.path(rel);
    wait_until(LONG, || p.exists())
}

fn no_temp_files(dir: &Path) -> bool {
    files_below(dir)
        .iter()
        .all(|p| !p.to_string_lossy().contains(".rlewatch-"))
}

#[test]
fn files_arriving_every_way_are_archived_exactly_once() {
    let d = Daemon::start(FAST);
    let inbox = d.inbox();
    let outside = tempdir();

    // cp
    fs::copy(data("pal8.bmp"), inbox.join("copied.bmp")).unwrap();
    // mv from outside (same filesystem: a rename into the inbox)
    fs::copy(data("rgb24.bmp"), d.path("moved.bmp")).unwrap();
    fs::rename(d.path("moved.bmp"), inbox.join("moved.bmp")).unwrap();
    // mv from another filesystem-like place (copy + rename of a hidden temp)
    fs::copy(data("pal1.bmp"), outside.path().join("x.bmp")).unwrap();
    fs::copy(outside.path().join("x.bmp"), inbox.join(".incoming.tmp")).unwrap();
    fs::rename(inbox.join(".incoming.tmp"), inbox.join("renamed.bmp")).unwrap();
    // hard link
    fs::copy(data("rgb16.bmp"), d.path("linked-src.bmp")).unwrap();
    fs::hard_link(d.path("linked-src.bmp"), inbox.join("linked.bmp")).unwrap();
    // a subfolder created after start, with a file in it at once
    fs::create_dir_all(inbox.join("new/deeper")).unwrap();
    fs::copy(data("pal4rle.bmp"), inbox.join("new/deeper/sub.bmp")).unwrap();

    for (rel, exp) in [
        ("archive/copied.rle", "pal8.dither.rle"),
        ("archive/moved.rle", "rgb24.dither.rle"),
        ("archive/renamed.rle", "pal1.dither.rle"),
        ("archive/linked.rle", "rgb16.dither.rle"),
        ("archive/new/deeper/sub.rle", "pal4rle.dither.rle"),
    ] {
        assert!(wait_file(&d, rel), "{rel} never appeared");
        assert_eq!(fs::read(d.path(rel)).unwrap(), expected(exp), "{rel}");
    }
    for rel in [
        "done/copied.bmp",
        "done/moved.bmp",
        "done/renamed.bmp",
        "done/linked.bmp",
        "done/new/deeper/sub.bmp",
    ] {
        assert!(wait_file(&d, rel), "{rel} never appeared");
    }
    assert_eq!(
        fs::read(d.path("done/copied.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
    // Exactly once: five archives, nothing numbered, inbox empty of work.
    assert_eq!(
        files_below(&d.path("archive")).len(),
        5,
        "{:?}",
        files_below(&d.path("archive"))
    );
    assert!(files_below(&inbox).is_empty(), "{:?}", files_below(&inbox));
}

#[test]
fn a_slow_writer_is_never_processed_early() {
    let d = Daemon::start(FAST);
    let bytes = fs::read(data("rgb24.bmp")).unwrap();
    let target = d.inbox().join("slow.bmp");
    let mut f = fs::File::create(&target).unwrap();
    // Header first, then the pixels in pieces with pauses far longer than
    // settle_ms (this simulates a slow writer; the test itself polls).
    f.write_all(&bytes[..30]).unwrap();
    for piece in bytes[30..].chunks(6000) {
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !d.path("archive/slow.rle").exists(),
            "archived while still being written"
        );
        assert!(
            d.path("inbox/slow.bmp").exists(),
            "original taken while still being written"
        );
        f.write_all(piece).unwrap();
        f.flush().unwrap();
    }
    drop(f);
    assert!(wait_file(&d, "archive/slow.rle"));
    assert_eq!(
        fs::read(d.path("archive/slow.rle")).unwrap(),
        expected("rgb24.dither.rle")
    );
    assert!(!d.log().contains("failed"));
}

#[test]
fn files_present_before_start_are_archived() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("inbox/old")).unwrap();
    for i in 0..20 {
        fs::copy(
            data("pal1.bmp"),
            dir.path().join(format!("inbox/old/{i}.bmp")),
        )
        .unwrap();
    }
    let mut d = Daemon::start(FAST);
    // Move the prepared backlog in place of the fresh inbox and restart.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some_and(|s| s.success()));
    fs::remove_dir_all(d.inbox()).unwrap();
    fs::rename(dir.path().join("inbox"), d.inbox()).unwrap();
    d.spawn();
    // done/ is filled last, after each archive is published.
    assert!(wait_until(LONG, || files_below(&d.path("done")).len() == 20));
    for i in 0..20 {
        assert_eq!(
            fs::read(d.path(&format!("archive/old/{i}.rle"))).unwrap(),
            expected("pal1.dither.rle")
        );
    }
}

fn burst(config: &str, n: usize) {
    let d = Daemon::start(config);
    let staging = d.path("staging");
    fs::create_dir(&staging).unwrap();
    let names = ["pal1", "pal8", "rgb16"];
    for i in 0..n {
        let name = names[i % names.len()];
        fs::copy(
            data(&format!("{name}.bmp")),
            staging.join(format!("{i}-{name}.bmp")),
        )
        .unwrap();
    }
    // Rename them in as fast as possible.
    for i in 0..n {
        let name = names[i % names.len()];
        let file = format!("{i}-{name}.bmp");
        fs::rename(staging.join(&file), d.inbox().join(&file)).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(120), || files_below(&d.path("done"))
            .len()
            == n),
        "only {} of {n} done",
        files_below(&d.path("done")).len()
    );
    let archived = files_below(&d.path("archive"));
    assert_eq!(archived.len(), n);
    for i in 0..n {
        let name = names[i % names.len()];
        let got = fs::read(d.path(&format!("archive/{i}-{name}.rle"))).unwrap();
        assert!(got == expected(&format!("{name}.dither.rle")), "{i}-{name}");
    }
}

#[test]
fn a_burst_of_500_files_is_archived_exactly_once() {
    burst(FAST, 500);
}

#[test]
fn a_queue_of_one_still_loses_nothing_in_a_burst_of_300() {
    burst("[workers]\nqueue = 1\n[watch]\nsettle_ms = 50\n", 300);
}

#[test]
fn bad_inputs_are_quarantined_or_ignored_and_good_files_still_flow() {
    let d = Daemon::start(FAST);
    let inbox = d.inbox();
    let mut bad = vec!["fake.bmp", "empty.bmp", "short.bmp", "link.bmp"];
    fs::write(inbox.join("fake.bmp"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    fs::write(inbox.join("empty.bmp"), b"").unwrap();
    // Truncated: shorter than its header says, and it stays so.
    let rgb = fs::read(data("rgb24.bmp")).unwrap();
    fs::write(inbox.join("short.bmp"), &rgb[..4000]).unwrap();
    fs::create_dir(inbox.join("folder.bmp")).unwrap();
    let outside = tempdir();
    fs::copy(data("pal1.bmp"), outside.path().join("secret.bmp")).unwrap();
    symlink(outside.path().join("secret.bmp"), inbox.join("link.bmp")).unwrap();
    for name in [
        "badbitcount.bmp",
        "badheadersize.bmp",
        "badpalettesize.bmp",
        "badwidth.bmp",
        "reallybig.bmp",
    ] {
        fs::copy(data(&format!("bad/{name}")), inbox.join(name)).unwrap();
        bad.push(name);
    }
    fs::write(inbox.join("notes.txt"), "ignored").unwrap();
    fs::copy(data("pal8.bmp"), inbox.join("good.bmp")).unwrap();

    assert!(wait_file(&d, "archive/good.rle"));
    for name in &bad {
        assert!(
            wait_file(&d, &format!("failed/{name}")),
            "{name} not quarantined"
        );
        let note = d.path(&format!("failed/{name}.error.txt"));
        assert!(wait_until(LONG, || note.exists()), "{name}: no error note");
        let text = fs::read_to_string(&note).unwrap();
        assert!(
            text.contains("reason: ") && text.contains("time: ") && text.contains("attempts: 1"),
            "{text}"
        );
    }
    let reason =
        |name: &str| fs::read_to_string(d.path(&format!("failed/{name}.error.txt"))).unwrap();
    assert!(reason("fake.bmp").contains("not a BMP file (it looks like a PNG)"));
    assert!(reason("empty.bmp").contains("it is empty"));
    assert!(reason("short.bmp").contains("truncated BMP"));
    assert!(reason("link.bmp").contains("symbolic links are not followed"));
    // The symlink itself was moved, its target untouched and not archived.
    assert!(
        fs::symlink_metadata(d.path("failed/link.bmp"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(outside.path().join("secret.bmp").exists());
    // Ignored: not touched.
    assert!(inbox.join("notes.txt").exists());
    assert!(inbox.join("folder.bmp").is_dir());
    // Still working after all that.
    fs::copy(data("pal1.bmp"), inbox.join("after.bmp")).unwrap();
    assert!(wait_file(&d, "archive/after.rle"));
    assert!(d.log().contains("short.bmp: truncated BMP"));
}

#[test]
fn delete_removes_only_lossless_originals() {
    let d = Daemon::start(&format!("[originals]\naction = \"delete\"\n{FAST}"));
    fs::copy(data("pal1.bmp"), d.inbox().join("bw.bmp")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("grey.bmp")).unwrap();
    assert!(wait_file(&d, "archive/bw.rle"));
    assert!(wait_file(&d, "archive/grey.rle"));
    assert!(
        wait_file(&d, "done/grey.bmp"),
        "the lossy original must be kept in done/"
    );
    assert!(wait_until(LONG, || !d.inbox().join("bw.bmp").exists()));
    assert!(
        !d.path("done/bw.bmp").exists(),
        "the lossless original is deleted"
    );
    assert!(d.wait_log("grey.bmp: conversion was lossy", 1, LONG));
}

/// Deleting needs a *verified* lossless archive: with `verify = false` the
/// lossless original is moved to done/ instead.
#[test]
fn delete_without_verification_keeps_originals() {
    let d = Daemon::start(&format!(
        "[originals]\naction = \"delete\"\n[compress]\nverify = false\n{FAST}"
    ));
    fs::copy(data("pal1.bmp"), d.inbox().join("bw.bmp")).unwrap();
    assert!(wait_file(&d, "done/bw.bmp"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("done/bw.bmp")).unwrap(),
        expected("pal1.bmp")
    );
    assert_eq!(
        fs::read(d.path("archive/bw.rle")).unwrap(),
        expected("pal1.dither.rle")
    );
}

#[test]
fn an_existing_archive_is_never_overwritten() {
    let d = Daemon::start(FAST);
    fs::create_dir_all(d.path("archive")).unwrap();
    fs::write(d.path("archive/page.rle"), b"someone else's archive").unwrap();
    // The source is newer than that archive, so it is not "already archived".
    std::thread::sleep(Duration::from_millis(20)); // distinct mtimes, not synchronisation
    fs::copy(data("pal8.bmp"), d.inbox().join("page.bmp")).unwrap();
    assert!(wait_file(&d, "archive/page-1.rle"));
    assert_eq!(
        fs::read(d.path("archive/page.rle")).unwrap(),
        b"someone else's archive"
    );
    assert_eq!(
        fs::read(d.path("archive/page-1.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
}

#[test]
fn sighup_applies_a_new_conversion_and_worker_count() {
    let mut d = Daemon::start(FAST);
    fs::copy(data("rgb24.bmp"), d.inbox().join("before.bmp")).unwrap();
    assert!(wait_file(&d, "archive/before.rle"));
    assert_eq!(
        fs::read(d.path("archive/before.rle")).unwrap(),
        expected("rgb24.dither.rle")
    );

    fs::write(
        d.path("config.toml"),
        format!("[compress]\nconversion = \"threshold\"\n[workers]\nthreads = 3\n{FAST}"),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(d.wait_log("configuration reloaded: ", 1, LONG));
    let log = d.log();
    assert!(
        log.contains("conversion threshold") && log.contains("workers 3"),
        "{log}"
    );
    fs::copy(data("rgb24.bmp"), d.inbox().join("after.bmp")).unwrap();
    assert!(wait_file(&d, "archive/after.rle"));
    assert_eq!(
        fs::read(d.path("archive/after.rle")).unwrap(),
        expected("rgb24.threshold.rle")
    );

    // A broken config: logged, the running one kept.
    fs::write(
        d.path("config.toml"),
        "[compress]\nconversion = \"sepia\"\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(d.wait_log("reload failed, keeping the running configuration", 1, LONG));
    assert!(d.log().contains("config.toml: compress.conversion must be"));
    fs::copy(data("rgb24.bmp"), d.inbox().join("still.bmp")).unwrap();
    assert!(wait_file(&d, "archive/still.rle"));
    assert_eq!(
        fs::read(d.path("archive/still.rle")).unwrap(),
        expected("rgb24.threshold.rle")
    );
    assert!(d.exited().is_none());
}

#[test]
fn sigterm_during_a_burst_drains_and_loses_nothing() {
    let mut d = Daemon::start(FAST);
    let n = 200;
    for i in 0..n {
        fs::copy(data("rgb24.bmp"), d.inbox().join(format!("{i}.bmp"))).unwrap();
    }
    // Stop while work is under way.
    assert!(wait_until(LONG, || !files_below(&d.path("done")).is_empty()));
    d.signal(libc::SIGTERM);
    let status = d
        .wait_exit(Duration::from_secs(35))
        .expect("did not exit within the shutdown timeout");
    assert!(status.success(), "{status:?}");
    assert!(d.log().contains("stopped: archived"));
    // Drained: the files in progress were finished well within the
    // shutdown timeout (30 s), none abandoned.
    assert!(!d.log().contains("abandoning"), "{}", d.log());
    for dir in ["archive", "done", "inbox", "failed"] {
        assert!(no_temp_files(&d.path(dir)), "temporary files left in {dir}");
    }
    for i in 0..n {
        let archived = d.path(&format!("archive/{i}.rle")).exists();
        let done = d.path(&format!("done/{i}.bmp")).exists();
        let waiting = d.inbox().join(format!("{i}.bmp")).exists();
        assert!(
            (archived && done && !waiting) || (!done && waiting),
            "file {i}: archived {archived}, done {done}, waiting {waiting}"
        );
        if archived {
            assert_eq!(
                fs::read(d.path(&format!("archive/{i}.rle"))).unwrap(),
                expected("rgb24.dither.rle")
            );
        }
    }
}

#[test]
fn a_second_daemon_on_the_same_inbox_exits_with_a_clear_error() {
    let d = Daemon::start(FAST);
    let out = run_in(d.dir.path(), &["run", "--config", "config.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("another rlewatch is already running on")
            && err.contains(&format!("pid {}", d.pid())),
        "{err}"
    );
}

#[test]
fn stale_temporary_files_are_removed_at_start() {
    let mut d = Daemon::start(FAST);
    // A real archive, original and quarantined file first: the clean-up
    // must remove rlewatch's temporary files (`.rlewatch-*.tmp`, design
    // §4.4) and nothing else.
    fs::copy(data("pal1.bmp"), d.inbox().join("kept.bmp")).unwrap();
    fs::write(d.inbox().join("bad.bmp"), b"BMnot a bitmap").unwrap();
    assert!(wait_until(LONG, || d.path("done/kept.bmp").exists()
        && d.path("failed/bad.bmp.error.txt").exists()));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    fs::write(d.path("archive/.rlewatch-abc123.tmp"), b"partial").unwrap();
    // Names that are only half a temporary name are someone's files.
    let decoys = [
        "archive/.rlewatch-abc123",
        "archive/x.tmp",
        "done/.rlewatch-y.part",
    ];
    for decoy in decoys {
        fs::write(d.path(decoy), b"not ours").unwrap();
    }
    let before: Vec<_> = ["archive", "done", "failed"]
        .iter()
        .map(|dir| files_below(&d.path(dir)))
        .collect();
    d.spawn();
    assert!(!d.path("archive/.rlewatch-abc123.tmp").exists());
    assert!(d.log().contains("removed 1 stale temporary file"));
    for decoy in decoys {
        assert_eq!(fs::read(d.path(decoy)).unwrap(), b"not ours", "{decoy}");
    }
    assert_eq!(
        fs::read(d.path("archive/kept.rle")).unwrap(),
        expected("pal1.dither.rle")
    );
    assert_eq!(
        fs::read(d.path("done/kept.bmp")).unwrap(),
        fs::read(data("pal1.bmp")).unwrap()
    );
    assert_eq!(
        fs::read(d.path("failed/bad.bmp")).unwrap(),
        b"BMnot a bitmap"
    );
    let after: Vec<_> = ["archive", "done", "failed"]
        .iter()
        .map(|dir| files_below(&d.path(dir)))
        .collect();
    let mut before = before;
    before[0].retain(|p| p != Path::new(".rlewatch-abc123.tmp"));
    assert_eq!(after, before);
}

#[test]
fn check_config_prints_the_effective_config_or_names_the_mistake() {
    let dir = tempdir();
    fs::write(
        dir.path().join("ok.toml"),
        "[workers]\nthreads = 2\n[paths]\ninbox = \"in\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["check-config", "ok.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let inbox = dir.path().join("in");
    assert!(
        text.contains(&format!("inbox = \"{}\"", inbox.display())),
        "{text}"
    );
    assert!(
        text.contains("threads = 2") && text.contains("conversion = \"dither\""),
        "{text}"
    );

    fs::write(dir.path().join("bad.toml"), "[watch]\nsettle = 5\n").unwrap();
    let out = run_in(dir.path(), &["check-config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("rlewatch: bad.toml: ") && err.contains("unknown field `settle`"),
        "{err}"
    );
}

#[test]
fn systemd_hears_ready_reloading_stopping_and_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let sock_dir = tempdir();
    let sock_path = sock_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut d = Daemon::start_with_env(
        FAST,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got = Vec::new();
    let mut receive_until = |want: &dyn Fn(&str) -> bool| {
        wait_until(LONG, || {
            let mut buf = [0u8; 4096];
            if let Ok(n) = sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got.iter().any(|m| want(m))
        })
    };
    assert!(receive_until(
        &|m| m.lines().any(|l| l == "READY=1") && m.contains("STATUS=")
    ));
    assert!(receive_until(&|m| m.lines().any(|l| l == "WATCHDOG=1")));
    // Pinged at half the 400 ms interval: about ten times in two seconds,
    // not once per turn of the loop, nor so rarely that systemd would
    // kill it.
    let window = std::time::Instant::now() + Duration::from_secs(2);
    let mut pings = 0;
    while std::time::Instant::now() < window {
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            pings += usize::from(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "WATCHDOG=1"),
            );
        }
    }
    assert!((5..=30).contains(&pings), "{pings} watchdog pings in 2 s");
    d.signal(libc::SIGHUP);
    assert!(receive_until(&|m| {
        let lines: Vec<&str> = m.lines().collect();
        // MONOTONIC_USEC must come in the same message as RELOADING=1.
        lines.contains(&"RELOADING=1") && lines.iter().any(|l| l.starts_with("MONOTONIC_USEC="))
    }));
    d.signal(libc::SIGTERM);
    assert!(receive_until(&|m| m.lines().any(|l| l == "STOPPING=1")));
    assert!(d.wait_exit(LONG).is_some_and(|s| s.success()));
    let ready = got
        .iter()
        .filter(|m| m.lines().any(|l| l == "READY=1"))
        .count();
    assert!(ready >= 2, "READY=1 again after the reload: {got:?}");
}

#[test]
fn under_the_journal_log_lines_carry_no_timestamps_or_colours() {
    let d = Daemon::start_with_env(FAST, &[("JOURNAL_STREAM", "8:12345")]);
    let log = d.log();
    let line = log.lines().find(|l| l.contains(" started: ")).unwrap();
    assert!(line.trim_start().starts_with("INFO"), "{line}");
    assert!(!log.contains('\u{1b}'));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let d = Daemon::start(&format!("[log]\nformat = \"json\"\n{FAST}"));
    fs::copy(data("pal1.bmp"), d.inbox().join("j.bmp")).unwrap();
    assert!(wait_file(&d, "archive/j.rle"));
    assert!(d.wait_log("archived ", 1, LONG));
    for line in d.log().lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    }
    assert!(d.log().contains("\"level\":\"INFO\""));
}

#[test]
fn the_poll_backend_finds_files_too() {
    let d = Daemon::start("[watch]\nbackend = \"poll\"\nsettle_ms = 50\n");
    assert!(d.log().contains("(polling"));
    fs::create_dir(d.inbox().join("sub")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("sub/p.bmp")).unwrap();
    assert!(wait_file(&d, "archive/sub/p.rle"));
    assert_eq!(
        fs::read(d.path("archive/sub/p.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
}

#[test]
fn an_unrecorded_archive_with_the_same_bytes_is_recorded_not_published_twice() {
    // As after a crash between publishing the archive and recording it in
    // the ledger: the file still claimed, an archive under its name with
    // exactly its bytes that no ledger entry names.
    let mut d = Daemon::start(FAST);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    let claims = fs::read_dir(d.inbox().join(".rlewatch/claims"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::copy(data("pal8.bmp"), claims.join("again.bmp")).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // distinct mtimes, not synchronisation
    fs::write(d.path("archive/again.rle"), expected("pal8.dither.rle")).unwrap();
    // The same beside a new arrival: that archive may be another host's,
    // not yet recorded, so the new file gets its own.
    fs::copy(data("pal1.bmp"), d.inbox().join("other.bmp")).unwrap();
    fs::write(d.path("archive/other.rle"), expected("pal1.dither.rle")).unwrap();
    d.spawn();
    assert!(wait_file(&d, "done/again.bmp"));
    assert!(wait_file(&d, "done/other.bmp"));
    // Logged once filing is done, folders fsynced: after the file shows.
    assert!(d.wait_log("already archived", 1, LONG), "{}", d.log());
    assert_eq!(
        files_below(&d.path("archive")),
        ["again.rle", "other-1.rle", "other.rle"].map(std::path::PathBuf::from)
    );
    assert_eq!(
        fs::read(d.path("archive/other-1.rle")).unwrap(),
        expected("pal1.dither.rle")
    );
    let ledger = walkdir::WalkDir::new(d.path("archive/.rlewatch/ledger"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert_eq!(ledger.lines().count(), 2, "{ledger}");
    assert!(ledger.contains("\"archive\":\"again.rle\""), "{ledger}");
    assert!(ledger.contains("\"archive\":\"other-1.rle\""), "{ledger}");
}

#[test]
fn a_second_signal_exits_at_once_and_nothing_is_half_done() {
    let mut d = Daemon::start("[workers]\nthreads = 1\n[watch]\nsettle_ms = 20\n");
    let bmp = crate::faults::big_bmp(6000, 6000);
    fs::write(d.path("big.bmp"), &bmp).unwrap();
    fs::rename(d.path("big.bmp"), d.inbox().join("big.bmp")).unwrap();
    // Strike while it is being compressed (its temporary file exists).
    let archive = d.path("archive");
    assert!(wait_until(LONG, || fs::read_dir(&archive)
        .map(|r| r
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".rlewatch-")))
        .unwrap_or(false)));
    d.signal(libc::SIGTERM);
    assert!(d.wait_log("shutting down", 1, LONG));
    d.signal(libc::SIGINT);
    let status = d
        .wait_exit(Duration::from_secs(5))
        .expect("the second signal must end it at once");
    assert_eq!(status.code(), Some(1), "{}", d.log());
    assert!(d.log().contains("second termination signal"));
    // Nothing half-done under a final name: the original is still there, or
    // the archive is complete and the original filed.
    let archived = d.path("archive/big.rle").exists();
    let claimed = crate::harness::files_below(&d.inbox())
        .iter()
        .any(|p| p.starts_with(".rlewatch/claims") && p.ends_with("big.bmp"));
    assert!(archived || claimed || d.inbox().join("big.bmp").exists());
    // The next start cleans up and finishes the job.
    d.spawn();
    assert!(
        wait_until(LONG, || d.path("done/big.bmp").exists()),
        "{}",
        d.log()
    );
    let out = crate::harness::run_in(
        d.dir.path(),
        &["verify", "archive/big.rle", "--source", "done/big.bmp"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(no_temp_files(&d.path("archive")));
}

#[test]
fn with_delete_an_already_archived_original_is_moved_not_deleted() {
    // Whether that archive was lossless is not known, so the original must
    // survive (as after a crash between publishing and deleting).
    let mut d = Daemon::start(&format!("[originals]\naction = \"delete\"\n{FAST}"));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    fs::copy(data("pal8.bmp"), d.inbox().join("lossy.bmp")).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // distinct mtimes, not synchronisation
    fs::write(d.path("archive/lossy.rle"), expected("pal8.dither.rle")).unwrap();
    d.spawn();
    assert!(wait_file(&d, "done/lossy.bmp"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("done/lossy.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
}

/// The daemon's thread count, from /proc.
fn threads_of(pid: i32) -> usize {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn reloads_that_resize_the_pool_leak_no_threads() {
    let config = |n: usize| format!("[workers]\nthreads = {n}\n{FAST}");
    let d = Daemon::start(&config(2));
    let at_start = threads_of(d.pid());
    for i in 1..=200 {
        let n = if i % 2 == 1 { 8 } else { 2 };
        fs::write(d.path("config.toml"), config(n)).unwrap();
        d.signal(libc::SIGHUP);
        assert!(
            d.wait_log("configuration reloaded: ", i, LONG),
            "reload {i}: {}",
            d.log()
        );
        if i == 1 {
            // 2 -> 8 workers: 6 more pool threads and 12 more finishers
            // (two per worker).
            let mut now = 0;
            assert!(
                wait_until(LONG, || {
                    now = threads_of(d.pid());
                    now == at_start + 6 + 12
                }),
                "{now} threads at 8 workers, {at_start} at 2"
            );
        }
    }
    // Back at 2 workers: the threads of the loops that stopped exit soon.
    let mut now = 0;
    assert!(
        wait_until(LONG, || {
            now = threads_of(d.pid());
            now == at_start
        }),
        "{now} threads after 200 reloads, {at_start} at start"
    );
    // And the pool still works.
    fs::copy(data("pal8.bmp"), d.inbox().join("after.bmp")).unwrap();
    assert!(wait_file(&d, "archive/after.rle"));
}

#[test]
fn a_file_being_retried_shows_in_status_until_it_goes_through() {
    use std::os::unix::net::UnixDatagram;
    let sock_dir = tempdir();
    let sock_path = sock_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let d = Daemon::start_with_env(FAST, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let status_until = |want: &str| {
        wait_until(LONG, || {
            let mut buf = [0u8; 4096];
            sock.recv(&mut buf).is_ok_and(|n| {
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l.starts_with("STATUS=") && l.contains(want))
            })
        })
    };
    // The archive cannot get its subfolder: a file stands in its way.
    fs::write(d.path("archive/sub"), b"in the way").unwrap();
    fs::create_dir(d.inbox().join("sub")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("sub/x.bmp")).unwrap();
    assert!(status_until("retrying 1,"), "{}", d.log());
    fs::remove_file(d.path("archive/sub")).unwrap();
    assert!(wait_file(&d, "archive/sub/x.rle"), "{}", d.log());
    assert!(
        status_until("archived 1, failed 0, waiting 0, retrying 0"),
        "{}",
        d.log()
    );
}

/// A reload that fails part-way (here: the new inbox is locked by another
/// daemon) changes nothing, not even what it could have changed first
/// (the log level).
#[test]
fn a_reload_that_fails_leaves_the_running_configuration_wholly_in_place() {
    let d = Daemon::start(FAST);
    let other = Daemon::start(FAST);
    fs::write(
        d.path("config.toml"),
        format!(
            "[paths]\ninbox = {:?}\n[log]\nlevel = \"debug\"\n{FAST}",
            other.inbox()
        ),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("another rlewatch is already running", 1, LONG),
        "{}",
        d.log()
    );
    // A valid reload that rescans: at the old level (info) its debug line
    // "rescanning …" must not show.
    fs::write(
        d.path("config.toml"),
        "[watch]\nignore = [\"*.x\"]\nsettle_ms = 50\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("configuration reloaded: ignore rules", 1, LONG),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("rescanning"), "{}", d.log());
    // Still archiving from its own inbox.
    fs::copy(data("pal8.bmp"), d.inbox().join("after.bmp")).unwrap();
    assert!(wait_file(&d, "archive/after.rle"), "{}", d.log());
    assert!(!other.path("archive/after.rle").exists());
}

/// With `keep` the original stays in the inbox: rescans and restarts find
/// it again and must recognise it as archived, by content (its archive may
/// even carry the very same coarse timestamp as the source).
#[test]
fn kept_originals_are_archived_once_across_rescans_and_restarts() {
    let mut d =
        Daemon::start("[originals]\naction = \"keep\"\n[watch]\nsettle_ms = 0\nrescan_secs = 1\n");
    for name in ["a", "b", "c", "d"] {
        // Plain cp, as people do (write(2) in a loop, then close).
        let ok = std::process::Command::new("cp")
            .arg(data("pal8.bmp"))
            .arg(d.inbox().join(format!("{name}.bmp")))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    assert!(d.wait_log("original kept", 4, LONG), "{}", d.log());
    // Each restart forgets what it kept and finds all four archived.
    for round in 1..=2 {
        d.signal(libc::SIGTERM);
        assert!(d.wait_exit(LONG).is_some());
        d.spawn();
        assert!(
            d.wait_log("already archived", 4 * round, LONG),
            "{}",
            d.log()
        );
    }
    assert_eq!(files_below(&d.path("archive")).len(), 4, "{}", d.log());
    assert_eq!(d.log().matches("archived /").count(), 4, "{}", d.log());
}

/// A different image under a name already archived, carrying an older
/// mtime (`cp -p`, `mv`, `rsync`, `tar` keep mtimes): it is archived, not
/// taken for the one archived before.
#[test]
fn a_different_image_under_a_used_name_with_an_older_mtime_is_archived() {
    let d = Daemon::start(FAST);
    let staged = d.path("scan.bmp");
    fs::copy(data("rgb24.bmp"), &staged).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(86_400);
    fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("scan.bmp")).unwrap();
    assert!(wait_file(&d, "done/scan.bmp"), "{}", d.log());
    fs::rename(&staged, d.inbox().join("scan.bmp")).unwrap();
    assert!(wait_file(&d, "archive/scan-1.rle"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("archive/scan.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
    assert_eq!(
        fs::read(d.path("archive/scan-1.rle")).unwrap(),
        expected("rgb24.dither.rle")
    );
    // And the very same image again is recognised by its content.
    fs::copy(data("pal8.bmp"), d.inbox().join("scan.bmp")).unwrap();
    assert!(d.wait_log("already archived as", 1, LONG), "{}", d.log());
    assert_eq!(files_below(&d.path("archive")).len(), 2);
}

/// CPU time (user and system) process `pid` has used, from /proc.
fn cpu_time(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are the 14th and 15th of the line.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn an_idle_daemon_sleeps_between_rescans() {
    for backend in ["native", "poll"] {
        // A rescan every second, so that several come due while it is
        // watched: each must schedule the next one ahead, and the loop
        // (and the poll watcher, polling) must wait.
        let d = Daemon::start(&format!(
            "[watch]\nbackend = \"{backend}\"\nsettle_ms = 50\nrescan_secs = 1\n\
             [log]\nlevel = \"debug\"\n"
        ));
        fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
        assert!(wait_file(&d, "archive/a.rle"), "{backend}: {}", d.log());
        let before = cpu_time(d.pid());
        let watched = std::time::Instant::now();
        // Not synchronisation: the span over which CPU use is measured.
        std::thread::sleep(Duration::from_secs(4));
        let used = cpu_time(d.pid()) - before;
        let span = watched.elapsed();
        assert!(
            used < Duration::from_millis(500),
            "{backend}: an idle daemon used {used:?} of CPU in {span:?}: {}",
            d.log()
        );
        // It did rescan meanwhile (at least twice in four seconds).
        let rescans = |log: &str| log.matches("(periodic)").count();
        assert!(
            rescans(&d.log()) >= 2,
            "{backend}: {} periodic rescans: {}",
            rescans(&d.log()),
            d.log()
        );
    }
}

#[test]
fn a_reload_to_another_archive_records_there_under_the_host_it_keeps() {
    let config = |host: &str, archive: &str| {
        format!("[daemon]\nhost = \"{host}\"\n[paths]\narchive = \"{archive}\"\n{FAST}")
    };
    let d = Daemon::start(&config("h1", "archive"));
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(wait_file(&d, "done/a.bmp"), "{}", d.log());
    fs::write(d.path("config.toml"), config("h2", "archive2")).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("configuration reloaded: ", 1, LONG),
        "{}",
        d.log()
    );
    assert!(
        d.log()
            .contains("daemon.host changes need a restart; keeping \"h1\""),
        "{}",
        d.log()
    );
    fs::copy(data("pal8.bmp"), d.inbox().join("b.bmp")).unwrap();
    assert!(wait_file(&d, "done/b.bmp"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("archive2/b.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
    // b's entry is in the new archive's ledger, in the ledger folder of
    // the host kept and naming it; the old archive's ledger holds a's alone.
    let new = ledger_lines(&d.path("archive2"));
    assert!(
        new.len() == 1
            && new[0].contains("\"source\":\"b.bmp\"")
            && new[0].contains("\"host\":\"h1\""),
        "{new:?}"
    );
    assert!(d.path("archive2/.rlewatch/ledger/h1").is_dir());
    assert!(!d.path("archive2/.rlewatch/ledger/h2").exists());
    let old = ledger_lines(&d.path("archive"));
    assert!(
        old.len() == 1 && old[0].contains("\"source\":\"a.bmp\""),
        "{old:?}"
    );
}
