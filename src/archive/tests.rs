//! In-process tests of the archive layer: failures are asserted by kind.

use super::*;
use crate::claim;

/// The first half of an attempt on `path`, which must get as far as
/// encoding.
fn encoded(s: &Arc<Settings>, path: &Path) -> Box<Encoded> {
    match encode(s, path, 0, None) {
        Step::Encoded(e) => e,
        Step::Over(other) => panic!("{other:?}"),
    }
}

/// The bundled test vectors.
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// [`settings`] archiving into the folder `t/archive`, made here; and that
/// folder.
fn with_archive_folder(t: &Path) -> (Arc<Settings>, PathBuf) {
    let archive = t.join("archive");
    fs::create_dir_all(&archive).unwrap();
    (settings(t, archive.clone()), archive)
}

/// Settings for an inbox in `t`, archiving into `archive`.
fn settings(t: &Path, archive: PathBuf) -> Arc<Settings> {
    let inbox = t.join("inbox");
    fs::create_dir_all(&inbox).unwrap();
    let claims = claim::prepare(&inbox, "h").unwrap();
    // The ledger beside, as the archive may be made unusable on purpose.
    fs::create_dir_all(t.join("ledger-home")).unwrap();
    let ledger = Ledger::open(&t.join("ledger-home"), "h").unwrap();
    let archive_root = archive.clone();
    Arc::new(Settings {
        inbox,
        archive,
        done: t.join("done"),
        failed: t.join("failed"),
        conversion: Conversion::Dither,
        formats: crate::formats::FormatSet::DECODED,
        verify: true,
        max_pixels: 1_000_000,
        originals: OriginalsAction::Move,
        claims,
        link_claims: true,
        ledger: Arc::new(ledger),
        devices: Devices::of(
            &t.join("inbox"),
            &archive_root,
            &t.join("done"),
            &t.join("failed"),
        ),
    })
}

#[test]
fn a_file_where_the_archive_folder_should_be_is_a_permanent_failure_and_the_original_stays() {
    let t = tempfile::tempdir().unwrap();
    let archive = t.path().join("archive");
    fs::write(&archive, b"not a folder").unwrap();
    let s = settings(t.path(), archive.clone());
    let src = s.inbox.join("a.bmp");
    let bmp = format!("{DATA}/pal1.bmp");
    fs::copy(&bmp, &src).unwrap();
    let error = match encode(&s, &src, 0, None) {
        Step::Over(Report::Transient { error }) => error,
        Step::Over(other) => panic!("{other:?}"),
        Step::Encoded(_) => panic!("encoded into a file"),
    };
    assert_eq!(error.op, Op::ArchiveFolder);
    assert_eq!(error.kind(), Kind::Permanent, "{error}");
    assert_eq!(error.file, src);
    assert_eq!(error.at, Some(archive.join("")));
    assert!(error.io_error().is_some());
    // Put back from its claim, unchanged.
    assert_eq!(fs::read(&src).unwrap(), fs::read(&bmp).unwrap());
    assert!(claim::list(&s.claims).is_empty());
}

#[test]
fn keep_files_the_original_away_when_a_newer_file_has_its_name_and_leaves_the_newer_one() {
    let t = tempfile::tempdir().unwrap();
    let mut s = settings(t.path(), t.path().join("archive"));
    Arc::get_mut(&mut s).unwrap().originals = OriginalsAction::Keep;
    let src = s.inbox.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    // Claimed and encoded: the name in the inbox is free again, and a
    // writer puts a newer file there before the original can go back.
    let taken = encoded(&s, &src);
    assert!(
        !src.exists(),
        "the original is claimed while it is worked on"
    );
    fs::copy(format!("{DATA}/rgb24.bmp"), &src).unwrap();
    let (archive, original) = match commit(*taken) {
        Report::Archived {
            archive, original, ..
        } => (archive, original),
        other => panic!("{other:?}"),
    };
    let done = t.path().join("done/a.bmp");
    assert_eq!(original, Original::MovedNameTaken(done.clone()));
    // The archive is the original's (the reference program's bytes), the
    // original is in done/, the newer file untouched in the inbox.
    assert_eq!(
        fs::read(&archive).unwrap(),
        fs::read(format!("{DATA}/pal8.dither.rle")).unwrap()
    );
    assert_eq!(
        fs::read(&done).unwrap(),
        fs::read(format!("{DATA}/pal8.bmp")).unwrap()
    );
    assert_eq!(
        fs::read(&src).unwrap(),
        fs::read(format!("{DATA}/rgb24.bmp")).unwrap()
    );
    assert!(claim::list(&s.claims).is_empty());
}

