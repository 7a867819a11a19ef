//! Real disks full and real read-only remounts (design §4.4), on
//! loop-mounted ext4, XFS and btrfs (`support::loopfs`): the tmpfs versions in
//! `faults.rs` show the retry; these show it where blocks, journals and
//! delayed allocation are real. Outcomes are checked against the sources,
//! never the daemon's word: every file either still in the inbox (its
//! claim included) or archived once, the archive equal to the compression
//! of its source, the original filed unchanged; then `rlewatch audit`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::loopfs::{Kind, LoopFs};
use crate::support::{
    Daemon, FAST, LONG, big_bmp, compress_bytes, files_below, run_in, stderr, wait_until,
};

/// `n` distinct pages (24-bit, about 130 KB each), by name.
fn pages(n: usize) -> BTreeMap<String, Vec<u8>> {
    (0..n)
        .map(|i| (format!("p{i:02}.bmp"), big_bmp(200 + 4 * i, 200)))
        .collect()
}

/// Fills the filesystem at `dir` with files of 1 MB, then of 4 KB, until
/// a write is refused; returns them, for freeing space later.
fn fill(dir: &Path) -> Vec<PathBuf> {
    use std::os::fd::AsRawFd;
    // Only ever a filesystem made for the test, never a real disk.
    assert!(
        du_kb(dir) < 1 << 20,
        "{}: not a small test filesystem",
        dir.display()
    );
    let mut made = Vec::new();
    for chunk in [1 << 20, 4096] {
        loop {
            let path = dir.join(format!("filler-{}", made.len()));
            // Out of inodes or of room for one more name (XFS): full.
            let Ok(f) = fs::File::create(&path) else {
                break;
            };
            // SAFETY: fallocate on a file we own.
            let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, chunk) };
            made.push(path);
            if rc != 0 {
                break;
            }
        }
    }
    made
}

/// The guarantee, checked from outside at any moment (the daemon stopped
/// or not): each source is in the inbox (under its name or claimed), or
/// archived as its compression with its original in done/; nothing
/// archived twice, nothing in failed/. Returns how many are archived.
fn nothing_lost(d: &Daemon, sources: &BTreeMap<String, Vec<u8>>) -> usize {
    let archive = files_below(&folder(d, "archive"));
    let finals: Vec<_> = archive
        .iter()
        .filter(|p| !p.to_string_lossy().starts_with(".rlewatch"))
        .collect();
    // Where the original is now: filed unchanged in done/, or in the inbox
    // (under its name or claimed). A listing of a folder whose files are
    // being renamed can miss one that moves during it (from the inbox into
    // its claim folder, say), so a miss is looked at again, for a while.
    let present = |name: &str, bytes: &[u8]| {
        wait_until(Duration::from_secs(10), || {
            fs::read(d.path(&format!("done/{name}"))).is_ok_and(|f| f == bytes)
                || files_below(&folder(d, "inbox"))
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_ref()))
        })
    };
    let mut archived = 0;
    for (name, bytes) in sources {
        let stem = name.trim_end_matches(".bmp");
        let rle = d.path(&format!("archive/{stem}.rle"));
        if let Ok(got) = fs::read(&rle) {
            assert_eq!(
                got,
                compress_bytes(bytes, rlewatch::bilevel::Conversion::Dither).unwrap(),
                "{name}: the archive is not the compression of its source"
            );
            // Filed after its archive is recorded: in done/ or, still
            // being filed, in the inbox.
            assert!(
                present(name, bytes),
                "{name}: archived, original neither filed nor waiting\n{}",
                d.log()
            );
            archived += 1;
        } else {
            assert!(
                present(name, bytes),
                "{name}: neither archived nor in the inbox\n{}",
                d.log()
            );
        }
    }
    // Nothing archived twice: every archive is named after a source (a
    // second one would get a numbered name). Listed before the sources
    // were looked at, so it may hold fewer, never others.
    let names: Vec<PathBuf> = sources
        .keys()
        .map(|n| PathBuf::from(n.replace(".bmp", ".rle")))
        .collect();
    assert!(
        finals.iter().all(|p| names.contains(p)),
        "extra archives: {finals:?}"
    );
    assert!(finals.len() <= archived);
    assert_eq!(files_below(&folder(d, "failed")), Vec::<PathBuf>::new());
    archived
}

