//! Claims, the ledger and `rlewatch audit` (design §4.7), through the real
//! binary: two daemons on one inbox, what the ledger records, an archive
//! published but never recorded, what the audit finds, a dead host's
//! claims taken over, and a SIGKILL at every named step of a file's life.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::loopfs;
use crate::support::{
    Confine, Daemon, FAST, LONG, data, expected, files_below, ledger, restart_with, run_in, stderr,
    wait_file, wait_until,
};

/// Every entry of the ledger of `d`'s archive.
fn recorded(d: &Daemon) -> Vec<serde_json::Value> {
    ledger::entries(&d.path("archive"))
}

fn audit(dir: &Path, archive: &str) -> (bool, String) {
    let out = run_in(dir, &["audit", archive]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    (out.status.success(), text)
}

/// Files in the inbox other than the daemon's own (claims count: a claim
/// is a file not finished).
fn inbox_files(d: &Daemon) -> Vec<PathBuf> {
    files_below(&d.inbox())
}

/// `n` files renamed into one inbox (under `root`) watched by two daemons: each archived
/// exactly once, nothing lost, the ledgers agree with the archive.
fn two_daemons(root: &Path, n: usize, second: &str, delete_lock: bool) {
    let d = Daemon::start_in(
        root,
        "[watch]\nsettle_ms = 20\n[daemon]\nhost = \"alpha\"\n",
    );
    if delete_lock {
        // As any inbox writer with the old layout could; the second
        // daemon then gets past the lock.
        fs::remove_file(d.inbox().join(".rlewatch/alpha.lock")).unwrap();
    }
    let other = d.beside(
        "second",
        &format!("[watch]\nsettle_ms = 20\n[daemon]\nhost = \"{second}\"\n"),
    );
    let staging = d.path("staging");
    fs::create_dir(&staging).unwrap();
    let kinds = ["pal1", "pal8", "rgb24", "pal4rle"];
    for i in 0..n {
        let kind = kinds[i % kinds.len()];
        fs::copy(
            data(&format!("{kind}.bmp")),
            staging.join(format!("{i:03}-{kind}.bmp")),
        )
        .unwrap();
    }
    for i in 0..n {
        let name = format!("{i:03}-{}.bmp", kinds[i % kinds.len()]);
        fs::rename(staging.join(&name), d.inbox().join(&name)).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(180), || files_below(&d.path("done"))
            .len()
            >= n
            && inbox_files(&d).is_empty()),
        "done {} of {n}, inbox {:?}",
        files_below(&d.path("done")).len(),
        inbox_files(&d)
    );
    // Every original is filed once its archive is recorded, but the other
    // daemon may still be inside an attempt that will find the file gone
    // or taken, its temporary archive not yet dropped (CI saw one such
    // file at this point once); a stray one that stays is a failure.
    let temporary = |p: &std::path::PathBuf| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.starts_with(".rlewatch-") && name.ends_with(".tmp")
    };
    wait_until(Duration::from_secs(10), || {
        !files_below(&d.path("archive")).iter().any(temporary)
    });
    let archive = files_below(&d.path("archive"));
    assert_eq!(archive.len(), n, "duplicates or losses: {archive:?}");
    assert_eq!(files_below(&d.path("done")).len(), n);
    for i in 0..n {
        let kind = kinds[i % kinds.len()];
        assert_eq!(
            fs::read(d.path(&format!("archive/{i:03}-{kind}.rle"))).unwrap(),
            fs::read(data(&format!("{kind}.dither.rle"))).unwrap(),
            "{i:03}-{kind}"
        );
    }
    let entries = recorded(&d);
    assert_eq!(entries.len(), n, "one ledger entry per file");
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(clean, "{text}");
    // Both did some of the work (otherwise this proves little).
    let by_host = entries
        .iter()
        .fold(BTreeMap::<String, usize>::new(), |mut m, e| {
            *m.entry(e["host"].as_str().unwrap().to_string())
                .or_default() += 1;
            m
        });
    println!("files archived per host: {by_host:?}");
    // The log names each daemon's host.
    assert!(d.log().contains("(host alpha, "), "{}", d.log());
    assert!(other.log().contains(&format!("(host {second}, ")));
    drop(other);
}

