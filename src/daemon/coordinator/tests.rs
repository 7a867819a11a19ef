//! The coordinator in-process (design §4.1): its event loop driven through
//! its control channel, with no signal and no binary, and a reload that
//! fails leaving the running configuration wholly in place (design §4.5).

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};

use super::Coordinator;
use crate::daemon::config::{self, Config};
use crate::daemon::logging::LevelHandle;
use crate::daemon::signals::Control;
use crate::daemon::{lock, startup};
use crate::ledger::Ledger;

/// A configuration for folders in `t`: `threshold` conversion, a short
/// settle time.
fn config_in(t: &Path, extra: &str) -> Config {
    let text = format!(
        "[paths]\ninbox = \"in\"\narchive = \"out\"\ndone = \"done\"\nfailed = \"failed\"\n\
         [compress]\nconversion = \"threshold\"\n[watch]\nsettle_ms = 50\n\
         [daemon]\nhost = \"unit\"\n{extra}"
    );
    config::parse(&text, t).unwrap()
}

/// A coordinator set up as `daemon::run` sets it up, minus logging and
/// signals: the test holds the control channel's sending end.
fn coordinator(config: Config) -> (Coordinator, Sender<Control>, impl Sized) {
    startup::make_folders(&config).unwrap();
    let the_lock = lock::lock(&config.paths.inbox, &config.host).unwrap();
    let ledger = Arc::new(Ledger::open(&config.paths.archive, &config.host).unwrap());
    let (level, layer) = LevelHandle::detached();
    let (control_tx, control) = unbounded();
    let c = Coordinator::new(None, config, level, the_lock, ledger, control).unwrap();
    (c, control_tx, layer)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn the_event_loop_archives_what_arrives_and_drains_on_a_control_message() {
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "");
    let paths = config.paths.clone();
    let (mut c, control, _layer) = coordinator(config);
    c.start().unwrap();
    let running = std::thread::spawn(move || {
        c.run();
        c.stop();
        c.stats.archived
    });
    // Expected bytes: the reference program's output, bundled.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    fs::copy(data.join("pal8.bmp"), paths.inbox.join("a.bmp")).unwrap();
    let moved = paths.done.join("a.bmp");
    assert!(
        wait_for(Duration::from_secs(30), || moved.exists()),
        "a.bmp was not archived and filed within 30 s"
    );
    assert_eq!(
        fs::read(paths.archive.join("a.rle")).unwrap(),
        fs::read(data.join("pal8.threshold.rle")).unwrap()
    );
    // A reload with no configuration file changes nothing and the loop
    // goes on; a shutdown ends it.
    control.send(Control::Reload).unwrap();
    control.send(Control::Shutdown).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || running.is_finished()),
        "the event loop did not end within 30 s of the shutdown message"
    );
    assert_eq!(running.join().unwrap(), 1);
    assert!(!paths.inbox.join("a.bmp").exists());
}

#[test]
fn a_reload_that_fails_leaves_the_running_configuration_wholly_in_place() {
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "[workers]\nthreads = 2\n");
    let (mut c, _control, _layer) = coordinator(config);
    c.start().unwrap();
    let before = c.config.clone();
    // The new inbox is locked by another daemon: the lock is taken after
    // the new folders are made, so something was already done when it
    // fails.
    let other_dir = t.path().join("other");
    fs::create_dir(&other_dir).unwrap();
    let other = config_in(
        &other_dir,
        "[workers]\nthreads = 5\n[log]\nlevel = \"debug\"\n",
    );
    startup::make_folders(&other).unwrap();
    let _held = lock::lock(&other.paths.inbox, &other.host).unwrap();
    let err = c.apply(other).unwrap_err();
    assert!(
        format!("{err:#}").contains("already running"),
        "the error says the new inbox is locked: {err:#}"
    );
    // Nothing switched: the configuration, the workers, the watch.
    assert!(Arc::ptr_eq(&c.config, &before));
    assert_eq!(c.settings.inbox, before.paths.inbox);
    assert_eq!(c.workers.max_count(), 2);
    assert!(c.inbox.watch.is_some(), "the running watch stays");
    // A valid reload then applies.
    let mut good = (*before).clone();
    good.threads = 3;
    c.apply(good).unwrap();
    assert_eq!(c.config.threads, 3);
    assert_eq!(c.workers.max_count(), 3);
    c.begin_shutdown();
    c.stop();
}

