//! `rlewatch retry` (design §4.4, "Retrying failures"): quarantined files
//! put back into the inbox under the path they were dropped as, never over
//! a file there; their history kept so that a file failing again shows its
//! earlier failure; `--all`, `--since`, `--dry-run`; `--now` making a
//! running daemon retry a file in backoff at once (SIGUSR1 and the request
//! file); orphan error notes settled when their file is archived.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use crate::support::{
    Daemon, FAST, LONG, data, expected, ledger, restart_with, run_in, tempdir, wait_until,
};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A folder laid out as a daemon's (inbox, archive, done, failed beside an
/// empty config.toml), no daemon running.
fn folders() -> tempfile::TempDir {
    let t = tempdir();
    for d in ["inbox", "archive", "done", "failed"] {
        fs::create_dir(t.path().join(d)).unwrap();
    }
    fs::write(t.path().join("config.toml"), "").unwrap();
    t
}

/// A quarantined file as the daemon leaves it: `failed/REL` holding
/// `bytes`, and its note saying it was dropped as `dropped` at `time`.
fn quarantined(root: &Path, rel: &str, bytes: &[u8], dropped: &str, reason: &str, time: &str) {
    let file = root.join("failed").join(rel);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, bytes).unwrap();
    fs::write(
        root.join("failed").join(format!("{rel}.error.txt")),
        format!(
            "file: {}\nreason: {reason}\ntime: {time}\nattempts: 1\n",
            root.join("inbox").join(dropped).display()
        ),
    )
    .unwrap();
}