#[test]
fn two_daemons_with_their_own_host_ids_share_an_inbox_exactly_once() {
    two_daemons(&std::env::temp_dir(), 500, "beta", false);
}

/// The same, with 200 files, on each filesystem of the matrix
/// (`support::loopfs`).
#[test]
fn fsmatrix_two_daemons_with_their_own_host_ids_share_an_inbox_exactly_once() {
    loopfs::on_each(256, |root| two_daemons(root, 200, "beta", false));
}

#[test]
fn a_second_daemon_past_a_deleted_lock_duplicates_and_loses_nothing() {
    two_daemons(&std::env::temp_dir(), 500, "alpha", true);
}

#[test]
fn the_ledger_records_each_file_as_it_is() {
    let d = Daemon::start(FAST);
    fs::create_dir(d.inbox().join("sub")).unwrap();
    fs::copy(data("pal1wb.bmp"), d.inbox().join("sub/bw.bmp")).unwrap();
    fs::copy(data("rgb24.bmp"), d.inbox().join("photo.bmp")).unwrap();
    assert!(wait_until(LONG, || files_below(&d.path("done")).len() == 2));
    let mut entries = recorded(&d);
    entries.sort_by_key(|e| e["source"].as_str().unwrap().to_string());
    assert_eq!(entries.len(), 2);
    for (e, src, rle, lossless) in [
        (&entries[0], "photo.bmp", "rgb24.dither.rle", false),
        (&entries[1], "sub/bw.bmp", "pal1wb.dither.rle", true),
    ] {
        let source = fs::read(data(if lossless { "pal1wb.bmp" } else { "rgb24.bmp" })).unwrap();
        let archived = fs::read(data(rle)).unwrap();
        assert_eq!(e["v"], 3);
        assert_eq!(e["format"], "bmp");
        assert_eq!(e["source"], src);
        assert_eq!(e["source_size"], source.len() as u64);
        assert_eq!(
            e["source_xxh3"],
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&source))
        );
        assert_eq!(e["archive"], src.replace(".bmp", ".rle"));
        assert_eq!(e["archive_size"], archived.len() as u64);
        assert_eq!(
            e["archive_xxh3"],
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&archived))
        );
        // Dimensions from the BMP header and from the .rle's own header.
        let w = u32::from_le_bytes(source[18..22].try_into().unwrap());
        let h = i32::from_le_bytes(source[22..26].try_into().unwrap()).unsigned_abs();
        assert_eq!(
            (e["width"].as_u64(), e["height"].as_u64()),
            (Some(w.into()), Some(h.into()))
        );
        assert_eq!(
            u64::from(u16::from_le_bytes([archived[0], archived[1]])),
            u64::from(w)
        );
        assert_eq!(e["conversion"], "dither");
        assert_eq!(e["lossless"], lossless);
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn audit_finds_missing_corrupt_unrecorded_and_doubly_recorded_archives() {
    let d = Daemon::start(FAST);
    for (name, src) in [("a", "pal8"), ("b", "rgb24"), ("c", "pal1"), ("e", "rgb16")] {
        fs::copy(
            data(&format!("{src}.bmp")),
            d.inbox().join(format!("{name}.bmp")),
        )
        .unwrap();
    }
    assert!(wait_until(LONG, || files_below(&d.path("done")).len() == 4));
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(clean, "{text}");
    assert!(text.contains("audited 4 recorded archive(s)"), "{text}");

    // One byte flipped (same size), one deleted, one added by hand, one
    // ledger line repeated.
    let mut a = fs::read(d.path("archive/a.rle")).unwrap();
    let last = a.len() - 1;
    a[last] ^= 0x01;
    fs::write(d.path("archive/a.rle"), &a).unwrap();
    fs::remove_file(d.path("archive/b.rle")).unwrap();
    fs::write(
        d.path("archive/stray.rle"),
        fs::read(data("pal8.dither.rle")).unwrap(),
    )
    .unwrap();
    let file = ledger::files(&d.path("archive")).remove(0);
    let text_before = fs::read_to_string(&file).unwrap();
    let c_line = text_before
        .lines()
        .find(|l| l.contains("\"c.rle\""))
        .unwrap()
        .to_string();
    fs::write(&file, format!("{text_before}{c_line}\n")).unwrap();

    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(!clean, "{text}");
    assert!(text.contains("corrupt: a.rle"), "{text}");
    assert!(text.contains("missing: b.rle"), "{text}");
    assert!(text.contains("unrecorded: stray.rle"), "{text}");
    assert!(text.contains("doubly recorded: c.rle"), "{text}");
    assert!(!text.contains("e.rle"), "{text}");
    assert!(
        text.contains("1 missing, 1 corrupt, 1 unrecorded, 1 doubly recorded"),
        "{text}"
    );
    // Exit status 1, and the configuration names the archive too.
    let out = run_in(d.dir.path(), &["audit", "--config", "config.toml"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_state_folder_someone_else_can_write_stops_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Daemon::start(FAST);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    // As an inbox writer could make it before the first start.
    fs::set_permissions(
        d.inbox().join(".rlewatch"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rlewatch"))
        .args(["run", "--config", "config.toml"])
        .current_dir(d.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(".rlewatch") && err.contains("writable by no one else"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the crash points: cargo test --release --features test-hooks"
)]
fn sigkill_at_every_step_of_a_files_life_loses_and_duplicates_nothing() {
    if !cfg!(feature = "test-hooks") {
        println!("skipped: built without --features test-hooks");
        return;
    }
    // (name, source, expected archive, lossless)
    let files = [
        ("bw.bmp", "pal1wb.bmp", Some("pal1wb.dither.rle"), true),
        ("photo.bmp", "rgb24.bmp", Some("rgb24.dither.rle"), false),
        ("bad.bmp", "bad/badbitcount.bmp", None, false),
    ];
    let steps = rlewatch::faults::STEPS
        .iter()
        .chain(rlewatch::faults::CLAIM_STEPS);
    for policy in ["move", "delete", "keep"] {
        for step in steps.clone() {
            let config = format!("[watch]\nsettle_ms = 20\n[originals]\naction = \"{policy}\"\n");
            let mut d = Daemon::start_with_env(&config, &[("RLEWATCH_TEST_CRASH_AT", step)]);
            for (name, src, _, _) in files {
                fs::copy(data(src), d.path(name)).unwrap();
                fs::rename(d.path(name), d.inbox().join(name)).unwrap();
            }
            let status = d.wait_exit(LONG);
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.and_then(|s| s.signal()),
                Some(libc::SIGKILL),
                "{policy}/{step}: not killed there\n{}",
                d.log()
            );
            d.set_env(&[]);
            d.spawn();
            let settled = || {
                let inbox: Vec<PathBuf> = inbox_files(&d);
                let expect_inbox = if policy == "keep" { 2 } else { 0 };
                inbox.len() == expect_inbox
                    && inbox.iter().all(|p| !p.starts_with(".rlewatch"))
                    && d.path("failed/bad.bmp").exists()
                    && files_below(&d.path("archive")).len() == 2
            };
            assert!(
                wait_until(LONG, settled),
                "{policy}/{step}: not settled: inbox {:?}, archive {:?}\n{}",
                inbox_files(&d),
                files_below(&d.path("archive")),
                d.log()
            );
            // Every file exactly once.
            for (name, src, rle, lossless) in files {
                let stem = name.trim_end_matches(".bmp");
                let source = fs::read(data(src)).unwrap();
                match rle {
                    Some(rle) => {
                        assert_eq!(
                            fs::read(d.path(&format!("archive/{stem}.rle"))).unwrap(),
                            fs::read(data(rle)).unwrap(),
                            "{policy}/{step}: {name}"
                        );
                        let original = match policy {
                            "keep" => Some(d.inbox().join(name)),
                            "delete" if lossless => None,
                            _ => Some(d.path(&format!("done/{name}"))),
                        };
                        match original {
                            Some(p) => assert_eq!(
                                fs::read(&p).ok().as_deref(),
                                Some(&source[..]),
                                "{policy}/{step}: {name} not at {}",
                                p.display()
                            ),
                            None => assert!(
                                !d.path(&format!("done/{name}")).exists(),
                                "{policy}/{step}: {name}"
                            ),
                        }
                    }
                    None => {
                        assert_eq!(fs::read(d.path("failed/bad.bmp")).unwrap(), source);
                        assert!(d.path("failed/bad.bmp.error.txt").exists());
                    }
                }
            }
            let done_expected = match policy {
                "keep" => 0,
                "delete" => 1,
                _ => 2,
            };
            assert_eq!(
                files_below(&d.path("done")).len(),
                done_expected,
                "{policy}/{step}: {:?}",
                files_below(&d.path("done"))
            );
            assert_eq!(files_below(&d.path("failed")).len(), 2, "{policy}/{step}");
            assert_eq!(recorded(&d).len(), 2, "{policy}/{step}: {:?}", recorded(&d));
            let (clean, text) = audit(d.dir.path(), "archive");
            assert!(clean, "{policy}/{step}: {text}");
            println!("{policy}/{step}: killed, restarted, every file exactly once");
        }
    }
}

/// Two daemons with the `keep` policy: each puts its originals back, where
/// the other finds them; the other must see in the ledger that they are
/// archived, not record them again.
#[test]
fn two_keep_daemons_record_each_file_once() {
    const N: usize = 20;
    let d = Daemon::start(
        "[watch]\nsettle_ms = 20\n[originals]\naction = \"keep\"\n[daemon]\nhost = \"a\"\n",
    );
    let _other = d.beside(
        "b",
        "[watch]\nsettle_ms = 20\n[originals]\naction = \"keep\"\n[daemon]\nhost = \"b\"\n",
    );
    for i in 0..N {
        fs::copy(data("pal8.bmp"), d.path(&format!("f{i}.bmp"))).unwrap();
        fs::rename(
            d.path(&format!("f{i}.bmp")),
            d.inbox().join(format!("f{i}.bmp")),
        )
        .unwrap();
    }
    assert!(
        wait_until(LONG, || files_below(&d.path("archive")).len() == N
            && recorded(&d).len() >= N
            && inbox_files(&d).len() == N),
        "archive {:?}",
        files_below(&d.path("archive"))
    );
    // Both have had time to see each other's put-back originals: a
    // rescan-free wait for the ledger to stay as it is.
    let settled = || {
        let before = recorded(&d).len();
        !wait_until(Duration::from_secs(2), || recorded(&d).len() != before)
    };
    assert!(settled());
    assert_eq!(recorded(&d).len(), N, "{:?}", recorded(&d));
    assert_eq!(files_below(&d.path("archive")).len(), N);
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(clean, "{text}");
}

/// A name that is not UTF-8 is recorded exactly: a kept original is
/// recognised after restarts, and the audit finds its archive.
#[test]
fn a_name_that_is_not_utf8_is_recorded_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.bmp");
    let mut d = Daemon::start("[watch]\nsettle_ms = 20\n[originals]\naction = \"keep\"\n");
    fs::copy(data("pal1.bmp"), d.inbox().join(name)).unwrap();
    assert!(wait_until(LONG, || recorded(&d).len() == 1));
    for _ in 0..2 {
        d.signal(libc::SIGTERM);
        assert!(d.wait_exit(LONG).is_some());
        d.spawn();
        assert!(d.wait_log("already archived", 1, LONG), "{}", d.log());
    }
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    assert_eq!(
        files_below(&d.path("archive")),
        vec![PathBuf::from(std::ffi::OsStr::from_bytes(
            b"bad\xffname.rle"
        ))]
    );
    let entries = recorded(&d);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["source_raw"], "626164ff6e616d652e626d70");
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(clean, "{text}");
}

/// The ledger's file removed while the daemon runs: the next entry goes
/// to a new file, not into the removed one.
#[test]
fn a_ledger_file_removed_while_running_is_made_again() {
    let d = Daemon::start(FAST);
    fs::copy(data("pal8.bmp"), d.inbox().join("one.bmp")).unwrap();
    assert!(wait_until(LONG, || recorded(&d).len() == 1));
    fs::remove_dir_all(d.path("archive/.rlewatch")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("two.bmp")).unwrap();
    assert!(wait_until(LONG, || d.path("done/two.bmp").exists()));
    let entries = recorded(&d);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["source"], "two.bmp");
    // What the audit says is then the truth: one.rle has lost its record.
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(!clean && text.contains("unrecorded: one.rle"), "{text}");
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
    let ledger = ledger::lines(&d.path("archive")).join("\n");
    assert_eq!(ledger.lines().count(), 2, "{ledger}");
    assert!(ledger.contains("\"archive\":\"again.rle\""), "{ledger}");
    assert!(ledger.contains("\"archive\":\"other-1.rle\""), "{ledger}");
}

/// A temporary archive corrupted between its fsync and its verification
/// (a test-only fault): never published, the original never touched.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the fault hooks: cargo test --release --features test-hooks"
)]
fn an_archive_corrupted_before_verification_is_never_published() {
    if !cfg!(feature = "test-hooks") {
        println!("skipped: built without --features test-hooks");
        return;
    }
    for policy in ["move", "delete"] {
        let d = Daemon::start_with_env(
            &format!("[watch]\nsettle_ms = 20\n[originals]\naction = \"{policy}\"\n"),
            &[("RLEWATCH_TEST_CORRUPT_TEMP", "1")],
        );
        fs::copy(data("pal1wb.bmp"), d.path("bw.bmp")).unwrap();
        fs::rename(d.path("bw.bmp"), d.inbox().join("bw.bmp")).unwrap();
        assert!(
            d.wait_log("verification failed", 2, LONG),
            "{policy}: {}",
            d.log()
        );
        assert!(d.log().contains("retry 2 in"), "{}", d.log());
        // Nothing published, nothing recorded, the original where it was
        // dropped, byte for byte.
        assert!(
            files_below(&d.path("archive")).is_empty(),
            "{policy}: {:?}",
            files_below(&d.path("archive"))
        );
        assert!(recorded(&d).is_empty());
        assert!(files_below(&d.path("done")).is_empty());
        assert!(wait_until(LONG, || fs::read(d.inbox().join("bw.bmp")).ok()
            == fs::read(data("pal1wb.bmp")).ok()));
    }
}

