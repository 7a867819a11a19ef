//! The configuration: `check-config` prints it or names the mistake, and
//! SIGHUP applies a new one to the running daemon (conversion, workers,
//! archive, ignore rules), or keeps the running one whole when the new
//! one fails.

use std::fs;

use crate::support::{
    Daemon, FAST, LONG, data, expected, ledger, run_in, stderr, tempdir, wait_file, wait_until,
};

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
    let new = ledger::lines(&d.path("archive2"));
    assert!(
        new.len() == 1
            && new[0].contains("\"source\":\"b.bmp\"")
            && new[0].contains("\"host\":\"h1\""),
        "{new:?}"
    );
    assert!(d.path("archive2/.rlewatch/ledger/h1").is_dir());
    assert!(!d.path("archive2/.rlewatch/ledger/h2").exists());
    let old = ledger::lines(&d.path("archive"));
    assert!(
        old.len() == 1 && old[0].contains("\"source\":\"a.bmp\""),
        "{old:?}"
    );
}