fn retry(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["retry", "-c", "config.toml"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

#[test]
fn a_quarantined_file_goes_back_under_the_name_it_was_dropped_as() {
    let t = folders();
    let root = t.path();
    let bmp = fs::read(data("pal8.bmp")).unwrap();
    // failed/ had to number it: an earlier scan.bmp was there.
    quarantined(
        root,
        "sub/scan-1.bmp",
        &bmp,
        "sub/scan.bmp",
        "bad header",
        "2026-01-01T00:00:00Z",
    );
    let o = retry(root, &["failed/sub/scan-1.bmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(stdout(&o).contains("put back "), "{}", out(&o));
    assert!(stdout(&o).contains("it failed: bad header"), "{}", out(&o));
    assert_eq!(fs::read(root.join("inbox/sub/scan.bmp")).unwrap(), bmp);
    assert!(!root.join("failed/sub/scan-1.bmp").exists());
    assert!(!root.join("failed/sub/scan-1.bmp.error.txt").exists());
    // The note is kept as its history.
    let history =
        fs::read_to_string(root.join("inbox/.rlewatch/history/sub/scan.bmp.error.txt")).unwrap();
    assert!(history.contains("reason: bad header"), "{history}");
    // And the ledger says so.
    let lines = ledger::events(&root.join("archive"));
    let retried: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["kind"] == "retried").collect();
    assert_eq!(retried.len(), 1, "{lines:?}");
    assert_eq!(retried[0]["v"], 3);
    assert_eq!(retried[0]["path"], "sub/scan-1.bmp");
    assert_eq!(retried[0]["source"], "sub/scan.bmp");
}

#[test]
fn a_taken_name_is_reported_and_nothing_is_overwritten() {
    let t = folders();
    let root = t.path();
    quarantined(
        root,
        "a.bmp",
        b"old bad bytes",
        "a.bmp",
        "not an image",
        "2026-01-01T00:00:00Z",
    );
    fs::write(root.join("inbox/a.bmp"), b"a new file").unwrap();
    let o = retry(root, &["a.bmp"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(stdout(&o).contains("skipped"), "{}", out(&o));
    assert!(stdout(&o).contains("is taken"), "{}", out(&o));
    assert_eq!(fs::read(root.join("inbox/a.bmp")).unwrap(), b"a new file");
    assert_eq!(
        fs::read(root.join("failed/a.bmp")).unwrap(),
        b"old bad bytes"
    );
    assert!(root.join("failed/a.bmp.error.txt").exists());
    assert!(
        !root
            .join("inbox/.rlewatch/history/a.bmp.error.txt")
            .exists()
    );
}

#[test]
fn all_since_and_dry_run_choose_the_files_and_dry_run_changes_nothing() {
    let t = folders();
    let root = t.path();
    quarantined(
        root,
        "old.bmp",
        b"1",
        "old.bmp",
        "r1",
        "2020-05-01T00:00:00Z",
    );
    quarantined(
        root,
        "deep/new.bmp",
        b"2",
        "deep/new.bmp",
        "r2",
        "2026-02-01T12:00:00Z",
    );

    let o = retry(root, &["--all", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(
        stdout(&o).matches("would put back").count(),
        2,
        "{}",
        out(&o)
    );
    assert!(root.join("failed/old.bmp").exists() && root.join("failed/deep/new.bmp").exists());
    assert!(!root.join("inbox/old.bmp").exists() && !root.join("inbox/deep").exists());

    let o = retry(root, &["--since", "2021-01-01"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(root.join("inbox/deep/new.bmp").exists(), "{}", out(&o));
    assert!(!root.join("inbox/old.bmp").exists(), "{}", out(&o));
    assert!(root.join("failed/old.bmp").exists());

    // A subfolder of failed/: everything below it.
    for n in ["x", "y"] {
        let rel = format!("more/{n}.bmp");
        quarantined(root, &rel, b"3", &rel, "r3", "2026-02-01T12:00:00Z");
    }
    let o = retry(root, &["failed/more"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(root.join("inbox/more/x.bmp").exists() && root.join("inbox/more/y.bmp").exists());
    // Nothing left below one: said so.
    let o = retry(root, &["failed/deep"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        stdout(&o).contains("no quarantined file below"),
        "{}",
        out(&o)
    );

    let o = retry(root, &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(fs::read(root.join("inbox/old.bmp")).unwrap(), b"1");

    let o = retry(root, &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(stdout(&o).contains("nothing in"), "{}", out(&o));
    // A duration ago, and a time that is none.
    let o = retry(root, &["--since", "2h"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = retry(root, &["--since", "last tuesday"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

#[test]
fn a_file_not_in_failed_or_a_missing_failed_folder_is_a_one_line_error() {
    let t = folders();
    let root = t.path();
    let o = retry(root, &["nothing.bmp"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        stdout(&o).contains("nothing.bmp: no such quarantined file"),
        "{}",
        out(&o)
    );
    fs::remove_dir(root.join("failed")).unwrap();
    let o = retry(root, &["--all"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}: cannot read the failed folder",
            root.join("failed").display()
        )),
        "{err}"
    );
}

#[test]
fn a_file_that_fails_again_shows_its_earlier_failure() {
    let d = Daemon::start(FAST);
    fs::write(d.inbox().join("junk.bmp"), b"this is no image at all").unwrap();
    assert!(
        wait_until(LONG, || d.path("failed/junk.bmp.error.txt").exists()),
        "{}",
        d.log()
    );
    let first = fs::read_to_string(d.path("failed/junk.bmp.error.txt")).unwrap();
    assert!(!first.contains("earlier:"), "{first}");
    let o = retry(d.dir.path(), &["junk.bmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // Quarantined again: the new note carries the first one under earlier:.
    assert!(
        wait_until(LONG, || fs::read_to_string(
            d.path("failed/junk.bmp.error.txt")
        )
        .is_ok_and(|n| n.contains("earlier:"))),
        "{}",
        d.log()
    );
    let second = fs::read_to_string(d.path("failed/junk.bmp.error.txt")).unwrap();
    let first_reason = first.lines().find(|l| l.starts_with("reason: ")).unwrap();
    assert!(second.contains(&format!("  {first_reason}")), "{second}");
    // Removed right after the new note is written: waited for, not raced.
    assert!(wait_until(LONG, || !d
        .path("inbox/.rlewatch/history/junk.bmp.error.txt")
        .exists()));
    // Retried once more: the history holds both.
    let o = retry(d.dir.path(), &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        wait_until(LONG, || fs::read_to_string(
            d.path("failed/junk.bmp.error.txt")
        )
        .is_ok_and(|n| n.matches("reason: ").count() == 3)),
        "{}",
        fs::read_to_string(d.path("failed/junk.bmp.error.txt")).unwrap_or_default()
    );
}

#[test]
fn a_file_retried_while_the_daemon_runs_is_archived_and_its_history_settled() {
    let d = Daemon::start(FAST);
    let bmp = fs::read(data("pal8.bmp")).unwrap();
    quarantined(
        d.dir.path(),
        "sub/page-3.bmp",
        &bmp,
        "sub/page.bmp",
        "refused",
        "2026-01-01T00:00:00Z",
    );
    let o = retry(d.dir.path(), &["sub/page.bmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        wait_until(LONG, || d.path("done/sub/page.bmp").exists()),
        "{}",
        d.log()
    );
    assert_eq!(
        fs::read(d.path("archive/sub/page.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
    assert!(
        wait_until(LONG, || !d
            .path("inbox/.rlewatch/history/sub/page.bmp.error.txt")
            .exists()),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("archived after being retried"),
        "{}",
        d.log()
    );
}

/// An original that cannot be filed (done/ is a file) is retried with a
/// growing backoff; once done/ is fixed, `retry --now` makes it go through
/// well before its next attempt is due (8 s after the fourth failure).
#[test]
fn retry_now_makes_a_file_in_backoff_go_through_at_once() {
    let mut d = Daemon::start(FAST);
    fs::remove_dir(d.path("done")).unwrap();
    fs::write(d.path("done"), b"in the way").unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("stuck.bmp")).unwrap();
    assert!(d.wait_log("retry 4 in 8s", 1, LONG), "{}", d.log());
    fs::remove_file(d.path("done")).unwrap();
    fs::create_dir(d.path("done")).unwrap();
    let o = retry(d.dir.path(), &["--now"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stdout(&o).contains(&format!("(pid {})", d.pid())),
        "{}",
        out(&o)
    );
    assert!(
        wait_until(Duration::from_secs(4), || d.path("done/stuck.bmp").exists()),
        "{}",
        d.log()
    );
    assert!(
        d.log()
            .contains("retrying 1 file(s) in backoff now (asked by SIGUSR1)"),
        "{}",
        d.log()
    );
    // Archived once, though its original was filed only at a later
    // attempt: counted once (the stop line, as the metrics and status).
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    assert!(
        d.log().contains("stopped: archived 1 file(s)"),
        "{}",
        d.log()
    );
}

/// The request file alone (as a command on another host leaves it) is
/// seen at the next heartbeat.
#[test]
fn the_retry_request_file_reaches_a_daemon_at_its_heartbeat() {
    // takeover_secs = 5: a heartbeat each second.
    let d = Daemon::start(&format!("{FAST}[daemon]\ntakeover_secs = 5\n"));
    fs::remove_dir(d.path("done")).unwrap();
    fs::write(d.path("done"), b"in the way").unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("stuck.bmp")).unwrap();
    assert!(d.wait_log("retry 4 in 8s", 1, LONG), "{}", d.log());
    fs::remove_file(d.path("done")).unwrap();
    fs::create_dir(d.path("done")).unwrap();
    fs::write(d.path("inbox/.rlewatch/retry-now"), b"from another host\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || d.path("done/stuck.bmp").exists()),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("asked through the request file"),
        "{}",
        d.log()
    );
}

fn age(path: &Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn an_orphan_error_note_is_removed_once_its_file_is_archived() {
    let d = Daemon::start(FAST);
    // Re-processed by hand: the note stayed behind, its file moved back.
    fs::write(
        d.path("failed/hand.bmp.error.txt"),
        "file: x\nreason: was bad\n",
    )
    .unwrap();
    age(&d.path("failed/hand.bmp.error.txt"), 3600);
    // A young note without its file may be a quarantine in progress: kept.
    fs::write(d.path("failed/young.bmp.error.txt"), "reason: r\n").unwrap();
    // A note whose file is still there is never touched.
    fs::write(d.path("failed/both.bmp"), b"bad").unwrap();
    fs::write(d.path("failed/both.bmp.error.txt"), "reason: r\n").unwrap();
    age(&d.path("failed/both.bmp.error.txt"), 3600);
    for name in ["hand.bmp", "young.bmp", "both.bmp"] {
        fs::copy(data("pal8.bmp"), d.inbox().join(name)).unwrap();
    }
    for name in ["hand.bmp", "young.bmp", "both.bmp"] {
        assert!(
            wait_until(LONG, || d.path(&format!("done/{name}")).exists()),
            "{}",
            d.log()
        );
    }
    assert!(
        wait_until(LONG, || !d.path("failed/hand.bmp.error.txt").exists()),
        "{}",
        d.log()
    );
    // Logged right after the removal: waited for, not raced.
    assert!(d.wait_log("it said: was bad", 1, LONG), "{}", d.log());
    assert!(d.path("failed/young.bmp.error.txt").exists());
    assert!(d.path("failed/both.bmp.error.txt").exists());
    assert!(d.path("failed/both.bmp").exists());
}

/// The retention of done/ (design §4.4, "Retention"): `days` days, a daemon
/// that archived `names` (pal8.bmp each) into done/.
fn with_done(names: &[&str]) -> Daemon {
    let d = Daemon::start(FAST);
    for name in names {
        fs::copy(data("pal8.bmp"), d.inbox().join(name)).unwrap();
    }
    // Filed, and its filed line written (after the original is filed).
    let filed = |name: &str| {
        ledger::events(&d.path("archive"))
            .iter()
            .any(|l| l["kind"] == "filed" && l["path"] == name)
    };
    for name in names {
        assert!(
            wait_until(LONG, || d.path(&format!("done/{name}")).exists()
                && filed(name)),
            "{}",
            d.log()
        );
    }
    d
}

/// The `removed` lines under `archive`, once there are `n` (each is
/// written right after its file is removed).
fn removed_lines(archive: &Path, n: usize) -> Vec<serde_json::Value> {
    let lines = || -> Vec<serde_json::Value> {
        ledger::events(archive)
            .into_iter()
            .filter(|l| l["kind"] == "removed")
            .collect()
    };
    wait_until(LONG, || lines().len() >= n);
    lines()
}

const DAY: u64 = 86_400;

#[test]
fn retention_removes_only_old_originals_whose_archive_verifies() {
    let mut d = with_done(&[
        "old.bmp",
        "young.bmp",
        "damaged.bmp",
        "replaced.bmp",
        "legacy.bmp",
        "fresh.bmp",
    ]);
    // The archive of damaged.bmp loses a byte; replaced.bmp is another file
    // now (same name, other content).
    let rle = d.path("archive/damaged.rle");
    let bytes = fs::read(&rle).unwrap();
    fs::write(&rle, &bytes[..bytes.len() - 1]).unwrap();
    fs::copy(data("rgb24.bmp"), d.path("done/replaced.bmp")).unwrap();
    for name in ["old.bmp", "damaged.bmp", "replaced.bmp", "legacy.bmp"] {
        age(&d.path(&format!("done/{name}")), 31 * DAY);
    }
    // legacy.bmp as filed before ledger version 3: no filed line for it;
    // its archived entry names its inbox path, which is its done/ path.
    drop_filed_line(&d.path("archive"), "legacy.bmp");
    age(&d.path("done/young.bmp"), 29 * DAY);
    // fresh.bmp kept an old mtime (a copy with `cp -p`) but was filed just
    // now: its days in done/ count from its filing. The oldest by mtime, so
    // judged before the others of its batch.
    age(&d.path("done/fresh.bmp"), 40 * DAY);
    restart_with(&mut d, |d| {
        // Filed 31 days ago, as the ledger says (but fresh.bmp).
        age_ledger(&d.path("archive"), 31 * DAY, &["fresh.bmp"]);
        fs::write(
            d.path("config.toml"),
            format!("{FAST}[originals]\ndone_retention_days = 30\n"),
        )
        .unwrap()
    });
    assert!(
        wait_until(LONG, || !d.path("done/old.bmp").exists()
            && !d.path("done/legacy.bmp").exists()),
        "{}",
        d.log()
    );
    assert!(d.wait_log("retention: kept", 2, LONG), "{}", d.log());
    let log = d.log();
    assert!(log.contains("retention: removed"), "{log}");
    assert!(
        log.contains(&format!(
            "kept {}: its archive {} is damaged",
            d.path("done/damaged.bmp").display(),
            d.path("archive/damaged.rle").display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "kept {}: its content is not what was archived",
            d.path("done/replaced.bmp").display()
        )),
        "{log}"
    );
    for kept in ["young.bmp", "damaged.bmp", "replaced.bmp", "fresh.bmp"] {
        assert!(d.path(&format!("done/{kept}")).exists(), "{kept}: {log}");
    }
    // The archive of the removed original is untouched; the ledger says so.
    assert_eq!(
        fs::read(d.path("archive/old.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
    let removed = removed_lines(&d.path("archive"), 2);
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().all(|l| l["what"] == "done"), "{removed:?}");
    assert!(
        removed.iter().any(|l| l["path"] == "old.bmp"),
        "{removed:?}"
    );
    // Said once: a reload runs a pass again (oldest first: zz.bmp, aged
    // last, comes last), and the kept ones are not said again.
    fs::copy(data("pal8.bmp"), d.inbox().join("zz.bmp")).unwrap();
    let zz_filed = || {
        ledger::events(&d.path("archive"))
            .iter()
            .any(|l| l["kind"] == "filed" && l["path"] == "zz.bmp")
    };
    assert!(wait_until(LONG, || d.path("done/zz.bmp").exists() && zz_filed()));
    age(&d.path("done/zz.bmp"), 31 * DAY);
    // (The daemon is idle: nothing appends while the ledger is rewritten.)
    age_ledger(&d.path("archive"), 31 * DAY, &["fresh.bmp"]);
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || !d.path("done/zz.bmp").exists()),
        "{}",
        d.log()
    );
    assert_eq!(d.log().matches("retention: kept").count(), 2, "{}", d.log());
}

/// Rewrites the ledger under `archive` with every line's `time` `secs`
/// ago, but those of the sources `except`.
fn age_ledger(archive: &Path, secs: u64, except: &[&str]) {
    let then = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(secs))
        .to_string();
    for host in fs::read_dir(archive.join(".rlewatch/ledger"))
        .unwrap()
        .flatten()
    {
        for day in fs::read_dir(host.path()).unwrap().flatten() {
            let text = fs::read_to_string(day.path()).unwrap();
            let aged: String = text
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    if !except.iter().any(|e| v["source"] == *e) {
                        v["time"] = then.clone().into();
                    }
                    format!("{v}\n")
                })
                .collect();
            fs::write(day.path(), aged).unwrap();
        }
    }
}

/// Rewrites the ledger under `archive` without the `filed` line of the
/// original dropped as `source`.
fn drop_filed_line(archive: &Path, source: &str) {
    for host in fs::read_dir(archive.join(".rlewatch/ledger"))
        .unwrap()
        .flatten()
    {
        for day in fs::read_dir(host.path()).unwrap().flatten() {
            let text = fs::read_to_string(day.path()).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    !(v["kind"] == "filed" && v["source"] == source)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            assert_ne!(kept, text, "no filed line for {source}");
            fs::write(day.path(), kept).unwrap();
        }
    }
}

#[test]
fn retention_is_off_by_default() {
    let mut d = with_done(&["a.bmp"]);
    age(&d.path("done/a.bmp"), 3650 * DAY);
    fs::write(d.path("failed/b.bmp"), b"bad").unwrap();
    fs::write(
        d.path("failed/b.bmp.error.txt"),
        "file: x\nreason: r\ntime: 2000-01-01T00:00:00Z\nattempts: 1\n",
    )
    .unwrap();
    restart_with(&mut d, |_| {});
    // Something after the start that goes through the coordinator: a file
    // archived; by then the first pass (at the start) is long done.
    fs::copy(data("pal8.bmp"), d.inbox().join("c.bmp")).unwrap();
    assert!(wait_until(LONG, || d.path("done/c.bmp").exists()));
    assert!(d.path("done/a.bmp").exists());
    assert!(d.path("failed/b.bmp").exists());
    assert!(!d.log().contains("retention"), "{}", d.log());
}

#[test]
fn failed_retention_removes_old_quarantined_files_with_their_notes() {
    let mut d = Daemon::start(FAST);
    let note = |time: &str| format!("file: x\nreason: bad header\ntime: {time}\nattempts: 1\n");
    let old = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(8 * DAY));
    let young = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(6 * DAY));
    fs::create_dir_all(d.path("failed/sub")).unwrap();
    fs::write(d.path("failed/sub/old.bmp"), b"x").unwrap();
    fs::write(
        d.path("failed/sub/old.bmp.error.txt"),
        note(&old.to_string()),
    )
    .unwrap();
    fs::write(d.path("failed/young.bmp"), b"x").unwrap();
    fs::write(
        d.path("failed/young.bmp.error.txt"),
        note(&young.to_string()),
    )
    .unwrap();
    fs::write(d.path("failed/lone.bmp.error.txt"), note(&old.to_string())).unwrap();
    restart_with(&mut d, |d| {
        fs::write(
            d.path("config.toml"),
            format!("{FAST}[failed]\nretention_days = 7\n"),
        )
        .unwrap()
    });
    assert!(
        wait_until(LONG, || !d.path("failed/sub/old.bmp").exists()
            && !d.path("failed/lone.bmp.error.txt").exists()),
        "{}",
        d.log()
    );
    // Its note goes right after the file: waited for, not raced.
    assert!(wait_until(LONG, || !d
        .path("failed/sub/old.bmp.error.txt")
        .exists()));
    assert!(d.path("failed/young.bmp").exists() && d.path("failed/young.bmp.error.txt").exists());
    let removed = removed_lines(&d.path("archive"), 2);
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().all(|l| l["what"] == "failed"));
    assert!(
        removed.iter().any(|l| l["path"] == "sub/old.bmp"),
        "{removed:?}"
    );
    assert!(d.log().contains("(bad header)"), "{}", d.log());
    // Counted: the stop line says so.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    assert!(
        d.log()
            .contains("retention removed 0 original(s) and 2 failed file(s)"),
        "{}",
        d.log()
    );
}

/// Two hosts on one inbox: files put back while both run are archived
/// exactly once, and `--now` from the command reaches both daemons (this
/// machine's by SIGUSR1).
#[test]
fn with_two_hosts_each_file_put_back_is_archived_once_and_now_reaches_both() {
    let cfg = |host: &str| format!("{FAST}[daemon]\nhost = \"{host}\"\n");
    let d = Daemon::start(&cfg("a"));
    let b = d.beside("b", &cfg("b"));
    let bmp = fs::read(data("pal8.bmp")).unwrap();
    for i in 0..20 {
        quarantined(
            d.dir.path(),
            &format!("batch/p{i}.bmp"),
            &bmp,
            &format!("batch/p{i}.bmp"),
            "refused",
            "2026-01-01T00:00:00Z",
        );
    }
    // `retry` from host a's configuration (the folders are shared).
    let o = retry(d.dir.path(), &["--all", "--now"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(stdout(&o).matches("put back").count(), 20, "{}", out(&o));
    for pid in [d.pid(), b.pid()] {
        assert!(stdout(&o).contains(&format!("(pid {pid})")), "{}", out(&o));
    }
    assert!(
        wait_until(LONG, || (0..20)
            .all(|i| d.path(&format!("done/batch/p{i}.bmp")).exists())),
        "{}\n{}",
        d.log(),
        b.log()
    );
    // Every filed line written (after its original was filed): the
    // ledger is quiet, and read whole.
    assert!(wait_until(LONG, || ledger::events(&d.path("archive"))
        .iter()
        .filter(|l| l["kind"] == "filed")
        .count()
        == 20));
    let archived = ledger::entries(&d.path("archive"))
        .into_iter()
        .filter(|l| l.get("kind").is_none())
        .count();
    assert_eq!(archived, 20, "each archived once");
    assert_eq!(crate::support::files_below(&d.path("archive")).len(), 20);
    for log in [d.log(), b.log()] {
        assert!(
            log.contains("retrying 0 file(s) in backoff now (asked by SIGUSR1)"),
            "{log}"
        );
    }
}

/// Names that are not UTF-8 or hold a newline go back byte for byte; the
/// output shows them escaped, one line each.
#[test]
fn names_that_are_not_utf8_go_back_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = folders();
    let root = t.path();
    let odd = OsStr::from_bytes(b"scan\xff\nx.bmp");
    fs::write(root.join("failed").join(odd), b"bytes").unwrap();
    let o = retry(root, &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(fs::read(root.join("inbox").join(odd)).unwrap(), b"bytes");
    assert_eq!(stdout(&o).lines().count(), 1, "{}", out(&o));
    assert!(stdout(&o).contains("scan\\xff\\nx.bmp"), "{}", out(&o));
}

/// `sudo rlewatch retry`: what it creates under `INBOX/.rlewatch` (the
/// history, the request file) belongs to the daemon's user (the owner of
/// that folder), who must read and remove it.
#[test]
fn run_as_root_what_retry_creates_belongs_to_the_daemons_user() {
    use std::os::unix::fs::MetadataExt;
    if !crate::support::is_root() {
        crate::support::skip_without_root("needs root to run retry as root");
        return;
    }
    let t = folders();
    let root = t.path();
    let state = root.join("inbox/.rlewatch");
    fs::create_dir(&state).unwrap();
    let (uid, gid) = crate::support::NOBODY;
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    quarantined(
        root,
        "deep/x.bmp",
        b"x",
        "deep/x.bmp",
        "r",
        "2026-01-01T00:00:00Z",
    );
    let o = retry(root, &["--all", "--now"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for p in [
        "history",
        "history/deep",
        "history/deep/x.bmp.error.txt",
        "retry-now",
    ] {
        let m = fs::metadata(state.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    // The inbox subfolder made for it goes to the inbox's owner.
    std::os::unix::fs::chown(root.join("inbox"), Some(uid), Some(gid)).unwrap();
    quarantined(
        root,
        "new/y.bmp",
        b"y",
        "new/y.bmp",
        "r",
        "2026-01-01T00:00:00Z",
    );
    let o = retry(root, &["new/y.bmp"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let m = fs::metadata(root.join("inbox/new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
}