#[test]
fn a_claim_left_by_a_crash_adopts_only_an_unrecorded_archive_of_its_own_bytes() {
    let t = tempfile::tempdir().unwrap();
    let (s, archive) = with_archive_folder(t.path());
    // A crash left a.bmp claimed, and an unrecorded a.rle is there that is
    // not its archive: of its length, one run different.
    let claimed = s.claims.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &claimed).unwrap();
    let mut other = fs::read(format!("{DATA}/pal8.dither.rle")).unwrap();
    let last = other.len() - 1;
    other[last] ^= 0x80;
    fs::write(archive.join("a.rle"), &other).unwrap();
    let taken = encoded(&s, &claimed);
    let published = match commit(*taken) {
        Report::Archived { archive, .. } => archive,
        other => panic!("expected a new archive, got {other:?}"),
    };
    assert_eq!(published, archive.join("a-1.rle"));
    assert_eq!(
        fs::read(&published).unwrap(),
        fs::read(format!("{DATA}/pal8.dither.rle")).unwrap()
    );
    assert_eq!(fs::read(archive.join("a.rle")).unwrap(), other);
    // The same again with an unrecorded archive of exactly its bytes (a
    // crash between publishing and recording): that one is recorded, not
    // a second one published.
    fs::copy(format!("{DATA}/pal8.bmp"), s.claims.join("b.bmp")).unwrap();
    let own = fs::read(format!("{DATA}/pal8.dither.rle")).unwrap();
    fs::write(archive.join("b.rle"), &own).unwrap();
    let taken = encoded(&s, &s.claims.join("b.bmp"));
    match commit(*taken) {
        Report::AlreadyArchived { archive: a, .. } => assert_eq!(a, archive.join("b.rle")),
        other => panic!("expected the unrecorded archive adopted, got {other:?}"),
    }
    assert!(!archive.join("b-1.rle").exists());
    assert!(s.ledger.records_archive(Path::new("b.rle")));
}

/// Encodes `name` (a copy of pal8.bmp) from the inbox, lets `meanwhile`
/// change the claimed file, then commits it: the report.
fn commit_after(t: &Path, name: &str, meanwhile: impl FnOnce(&Path)) -> (Arc<Settings>, Report) {
    let (s, _) = with_archive_folder(t);
    let src = s.inbox.join(name);
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    let taken = encoded(&s, &src);
    meanwhile(&s.claims.join(name));
    let report = commit(*taken);
    (s, report)
}

#[test]
fn a_source_written_to_after_it_was_read_is_not_published_and_stays() {
    use std::os::unix::fs::PermissionsExt;
    let pal8 = fs::read(format!("{DATA}/pal8.bmp")).unwrap();
    // Grown; rewritten at the same length; rewritten with its old mtime
    // put back (only the ctime tells); its mode changed (ctime only).
    let grow = |p: &Path| {
        let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"more").unwrap();
    };
    let same_length = |p: &Path| {
        std::thread::sleep(std::time::Duration::from_millis(20)); // a new mtime
        let mut bytes = fs::read(p).unwrap();
        *bytes.last_mut().unwrap() ^= 0xff;
        fs::write(p, bytes).unwrap();
    };
    let old_mtime = |p: &Path| {
        let before = fs::metadata(p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20)); // a new ctime
        let mut bytes = fs::read(p).unwrap();
        *bytes.last_mut().unwrap() ^= 0xff;
        fs::write(p, bytes).unwrap();
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(before)
            .unwrap();
    };
    let chmod = |p: &Path| {
        std::thread::sleep(std::time::Duration::from_millis(20)); // a new ctime
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    };
    type Change<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Change); 4] = [
        ("grown", &grow),
        ("same length", &same_length),
        ("old mtime", &old_mtime),
        ("mode", &chmod),
    ];
    for (what, change) in cases {
        let t = tempfile::tempdir().unwrap();
        let (s, report) = commit_after(t.path(), "a.bmp", change);
        assert!(matches!(report, Report::Changed), "{what}: {report:?}");
        assert!(!s.archive.join("a.rle").exists(), "{what}: published");
        // The changed file is still there to be archived again: back in
        // the inbox or in its claim.
        let here = [s.inbox.join("a.bmp"), s.claims.join("a.bmp")];
        let left: Vec<_> = here.iter().filter(|p| p.exists()).collect();
        assert_eq!(left.len(), 1, "{what}: {left:?}");
        if what == "grown" {
            assert_eq!(fs::read(left[0]).unwrap().len(), pal8.len() + 4);
        }
    }
}

