//! The configuration: `check-config` prints it or names the mistake (and
//! `--defaults` prints the built-in one); SIGHUP applies a new one to the
//! running daemon (conversion, workers, archive, ignore rules), or keeps
//! the running one whole when the new one fails; `rlewatch reload` checks
//! the file and its target process before it signals.

use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

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

/// `rlewatch reload` is the unit's `ExecReload=`: a valid file is applied, a
/// broken one fails with the reason and sends no signal (the daemon would
/// otherwise log "reload failed"), so `systemctl reload` fails visibly.
#[test]
fn reload_validates_first_and_signals_only_a_valid_config() {
    use crate::support::{Daemon, FAST};
    let d = Daemon::start(FAST);
    let pid = d.pid().to_string();
    let reload = |config: &str| {
        std::fs::write(d.path("config.toml"), config).unwrap();
        run_in(d.dir.path(), &["reload", "--config", "config.toml", &pid])
    };

    let broken = reload(&format!("[compress]\nconversion = \"sharpen\"\n{FAST}"));
    assert_eq!(broken.status.code(), Some(1), "{}", stderr(&broken));
    let msg = stderr(&broken);
    assert!(
        msg.starts_with("rlewatch: not reloaded, the daemon keeps its running configuration: ")
            && msg.contains("config.toml")
            && msg.contains("sharpen"),
        "{msg}"
    );

    let valid = reload(&format!("[compress]\nconversion = \"threshold\"\n{FAST}"));
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
    assert!(d.wait_log(
        "configuration reloaded: conversion threshold",
        1,
        Duration::from_secs(20)
    ));
    // Signals are handled in order: had the broken file been signalled, its
    // failure would be logged before the valid reload's line.
    assert!(!d.log().contains("reload failed"), "{}", d.log());
}