/// Three daemons with their own host ids on one inbox, 2,000 files
/// arriving; one is SIGKILLed while it holds claims and never restarted:
/// the others take its claims over once its heartbeat has been still for
/// `takeover_secs`, and every file is archived exactly once.
#[test]
fn a_dead_hosts_claims_are_finished_by_the_others_exactly_once() {
    const N: usize = 2000;
    let cfg = |host: &str| {
        format!("[watch]\nsettle_ms = 20\n[daemon]\nhost = \"{host}\"\ntakeover_secs = 3\n")
    };
    let d = Daemon::start(&cfg("a"));
    let _b = d.beside("b", &cfg("b"));
    let mut c = d.beside("c", &cfg("c"));
    let staging = d.path("staging");
    fs::create_dir(&staging).unwrap();
    let kinds = ["pal1", "pal8", "rgb16", "pal4rle"];
    for i in 0..N {
        let kind = kinds[i % kinds.len()];
        fs::copy(
            data(&format!("{kind}.bmp")),
            staging.join(format!("{i:04}-{kind}.bmp")),
        )
        .unwrap();
    }
    let feeder = {
        let (staging, inbox) = (staging.clone(), d.inbox());
        std::thread::spawn(move || {
            for i in 0..N {
                let name = format!("{i:04}-{}.bmp", kinds[i % kinds.len()]);
                fs::rename(staging.join(&name), inbox.join(&name)).unwrap();
                if i % 50 == 49 {
                    std::thread::sleep(Duration::from_millis(5)); // a steady stream, not sync
                }
            }
        })
    };
    // Kill c while it holds at least one claim.
    let c_claims = d.inbox().join(".rlewatch/claims/c");
    assert!(
        wait_until(LONG, || !files_below(&c_claims).is_empty()),
        "c never held a claim"
    );
    c.kill();
    let left = files_below(&c_claims).len();
    println!("c killed holding {left} claim(s)");
    // Whether or not that claim was finished in the instant before the
    // kill, c leaves one: file number N, as a crash between claiming and
    // filing leaves it. Only a take-over can finish it.
    fs::copy(
        data(&format!("{}.bmp", kinds[N % kinds.len()])),
        c_claims.join(format!("{N:04}-{}.bmp", kinds[N % kinds.len()])),
    )
    .unwrap();
    feeder.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(180), || files_below(&d.path("done"))
            .len()
            > N
            && inbox_files(&d).is_empty()),
        "done {} of {}; inbox {:?}",
        files_below(&d.path("done")).len(),
        N + 1,
        inbox_files(&d)
    );
    assert!(
        d.log().contains("host \"c\" has shown no heartbeat")
            || _b.log().contains("host \"c\" has shown no heartbeat")
    );
    let archive = files_below(&d.path("archive"));
    let extra: Vec<_> = archive
        .iter()
        .filter(|p| p.to_string_lossy().contains("-1.rle"))
        .collect();
    assert_eq!(archive.len(), N + 1, "duplicates or losses: {extra:?}");
    for i in 0..=N {
        let kind = kinds[i % kinds.len()];
        assert_eq!(
            fs::read(d.path(&format!("archive/{i:04}-{kind}.rle"))).unwrap(),
            fs::read(data(&format!("{kind}.dither.rle"))).unwrap(),
            "{i:04}-{kind}"
        );
    }
    assert_eq!(recorded(&d).len(), N + 1);
    let (clean, text) = audit(d.dir.path(), "archive");
    assert!(clean, "{text}");
    // c comes back: its claims are gone, nothing is done twice.
    let c2 = d.beside("c-again", &cfg("c"));
    assert!(!wait_until(Duration::from_secs(2), || c2
        .log()
        .contains("archived")));
    assert_eq!(files_below(&d.path("archive")).len(), N + 1);
    assert_eq!(recorded(&d).len(), N + 1);
}