#[test]
fn a_recorded_archive_that_no_longer_holds_its_bytes_is_not_trusted() {
    let t = tempfile::tempdir().unwrap();
    let (mut s, archive) = with_archive_folder(t.path());
    Arc::get_mut(&mut s).unwrap().originals = OriginalsAction::Keep;
    let reference = fs::read(format!("{DATA}/pal8.dither.rle")).unwrap();
    let src = s.inbox.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    let archive_once = |s: &Arc<Settings>| commit(*encoded(s, &src));
    match archive_once(&s) {
        Report::Archived { archive: a, .. } => assert_eq!(a, archive.join("a.rle")),
        other => panic!("{other:?}"),
    }
    // Kept, and seen again: the ledger records it, its archive holds it.
    assert!(matches!(archive_once(&s), Report::AlreadyArchived { .. }));
    // Its archive damaged (same length, one run flipped): not trusted;
    // archived again under a new name.
    let mut damaged = reference.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x80;
    fs::write(archive.join("a.rle"), &damaged).unwrap();
    match archive_once(&s) {
        Report::Archived { archive: a, .. } => {
            assert_eq!(a, archive.join("a-1.rle"));
            assert_eq!(fs::read(&a).unwrap(), reference);
        }
        other => panic!("expected a new archive, got {other:?}"),
    }
    assert_eq!(fs::read(archive.join("a.rle")).unwrap(), damaged);
}

#[test]
fn a_fifo_in_the_inbox_is_quarantined_without_blocking_the_worker() {
    let t = tempfile::tempdir().unwrap();
    let s = settings(t.path(), t.path().join("archive"));
    let fifo = s.inbox.join("f.bmp");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // No writer will ever open it: an open that waits for one never ends,
    // so the attempt runs on a thread the test can give up on.
    let (tx, rx) = std::sync::mpsc::channel();
    let (s2, f2) = (s.clone(), fifo.clone());
    std::thread::spawn(move || {
        let step = encode(&s2, &f2, 0, None);
        let _ = tx.send(match step {
            Step::Over(report) => format!("{report:?}"),
            Step::Encoded(_) => "encoded".to_string(),
        });
    });
    let report = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the attempt on a FIFO did not end within 30 s: blocked in open?");
    assert!(
        report.starts_with("Quarantined") && report.contains("not a regular file"),
        "{report}"
    );
    assert!(t.path().join("failed/f.bmp.error.txt").exists());
    assert!(!fifo.exists());
}

thread_local! {
    /// What [`between_open_and_lock`] does on this thread, once.
    static BETWEEN_OPEN_AND_LOCK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        std::cell::RefCell::new(None);
}

/// Called by `take::open_locked` after it opens a file and before it
/// locks it: runs what a test set for this thread, standing for another
/// daemon that was holding the lock meanwhile.
pub(super) fn between_open_and_lock() {
    if let Some(f) = BETWEEN_OPEN_AND_LOCK.with(|b| b.borrow_mut().take()) {
        f()
    }
}

