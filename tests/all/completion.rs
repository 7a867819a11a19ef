//! Knowing when a file is complete (design §4.2), against writers that
//! pause longer than `settle_ms` (4 × here), preallocate, write the header
//! last, write in two sessions, or keep the file open. Each time the
//! archive must be the compression of the finished file and nothing may
//! land in failed/. The writers' pauses are the scenario, not
//! synchronisation: the tests then wait for outcomes with a deadline.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::loopfs;
use crate::support::{Confine, Daemon, LONG, NOBODY, data, files_below, is_root, wait_until};

const SETTLE_MS: u64 = 100;
const PAUSE: Duration = Duration::from_millis(4 * SETTLE_MS);

fn config(extra: &str) -> String {
    format!("[watch]\nsettle_ms = {SETTLE_MS}\n{extra}")
}

/// The vectors of every layout (1, 8 and 24 bits, RLE4, RLE8) and of the
/// formats scanners write (a TIFF G4 page, a PNG), named as under
/// `tests/data/`, each with its expected `.rle` beside it.
const KINDS: [&str; 7] = [
    "pal1.bmp",
    "pal8.bmp",
    "rgb24.bmp",
    "pal4rle.bmp",
    "pal8rle.bmp",
    "formats/scan-g4.tif",
    "formats/scan.png",
];

/// The extension of a kind's file.
fn ext(kind: &str) -> &str {
    kind.rsplit_once('.').expect("a name with an extension").1
}

/// A kind's expected archive (dither), under `tests/data/`.
fn expected_rle(kind: &str) -> PathBuf {
    let stem = kind.rsplit_once('.').expect("a name with an extension").0;
    data(&format!("{stem}.dither.rle"))
}

fn expect_archived(d: &Daemon, names: &[(&str, &str)]) {
    for (name, kind) in names {
        let done = d.path(&format!("done/{name}.{}", ext(kind)));
        assert!(wait_until(LONG, || done.exists()), "{name}: {}", d.log());
        assert_eq!(
            fs::read(d.path(&format!("archive/{name}.rle"))).unwrap(),
            fs::read(expected_rle(kind)).unwrap(),
            "{name}: {}",
            d.log()
        );
        assert_eq!(fs::read(&done).unwrap(), fs::read(data(kind)).unwrap());
    }
    assert_eq!(
        files_below(&d.path("failed")),
        Vec::<PathBuf>::new(),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("quarantine"), "{}", d.log());
}