/// Design §4.8: a silent host's claim that a live process on this
/// machine holds locked (a stopped or stalled daemon) is left to it, and
/// that is said once, not at every look; a silent host with no claims is
/// not mentioned. Once the lock is gone the claim is taken over.
#[test]
fn a_silent_hosts_claim_held_by_a_live_process_is_left_to_it_and_said_once() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::DirBuilderExt;
    let d = Daemon::start("[watch]\nsettle_ms = 50\n[daemon]\nhost = \"a\"\ntakeover_secs = 2\n");
    let claims = d.inbox().join(".rlewatch/claims");
    for host in ["stalled", "idle"] {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(claims.join(host))
            .unwrap();
    }
    let claim = claims.join("stalled/x.bmp");
    fs::copy(data("pal1.bmp"), &claim).unwrap();
    let held = fs::File::open(&claim).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let said = "a live process on this machine holds its";
    assert!(
        d.wait_log("holds its 1 claimed file(s) locked", 1, LONG),
        "{}",
        d.log()
    );
    // The hosts are looked at every second (a fifth of takeover_secs,
    // at least 1 s): three more looks say nothing more.
    assert!(
        !wait_until(Duration::from_secs(3), || d.log().matches(said).count() > 1),
        "{}",
        d.log()
    );
    assert!(claim.exists(), "a held claim was taken");
    drop(held);
    assert!(wait_file(&d, "done/x.bmp"), "{}", d.log());
    assert!(!claim.exists());
    assert_eq!(d.log().matches(said).count(), 1, "{}", d.log());
}