#[test]
fn a_claim_filed_by_another_daemon_while_it_was_opened_is_not_archived_again() {
    let t = tempfile::tempdir().unwrap();
    let (s, archive) = with_archive_folder(t.path());
    let claimed = s.claims.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &claimed).unwrap();
    // Another daemon of this host id held the claim's lock while this one
    // opened it, then filed it away and let go.
    let (path, done) = (claimed.clone(), s.done.clone());
    BETWEEN_OPEN_AND_LOCK.with(|b| {
        *b.borrow_mut() = Some(Box::new(move || {
            fs::create_dir_all(&done).unwrap();
            fs::rename(&path, done.join("a.bmp")).unwrap();
        }))
    });
    match encode(&s, &claimed, 0, None) {
        Step::Over(Report::Gone) => {}
        Step::Over(other) => panic!("expected Gone, got {other:?}"),
        Step::Encoded(_) => panic!("the filed file was archived again"),
    }
    assert_eq!(fs::read_dir(&archive).unwrap().count(), 0);
    assert_eq!(
        fs::read(s.done.join("a.bmp")).unwrap(),
        fs::read(format!("{DATA}/pal8.bmp")).unwrap()
    );
    // The same when the name holds another file by then: that one is
    // looked at again, not taken for the one opened.
    fs::copy(format!("{DATA}/pal8.bmp"), &claimed).unwrap();
    let (path, done) = (claimed.clone(), s.done.clone());
    BETWEEN_OPEN_AND_LOCK.with(|b| {
        *b.borrow_mut() = Some(Box::new(move || {
            fs::rename(&path, done.join("b.bmp")).unwrap();
            fs::copy(format!("{DATA}/rgb24.bmp"), &path).unwrap();
        }))
    });
    match encode(&s, &claimed, 0, None) {
        Step::Over(Report::Busy { .. }) => {}
        Step::Over(other) => panic!("expected Busy, got {other:?}"),
        Step::Encoded(_) => panic!("the filed file was archived again"),
    }
    assert_eq!(fs::read_dir(&archive).unwrap().count(), 0);
    // Looked at again, the new file is archived.
    let taken = encoded(&s, &claimed);
    match commit(*taken) {
        Report::Archived { archive: a, .. } => assert_eq!(
            fs::read(a).unwrap(),
            fs::read(format!("{DATA}/rgb24.dither.rle")).unwrap()
        ),
        other => panic!("expected the new file archived, got {other:?}"),
    }
}

