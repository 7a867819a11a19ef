//! Power loss (design §4.7, "Power loss"): the daemon on [`PowerFs`]
//! (support/powerfs.rs), a filesystem that keeps only what was fsynced,
//! and that filesystem's own model test. The power is cut at random
//! moments while files are in flight, and after each named step of a
//! file's life (the test-only crash points, src/faults.rs). After each cut, before the
//! restart: nothing acknowledged as archived is lost, and no original is
//! gone whose archive is not durable. After the restart and drain: every
//! file archived exactly once, no temporary file, `rlewatch audit` clean.
//!
//! Needs root and /dev/fuse: elsewhere it prints `skipped: …`, and with
//! `RLEWATCH_REQUIRE_ROOT=1` (CI) a missing prerequisite fails.
//! `RLEWATCH_POWER_SEED` replays the random cuts of a failed run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::unix::fs::MetadataExt;

use crate::support::mount::fuse_prerequisites;
use crate::support::powerfs::{Mounted, PowerFs};
use crate::support::{
    Daemon, LONG, Lcg, data, files_below, ledger, no_temp_files, run_in, stderr, tempdir,
    wait_until,
};
const HOST: &str = "powerloss";
/// The power-loss filesystem is FUSE, where the daemon claims by a rename
/// unless told that every daemon on the inbox shares its locks (design
/// §4.7): here it is the only one, so the claim is the two-phase one.
const LINK_CLAIMS: (&str, &str) = ("RLEWATCH_TEST_LINK_CLAIMS", "1");

/// What a handed-over file is: its source and, for a good one, the
/// reference archive (tests/data), never the implementation's output.
#[derive(Clone, Copy, Debug)]
struct Kind {
    name: &'static str,
    rle: Option<&'static str>,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "pal1wb",
        rle: Some("pal1wb.dither.rle"),
    },
    Kind {
        name: "pal8",
        rle: Some("pal8.dither.rle"),
    },
    Kind {
        name: "rgb24",
        rle: Some("rgb24.dither.rle"),
    },
    Kind {
        name: "bad",
        rle: None,
    },
];

impl Kind {
    fn source(self) -> Vec<u8> {
        if self.rle.is_none() {
            b"BMnot really a bitmap".to_vec()
        } else {
            fs::read(data(&format!("{}.bmp", self.name))).unwrap()
        }
    }
    fn archive(self) -> Option<Vec<u8>> {
        self.rle.map(|r| fs::read(data(r)).unwrap())
    }
    /// The kind of a file named `fNNN-KIND.bmp`.
    fn of(name: &str) -> Kind {
        let kind = name
            .trim_end_matches(".bmp")
            .split_once('-')
            .map(|(_, k)| k)
            .unwrap_or_default();
        *KINDS
            .iter()
            .find(|k| k.name == kind)
            .unwrap_or_else(|| panic!("no kind for {name}"))
    }
}

/// The daemon on a mounted [`PowerFs`]. Fields drop in order: the daemon
/// is killed before the filesystem is unmounted, a panic included.
struct Rig {
    daemon: Daemon,
    fs: PowerFs,
    mount: Mounted,
    _mountpoint: tempfile::TempDir,
}