/// The daemon's folder `name`, a symbolic link resolved (where the test
/// put it on a filesystem of its own).
/// Each page written beside the inbox, then renamed in: it arrives whole.
fn hand_in(d: &Daemon, sources: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in sources {
        fs::write(d.path(name), bytes).unwrap();
        fs::rename(d.path(name), d.inbox().join(name)).unwrap();
    }
}

/// The full disk was met, and it is retried (twice at least) as trouble
/// that may pass: space can come back by itself, so it is never called
/// permanent.
fn retried_while_full(d: &Daemon) {
    assert!(
        d.wait_log("No space left on device", 1, LONG),
        "{}",
        d.log()
    );
    assert!(d.wait_log(", retry 2 in ", 1, LONG), "{}", d.log());
    assert!(
        !d.log().contains("will not pass until it is fixed"),
        "{}",
        d.log()
    );
}

fn folder(d: &Daemon, name: &str) -> PathBuf {
    fs::canonicalize(d.path(name)).unwrap()
}

/// Everything finished: all archived once, filed, no temporary file,
/// one ledger entry each, and `rlewatch audit` clean.
fn all_finished(d: &Daemon, sources: &BTreeMap<String, Vec<u8>>) {
    assert!(
        wait_until(LONG, || files_below(&folder(d, "inbox")).is_empty()
            && files_below(&folder(d, "done")).len() == sources.len()),
        "inbox {:?}\n{}",
        files_below(&folder(d, "inbox")),
        d.log()
    );
    assert_eq!(nothing_lost(d, sources), sources.len());
    assert!(
        files_below(&folder(d, "archive"))
            .iter()
            .all(|p| !p.to_string_lossy().contains(".rlewatch-")),
        "temporary files left: {:?}",
        files_below(&folder(d, "archive"))
    );
    assert_eq!(
        crate::support::ledger::entries(&folder(d, "archive")).len(),
        sources.len(),
        "one ledger entry per file"
    );
    let archive = folder(d, "archive");
    let out = run_in(d.dir.path(), &["audit", archive.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "audit: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// A daemon whose folders `folders` are on the filesystem at `root`
/// (configured there, and linked from its own folder for the test to
/// look at), its config and log staying on the test's temporary folder:
/// a log on a full disk would lose the very lines the test looks for.
fn daemon_with_folders_on(root: &Path, folders: &[&str]) -> Daemon {
    let mut d = Daemon::start(FAST);
    crate::support::restart_with(&mut d, |d| {
        let mut config = format!("{FAST}[paths]\n");
        for folder in folders {
            let target = root.join(folder);
            fs::create_dir(&target).unwrap();
            config += &format!("{folder} = \"{}\"\n", target.display());
            fs::remove_dir_all(d.path(folder)).unwrap();
            std::os::unix::fs::symlink(&target, d.path(folder)).unwrap();
        }
        fs::write(d.path("config.toml"), config).unwrap();
    });
    d
}

/// Inbox, archive, done and failed on one small filesystem, filled while
/// files arrive: archives, the ledger, claims and heartbeats all meet
/// ENOSPC. Files are staged on the same filesystem before it fills and
/// renamed in (a rename needs no room).
fn full_disk(kind: Kind, size_mb: u64) {
    let Some(fs) = LoopFs::new(kind, size_mb) else {
        return;
    };
    let d = daemon_with_folders_on(fs.path(), &["inbox", "archive", "done", "failed"]);
    let sources = pages(24);
    let staging = fs.path().join("staging");
    fs::create_dir(&staging).unwrap();
    for (name, bytes) in &sources {
        fs::write(staging.join(name), bytes).unwrap();
    }
    // The first few finish with room to spare.
    let (first, rest): (Vec<_>, Vec<_>) = sources.keys().partition(|n| n.as_str() < "p04");
    for name in &first {
        fs::rename(staging.join(name), d.inbox().join(name)).unwrap();
    }
    assert!(
        wait_until(LONG, || files_below(&folder(&d, "done")).len()
            == first.len()),
        "{}",
        d.log()
    );
    let mut filler = fill(&staging);
    println!(
        "{}: full ({} filler files), {} bytes free",
        kind.name(),
        filler.len(),
        fs.free_bytes()
    );
    // A rename may need room too (XFS reserves log space for it): where
    // the inbox is that full, the writer frees a little (a 4 KB filler
    // file at a time) and tries again.
    let mut freed = 0;
    for name in &rest {
        loop {
            match fs::rename(staging.join(name), d.inbox().join(name)) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && !filler.is_empty() => {
                    fs::remove_file(filler.pop().unwrap()).unwrap();
                    freed += 1;
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    println!(
        "{}: {freed} filler files removed to rename files in",
        kind.name()
    );
    retried_while_full(&d);
    let archived_while_full = nothing_lost(&d, &sources);
    let ledger_lines = d
        .log()
        .lines()
        .filter(|l| l.contains("No space left on device") && l.contains("ledger"))
        .count();
    println!(
        "{}: while full, {archived_while_full} of {} archived; ENOSPC lines {} (ledger {ledger_lines})",
        kind.name(),
        sources.len(),
        d.log().matches("No space left on device").count()
    );
    for f in &filler {
        fs::remove_file(f).unwrap();
    }
    all_finished(&d, &sources);
    for line in d.log().lines().filter(|l| l.contains("No space")).take(5) {
        println!("{line}");
    }
}

#[test]
fn every_folder_on_a_full_ext4_loses_nothing_and_recovers() {
    full_disk(Kind::Ext4, 64);
}

#[test]
fn every_folder_on_a_full_btrfs_loses_nothing_and_recovers() {
    full_disk(Kind::Btrfs, 256);
}

#[test]
fn every_folder_on_a_full_xfs_loses_nothing_and_recovers() {
    full_disk(Kind::Xfs, crate::support::loopfs::XFS_MIN_MB);
}

/// done/ on a filesystem of its own (ext4 or XFS), full: each original
/// is copied there after its archive is published (design §4.6), the copy
/// fails, and the original stays in the inbox, archived, until there is
/// room; then it is filed, not archived a second time.
fn full_done_folder(kind: Kind) {
    let Some(fs) = LoopFs::new(kind, 64) else {
        return;
    };
    let d = daemon_with_folders_on(fs.path(), &["done"]);
    let filler = fill(fs.path());
    let sources = pages(8);
    hand_in(&d, &sources);
    retried_while_full(&d);
    let archived_while_full = nothing_lost(&d, &sources);
    println!(
        "{}: done/ full, {archived_while_full} of {} archived meanwhile",
        kind.name(),
        sources.len()
    );
    for f in &filler {
        fs::remove_file(f).unwrap();
    }
    all_finished(&d, &sources);
    for line in d.log().lines().filter(|l| l.contains("No space")).take(2) {
        println!("{line}");
    }
}

#[test]
fn a_full_done_folder_on_ext4_keeps_originals_until_there_is_room() {
    full_done_folder(Kind::Ext4);
}

#[test]
fn a_full_done_folder_on_xfs_keeps_originals_until_there_is_room() {
    full_done_folder(Kind::Xfs);
}

/// The ledger's own folder full in the middle of an append: its
/// `ARCHIVE/.rlewatch/ledger/HOST` is a 64 KB tmpfs, filled once a few
/// lines are in, so that a later line gets past the end of the last page
/// and only its first part is written (ENOSPC). The partial line is taken
/// back, the file is retried (its archive published but not recorded:
/// recorded at the retry, not published twice), and no line in the ledger
/// is torn.
#[test]
fn a_ledger_append_failing_halfway_is_taken_back_and_retried() {
    let config = format!("{FAST}[daemon]\nhost = \"h\"\n");
    let mut d = Daemon::start(&config);
    let host_dir = d.path("archive/.rlewatch/ledger/h");
    let mut mount = None;
    crate::support::restart_with(&mut d, |_| {
        fs::create_dir_all(&host_dir).unwrap();
        mount = crate::support::mount::Mount::tmpfs(&host_dir, "64k");
    });
    let Some(mount) = mount else { return };
    let sources = pages(40);
    let drop_in = |names: &[&String]| {
        for name in names {
            fs::write(d.path(name), &sources[*name]).unwrap();
            fs::rename(d.path(name), d.inbox().join(name)).unwrap();
        }
    };
    let names: Vec<&String> = sources.keys().collect();
    drop_in(&names[..3]);
    assert!(
        wait_until(LONG, || files_below(&d.path("done")).len() == 3),
        "{}",
        d.log()
    );
    // Filled by shrinking it to what it holds (filler files would be read
    // as ledger lines): the next lines go into what is left of the last
    // page, and the first past it is cut.
    let used = du_kb(&host_dir);
    mount.remount(&format!("size={used}k"));
    drop_in(&names[3..]);
    assert!(
        d.wait_log("No space left on device", 1, LONG),
        "{}",
        d.log()
    );
    let partial = fs::read(
        host_dir.join(
            fs::read_dir(&host_dir)
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap();
    assert!(partial.ends_with(b"\n"), "a torn line was left");
    nothing_lost(&d, &sources);
    println!(
        "ledger full: {} ledger lines while full; {}",
        // Whole lines only: the daemon may be mid-append (and about to
        // take a cut line back) as this reads.
        crate::support::ledger::whole_entries(&d.path("archive")).len(),
        d.log()
            .lines()
            .find(|l| l.contains("No space"))
            .unwrap_or_default()
    );
    mount.remount("size=64k");
    all_finished(&d, &sources);
}

/// The space in use on the filesystem at `dir`, in KB.
fn du_kb(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs with a NUL-terminated path and a zeroed buffer.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    (s.f_blocks - s.f_bfree) * s.f_frsize / 1024
}

/// The folder `folder` (archive or done) on its own `kind` filesystem,
/// remounted read-only under the running daemon before files arrive, then
/// read-write again. (Remounting read-only is refused while a file there
/// is open for writing: the archive's is before the first ledger line;
/// the inbox's never is, the daemon holding its lock file open for
/// writing, so `mount -o remount,ro` on it says busy.)
fn remounted_read_only(kind: Kind, folder: &str) {
    let Some(fs) = LoopFs::new(kind, 64) else {
        return;
    };
    let mut d = daemon_with_folders_on(fs.path(), &[folder]);
    fs.remount("ro");
    let sources = pages(6);
    hand_in(&d, &sources);
    assert!(d.wait_log("Read-only file system", 1, LONG), "{}", d.log());
    // Someone must remount it: the line says so; the daemon stays.
    assert!(
        d.logged_as_permanent("Read-only file system"),
        "{}",
        d.log()
    );
    assert!(d.exited().is_none(), "{}", d.log());
    nothing_lost(&d, &sources);
    fs.remount("rw");
    all_finished(&d, &sources);
}

#[test]
fn an_archive_on_ext4_remounted_read_only_under_the_daemon_recovers() {
    remounted_read_only(Kind::Ext4, "archive");
}

#[test]
fn an_archive_on_xfs_remounted_read_only_under_the_daemon_recovers() {
    remounted_read_only(Kind::Xfs, "archive");
}

#[test]
fn a_done_folder_on_ext4_remounted_read_only_under_the_daemon_recovers() {
    remounted_read_only(Kind::Ext4, "done");
}