/// Runs one writer per kind at once, each writing `name` in the inbox.
fn writers(d: &Daemon, prefix: &str, write: fn(&Path, &[u8])) -> Vec<(String, &'static str)> {
    let handles: Vec<_> = KINDS
        .iter()
        .map(|kind| {
            let path = d.inbox().join(format!("{prefix}-{}", base(kind)));
            let bytes = fs::read(data(kind)).unwrap();
            std::thread::spawn(move || write(&path, &bytes))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    KINDS
        .iter()
        .map(|kind| (format!("{prefix}-{}", stem(kind)), *kind))
        .collect()
}

/// A kind's file name ("scan.png").
fn base(kind: &str) -> &str {
    kind.rsplit('/').next().expect("a name")
}

/// A kind's file name without its extension ("scan").
fn stem(kind: &str) -> &str {
    base(kind)
        .rsplit_once('.')
        .expect("a name with an extension")
        .0
}

fn check(d: &Daemon, written: &[(String, &'static str)]) {
    let names: Vec<(&str, &str)> = written.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    expect_archived(d, &names);
}

#[test]
fn a_writer_pausing_mid_file_is_waited_for() {
    let d = Daemon::start(&config(""));
    let written = writers(&d, "paused", |path, bytes| {
        let mut f = File::create(path).unwrap();
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).unwrap();
        std::thread::sleep(PAUSE);
        f.write_all(&bytes[half..]).unwrap();
    });
    check(&d, &written);
}

#[test]
fn a_file_preallocated_then_filled_slowly_is_waited_for() {
    let d = Daemon::start(&config(""));
    let written = writers(&d, "truncated", |path, bytes| {
        let mut f = File::create(path).unwrap();
        f.set_len(bytes.len() as u64).unwrap();
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).unwrap();
        std::thread::sleep(PAUSE);
        f.write_all(&bytes[half..]).unwrap();
    });
    let allocated = writers(&d, "fallocated", |path, bytes| {
        let mut f = File::create(path).unwrap();
        // SAFETY: fallocate on a file we own.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes.len() as libc::off_t) };
        if rc != 0 {
            f.set_len(bytes.len() as u64).unwrap();
        }
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).unwrap();
        std::thread::sleep(PAUSE);
        f.write_all(&bytes[half..]).unwrap();
    });
    check(&d, &written);
    check(&d, &allocated);
}

/// Preallocated by one program and filled by another in several write
/// sessions, each closing the file, with pauses between: at every pause it
/// has its whole length and no writer, but parts are not written yet (the
/// filesystem reports them as holes). A page big enough to span many
/// blocks: a file that fits in one block cannot show a hole.
#[test]
fn a_preallocated_file_filled_in_several_sessions_is_waited_for() {
    preallocated_in_sessions(&std::env::temp_dir());
}

/// The same on each filesystem of the matrix: each reports the space
/// reserved and not yet written as a hole (`support::loopfs`,
/// `fsmatrix::the_completion_rules_hold_on_every_filesystem`).
#[test]
fn fsmatrix_a_preallocated_file_filled_in_several_sessions_is_waited_for() {
    loopfs::on_each(256, preallocated_in_sessions);
}

fn preallocated_in_sessions(root: &Path) {
    let d = Daemon::start_in(root, &config(""));
    let bytes = crate::support::big_bmp(600, 400);
    let path = d.inbox().join("prealloc.bmp");
    let f = File::create(&path).unwrap();
    // SAFETY: fallocate on a file we own.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes.len() as libc::off_t) };
    if rc != 0 {
        f.set_len(bytes.len() as u64).unwrap();
    }
    drop(f);
    let third = bytes.len().div_ceil(3);
    for (i, chunk) in bytes.chunks(third).enumerate() {
        std::thread::sleep(PAUSE);
        let mut f = OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start((i * third) as u64)).unwrap();
        f.write_all(chunk).unwrap();
    }
    assert!(
        wait_until(LONG, || d.path("done/prealloc.bmp").exists()),
        "{}",
        d.log()
    );
    let expected =
        crate::support::compress_bytes(&bytes, rlewatch::bilevel::Conversion::Dither).unwrap();
    assert_eq!(fs::read(d.path("archive/prealloc.rle")).unwrap(), expected);
    assert_eq!(fs::read(d.path("done/prealloc.bmp")).unwrap(), bytes);
    assert_eq!(files_below(&d.path("failed")), Vec::<PathBuf>::new());
}

#[test]
fn a_file_created_empty_and_written_after_a_pause_is_not_quarantined() {
    let d = Daemon::start(&config(""));
    let written = writers(&d, "empty-first", |path, bytes| {
        File::create(path).unwrap(); // created and closed, empty
        std::thread::sleep(PAUSE);
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&bytes[..1]).unwrap();
        drop(f); // one byte, closed again
        std::thread::sleep(PAUSE);
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&bytes[1..]).unwrap();
    });
    check(&d, &written);
}

#[test]
fn a_header_written_last_is_waited_for() {
    let d = Daemon::start(&config(""));
    let written = writers(&d, "header-last", |path, bytes| {
        let mut f = File::create(path).unwrap();
        f.seek(SeekFrom::Start(54)).unwrap();
        f.write_all(&bytes[54..]).unwrap();
        std::thread::sleep(PAUSE);
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&bytes[..54]).unwrap();
    });
    check(&d, &written);
}