#[test]
fn a_file_reported_busy_changed_or_superseded_is_waited_for_again() {
    use crate::archive::Report;
    use crate::daemon::pipeline::JobReport;
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "");
    let paths = config.paths.clone();
    let (mut c, _control, _layer) = coordinator(config);
    // Its writer's last event may have come while it was being read (and
    // was passed over then, the path being in flight): nothing else may
    // bring it back before the periodic rescan.
    for (name, report) in [
        (
            "busy.bmp",
            Report::Busy {
                reason: "another rlewatch is working on it".into(),
            },
        ),
        ("changed.bmp", Report::Changed),
        (
            "superseded.bmp",
            Report::Superseded {
                archive: paths.archive.join("superseded.rle"),
            },
        ),
    ] {
        let path = paths.inbox.join(name);
        fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pal1.bmp"),
            &path,
        )
        .unwrap();
        let m = fs::metadata(&path).unwrap();
        c.on_report(JobReport {
            path: path.clone(),
            key: (m.dev(), m.ino()),
            attempts: 0,
            report,
        });
        assert!(c.schedule.is_waiting(&path), "{name} is not waited for");
    }
}

/// A copy of the bundled `pal1.bmp` at `path`.
fn a_bmp_at(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pal1.bmp"),
        path,
    )
    .unwrap();
}

/// Design §4.7: a claim a crash left in this host's claim folder is put on
/// the waiting list (counted for the start-up line "finishing N claimed
/// file(s)"); one already waiting or in flight is neither put there again
/// nor counted.
#[test]
fn a_claim_left_in_this_hosts_folder_is_adopted_once() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let (mut c, _control, _layer) = coordinator(config_in(t.path(), ""));
    let claim = c.settings.claims.join("sub/left.bmp");
    a_bmp_at(&claim);
    assert_eq!(c.adopt_claims(), 1);
    assert!(c.schedule.is_waiting(&claim), "the claim is not waited for");
    assert_eq!(c.adopt_claims(), 0, "a waiting claim adopted again");
    // Handed out to a worker: in flight, no longer waiting.
    let m = fs::metadata(&claim).unwrap();
    c.schedule.hand_out(&claim, (m.dev(), m.ino()));
    assert_eq!(c.adopt_claims(), 0, "a claim in flight adopted again");
    assert!(!c.schedule.is_waiting(&claim));
}

/// What the watcher reports (design §4.2): a file is waited for; a new
/// folder is scanned at once (files that landed before its watch existed)
/// and again `NEW_FOLDER_RESCAN` later, not at once (files that land
/// between that scan and its watch).
#[test]
fn what_the_watcher_reports_is_waited_for_and_a_new_folder_scanned_again_later() {
    use super::schedule::NEW_FOLDER_RESCAN;
    use crate::daemon::watch::Seen;
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "");
    let inbox = config.paths.inbox.clone();
    let (mut c, _control, _layer) = coordinator(config);
    let file = inbox.join("a.bmp");
    a_bmp_at(&file);
    c.on_seen(Seen {
        path: file.clone(),
        folder: false,
    });
    assert!(
        c.schedule.is_waiting(&file),
        "a reported file is not waited for"
    );
    let folder = inbox.join("new");
    let inside = folder.join("b.bmp");
    a_bmp_at(&inside);
    let before = Instant::now();
    c.on_seen(Seen {
        path: folder.clone(),
        folder: true,
    });
    assert!(
        c.schedule.is_waiting(&inside),
        "a file in a new folder is not waited for"
    );
    let again = c
        .schedule
        .next_folder()
        .expect("no second scan of the new folder");
    assert!(
        again >= before + NEW_FOLDER_RESCAN,
        "the second scan is due {:?} after the first, not {NEW_FOLDER_RESCAN:?}",
        again.checked_duration_since(before)
    );
}