#[test]
fn a_retry_files_with_an_earlier_archive_only_the_same_file_and_only_while_that_archive_exists() {
    let t = tempfile::tempdir().unwrap();
    let (s, archive) = with_archive_folder(t.path());
    let pal8 = fs::read(format!("{DATA}/pal8.dither.rle")).unwrap();
    // What an earlier attempt on `src` as it is now carries: its archive
    // `rle` (the retry trusts it only while it is there).
    let earlier_of = |src: &Path, rle: &str| Published {
        archive: archive.join(rle),
        source: source_id(&fs::metadata(src).unwrap()),
        source_xxh3: 0,
        unrecorded: None,
    };
    // An earlier attempt published a.rle from a.bmp but could not file
    // a.bmp away; meanwhile a.bmp was replaced by another image.
    let src = s.inbox.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    fs::write(archive.join("a.rle"), &pal8).unwrap();
    let earlier = earlier_of(&src, "a.rle");
    fs::remove_file(&src).unwrap();
    fs::copy(format!("{DATA}/rgb24.bmp"), &src).unwrap();
    let taken = match encode(&s, &src, 1, Some(&earlier)) {
        Step::Encoded(e) => e,
        Step::Over(other) => panic!("the new image was filed with the old archive: {other:?}"),
    };
    match commit(*taken) {
        Report::Archived { archive: a, .. } => assert_eq!(
            fs::read(a).unwrap(),
            fs::read(format!("{DATA}/rgb24.dither.rle")).unwrap()
        ),
        other => panic!("expected the new image archived, got {other:?}"),
    }
    // The same file, but its earlier archive is gone: archived again.
    let src = s.inbox.join("b.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    let earlier = earlier_of(&src, "b.rle");
    let taken = match encode(&s, &src, 1, Some(&earlier)) {
        Step::Encoded(e) => e,
        Step::Over(other) => panic!("filed without its archive: {other:?}"),
    };
    match commit(*taken) {
        Report::Archived { archive: a, .. } => assert_eq!(fs::read(a).unwrap(), pal8),
        other => panic!("expected b.bmp archived, got {other:?}"),
    }
    // The same file with its earlier archive there: only filed.
    let src = s.inbox.join("c.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    fs::write(archive.join("c.rle"), &pal8).unwrap();
    let earlier = earlier_of(&src, "c.rle");
    match encode(&s, &src, 1, Some(&earlier)) {
        Step::Over(Report::AlreadyArchived { archive: a, .. }) => {
            assert_eq!(a, archive.join("c.rle"))
        }
        Step::Over(other) => panic!("expected c.bmp filed with c.rle, got {other:?}"),
        Step::Encoded(_) => panic!("c.bmp encoded again"),
    }
    assert!(!src.exists());
    assert_eq!(
        fs::read(s.done.join("c.bmp")).unwrap(),
        fs::read(format!("{DATA}/pal8.bmp")).unwrap()
    );
    assert!(!archive.join("c-1.rle").exists());
}

#[test]
fn a_bmp_with_a_broken_header_is_quarantined_at_once_with_its_reason() {
    let t = tempfile::tempdir().unwrap();
    let s = settings(t.path(), t.path().join("archive"));
    let data = format!("{DATA}/bad");
    for name in ["badbitcount.bmp", "badwidth.bmp", "reallybig.bmp"] {
        let src = s.inbox.join(name);
        fs::copy(format!("{data}/{name}"), &src).unwrap();
        match encode(&s, &src, 0, None) {
            Step::Over(Report::Quarantined { to, .. }) => {
                assert_eq!(to, s.failed.join(name));
                assert_eq!(
                    fs::read(&to).unwrap(),
                    fs::read(format!("{data}/{name}")).unwrap()
                );
            }
            Step::Over(other) => panic!("{name}: expected quarantined, got {other:?}"),
            Step::Encoded(_) => panic!("{name}: encoded"),
        }
        assert!(!src.exists(), "{name}");
    }
    assert!(claim::list(&s.claims).is_empty());
}

/// A crash between the two halves of a claim (design §4.7) leaves one
/// inode under its inbox name and its claim name. Taken from either name,
/// it is archived once and its inbox name removed, never taken again.
#[test]
fn a_claim_linked_but_not_unlinked_is_archived_once_from_either_name() {
    for from_inbox in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let s = settings(t.path(), t.path().join("archive"));
        let src = s.inbox.join("a.bmp");
        fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
        let claim = s.claims.join("a.bmp");
        fs::hard_link(&src, &claim).unwrap();
        let taken = encoded(&s, if from_inbox { &src } else { &claim });
        assert!(!src.exists(), "from the inbox: {from_inbox}");
        assert!(matches!(commit(*taken), Report::Archived { .. }));
        assert!(!src.exists());
        assert!(claim::list(&s.claims).is_empty());
        assert_eq!(
            fs::read(t.path().join("done/a.bmp")).unwrap(),
            fs::read(format!("{DATA}/pal8.bmp")).unwrap()
        );
        // Nothing left to take from either name.
        assert!(matches!(
            encode(&s, &src, 0, None),
            Step::Over(Report::Gone)
        ));
        assert!(matches!(
            encode(&s, &claim, 0, None),
            Step::Over(Report::Gone)
        ));
    }
}

/// A file whose inode is another host id's claim (that host died between
/// the halves of its claim) is that host's: not taken from the inbox.
#[test]
fn an_inbox_file_linked_into_another_hosts_claim_folder_is_left_to_it() {
    let t = tempfile::tempdir().unwrap();
    let s = settings(t.path(), t.path().join("archive"));
    let theirs = claim::prepare(&s.inbox, "other").unwrap();
    let src = s.inbox.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    fs::hard_link(&src, theirs.join("a.bmp")).unwrap();
    assert!(matches!(
        encode(&s, &src, 0, None),
        Step::Over(Report::Gone)
    ));
    assert!(src.exists() && theirs.join("a.bmp").exists());
    assert!(claim::list(&s.claims).is_empty());
}

/// The file's bytes changed on disk between being written and being read
/// back (a bad sector, a stray writer, a bug in the write path): the strict
/// decoder's read-back refuses it, nothing is published or recorded, and
/// the original goes back to the inbox untouched. Each corruption is made
/// through the temporary file's own name between `encode` and `commit`,
/// as something outside the daemon would (unlike the `test-hooks` fault,
/// which flips a bit through the daemon's own descriptor).
#[test]
fn a_temporary_archive_corrupted_on_disk_before_its_read_back_is_never_published() {
    type Corrupt = fn(&Path);
    let cases: [(&str, Corrupt); 3] = [
        ("a byte changed in the middle", |p| {
            let mut b = fs::read(p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x10;
            fs::write(p, b).unwrap();
        }),
        ("cut one byte short", |p| {
            let len = fs::metadata(p).unwrap().len();
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len - 1)
                .unwrap();
        }),
        ("a byte appended", |p| {
            let mut f = fs::File::options().append(true).open(p).unwrap();
            f.write_all(&[0]).unwrap();
        }),
    ];
    for (what, corrupt) in cases {
        let t = tempfile::tempdir().unwrap();
        let (s, archive) = with_archive_folder(t.path());
        let src = s.inbox.join("a.bmp");
        let bmp = format!("{DATA}/pal8.bmp");
        fs::copy(&bmp, &src).unwrap();
        let taken = encoded(&s, &src);
        corrupt(taken.work.temp.path());
        match commit(*taken) {
            Report::Transient { error } => assert_eq!(error.op, Op::Verify, "{what}: {error}"),
            other => panic!("{what}: a corrupted archive was not refused: {other:?}"),
        }
        let left: Vec<_> = fs::read_dir(&archive).unwrap().collect();
        assert!(left.is_empty(), "{what}: left in the archive: {left:?}");
        assert!(
            !s.ledger.records_archive(Path::new("a.rle")),
            "{what}: recorded"
        );
        assert!(!s.done.join("a.bmp").exists(), "{what}: filed away");
        assert_eq!(
            fs::read(&src).unwrap(),
            fs::read(&bmp).unwrap(),
            "{what}: the original is not back in the inbox as it was"
        );
    }
}

/// The order of design §4.7, watched through what each fsync made durable
/// (`durable::tests::recording`): the archive is durable in its folder,
/// then the ledger line naming it, and only then is the original filed
/// away — moved (done/ durable before the claim folder lets it go), put
/// back (`keep`) or deleted. The ledger lives outside the archive folder
/// here, so that its own folder fsyncs do not make the archive durable by
/// chance (they do for the first file of each day in a real archive).
#[test]
fn the_archive_then_its_ledger_line_are_durable_before_the_original_is_filed() {
    use crate::durable::tests::{Synced, first, recording};
    for policy in [
        OriginalsAction::Move,
        OriginalsAction::Keep,
        OriginalsAction::Delete,
    ] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let (mut s, archive) = with_archive_folder(&root);
        Arc::get_mut(&mut s).unwrap().originals = policy;
        // Lossless, so that `delete` deletes.
        let src = s.inbox.join("a.bmp");
        fs::copy(format!("{DATA}/pal1.bmp"), &src).unwrap();
        let (report, journal) = recording(|| commit(*encoded(&s, &src)));
        let original = match report {
            Report::Archived {
                archive: a,
                original,
                ..
            } => {
                assert_eq!(a, archive.join("a.rle"));
                original
            }
            other => panic!("{policy}: {other:?}"),
        };
        let published = first(&journal, "the archive folder holding a.rle", |e| {
            e.dir_with(&archive, "a.rle")
        });
        let recorded = first(&journal, "the ledger line naming a.rle", |e| {
            e.path.extension().is_some_and(|x| x == "jsonl")
                && String::from_utf8_lossy(&e.bytes).contains("\"archive\":\"a.rle\"")
        });
        let claims = s.claims.clone();
        let let_go = |e: &Synced| e.dir_without(&claims, "a.bmp");
        let filed = match policy {
            OriginalsAction::Move => {
                assert_eq!(original, Original::Moved(s.done.join("a.bmp")));
                let there = first(&journal, "done/ holding a.bmp", |e| {
                    e.dir_with(&s.done, "a.bmp")
                });
                let gone = first(&journal, "the claim folder without a.bmp", let_go);
                assert!(
                    there < gone,
                    "{policy}: the claim folder let the original go before done/ held it: \
                     {journal:#?}"
                );
                there
            }
            OriginalsAction::Keep => {
                assert_eq!(original, Original::Kept);
                first(&journal, "the inbox holding a.bmp again", |e| {
                    e.dir_with(&s.inbox, "a.bmp")
                })
            }
            OriginalsAction::Delete => {
                assert_eq!(original, Original::Deleted);
                first(&journal, "the claim folder without a.bmp", let_go)
            }
        };
        assert!(
            published < recorded && recorded < filed,
            "{policy}: durable in the wrong order (archive at {published}, ledger at \
             {recorded}, original filed at {filed}): {journal:#?}"
        );
    }
}