#[test]
fn two_write_sessions_give_one_archive_of_the_whole_file() {
    let d = Daemon::start(&config(""));
    let written = writers(&d, "sessions", |path, bytes| {
        let half = bytes.len() / 2;
        let mut f = File::create(path).unwrap();
        f.write_all(&bytes[..half]).unwrap();
        drop(f);
        std::thread::sleep(PAUSE);
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&bytes[half..]).unwrap();
    });
    check(&d, &written);
    // One archive each, no numbered duplicate.
    assert_eq!(files_below(&d.path("archive")).len(), KINDS.len());
}

#[test]
fn settle_ms_zero_with_plain_cp_quarantines_nothing() {
    let d = Daemon::start("[watch]\nsettle_ms = 0\n");
    let names: Vec<String> = (0..50).map(|i| format!("cp{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let kind = KINDS[i % KINDS.len()];
        let ok = std::process::Command::new("cp")
            .arg(data(kind))
            .arg(d.inbox().join(format!("{name}.{}", ext(kind))))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let expected: Vec<(&str, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), KINDS[i % KINDS.len()]))
        .collect();
    expect_archived(&d, &expected);
}

/// `delete` with the writer still holding the file open: the daemon must
/// not take it while it is open (the lease probe sees the writer), and
/// deletes it only once closed.
#[test]
fn delete_waits_for_a_writer_that_keeps_the_file_open() {
    delete_waits_for_an_open_writer(&std::env::temp_dir());
}

/// The same on each filesystem of the matrix: the lease probe sees the
/// writer on each.
#[test]
fn fsmatrix_delete_waits_for_a_writer_that_keeps_the_file_open() {
    loopfs::on_each(256, delete_waits_for_an_open_writer);
}

fn delete_waits_for_an_open_writer(root: &Path) {
    let d = Daemon::start_in(root, &config("[originals]\naction = \"delete\"\n"));
    let path = d.inbox().join("open.bmp");
    let mut f = File::create(&path).unwrap();
    f.write_all(&fs::read(data("pal1.bmp")).unwrap()).unwrap();
    std::thread::sleep(PAUSE);
    let archived_while_open = d.path("archive/open.rle").exists();
    let still_there = path.exists();
    drop(f);
    assert!(!archived_while_open, "{}", d.log());
    assert!(still_there);
    assert!(
        wait_until(LONG, || !path.exists()
            && d.path("archive/open.rle").exists()),
        "{}",
        d.log()
    );
    assert_eq!(
        fs::read(d.path("archive/open.rle")).unwrap(),
        fs::read(data("pal1.dither.rle")).unwrap()
    );
}

/// The same with a daemon that cannot probe leases (not the file's owner,
/// no CAP_LEASE): it falls back to the settle rule and so may take the
/// file, but it never deletes an original it cannot prove closed.
#[test]
fn delete_without_a_lease_probe_files_the_original_instead() {
    if !is_root() {
        crate::support::skip_without_root("running the daemon as another user needs root");
        return;
    }
    let d = Daemon::start_confined(
        &config("[originals]\naction = \"delete\"\n"),
        &[],
        Confine {
            user: Some(NOBODY),
            ..Confine::default()
        },
    );
    let path = d.inbox().join("open.bmp");
    let mut f = File::create(&path).unwrap();
    f.write_all(&fs::read(data("pal1.bmp")).unwrap()).unwrap();
    assert!(
        wait_until(LONG, || d.path("done/open.bmp").exists()),
        "{}",
        d.log()
    );
    drop(f);
    // Logged once filing is done, folders fsynced: after the file shows.
    assert!(
        d.wait_log("not deleted: it may still be open for writing", 1, LONG),
        "{}",
        d.log()
    );
    assert_eq!(
        fs::read(d.path("done/open.bmp")).unwrap(),
        fs::read(data("pal1.bmp")).unwrap()
    );
}