impl Rig {
    fn start(policy: &str, env: &[(&str, &str)]) -> Rig {
        let mountpoint = tempdir();
        let fs = PowerFs::new();
        let mount = fs.mount(mountpoint.path()).expect("mount powerfs");
        let root = mount.path().to_path_buf();
        for d in ["inbox", "archive", "done", "failed", "staging"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        sync_dir(&root);
        let p = |d: &str| root.join(d).display().to_string();
        let config = format!(
            "[paths]\ninbox = {:?}\narchive = {:?}\ndone = {:?}\nfailed = {:?}\n\
             [watch]\nbackend = \"poll\"\nsettle_ms = 20\nrescan_secs = 1\n\
             [originals]\naction = \"{policy}\"\n[daemon]\nhost = \"{HOST}\"\n",
            p("inbox"),
            p("archive"),
            p("done"),
            p("failed"),
        );
        let env: Vec<(&str, &str)> = env.iter().copied().chain([LINK_CLAIMS]).collect();
        let daemon = Daemon::start_with_env(&config, &env);
        Rig {
            daemon,
            fs,
            mount,
            _mountpoint: mountpoint,
        }
    }

    fn root(&self) -> &Path {
        self.mount.path()
    }
    fn at(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Has the daemon SIGKILL itself (if the crash point has not already)
    /// and waits for it to end. SIGUSR2, a test hook (`faults::arm`): the
    /// daemon SIGKILLs itself at once, whatever its threads are doing (a
    /// claim, a move, an fsync).
    fn kill(&mut self) {
        if self.daemon.exited().is_none() {
            self.daemon.signal(libc::SIGUSR2);
        }
        assert!(
            self.daemon.wait_exit(LONG).is_some(),
            "SIGKILL did not end the daemon"
        );
    }

    /// Every whole ledger entry (a torn last line records nothing).
    fn ledger(&self) -> Vec<serde_json::Value> {
        ledger::whole_entries(&self.at("archive"))
    }

    /// Every file below inbox (claims included), done and failed, with
    /// its bytes.
    fn originals(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for d in ["inbox", "done", "failed"] {
            for rel in files_below(&self.at(d)) {
                let p = self.at(d).join(rel);
                if let Ok(b) = fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
        out
    }
}

fn sync_dir(p: &Path) {
    fs::File::open(p)
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("fsync {}: {e}", p.display()));
}

/// Hands `name` over as a careful writer does: written, fsynced, renamed
/// into the inbox, the inbox fsynced. Only then does it count.
fn hand_over(root: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(sub) = Path::new(name)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        fs::create_dir_all(root.join("staging").join(sub))?;
        let dir = root.join("inbox").join(sub);
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            fs::File::open(root.join("inbox"))?.sync_all()?;
        }
    }
    let staged = root.join("staging").join(name);
    let mut f = fs::File::create(&staged)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    let to = root.join("inbox").join(name);
    fs::rename(&staged, &to)?;
    fs::File::open(to.parent().unwrap())?.sync_all()
}

/// `name` or a numbered `stem-N.bmp`, as the daemon names a moved file
/// whose name is taken.
fn names_the_same(path: &Path, name: &str) -> bool {
    let Some(f) = path.file_name().and_then(|f| f.to_str()) else {
        return false;
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    let stem = name.trim_end_matches(".bmp");
    f == name
        || f.strip_prefix(stem)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_suffix(".bmp"))
            .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// The sources the daemon's log says it archived ("archived SRC -> …",
/// logged once the ledger entry is durable and the original filed),
/// relative to the inbox.
fn acknowledged(rig: &Rig) -> Vec<String> {
    let inbox = format!("{}/", rig.at("inbox").display());
    rig.daemon
        .log()
        .lines()
        .filter_map(|l| l.split_once(" archived ")?.1.split_once(" -> "))
        .filter_map(|(src, _)| src.strip_prefix(&inbox).map(str::to_string))
        .collect()
}

/// The checks after a cut, before the restart (`what` names the cut).
fn check_after_cut(rig: &Rig, handed: &[String], what: &str) -> String {
    // Nothing acknowledged as archived is lost: every source the log
    // reported archived has its ledger entry, and every whole ledger line
    // names an archive holding exactly the reference bytes.
    let ledger = rig.ledger();
    let acknowledged = acknowledged(rig);
    for src in &acknowledged {
        assert!(
            ledger.iter().any(|e| e["source"] == src.as_str()),
            "{what}: {src} was reported archived before the power cut, but its ledger entry \
             is gone\n{}",
            listing(rig)
        );
    }
    for e in &ledger {
        let source = e["source"].as_str().unwrap();
        let archive = e["archive"].as_str().unwrap();
        let expected = Kind::of(source).archive().expect("a good kind");
        let got = fs::read(rig.at("archive").join(archive));
        assert!(
            got.as_deref().ok() == Some(&expected[..]),
            "{what}: the ledger records {archive} for {source}, but after the power cut it is {}",
            match got {
                Ok(b) => format!("{} bytes, not the {} expected", b.len(), expected.len()),
                Err(e) => format!("gone ({e})"),
            }
        );
    }
    // No original is gone whose archive is not durable; an original filed
    // to done/ has its archive durable.
    let originals = rig.originals();
    let mut filed = 0;
    for name in handed {
        let kind = Kind::of(name);
        let source = kind.source();
        let present: Vec<&PathBuf> = originals
            .iter()
            .filter(|(p, b)| names_the_same(p, name) && *b == source)
            .map(|(p, _)| p)
            .collect();
        let archive_ok = kind.archive().is_some_and(|a| {
            fs::read(
                rig.at("archive")
                    .join(name.replace(".bmp", ".rle").as_str()),
            )
            .is_ok_and(|b| b == a)
        });
        let in_done = present.iter().any(|p| p.starts_with(rig.at("done")));
        if in_done {
            filed += 1;
        }
        assert!(
            !present.is_empty() || archive_ok,
            "{what}: {name} was handed over durably, but after the power cut neither its \
             original nor a correct archive is there\n{}",
            listing(rig)
        );
        assert!(
            !in_done || archive_ok,
            "{what}: {name} is filed in done/, but after the power cut its archive is not \
             there with the right bytes\n{}",
            listing(rig)
        );
    }
    format!(
        "{} handed over, {} reported archived, {} recorded, {filed} filed in done/",
        handed.len(),
        acknowledged.len(),
        ledger.len()
    )
}

/// Everything on the filesystem, with sizes, for a failure message.
fn listing(rig: &Rig) -> String {
    let mut out = String::from("on the filesystem after the cut:\n");
    for e in walkdir::WalkDir::new(rig.root())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        out.push_str(&format!(
            "  {} ({len} bytes)\n",
            e.path().strip_prefix(rig.root()).unwrap().display()
        ));
    }
    out
}

/// After the restart: waits for the daemon to finish every handed-over
/// file, then checks each was archived exactly once.
fn check_drained(rig: &mut Rig, handed: &[String], policy: &str, what: &str) {
    let good: Vec<&String> = handed
        .iter()
        .filter(|n| Kind::of(n).rle.is_some())
        .collect();
    let bad = handed.len() - good.len();
    let inbox_left = || {
        files_below(&rig.at("inbox"))
            .into_iter()
            .filter(|p| policy != "keep" || p.starts_with(".rlewatch"))
            .collect::<Vec<_>>()
    };
    let archives = || {
        files_below(&rig.at("archive"))
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains(".rlewatch-"))
            .count()
    };
    // The cut's temporary files are removed by a sweep once the daemon is
    // ready (design §4.4), on a thread of its own: waited for too.
    let settled = || {
        inbox_left().is_empty()
            && archives() >= good.len()
            && files_below(&rig.at("failed")).len() >= 2 * bad
            && ["archive", "done", "failed"]
                .iter()
                .all(|dir| no_temp_files(&rig.at(dir)))
    };
    assert!(
        wait_until(LONG, settled),
        "{what}: not drained after the restart: inbox {:?}, archive {:?}\n{}",
        inbox_left(),
        files_below(&rig.at("archive")),
        rig.daemon.log()
    );
    // Stopped as an operator would, so that nothing is in progress (with
    // `keep`, a restarted daemon encodes each kept original once more to
    // find it in the ledger): what is left now stays.
    rig.daemon.signal(libc::SIGTERM);
    assert!(
        rig.daemon.wait_exit(LONG).is_some_and(|s| s.success()),
        "{what}: SIGTERM did not stop the daemon cleanly\n{}",
        rig.daemon.log()
    );
    let archive = files_below(&rig.at("archive"));
    let done = files_below(&rig.at("done"));
    let failed = files_below(&rig.at("failed"));
    for (dir, list) in [
        ("archive", &archive),
        ("done", &done),
        ("failed", &failed),
        ("inbox", &files_below(&rig.at("inbox"))),
    ] {
        assert!(
            list.iter()
                .all(|p| !p.to_string_lossy().contains(".rlewatch-")),
            "{what}: temporary files left in {dir}: {list:?}"
        );
    }
    assert_eq!(
        archive.len(),
        good.len(),
        "{what}: archived more or less than once: {archive:?}"
    );
    for name in &good {
        let rle = name.replace(".bmp", ".rle");
        assert_eq!(
            fs::read(rig.at("archive").join(&rle)).ok(),
            Kind::of(name).archive(),
            "{what}: {rle}"
        );
    }
    let ledger = rig.ledger();
    let mut sources = BTreeMap::<String, usize>::new();
    for e in &ledger {
        *sources
            .entry(e["source"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        sources.len() == good.len() && sources.values().all(|&n| n == 1),
        "{what}: ledger entries per source: {sources:?}"
    );
    if policy == "move" {
        assert_eq!(done.len(), good.len(), "{what}: done/ holds {done:?}");
    }
    for name in handed.iter().filter(|n| Kind::of(n).rle.is_none()) {
        assert_eq!(
            fs::read(rig.at("failed").join(name)).ok(),
            Some(Kind::of(name).source()),
            "{what}: {name} not quarantined"
        );
    }
    let out = run_in(rig.daemon.dir.path(), &["audit", "--config", "config.toml"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(out.status.success(), "{what}: audit: {text}");
}

/// Whether a power-loss test can run here: the daemon built with its test
/// hooks (said as a skip otherwise) and a FUSE filesystem mountable
/// ([`fuse_prerequisites`]).
fn can_cut_power(what: &str) -> bool {
    if !cfg!(feature = "test-hooks") {
        println!("skipped: built without --features test-hooks");
        return false;
    }
    fuse_prerequisites(what)
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test hooks: cargo test --release --features test-hooks"
)]
fn power_cut_at_random_moments_loses_nothing_acknowledged() {
    if !can_cut_power("power loss test") {
        return;
    }
    const FILES: usize = 120;
    const CUTS: usize = 30;
    let seed = std::env::var("RLEWATCH_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("power loss: RLEWATCH_POWER_SEED={seed} replays these cuts");
    let started = Instant::now();
    let mut rig = Rig::start("move", &[]);
    let root = rig.root().to_path_buf();
    let names: Vec<String> = (0..FILES)
        .map(|i| {
            // Every fifth in a subfolder: its folders are made too.
            let sub = if i % 5 == 4 { "sub/" } else { "" };
            format!("{sub}f{i:03}-{}.bmp", KINDS[i % KINDS.len()].name)
        })
        .collect();

    // The writer hands files over one by one; a cut happens between two
    // handovers (the gate), as a writer's fsync that returned happened
    // before the power went.
    let handed = Arc::new(Mutex::new(Vec::<String>::new()));
    let gate = Arc::new(Mutex::new(()));
    let writer = {
        let (handed, gate, names, root) = (handed.clone(), gate.clone(), names.clone(), root);
        let mut rng = Lcg(seed ^ 0x5eed);
        std::thread::spawn(move || {
            for name in names {
                let g = gate.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = hand_over(&root, &name, &Kind::of(&name).source()) {
                    // The test is failing (the mount is going): stop; the
                    // count of handed-over files says so.
                    eprintln!("writer: {name}: {e}");
                    return;
                }
                handed.lock().unwrap().push(name.clone());
                drop(g);
                std::thread::sleep(Duration::from_millis(rng.below(60))); // pacing arrivals over the cuts
            }
        })
    };

    let mut rng = Lcg(seed);
    let mut summary = Vec::new();
    let mut in_flight = 0;
    for cut in 0..CUTS {
        // A random moment: the point is to hit every phase of the work.
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        if !files_below(&rig.at("inbox")).is_empty() {
            in_flight += 1; // files waiting or claimed when the power went
        }
        rig.kill();
        let g = gate.lock().unwrap_or_else(|p| p.into_inner());
        // A late arrival while the daemon is down: its inbox fsync makes
        // durable whatever the daemon took out of the inbox meanwhile.
        let late = format!("late{cut:02}-{}.bmp", KINDS[cut % KINDS.len()].name);
        hand_over(rig.root(), &late, &Kind::of(&late).source()).unwrap();
        handed.lock().unwrap().push(late);
        let undone = rig.fs.cut();
        let now: Vec<String> = handed.lock().unwrap().clone();
        let what = format!("random cut {cut} (RLEWATCH_POWER_SEED={seed})");
        summary.push(format!(
            "{}; {} inodes lost, {} reverted",
            check_after_cut(&rig, &now, &what),
            undone.vanished,
            undone.reverted
        ));
        rig.daemon.spawn();
        drop(g);
    }
    writer.join().unwrap();
    let all = handed.lock().unwrap().clone();
    assert_eq!(all.len(), FILES + CUTS);
    check_drained(
        &mut rig,
        &all,
        "move",
        &format!("after the last cut (RLEWATCH_POWER_SEED={seed})"),
    );
    let (fsyncs, fsyncdirs) = rig.fs.syncs();
    for (i, s) in summary.iter().enumerate() {
        println!("cut {i}: {s}");
    }
    println!(
        "power loss: {FILES} files, {CUTS} power cuts at random moments ({in_flight} with files \
         in flight; seed {seed}), every file archived exactly once, audit clean; {fsyncs} file \
         fsyncs, {fsyncdirs} folder fsyncs; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the crash points: cargo test --release --features test-hooks"
)]
fn power_cut_after_every_step_of_a_files_life_loses_nothing() {
    if !can_cut_power("power loss at every step") {
        return;
    }
    let started = Instant::now();
    let files = [
        "f000-pal1wb.bmp",
        "f001-rgb24.bmp",
        "f002-bad.bmp",
        "sub/f003-pal8.bmp",
    ];
    let mut cuts = 0;
    for policy in ["move", "delete", "keep"] {
        for step in rlewatch::faults::STEPS {
            let what = format!("{policy}/{step}");
            let mut rig = Rig::start(policy, &[("RLEWATCH_TEST_CRASH_AT", step)]);
            ledger_day_files_made(rig.root());
            for name in files {
                hand_over(rig.root(), name, &Kind::of(name).source()).unwrap();
            }
            let status = rig.daemon.wait_exit(LONG);
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.and_then(|s| s.signal()),
                Some(libc::SIGKILL),
                "{what}: not killed there\n{}",
                rig.daemon.log()
            );
            rig.kill();
            // A late arrival while the daemon is down: its inbox fsync
            // makes durable whatever the daemon took out of the inbox.
            let late = "late-pal8.bmp";
            hand_over(rig.root(), late, &Kind::of(late).source()).unwrap();
            rig.fs.cut();
            cuts += 1;
            let handed: Vec<String> = files.iter().chain([&late]).map(|s| s.to_string()).collect();
            let state = check_after_cut(&rig, &handed, &what);
            if ["recorded", "filed"].contains(step) {
                // Killed right after a ledger entry was made durable.
                assert!(
                    !rig.ledger().is_empty(),
                    "{what}: the ledger entry made durable before the crash point is gone \
                     after the power cut\n{}",
                    listing(&rig)
                );
            }
            rig.daemon.set_env(&[LINK_CLAIMS]);
            rig.daemon.spawn();
            check_drained(&mut rig, &handed, policy, &what);
            println!("{what}: killed, power cut ({state}), restarted, every file exactly once");
        }
    }
    println!(
        "power loss: {cuts} cuts, one after each step, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A writer's fsync of the inbox in the middle of a claim (design §4.7,
/// "Power loss"): the daemon is killed at once at each point inside the
/// claim ([`rlewatch::faults::CLAIM_STEPS`]), holding no lock, and a writer
/// then hands its next file over, which fsyncs the inbox, before the power
/// is cut. The file being claimed must survive in the inbox or the claim
/// folder, and be archived once after the restart. A claim made by one
/// rename fails here: the inbox's fsync makes the file's removal durable
/// before its arrival in the claim folder is.
#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the crash points: cargo test --release --features test-hooks"
)]
fn power_cut_after_a_writers_inbox_fsync_in_the_middle_of_a_claim_loses_nothing() {
    if !can_cut_power("power cut in the middle of a claim") {
        return;
    }
    for step in rlewatch::faults::CLAIM_STEPS {
        let what = format!("cut at {step} after a writer's inbox fsync");
        let mut rig = Rig::start("move", &[("RLEWATCH_TEST_CRASH_AT", step)]);
        let first = "sub/f000-pal8.bmp";
        hand_over(rig.root(), first, &Kind::of(first).source()).unwrap();
        let status = rig.daemon.wait_exit(LONG);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(libc::SIGKILL),
            "{what}: not killed there\n{}",
            rig.daemon.log()
        );
        // The writer's next file, into the same folder: its handover
        // ends with an fsync of the folder the claim took the first from.
        let next = "sub/f001-rgb24.bmp";
        hand_over(rig.root(), next, &Kind::of(next).source()).unwrap();
        let undone = rig.fs.cut();
        let handed = [first.to_string(), next.to_string()];
        let state = check_after_cut(&rig, &handed, &what);
        rig.daemon.set_env(&[LINK_CLAIMS]);
        rig.daemon.spawn();
        check_drained(&mut rig, &handed, "move", &what);
        println!(
            "{what}: power cut ({state}; {} inodes lost), restarted, both files archived once",
            undone.vanished
        );
    }
}

/// Today's ledger file (and tomorrow's, for a run across midnight UTC)
/// made, empty and durable, before any file arrives, so that the daemon
/// appends to a day file that exists, as for every file but the first of
/// a day. The first append of a day fsyncs the new file's folders up to
/// the archive folder, which makes durable whatever was published there
/// before it: a missing fsync of the archive folder after publishing
/// would go unseen.
fn ledger_day_files_made(root: &Path) {
    let dir = root.join("archive/.rlewatch/ledger").join(HOST);
    fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now();
    for t in [now, now + Duration::from_secs(24 * 3600)] {
        let day = humantime::format_rfc3339_seconds(t).to_string();
        let f = fs::File::create(dir.join(format!("{}.jsonl", &day[..10]))).unwrap();
        f.sync_all().unwrap();
    }
    for d in dir.ancestors().take(4) {
        sync_dir(d);
    }
}

/// A move to another filesystem (done/ on its own disk) is a copy and an
/// unlink. The copy and its folder are made durable before the original
/// is removed, and the removal after: a power cut on both filesystems then
/// finds the file exactly once, never nowhere (a lost original) and never
/// twice (a second copy filed at the next attempt).
#[test]
fn a_move_across_filesystems_survives_a_power_cut_exactly_once() {
    if !fuse_prerequisites("a_move_across_filesystems_survives_a_power_cut_exactly_once") {
        return;
    }
    let (at_a, at_b) = (tempdir(), tempdir());
    let (a, b) = (PowerFs::new(), PowerFs::new());
    let mount_a = a.mount(at_a.path()).expect("mount powerfs");
    let mount_b = b.mount(at_b.path()).expect("mount powerfs");
    let claims = mount_a.path().join("claims");
    let done = mount_b.path().join("done");
    fs::create_dir(&claims).unwrap();
    sync_dir(mount_a.path());
    fs::create_dir(&done).unwrap();
    sync_dir(mount_b.path());
    let bytes = std::fs::read(data("pal8.bmp")).unwrap();
    let mut f = fs::File::create(claims.join("a.bmp")).unwrap();
    std::io::Write::write_all(&mut f, &bytes).unwrap();
    f.sync_all().unwrap();
    drop(f);
    sync_dir(&claims);
    let from = fs::File::open(&claims).unwrap();
    let moved = rlewatch::durable::move_at(&from, std::ffi::OsStr::new("a.bmp"), &done, 0o640)
        .expect("move across filesystems");
    // Nothing else is made durable before the cut.
    a.cut();
    b.cut();
    let left = claims.join("a.bmp").exists();
    let copy = fs::read(&moved).ok();
    assert!(
        copy.as_deref() == Some(&bytes[..]) && !left,
        "after the power cut: the copy in done/ is {}, the original {}",
        match &copy {
            None => "gone".to_string(),
            Some(c) if c == &bytes => "whole".to_string(),
            Some(c) => format!("{} of {} bytes", c.len(), bytes.len()),
        },
        if left { "is back" } else { "is gone" }
    );
}

/// A fresh [`PowerFs`] mounted on a temp folder, if FUSE can be mounted here.
fn mounted() -> Option<(PowerFs, Mounted, tempfile::TempDir)> {
    if !fuse_prerequisites("powerfs model") {
        return None;
    }
    let dir = tempdir();
    let fs = PowerFs::new();
    let m = fs.mount(dir.path()).expect("mount powerfs");
    Some((fs, m, dir))
}

/// The model itself: what a cut keeps and what it loses.
#[test]
fn powerfs_keeps_only_what_was_made_durable() {
    let Some((fs, m, _dir)) = mounted() else {
        return;
    };
    let root = m.path();
    let sync_dir = |p: &Path| fs::File::open(p).unwrap().sync_all().unwrap();
    fs::create_dir(root.join("d")).unwrap();
    sync_dir(root);
    // Data fsynced, entry fsynced: kept.
    let f = fs::File::create(root.join("d/kept")).unwrap();
    std::io::Write::write_all(&mut &f, b"kept").unwrap();
    f.sync_all().unwrap();
    drop(f);
    // Entry fsynced, data not: there, empty.
    fs::write(root.join("d/empty"), b"lost data").unwrap();
    sync_dir(&root.join("d"));
    // Data fsynced, entry not: gone.
    let g = fs::File::create(root.join("d/gone")).unwrap();
    std::io::Write::write_all(&mut &g, b"gone").unwrap();
    g.sync_all().unwrap();
    drop(g);
    // Renamed after the folder fsync: back under its old name.
    fs::rename(root.join("d/kept"), root.join("renamed")).unwrap();
    let ino = fs::metadata(root.join("renamed")).unwrap().ino();
    let cut = fs.cut();
    assert!(cut.vanished >= 1, "{cut:?}");
    assert!(!root.join("renamed").exists());
    assert_eq!(fs::read(root.join("d/kept")).unwrap(), b"kept");
    assert_eq!(fs::metadata(root.join("d/kept")).unwrap().ino(), ino);
    assert_eq!(fs::read(root.join("d/empty")).unwrap(), b"");
    assert!(!root.join("d/gone").exists());
    // A hard link made durable in one folder and renamed out of
    // another counts its links again.
    fs::hard_link(root.join("d/kept"), root.join("link")).unwrap();
    assert_eq!(fs::metadata(root.join("link")).unwrap().nlink(), 2);
    sync_dir(root);
    fs::remove_file(root.join("d/kept")).unwrap();
    fs.cut();
    assert_eq!(fs::metadata(root.join("link")).unwrap().nlink(), 2);
    // RENAME_NOREPLACE and O_APPEND.
    let mut a = fs::OpenOptions::new()
        .append(true)
        .open(root.join("link"))
        .unwrap();
    std::io::Write::write_all(&mut a, b"+more").unwrap();
    assert_eq!(fs::read(root.join("d/kept")).unwrap(), b"kept+more");
    let (s, d) = fs.syncs();
    assert!(s >= 2 && d >= 3, "{s} {d}");
}