/// A claim being archived is locked by its taker: a second taker of the
/// same host id (a second daemon past a deleted host lock, or this one's
/// own rescan of its claim folder) finds it busy and leaves it, and the
/// file is archived once.
#[test]
fn a_claim_being_archived_is_busy_for_a_second_taker() {
    let t = tempfile::tempdir().unwrap();
    let (s, archive) = with_archive_folder(t.path());
    let src = s.inbox.join("a.bmp");
    fs::copy(format!("{DATA}/pal8.bmp"), &src).unwrap();
    let first = encoded(&s, &src);
    let claimed = s.claims.join("a.bmp");
    assert!(claimed.exists());
    match encode(&s, &claimed, 0, None) {
        Step::Over(Report::Busy { .. }) => {}
        Step::Over(other) => panic!("expected Busy, got {other:?}"),
        Step::Encoded(second) => {
            // What two unlocked takers do: both publish.
            let twice = [commit(*first), commit(*second)];
            panic!("a locked claim was taken a second time: {twice:?}");
        }
    }
    match commit(*first) {
        Report::Archived { archive: a, .. } => assert_eq!(a, archive.join("a.rle")),
        other => panic!("{other:?}"),
    }
    let names: Vec<_> = fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a.rle"]);
    assert_eq!(
        fs::read(s.done.join("a.bmp")).unwrap(),
        fs::read(format!("{DATA}/pal8.bmp")).unwrap()
    );
}