/// Where `renameat2(RENAME_NOREPLACE)` is refused with EINVAL (a
/// filesystem without it), claiming, putting back and filing fall back to
/// link + unlink, which never replace either (design §4.7, §4.4): every
/// file is claimed, archived and filed exactly once, clashes in `done/`
/// and in the archive get numbered names, nothing is left claimed.
#[test]
fn without_no_replace_renames_files_are_claimed_and_filed_exactly_once() {
    let confine = Confine {
        deny_rename_noreplace: Some(libc::EINVAL),
        ..Confine::default()
    };
    let d = Daemon::start_confined("[watch]\nsettle_ms = 50\n", &[], confine);
    // Names already taken: the original of a.bmp and the archive of b.bmp
    // must go to numbered names, never over these.
    fs::write(d.path("done/a.bmp"), b"older a").unwrap();
    fs::write(d.path("archive/b.rle"), b"older b").unwrap();
    let names = ["a", "b", "c", "d", "e"];
    for name in names {
        fs::copy(data("pal8.bmp"), d.inbox().join(format!("{name}.bmp"))).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(20), || files_below(&d.path("done"))
            .len()
            == 6),
        "{}",
        d.log()
    );
    let expected = fs::read(data("pal8.dither.rle")).unwrap();
    let original = fs::read(data("pal8.bmp")).unwrap();
    assert_eq!(fs::read(d.path("done/a.bmp")).unwrap(), b"older a");
    assert_eq!(fs::read(d.path("done/a-1.bmp")).unwrap(), original);
    assert_eq!(fs::read(d.path("archive/b.rle")).unwrap(), b"older b");
    assert_eq!(fs::read(d.path("archive/b-1.rle")).unwrap(), expected);
    for name in ["b", "c", "d", "e"] {
        assert_eq!(
            fs::read(d.path(&format!("done/{name}.bmp"))).unwrap(),
            original
        );
    }
    for name in ["a", "c", "d", "e"] {
        assert_eq!(
            fs::read(d.path(&format!("archive/{name}.rle"))).unwrap(),
            expected
        );
    }
    // Exactly once: nothing else anywhere, nothing left claimed.
    assert_eq!(
        files_below(&d.path("archive")).len(),
        6,
        "{:?}",
        files_below(&d.path("archive"))
    );
    assert_eq!(files_below(&d.path("done")).len(), 6);
    assert_eq!(files_below(&d.inbox()), Vec::<PathBuf>::new());
    assert_eq!(recorded(&d).len(), names.len());
    assert!(!d.log().contains("retry"), "{}", d.log());
}