#[test]
fn reload_refuses_pid_0_which_would_signal_the_process_group() {
    let dir = tempdir();
    fs::write(dir.path().join("c.toml"), "").unwrap();
    let out = run_in(dir.path(), &["reload", "-c", "c.toml", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn reload_names_a_process_that_does_not_exist() {
    let dir = tempdir();
    fs::write(dir.path().join("c.toml"), "").unwrap();
    // Above the kernel's pid_max limit (4194304), so never a live process.
    let out = run_in(dir.path(), &["reload", "-c", "c.toml", "2000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: cannot signal process 2000000000: No such process (os error 3)"
    );
}

#[test]
fn toml_errors_keep_their_line_and_a_caret_under_the_spot() {
    let dir = tempdir();
    fs::write(dir.path().join("c.toml"), "[paths]\ninbox = 3\n").unwrap();
    let out = run_in(dir.path(), &["check-config", "c.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains("c.toml: line 2, column 9: invalid type: integer `3`"),
        "{err}"
    );
    assert_eq!(lines[1].trim(), "inbox = 3", "{err}");
    // The caret stands under the `3`.
    assert_eq!(lines[2].find('^'), lines[1].find('3'), "{err}");
}

#[test]
fn check_config_resolves_folders_before_comparing_them() {
    let dir = tempdir();
    let p = dir.path();
    fs::create_dir(p.join("inbox")).unwrap();
    symlink(p.join("inbox"), p.join("alias")).unwrap();
    fs::write(p.join("plainfile"), b"").unwrap();
    for (paths, expected) in [
        // done/ through a symlink alias of the inbox: its own outputs
        // would come back as inbox files (done/done/done/…).
        ("inbox = \"inbox\"\ndone = \"alias/done\"", "paths.done ("),
        (
            "inbox = \"inbox\"\narchive = \"alias\"",
            "are the same folder",
        ),
        (
            "inbox = \"alias\"\narchive = \"inbox\"",
            "are the same folder",
        ),
        ("inbox = \"plainfile\"", "is not a folder"),
    ] {
        fs::write(p.join("c.toml"), format!("[paths]\n{paths}\n")).unwrap();
        let out = run_in(p, &["check-config", "c.toml"]);
        assert_eq!(out.status.code(), Some(1), "{paths}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{paths}: {err}");
        // The daemon refuses to start on it too.
        let out = run_in(p, &["run", "--config", "c.toml"]);
        assert_eq!(out.status.code(), Some(1), "{paths}");
        assert!(stderr(&out).contains(expected), "{paths}: {}", stderr(&out));
    }
    // Outputs lexically inside the inbox are its own folders: allowed.
    fs::write(
        p.join("c.toml"),
        "[paths]\ninbox = \"inbox\"\ndone = \"inbox/done\"\n",
    )
    .unwrap();
    let out = run_in(p, &["check-config", "c.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `check-config --defaults` prints the built-in configuration as a file
/// `check-config` accepts, and its values are those the shipped example
/// documents as the defaults.
#[test]
fn check_config_defaults_round_trip_and_match_the_documented_defaults() {
    let dir = tempdir();
    let p = dir.path();
    let out = run_in(p, &["check-config", "--defaults"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let defaults: toml::Table = text.parse().unwrap();

    fs::write(p.join("defaults.toml"), &text).unwrap();
    let out = run_in(p, &["check-config", "defaults.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let effective: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    // Its folders are resolved against the file's folder.
    let archive = effective["paths"]["archive"].as_str().unwrap();
    assert!(
        archive.starts_with('/') && archive.ends_with("/archive"),
        "{archive}"
    );

    // The example file says: "the values below are the defaults unless
    // noted"; its [paths] are the production folders, not the defaults.
    let example: toml::Table =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/rlewatch.toml"))
            .unwrap()
            .parse()
            .unwrap();
    for (table, keys) in &example {
        if table == "paths" {
            continue;
        }
        for (key, value) in keys.as_table().unwrap() {
            assert_eq!(
                defaults.get(table).and_then(|t| t.get(key)),
                Some(value),
                "{table}.{key}"
            );
        }
    }
    // Every default is in the example, and the folders are the four of
    // design §4.6, relative to the file.
    for (table, keys) in &defaults {
        for key in keys.as_table().unwrap().keys() {
            assert!(example[table].get(key).is_some(), "{table}.{key}");
        }
    }
    for name in ["inbox", "archive", "done", "failed"] {
        assert_eq!(defaults["paths"][name].as_str(), Some(name));
    }

    let help = run_in(p, &["check-config", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("The TOML configuration file to check") && help.contains("--defaults"),
        "{help}"
    );
    assert_eq!(run_in(p, &["check-config"]).status.code(), Some(2));
    assert_eq!(
        run_in(p, &["check-config", "--defaults", "defaults.toml"])
            .status
            .code(),
        Some(2)
    );
}

/// A configured folder that is a file is named as such, by `check-config`
/// and at start, instead of "File exists (os error 17)".
#[test]
fn a_configured_folder_that_is_a_file_is_named_as_such() {
    let dir = tempdir();
    let p = dir.path();
    fs::write(p.join("plainfile"), b"").unwrap();
    for (paths, expected) in [
        (
            "archive = \"plainfile\"",
            "plainfile) is a file, not a folder",
        ),
        (
            "failed = \"plainfile\"",
            "plainfile) is a file, not a folder",
        ),
        (
            "done = \"plainfile/done\"",
            "plainfile/done) cannot be made: ",
        ),
    ] {
        fs::write(p.join("c.toml"), format!("[paths]\n{paths}\n")).unwrap();
        for args in [
            &["check-config", "c.toml"][..],
            &["run", "--config", "c.toml"][..],
        ] {
            let out = run_in(p, args);
            assert_eq!(out.status.code(), Some(1), "{paths}: {args:?}");
            let err = stderr(&out);
            assert!(
                err.contains(expected) && !err.contains("os error"),
                "{paths}: {args:?}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    assert!(!p.join("inbox").exists(), "nothing made");
}

/// `reload` signals nothing but an `rlewatch run` daemon: SIGHUP kills most
/// programs, and `reload` used to send it to any pid it was given.
#[test]
fn reload_refuses_a_process_that_is_not_an_rlewatch_daemon_and_sends_it_nothing() {
    let dir = tempdir();
    fs::write(dir.path().join("def.toml"), "").unwrap();
    let mut sleep = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = sleep.id().to_string();
    let out = run_in(dir.path(), &["reload", "--config", "def.toml", &pid]);
    let alive = sleep.try_wait().unwrap().is_none()
        // A SIGHUP, had one been sent, ends it at once.
        && !crate::support::wait_until(Duration::from_millis(300), || {
            sleep.try_wait().unwrap().is_some()
        });
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!("rlewatch: process {pid} is not an rlewatch daemon (it is `sleep`)")
    );
    assert!(out.stdout.is_empty());
    assert!(alive, "the sleep was signalled");

    // Nor an rlewatch that is not the daemon.
    let me = std::process::id().to_string();
    let out = run_in(dir.path(), &["reload", "--config", "def.toml", &me]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("process {me} is not an rlewatch daemon")),
        "{}",
        stderr(&out)
    );
}

/// A daemon on its built-in defaults reads no file, and one on another file
/// does not read FILE: `reload` says so instead of reporting a reload that
/// does not happen. The same file named another way (from another folder,
/// in absolute form) is the daemon's own.
#[test]
fn reload_refuses_a_daemon_on_its_defaults_or_on_another_file() {
    let dir = tempdir();
    let p = dir.path();
    fs::write(p.join("def.toml"), crate::support::FAST).unwrap();
    let plain = Started::new(p, "plain", &[]);
    let out = run_in(p, &["reload", "--config", "def.toml", &plain.pid()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "rlewatch: process {} runs on its built-in defaults, not on def.toml: it cannot \
             reload a file",
            plain.pid()
        )
    );
    let log = plain.stop();
    assert!(!log.contains("reload"), "{log}");

    // The test harness's daemon: `run --config config.toml` in its folder.
    let d = crate::support::Daemon::start(crate::support::FAST);
    fs::write(d.path("other.toml"), crate::support::FAST).unwrap();
    let pid = d.pid().to_string();
    let out = run_in(d.dir.path(), &["reload", "-c", "other.toml", &pid]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let config = fs::canonicalize(d.path("config.toml")).unwrap();
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "rlewatch: process {pid} runs on {}, not on other.toml: it would not reload \
             other.toml",
            config.display()
        )
    );

    // Its own file, named from elsewhere: reloaded.
    fs::write(
        d.path("config.toml"),
        format!(
            "[compress]\nconversion = \"threshold\"\n{}",
            crate::support::FAST
        ),
    )
    .unwrap();
    let elsewhere = tempdir();
    let out = run_in(
        elsewhere.path(),
        &["reload", "--config", config.to_str().unwrap(), &pid],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(d.wait_log(
        "configuration reloaded: conversion threshold",
        1,
        crate::support::LONG
    ));
    assert!(!d.log().contains("reload failed"), "{}", d.log());
}

/// The unit starts the daemon as `run --config /etc/rlewatch/rlewatch.toml`
/// and reloads it with `reload --config FILE $MAINPID`; `-c FILE` and
/// `--config=FILE` are the same option to clap, and to `reload`.
#[test]
fn reload_accepts_every_spelling_of_the_daemons_config_option() {
    let dir = tempdir();
    let p = dir.path();
    let abs = p.join("r.toml");
    let abs = abs.to_str().unwrap();
    for (name, args) in [
        ("unit", vec!["--config".to_string(), abs.to_string()]),
        ("short", vec!["-c".to_string(), "r.toml".to_string()]),
        ("equals", vec![format!("--config={abs}")]),
    ] {
        fs::write(p.join("r.toml"), crate::support::FAST).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Started::new(p, name, &args);
        fs::write(
            p.join("r.toml"),
            format!(
                "[compress]\nconversion = \"threshold\"\n{}",
                crate::support::FAST
            ),
        )
        .unwrap();
        let out = run_in(p, &["reload", "--config", "r.toml", &daemon.pid()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(
            crate::support::wait_until(crate::support::LONG, || daemon
                .log()
                .contains("configuration reloaded: conversion threshold")),
            "{name}: {}",
            daemon.log()
        );
    }
}

/// Where `/proc/PID` cannot be read (another user's daemon, a relative
/// `--config` to resolve through its working folder), `reload` says so and
/// sends nothing, rather than guess.
#[test]
fn reload_refuses_when_proc_cannot_be_read() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !crate::support::is_root() {
        crate::support::skip_without_root("needs root to run reload as another user");
        return;
    }
    let mut d = crate::support::Daemon::start(crate::support::FAST);
    fs::set_permissions(d.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let pid = d.pid().to_string();
    let (uid, gid) = crate::support::NOBODY;
    let out = crate::support::bin()
        .current_dir(d.dir.path())
        .args(["reload", "-c", "config.toml", &pid])
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("rlewatch: cannot read /proc/{pid}/cwd (")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).trim_end().ends_with("so it is not signalled"),
        "{}",
        stderr(&out)
    );
    // Signals are taken in order: a SIGHUP sent would be logged before the
    // shutdown's lines.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(crate::support::LONG).is_some(), "{}", d.log());
    assert!(!d.log().contains("reload"), "{}", d.log());
}

/// A daemon started by hand with `args` after `run`, in `dir`, logging to
/// `dir/NAME.log`; killed on drop.
struct Started {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Started {
    fn new(dir: &std::path::Path, name: &str, args: &[&str]) -> Started {
        let log = dir.join(format!("{name}.log"));
        let child = crate::support::bin()
            .current_dir(dir)
            .arg("run")
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut d = Started { child, log };
        assert!(
            crate::support::wait_until(crate::support::LONG, || d.log().contains(" started: ")
                || d.child.try_wait().unwrap().is_some()),
            "did not start: {}",
            d.log()
        );
        assert!(d.child.try_wait().unwrap().is_none(), "{}", d.log());
        d
    }
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Stops it with SIGTERM and returns its whole log: signals pending
    /// together are taken lowest number first, so a SIGHUP sent before
    /// shows in the log before the shutdown.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
        self.log()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
