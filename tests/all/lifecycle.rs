//! The daemon's life as a service: one per inbox, the clean-up at start,
//! SIGTERM draining the work and a second signal ending it at once,
//! systemd's notify protocol (ready, reloading, stopping, watchdog,
//! status), logs for the journal and as JSON, and sleeping when idle.

use std::fs;
use std::time::Duration;

use crate::support::{
    Daemon, FAST, LONG, big_bmp, data, expected, files_below, no_temp_files, run_in, stderr,
    tempdir, wait_file, wait_until,
};

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
    let mut d = Daemon::start(&format!("{FAST}[daemon]\nhost = \"lc-host\"\n"));
    // A real archive, original and quarantined file first: the clean-up
    // must remove rlewatch's temporary files (`.rlewatch-*.tmp`, design
    // §4.4) left by earlier runs of this host and nothing else.
    fs::copy(data("pal1.bmp"), d.inbox().join("kept.bmp")).unwrap();
    fs::write(d.inbox().join("bad.bmp"), b"BMnot a bitmap").unwrap();
    assert!(wait_until(LONG, || d.path("done/kept.bmp").exists()
        && d.path("failed/bad.bmp.error.txt").exists()));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    // Untagged (the CLI's, an old version's), this host's from a version
    // without instance tokens, this host's from an earlier run.
    let stale = [
        "archive/.rlewatch-abc123.tmp",
        "archive/.rlewatch-lc-host~abc123.tmp",
        "done/.rlewatch-lc-host~0123456789abcdef~abc123.tmp",
    ];
    for f in stale {
        fs::write(d.path(f), b"partial").unwrap();
    }
    // Names that are only half a temporary name are someone's files;
    // another host's temporary file may be in progress on shared storage.
    let decoys = [
        "archive/.rlewatch-abc123",
        "archive/x.tmp",
        "done/.rlewatch-y.part",
        "archive/.rlewatch-other-host~0123456789abcdef~abc123.tmp",
    ];
    for decoy in decoys {
        fs::write(d.path(decoy), b"not ours").unwrap();
    }
    let before: Vec<_> = ["archive", "done", "failed"]
        .iter()
        .map(|dir| files_below(&d.path(dir)))
        .collect();
    d.spawn();
    // The sweep runs once the daemon is ready, on a thread of its own.
    assert!(
        wait_until(LONG, || stale.iter().all(|f| !d.path(f).exists())),
        "{}",
        d.log()
    );
    assert!(
        wait_until(LONG, || d.log().contains(
            "removed 3 stale temporary file(s) left by an earlier run"
        )),
        "{}",
        d.log()
    );
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
    for (i, dir) in ["archive", "done", "failed"].iter().enumerate() {
        before[i].retain(|p| !stale.contains(&format!("{dir}/{}", p.display()).as_str()));
    }
    assert_eq!(after, before);
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
fn a_second_signal_exits_at_once_and_nothing_is_half_done() {
    let mut d = Daemon::start("[workers]\nthreads = 1\n[watch]\nsettle_ms = 20\n");
    let bmp = big_bmp(6000, 6000);
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
    let claimed = files_below(&d.inbox())
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
    let out = run_in(
        d.dir.path(),
        &["verify", "archive/big.rle", "--source", "done/big.bmp"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(no_temp_files(&d.path("archive")));
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

/// systemd.exec(5): stderr is the journal only when `JOURNAL_STREAM`
/// names its device and inode. A daemon started from a unit's shell
/// inherits the variable with its stderr elsewhere: that stays a plain
/// log, with timestamps. (Under the journal: tests/all/journal.rs.)
#[test]
fn a_journal_stream_that_is_not_stderr_is_not_the_journal() {
    let d = Daemon::start_with_env(FAST, &[("JOURNAL_STREAM", "8:12345")]);
    let log = d.log();
    let line = log.lines().find(|l| l.contains(" started: ")).unwrap();
    // RFC 3339 timestamp first: 2026-…T…Z
    let stamp = line.split_whitespace().next().unwrap();
    assert!(
        stamp.len() > 20 && stamp.as_bytes()[4] == b'-' && stamp.contains('T'),
        "{line}"
    );
    assert!(!log.contains('\u{1b}'));
    assert!(!log.contains("cannot be reached"), "{log}");
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