/// Design §4.8: once another host's heartbeat has stayed still for
/// `takeover_secs` (on this host's clock), its claims move into this
/// host's claim folder and wait to be finished here at once.
#[test]
fn a_silent_hosts_claims_are_taken_over_and_waited_for() {
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "takeover_secs = 60\n");
    let inbox = config.paths.inbox.clone();
    let (mut c, _control, _layer) = coordinator(config);
    let theirs = crate::claim::prepare(&inbox, "dead").unwrap();
    a_bmp_at(&theirs.join("sub/x.bmp"));
    let t0 = Instant::now();
    c.tend_hosts(t0); // first sight of "dead": not silent yet
    assert!(theirs.join("sub/x.bmp").exists());
    c.tend_hosts(t0 + Duration::from_secs(61));
    let mine = c.settings.claims.join("sub/x.bmp");
    assert!(mine.exists(), "the claim was not taken over");
    assert!(!theirs.join("sub/x.bmp").exists());
    assert!(
        c.schedule.is_waiting(&mine),
        "the claim taken over is not waited for"
    );
}

/// Issue 21: a file failing again and again was counted "retrying 1"
/// while it waited out its backoff and "in progress 1" while its retry
/// attempt ran, so `STATUS=` (and a check on it) flapped. It is retrying
/// throughout, in progress never; once it goes through, neither.
#[test]
fn a_file_being_retried_is_retrying_while_its_attempt_runs_too() {
    use crate::archive::{Failure, Op, Report};
    use crate::daemon::pipeline::JobReport;
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let (mut c, _control, _layer) = coordinator(config_in(t.path(), ""));
    let path = c.config.paths.inbox.join("stuck.bmp");
    a_bmp_at(&path);
    let m = fs::metadata(&path).unwrap();
    let key = (m.dev(), m.ino());
    let failed = |attempts| JobReport {
        path: path.clone(),
        key,
        attempts,
        report: Report::Transient {
            error: Box::new(Failure::io(
                &path,
                Op::Read,
                std::io::Error::other("disk on fire"),
            )),
        },
    };
    let counts = |c: &mut Coordinator| {
        let n = c.counts(Instant::now());
        (n.waiting, n.retrying, n.in_progress)
    };
    c.schedule.hand_out(&path, key);
    assert_eq!(counts(&mut c), (0, 0, 1), "a first attempt is in progress");
    c.on_report(failed(0));
    assert_eq!(counts(&mut c), (0, 1, 0), "waiting out its backoff");
    assert!(c.status().contains("waiting 0, retrying 1, in progress 0"));
    // The retry attempt runs: still retrying, not in progress.
    c.schedule.hand_out(&path, key);
    assert_eq!(counts(&mut c), (0, 1, 0), "its retry attempt runs");
    assert!(c.status().contains("waiting 0, retrying 1, in progress 0"));
    c.on_report(failed(1));
    assert_eq!(c.stats.retrying[&path].attempts, 2);
    assert_eq!(c.stats.retries, 2);
    // Gone (someone took it away): neither.
    c.schedule.hand_out(&path, key);
    c.on_report(JobReport {
        path: path.clone(),
        key,
        attempts: 2,
        report: Report::Gone,
    });
    assert_eq!(counts(&mut c), (0, 0, 0));
}

#[test]
fn a_backlog_larger_than_a_scan_batch_is_taken_a_batch_at_a_time_and_all_archived() {
    let t = tempfile::tempdir().unwrap();
    let config = config_in(t.path(), "[workers]\nthreads = 1\n");
    let paths = config.paths.clone();
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pal8.bmp");
    // More than a batch (2048 with one worker).
    let n = 2348;
    for i in 0..n {
        let d = paths.inbox.join(format!("d{}", i % 3));
        fs::create_dir_all(&d).unwrap();
        fs::copy(&page, d.join(format!("{i}.bmp"))).unwrap();
    }
    let (mut c, control, _layer) = coordinator(config);
    c.start().unwrap();
    let batch = super::walk::scan_batch(c.max_in_flight());
    assert!(batch < n);
    assert_eq!(
        c.schedule.waiting_count(),
        batch,
        "the start takes one batch"
    );
    assert!(
        c.inbox.walk.is_some(),
        "and leaves the walk where it stopped"
    );
    let running = std::thread::spawn(move || {
        c.run();
        c.stop();
        c.stats.archived
    });
    let done = |i: usize| paths.done.join(format!("d{}/{i}.bmp", i % 3));
    assert!(
        wait_for(Duration::from_secs(120), || (0..n)
            .all(|i| done(i).exists())),
        "not every file of the backlog was archived and filed within 120 s"
    );
    control.send(Control::Shutdown).unwrap();
    assert!(wait_for(Duration::from_secs(30), || running.is_finished()));
    assert_eq!(running.join().unwrap(), n as u64);
}
