//! `rlewatch status` through the real binary: OK with a live daemon,
//! CRITICAL with none, WARNING for a dead host's claims, a file failing
//! longer than stuck_secs and new files in failed/ (OK again after
//! --ack), a corrupt heartbeat and ledger line named, a missing inbox
//! (UNKNOWN), the --json shape, ignored names logged once and listed;
//! what a hostile tester found: a state folder the caller cannot read
//! (UNKNOWN, not "never ran"), kept originals, recursive = false, failed
//! times from the note, missing folders, claims about to be taken over,
//! deleted ignored names.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Daemon, FAST, LONG, data, run_in, stderr, tempdir, wait_until};

/// `rlewatch status ARGS -c config.toml` in `dir`.
fn status(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["status", "-c", "config.toml"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `--check`: (exit code, the line).
fn check(dir: &Path) -> (i32, String) {
    let o = status(dir, &["--check"]);
    (o.status.code().unwrap_or(-1), stdout(&o))
}

fn json(dir: &Path) -> serde_json::Value {
    let o = status(dir, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("status --json prints one JSON object")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const CONFIG: &str = "[watch]\nsettle_ms = 50\n[daemon]\nhost = \"alpha\"\n";

#[test]
fn ok_with_a_live_daemon_then_critical_once_it_stopped() {
    let mut d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(wait_until(LONG, || d.path("done/a.bmp").exists()));
    let (code, line) = check(&dir);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("RLEWATCH OK - "), "{line}");
    assert!(line.contains(" | hosts_alive=1;"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    // The --json shape the docs promise, with values from what was done.
    let s = json(&dir);
    let h = &s["hosts"][0];
    assert_eq!(h["host"], "alpha");
    assert_eq!(h["alive"], true);
    assert_eq!(h["pid"], d.pid());
    assert_eq!(s["inbox"]["waiting"], 0);
    assert!(s["inbox"]["oldest_waiting_secs"].is_null());
    assert_eq!(s["retrying"], serde_json::json!([]));
    assert_eq!(s["failed"]["count"], 0);
    assert_eq!(s["failed"]["newest"], serde_json::json!([]));
    assert_eq!(s["archived"]["last_24h"], 1);
    let last = s["archived"]["last_time"].as_f64().unwrap();
    assert!((now() - last).abs() < 120.0, "{last}");
    // The counts reach the heartbeat within a second or so.
    assert!(wait_until(
        LONG,
        || json(&dir)["hosts"][0]["counts"]["archived"] == 1
    ));

    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    let (code, line) = check(&dir);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("RLEWATCH CRITICAL - no live rlewatch daemon for "),
        "{line}"
    );
    assert!(line.contains("alpha: stopped cleanly"), "{line}");
}

#[test]
fn a_killed_daemon_is_down_and_says_why() {
    let mut d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    let pid = d.pid();
    d.kill();
    let s = json(&dir);
    assert_eq!(s["hosts"][0]["alive"], false);
    let why = s["hosts"][0]["why"].as_str().unwrap();
    assert_eq!(why, format!("process {pid} is not running on this machine"));
    assert_eq!(check(&dir).0, 2);
}

#[test]
fn with_no_daemon_ever_it_is_critical_and_a_missing_inbox_is_unknown() {
    let t = tempdir();
    for f in ["inbox", "archive", "done", "failed"] {
        fs::create_dir(t.path().join(f)).unwrap();
    }
    fs::write(t.path().join("config.toml"), "").unwrap();
    let (code, line) = check(t.path());
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("no rlewatch has ever run on this inbox"),
        "{line}"
    );
    // Without -c: the built-in defaults, folders in the working directory.
    let o = run_in(t.path(), &["status", "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));

    fs::remove_dir(t.path().join("inbox")).unwrap();
    let (code, line) = check(t.path());
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("RLEWATCH UNKNOWN - "), "{line}");
    assert!(
        line.contains(&t.path().join("inbox").display().to_string()),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    let o = status(t.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("rlewatch: "), "{err}");
    assert!(err.contains("inbox"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A heartbeat of `host` as another daemon would write it, last written
/// `age` seconds ago.
fn fake_heartbeat(inbox: &Path, host: &str, age: f64) {
    let hb = serde_json::json!({
        "format": "rlewatch-heartbeat", "v": 1, "host": host, "pid": 1,
        "version": "0.1.0", "machine": "elsewhere", "boot_id": "not-this-one",
        "state": "running", "started": now() - 5000.0, "written": now() - age,
        "beat": 9, "interval_secs": 2.0, "takeover_secs": 0, "workers": 1,
    });
    let dir = inbox.join(".rlewatch/hosts");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(host), hb.to_string()).unwrap();
}

#[test]
fn a_dead_host_holding_claims_is_a_warning() {
    // takeover_secs = 0: alpha never takes beta's claims over.
    let d = Daemon::start(&format!("{CONFIG}takeover_secs = 0\n"));
    let dir = d.dir.path().to_path_buf();
    fake_heartbeat(&d.inbox(), "beta", 1000.0);
    let claims = d.inbox().join(".rlewatch/claims/beta");
    fs::create_dir_all(&claims).unwrap();
    fs::copy(data("pal1.bmp"), claims.join("held.bmp")).unwrap();
    let (code, line) = check(&dir);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("RLEWATCH WARNING - host beta is not alive (no heartbeat for 16m 40s"),
        "{line}"
    );
    assert!(
        line.contains("holds 1 claimed file(s) not taken over"),
        "{line}"
    );
    assert!(line.contains("dead_host_claims=1;"), "{line}");
    let s = json(&dir);
    // By host id: alpha, beta.
    let (alpha, beta) = (&s["hosts"][0], &s["hosts"][1]);
    assert_eq!(
        (beta["host"].as_str(), beta["alive"].as_bool()),
        (Some("beta"), Some(false))
    );
    assert_eq!(beta["claims"], 1);
    assert_eq!(
        (alpha["host"].as_str(), alpha["alive"].as_bool()),
        (Some("alpha"), Some(true))
    );
    // A host beating (written just now) is alive, even on another machine.
    fake_heartbeat(&d.inbox(), "beta", 0.0);
    assert_eq!(check(&dir).0, 0);
}

#[test]
fn a_corrupt_heartbeat_is_named_and_warned_of() {
    let d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    let bad = d.inbox().join(".rlewatch/hosts/gamma");
    fs::write(
        &bad,
        "{\"format\": \"rlewatch-heartbeat\", \"v\": 1, \"pid\": ",
    )
    .unwrap();
    let (code, line) = check(&dir);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("{}: corrupt heartbeat: ", bad.display())),
        "{line}"
    );
    let text = stdout(&status(&dir, &[]));
    assert!(
        text.contains("gamma DOWN: ") && text.contains("corrupt heartbeat"),
        "{text}"
    );
}

#[test]
fn a_file_failing_longer_than_stuck_secs_is_a_warning_until_it_passes() {
    let d = Daemon::start(&format!("{CONFIG}[status]\nstuck_secs = 1\n"));
    let dir = d.dir.path().to_path_buf();
    // done/ is a file: the archive is written, the original cannot be
    // filed, and the file is retried with backoff.
    fs::remove_dir(d.path("done")).unwrap();
    fs::write(d.path("done"), "in the way").unwrap();
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(d.wait_log("retry 1 in ", 1, LONG), "{}", d.log());
    let mut line = String::new();
    assert!(
        wait_until(LONG, || {
            let (code, l) = check(&dir);
            line = l;
            code == 1 && line.contains("failing for over")
        }),
        "{line}"
    );
    assert!(
        line.contains("1 file(s) failing for over 1s (a.bmp on alpha, attempt "),
        "{line}"
    );
    // The folder that is wrong is named too.
    assert!(line.contains("is a file, not a folder"), "{line}");
    let s = json(&dir);
    let r = &s["retrying"][0];
    assert_eq!(
        (r["path"].as_str(), r["host"].as_str()),
        (Some("a.bmp"), Some("alpha"))
    );
    assert!(r["attempts"].as_u64().unwrap() >= 1);
    assert!(r["error"].as_str().unwrap().contains("done"), "{r}");
    // A retried file is not also counted as waiting.
    assert_eq!(s["inbox"]["waiting"], 0, "{s}");
    // Fixed: it goes through, and the warning with it.
    fs::remove_file(d.path("done")).unwrap();
    fs::create_dir(d.path("done")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || d.path("done/a.bmp").exists()),
        "{}",
        d.log()
    );
    assert!(wait_until(LONG, || check(&dir).0 == 0), "{}", check(&dir).1);
}

#[test]
fn new_failed_files_warn_until_acknowledged() {
    let d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    fs::write(d.inbox().join("junk.bmp"), "not an image at all").unwrap();
    assert!(wait_until(LONG, || d
        .path("failed/junk.bmp.error.txt")
        .exists()));
    let (code, line) = check(&dir);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("1 new file(s) in failed/ since ever (never acknowledged) (newest: junk.bmp: not an image file"), "{line}");
    let s = json(&dir);
    assert_eq!(s["failed"]["count"], 1);
    assert_eq!(s["failed"]["new"], 1);
    assert_eq!(s["failed"]["newest"][0]["path"], "junk.bmp");
    assert!(
        s["failed"]["newest"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not an image file")
    );
    // Seen: acknowledged, OK again; a later failure warns again.
    let o = status(&dir, &["--ack"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with("acknowledged the failed folder up to "),
        "{}",
        stdout(&o)
    );
    assert_eq!(check(&dir).0, 0, "{}", check(&dir).1);
    fs::write(d.inbox().join("junk2.bmp"), "also not an image").unwrap();
    assert!(wait_until(LONG, || d.path("failed/junk2.bmp").exists()));
    let (code, line) = check(&dir);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("1 new file(s) in failed/ since the acknowledgement"),
        "{line}"
    );
    assert_eq!(json(&dir)["failed"]["count"], 2);
}

#[test]
fn a_corrupt_ledger_line_is_named_with_its_line_number() {
    let d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(wait_until(LONG, || d.path("done/a.bmp").exists()));
    let ledger_dir = d.path("archive/.rlewatch/ledger/alpha");
    let file = fs::read_dir(&ledger_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // The archived entry, then (after the original is filed) the line
    // saying where it went: both written before the torn line is added.
    assert!(wait_until(LONG, || fs::read_to_string(&file)
        .is_ok_and(|t| t.contains("\"kind\":\"filed\""))));
    let mut text = fs::read_to_string(&file).unwrap();
    let torn = text.lines().count() + 1;
    text.push_str("{\"v\": 2, \"time\": \n");
    fs::write(&file, text).unwrap();
    let (code, line) = check(&dir);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!(
            "{} line {torn}: unreadable ledger line: ",
            file.display()
        )),
        "{line}"
    );
    // What is readable still counts.
    assert_eq!(json(&dir)["archived"]["last_24h"], 1);
}

#[test]
fn ignored_names_are_logged_once_counted_and_listed() {
    let mut d = Daemon::start(&format!("{FAST}ignore = [\"*-draft.bmp\"]\n"));
    let dir = d.dir.path().to_path_buf();
    fs::write(d.inbox().join("notes.pdf"), "a").unwrap();
    fs::write(d.inbox().join("page-draft.bmp"), "b").unwrap();
    fs::write(d.inbox().join(".hidden.pdf"), "c").unwrap();
    fs::write(d.inbox().join("page.bmp.part"), "d").unwrap();
    assert!(
        d.wait_log("notes.pdf: left alone: not an image name", 1, LONG),
        "{}",
        d.log()
    );
    assert!(
        d.wait_log(
            "page-draft.bmp: left alone: matches watch.ignore pattern \"*-draft.bmp\"",
            1,
            LONG
        ),
        "{}",
        d.log()
    );
    // Touched again: not told again.
    fs::write(d.inbox().join("notes.pdf"), "aa").unwrap();
    let s = json(&dir);
    assert_eq!(s["inbox"]["ignored"]["count"], 2, "{s}");
    let names: Vec<&str> = s["inbox"]["ignored"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes.pdf", "page-draft.bmp"]);
    assert!(wait_until(
        LONG,
        || json(&dir)["hosts"][0]["counts"]["ignored"] == 2
    ));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    let log = d.log();
    assert_eq!(log.matches("notes.pdf: left alone").count(), 1, "{log}");
    assert!(
        !log.contains(".hidden.pdf") && !log.contains("page.bmp.part"),
        "{log}"
    );
    assert!(
        log.contains("and 2 ignored name(s) no pattern takes"),
        "{log}"
    );
    assert!(log.contains("2 name(s) ignored"), "{log}");
}

/// A folder with the four configured folders and `config`, no daemon.
fn folders(config: &str) -> tempfile::TempDir {
    let t = tempdir();
    for f in ["inbox", "archive", "done", "failed"] {
        fs::create_dir(t.path().join(f)).unwrap();
    }
    fs::write(t.path().join("config.toml"), config).unwrap();
    t
}

fn problems(s: &serde_json::Value) -> Vec<String> {
    s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_caller_who_cannot_read_the_state_folder_is_unknown_not_never_ran() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !crate::support::is_root() {
        crate::support::skip_without_root("running status as another user");
        return;
    }
    let t = folders("");
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fake_heartbeat(&t.path().join("inbox"), "alpha", 0.0);
    let state = t.path().join("inbox/.rlewatch");
    // The daemon's folder, as deployed: 0700, not the caller's.
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let as_nobody = |args: &[&str]| {
        let (uid, gid) = crate::support::NOBODY;
        crate::support::bin()
            .args(["status", "-c", "config.toml"])
            .args(args)
            .current_dir(t.path())
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    };
    let why = ".rlewatch: permission denied: run as root or as the daemon's user";
    let o = as_nobody(&["--check"]);
    let line = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{line}");
    assert!(line.starts_with("RLEWATCH UNKNOWN - "), "{line}");
    assert!(line.contains(why), "{line}");
    assert!(!line.contains("no rlewatch has ever run"), "{line}");
    let o = as_nobody(&[]);
    let text = stdout(&o);
    assert!(text.contains("  problem: ") && text.contains(why), "{text}");
    assert!(!text.contains("no rlewatch has run"), "{text}");
    // Said once: not again for the acknowledgement file in that folder.
    assert_eq!(text.matches("  problem: ").count(), 1, "{text}");
    let o = as_nobody(&["--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        s["hosts_unreadable"].as_str().unwrap().ends_with(why),
        "{s}"
    );
    assert!(problems(&s).iter().any(|p| p.ends_with(why)), "{s}");
    // As root (the daemon's user here) it looks, and finds alpha.
    assert_eq!(check(t.path()).0, 0, "{}", check(t.path()).1);
}

#[test]
fn kept_originals_are_not_waiting_nor_stuck() {
    let d = Daemon::start(&format!(
        "{CONFIG}[originals]\naction = \"keep\"\n[status]\nstuck_secs = 1\n"
    ));
    let dir = d.dir.path().to_path_buf();
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(wait_until(
        LONG,
        || json(&dir)["hosts"][0]["counts"]["archived"] == 1
    ));
    // Kept by design, in the inbox, longer than stuck_secs.
    assert!(d.inbox().join("a.bmp").exists());
    assert!(wait_until(LONG, || {
        let m = fs::metadata(d.inbox().join("a.bmp")).unwrap();
        m.modified()
            .unwrap()
            .elapsed()
            .is_ok_and(|e| e.as_secs_f64() > 3.0)
    }));
    let s = json(&dir);
    assert_eq!(s["inbox"]["waiting"], 0, "{s}");
    assert_eq!(s["inbox"]["source"], "heartbeats", "{s}");
    let (code, line) = check(&dir);
    assert_eq!(code, 0, "{line}");
}

#[test]
fn with_recursive_off_files_in_subfolders_are_ignored_not_waiting() {
    let t = folders("[watch]\nrecursive = false\n");
    fs::create_dir(t.path().join("inbox/sub")).unwrap();
    fs::copy(data("pal1.bmp"), t.path().join("inbox/sub/a.bmp")).unwrap();
    fs::copy(data("pal1.bmp"), t.path().join("inbox/top.bmp")).unwrap();
    let s = json(t.path());
    assert_eq!(s["inbox"]["waiting"], 1, "{s}");
    assert_eq!(s["inbox"]["oldest"][0]["path"], "top.bmp", "{s}");
    assert_eq!(s["inbox"]["ignored"]["count"], 1, "{s}");
    let f = &s["inbox"]["ignored"]["files"][0];
    assert_eq!(f["path"], "sub/a.bmp", "{s}");
    assert!(
        f["why"]
            .as_str()
            .unwrap()
            .starts_with("in a subfolder, and watch.recursive = false"),
        "{s}"
    );
}

#[test]
fn a_failed_files_time_is_its_notes_not_its_ctime() {
    let t = folders("");
    fs::create_dir_all(t.path().join("inbox/.rlewatch")).unwrap();
    let failed = t.path().join("failed");
    let rfc = |t: f64| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs_f64(t)).to_string()
    };
    let an_hour_ago = now() - 3600.0;
    let note = |name: &str, time: Option<&str>| {
        fs::write(failed.join(name), "x").unwrap();
        let time = time.map_or(String::new(), |t| format!("time: {t}\n"));
        fs::write(
            failed.join(format!("{name}.error.txt")),
            format!("file: /in/{name}\nreason: bad header\n{time}attempts: 1\n"),
        )
        .unwrap();
    };
    note("old.bmp", Some(&rfc(an_hour_ago)));
    let o = status(t.path(), &["--ack"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A chmod/touch after the --ack changes the ctime, not when it failed.
    let f = fs::File::options()
        .append(true)
        .open(failed.join("old.bmp"))
        .unwrap();
    f.set_modified(SystemTime::now()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(failed.join("old.bmp"), fs::Permissions::from_mode(0o600)).unwrap();
    let s = json(t.path());
    assert_eq!(s["failed"]["count"], 1, "{s}");
    assert_eq!(s["failed"]["new"], 0, "{s}");
    let time = s["failed"]["newest"][0]["time"].as_f64().unwrap();
    assert_eq!(time, an_hour_ago.floor(), "{s}");
    assert_eq!(check(t.path()).0, 2, "no daemon: CRITICAL only");
    assert!(!check(t.path()).1.contains("new file(s) in failed/"));
    // A note from the future counts as now; one without a time: its ctime.
    note("future.bmp", Some(&rfc(now() + 86_400.0)));
    note("untimed.bmp", None);
    let s = json(t.path());
    assert_eq!(s["failed"]["new"], 2, "{s}");
    for f in s["failed"]["newest"].as_array().unwrap() {
        if f["path"] != "old.bmp" {
            let t = f["time"].as_f64().unwrap();
            assert!(t <= s["time"].as_f64().unwrap() && t > an_hour_ago, "{s}");
        }
    }
}

#[test]
fn a_missing_or_wrong_folder_is_a_problem_line_naming_it() {
    let t = folders("[paths]\narchive = \"archiv\"\nfailed = \"faild\"\n");
    let s = json(t.path());
    let p = problems(&s);
    assert!(
        p.iter()
            .any(|l| l.ends_with("archiv: no such folder (paths.archive)")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|l| l.ends_with("faild: no such folder (paths.failed)")),
        "{p:?}"
    );
    assert!(!p.iter().any(|l| l.contains("IO error")), "{p:?}");
    let text = stdout(&status(t.path(), &[]));
    assert!(
        text.contains("archiv: no such folder (paths.archive)"),
        "{text}"
    );

    // A file given as paths.failed: a problem, not one failed file.
    let t = folders("[paths]\nfailed = \"failed.txt\"\n");
    fs::write(t.path().join("failed.txt"), "x").unwrap();
    let s = json(t.path());
    assert_eq!(s["failed"]["count"], 0, "{s}");
    assert!(
        problems(&s)
            .iter()
            .any(|l| l.ends_with("failed.txt: not a folder (paths.failed)")),
        "{s}"
    );
}

/// A live alpha with takeover on, and beta dead `silent` seconds holding a
/// claim: alpha's --check.
fn dead_beta_claims(d: &Daemon, silent: f64) -> (i32, String) {
    fake_heartbeat(&d.inbox(), "beta", silent);
    let claims = d.inbox().join(".rlewatch/claims/beta");
    fs::create_dir_all(&claims).unwrap();
    if !claims.join("held.bmp").exists() {
        fs::copy(data("pal1.bmp"), claims.join("held.bmp")).unwrap();
    }
    check(d.dir.path())
}

#[test]
fn dead_host_claims_about_to_be_taken_over_are_not_a_warning() {
    // takeover_secs 600: the beat every 30 s; due after 600 + 30 + 30 s.
    let d = Daemon::start(&format!("{CONFIG}takeover_secs = 600\n"));
    let (code, line) = dead_beta_claims(&d, 100.0);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("dead_host_claims=1;"), "{line}");
    let (code, line) = dead_beta_claims(&d, 1000.0);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(
            "holds 1 claimed file(s) not taken over (silent longer than takeover_secs 600"
        ),
        "{line}"
    );
}

#[test]
fn deleted_ignored_names_leave_the_heartbeat_before_a_rescan() {
    let d = Daemon::start(CONFIG);
    let dir = d.dir.path().to_path_buf();
    let heartbeat_ignored = || -> serde_json::Value {
        let hb = fs::read(d.inbox().join(".rlewatch/hosts/alpha")).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&hb)
            .map_or(serde_json::Value::Null, |v| v["ignored"]["count"].clone())
    };
    fs::write(d.inbox().join("a.txt"), "a").unwrap();
    assert!(wait_until(LONG, || heartbeat_ignored() == 1));
    assert_eq!(json(&dir)["inbox"]["ignored"]["count"], 1);
    fs::remove_file(d.inbox().join("a.txt")).unwrap();
    // The rescan is every 300 s; LONG is 60 s.
    assert!(
        wait_until(LONG, || heartbeat_ignored() == 0),
        "{}",
        heartbeat_ignored()
    );
    assert_eq!(json(&dir)["inbox"]["ignored"]["count"], 0);
}