/// Claims in another host id's folder are finished only by a daemon with
/// that host id: with `takeover_secs = 0` they wait there for ever, so the
/// start says where and how many (design §4.8), naming no folder that
/// holds none and not this host's own (whose claims it finishes first).
#[test]
fn claims_waiting_in_another_host_ids_folder_are_named_at_start() {
    use std::os::unix::fs::DirBuilderExt;
    let mut d =
        Daemon::start("[watch]\nsettle_ms = 50\n[daemon]\nhost = \"a\"\ntakeover_secs = 0\n");
    restart_with(&mut d, |d| {
        let claims = d.inbox().join(".rlewatch/claims");
        for host in ["retired/sub", "empty"] {
            fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(claims.join(host))
                .unwrap();
        }
        fs::copy(data("pal1.bmp"), claims.join("retired/x.bmp")).unwrap();
        fs::copy(data("pal8.bmp"), claims.join("retired/sub/y.bmp")).unwrap();
        // Left by a crash of this host: finished first, not warned about.
        fs::copy(data("rgb16.bmp"), claims.join("a/z.bmp")).unwrap();
    });
    let log = d.log();
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("claimed file(s) wait in"))
        .collect();
    assert_eq!(named.len(), 1, "one folder named: {named:?}");
    assert!(
        named[0].contains("2 claimed file(s) wait in") && named[0].contains("host id \"retired\""),
        "{}",
        named[0]
    );
    assert!(
        log.contains("finishing 1 claimed file(s) left by an earlier run first"),
        "{log}"
    );
    assert!(
        wait_file(&d, "done/z.bmp"),
        "this host's own claim was not finished"
    );
    // The other host id's claims stay where they are.
    assert!(d.inbox().join(".rlewatch/claims/retired/x.bmp").exists());
    assert!(
        d.inbox()
            .join(".rlewatch/claims/retired/sub/y.bmp")
            .exists()
    );
}