/// `delete` removes an original only when its archive is lossless and was
/// read back through the strict decoder; otherwise the original goes to
/// done/, byte for byte.
#[test]
fn delete_removes_only_an_original_whose_archive_is_lossless_and_verified() {
    for (bmp, verify, deleted) in [
        ("pal1.bmp", true, true),
        ("pal8.bmp", true, false),
        ("pal1.bmp", false, false),
    ] {
        let what = format!("{bmp}, verify = {verify}");
        let t = tempfile::tempdir().unwrap();
        let (mut s, _) = with_archive_folder(t.path());
        let settings = Arc::get_mut(&mut s).unwrap();
        settings.originals = OriginalsAction::Delete;
        settings.verify = verify;
        let src = s.inbox.join("a.bmp");
        fs::copy(format!("{DATA}/{bmp}"), &src).unwrap();
        let original = match commit(*encoded(&s, &src)) {
            Report::Archived { original, .. } => original,
            other => panic!("{what}: {other:?}"),
        };
        let done = s.done.join("a.bmp");
        if deleted {
            assert_eq!(original, Original::Deleted, "{what}");
            assert!(!done.exists(), "{what}");
        } else {
            assert_eq!(original, Original::MovedLossy(done.clone()), "{what}");
            assert_eq!(
                fs::read(&done).unwrap(),
                fs::read(format!("{DATA}/{bmp}")).unwrap(),
                "{what}"
            );
        }
        assert!(!src.exists() && claim::list(&s.claims).is_empty(), "{what}");
    }
}
