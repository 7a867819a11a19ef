//! Tests of durable publication, names and descriptor-relative moves.

use super::beneath::openat2_beneath;
use super::*;
use std::os::unix::fs::symlink;

#[test]
fn a_temporary_files_name_says_whose_it_is() {
    fn owner(n: &str) -> Option<Option<&str>> {
        temp_owner(std::ffi::OsStr::new(n))
    }
    assert_eq!(
        owner(".rlewatch-host-1.b~Ab12Zx.tmp"),
        Some(Some("host-1.b"))
    );
    assert_eq!(owner(".rlewatch-Ab12Zx.tmp"), Some(None));
    assert_eq!(owner(".rlewatch-Ab12Zx.rle"), None);
    assert_eq!(owner("x.rlewatch-a~b.tmp"), None);
    fn tag(n: &str) -> Option<TempTag<'_>> {
        temp_tag(std::ffi::OsStr::new(n))
    }
    let tagged = |host, instance| {
        Some(TempTag {
            host: Some(host),
            instance,
        })
    };
    // HOST~INSTANCE~XXXXXX, HOST~XXXXXX (an earlier version), XXXXXX.
    assert_eq!(
        tag(".rlewatch-host-1.b~0123456789abcdef~Ab12Zx.tmp"),
        tagged("host-1.b", Some("0123456789abcdef"))
    );
    assert_eq!(
        tag(".rlewatch-host-1.b~Ab12Zx.tmp"),
        tagged("host-1.b", None)
    );
    assert_eq!(
        tag(".rlewatch-Ab12Zx.tmp"),
        Some(TempTag {
            host: None,
            instance: None
        })
    );
    assert_eq!(tag(".rlewatch-h~i~Ab12Zx.rle"), None);
    assert_eq!(
        owner(".rlewatch-host-1.b~0123456789abcdef~Ab12Zx.tmp"),
        Some(Some("host-1.b"))
    );
}

/// The daemon's temporary files carry its host id and its instance's
/// token (design §4.4), as [`temp_tag`] reads them back.
#[test]
fn a_daemons_temporary_file_carries_its_host_and_instance() {
    let instance = set_temp_owner("host-1");
    // The first call wins: a test elsewhere may have set another host.
    let host = TEMP_OWNER.get().unwrap().0.clone();
    // The same token for the life of the process.
    assert_eq!(set_temp_owner("host-2"), instance);
    assert_eq!(instance.len(), 16);
    assert!(
        instance.bytes().all(|b| b.is_ascii_hexdigit()),
        "{instance}"
    );
    let t = tempfile::tempdir().unwrap();
    let temp = temp_in(t.path(), 0o644).unwrap();
    let name = temp.path().file_name().unwrap();
    assert_eq!(
        temp_tag(name),
        Some(TempTag {
            host: Some(&host),
            instance: Some(instance)
        }),
        "{name:?}"
    );
}

/// The same file under the source and the destination name (a power
/// cut between a move's two folder fsyncs): the move completes by
/// removing the source name, not by filing a second copy; a different
/// file under the name still gets a numbered name.
#[test]
fn moving_a_file_already_at_its_destination_removes_the_old_name() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("x.bmp"), b"x").unwrap();
    fs::hard_link(a.join("x.bmp"), b.join("x.bmp")).unwrap();
    let from = File::open(&a).unwrap();
    let to = move_at(&from, std::ffi::OsStr::new("x.bmp"), &b, 0o644).unwrap();
    assert_eq!(to, b.join("x.bmp"));
    assert!(!a.join("x.bmp").exists());
    assert_eq!(fs::read_dir(&b).unwrap().count(), 1);
    fs::write(a.join("x.bmp"), b"other").unwrap();
    let to = move_at(&from, std::ffi::OsStr::new("x.bmp"), &b, 0o644).unwrap();
    assert_eq!(to, b.join("x-1.bmp"));
    assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"x");
}

/// inbox/a/b/f.bmp, inbox/link -> a, inbox/a/b/flink -> f.bmp, and an
/// outside folder the links may point at.
fn tree() -> (tempfile::TempDir, File) {
    let t = tempfile::tempdir().unwrap();
    let inbox = t.path().join("inbox");
    fs::create_dir_all(inbox.join("a/b")).unwrap();
    fs::write(inbox.join("a/b/f.bmp"), b"inside").unwrap();
    fs::create_dir(t.path().join("outside")).unwrap();
    fs::write(t.path().join("outside/f.bmp"), b"outside").unwrap();
    symlink(inbox.join("a"), inbox.join("link")).unwrap();
    symlink("f.bmp", inbox.join("a/b/flink")).unwrap();
    symlink(t.path().join("outside"), inbox.join("a/out")).unwrap();
    let base = File::open(&inbox).unwrap();
    (t, base)
}

fn read(mut f: File) -> Vec<u8> {
    let mut v = Vec::new();
    io::Read::read_to_end(&mut f, &mut v).unwrap();
    v
}

fn errno(r: io::Result<File>) -> i32 {
    r.expect_err("must be refused").raw_os_error().unwrap()
}

#[test]
fn the_walk_opens_plain_paths_and_the_base_itself() {
    let (_t, base) = tree();
    let f = open_beneath_walk(&base, Path::new("a/b/f.bmp"), libc::O_RDONLY).unwrap();
    assert_eq!(read(f), b"inside");
    let f = open_beneath_walk(&base, Path::new("./a/./b/f.bmp"), libc::O_RDONLY).unwrap();
    assert_eq!(read(f), b"inside");
    let d = open_beneath_walk(&base, Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY);
    assert!(d.unwrap().metadata().unwrap().is_dir());
}

#[test]
fn the_walk_follows_no_symlink_at_any_depth_and_never_climbs() {
    let (_t, base) = tree();
    let ro = libc::O_RDONLY;
    // A symlinked folder on the way, a symlink as the last component,
    // a symlink leading outside, and `..`.
    for (rel, expected) in [
        ("link/b/f.bmp", [libc::ELOOP, libc::ENOTDIR]),
        ("a/b/flink", [libc::ELOOP, libc::ELOOP]),
        ("a/out/f.bmp", [libc::ELOOP, libc::ENOTDIR]),
        ("../outside/f.bmp", [libc::EXDEV, libc::EXDEV]),
        ("a/../../outside/f.bmp", [libc::EXDEV, libc::EXDEV]),
    ] {
        let got = errno(open_beneath_walk(&base, Path::new(rel), ro));
        assert!(expected.contains(&got), "{rel}: errno {got}");
    }
    let got = errno(open_beneath_walk(
        &base,
        Path::new("link"),
        ro | libc::O_DIRECTORY,
    ));
    assert!([libc::ELOOP, libc::ENOTDIR].contains(&got), "errno {got}");
}

#[test]
fn the_walk_refuses_what_openat2_refuses() {
    let (_t, base) = tree();
    for rel in [
        "link/b/f.bmp",
        "a/b/flink",
        "a/out/f.bmp",
        "../outside/f.bmp",
    ] {
        let walk = open_beneath_walk(&base, Path::new(rel), libc::O_RDONLY);
        let kernel = openat2_beneath(&base, Path::new(rel), libc::O_RDONLY);
        if kernel
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(libc::ENOSYS))
        {
            return; // no openat2 to compare with here
        }
        assert!(walk.is_err() && kernel.is_err(), "{rel}");
    }
}

#[test]
fn derived_names_never_exceed_name_max() {
    use std::os::unix::ffi::OsStrExt;
    let short = fit_name(std::ffi::OsStr::new("page"), "-1.rle");
    assert_eq!(short, "page-1.rle");
    // 250 bytes of 'é' (2 bytes each) cut on a character boundary.
    let long = "é".repeat(125);
    for suffix in [".rle", "-1.rle", "-9999.bmp", ".bmp.error.txt"] {
        let fitted = fit_name(std::ffi::OsStr::new(&long), suffix);
        let b = fitted.as_bytes();
        assert!(b.len() <= NAME_MAX, "{} bytes", b.len());
        assert!(std::str::from_utf8(b).is_ok());
        assert!(b.ends_with(suffix.as_bytes()));
        // Deterministic, and distinct for distinct stems.
        assert_eq!(fitted, fit_name(std::ffi::OsStr::new(&long), suffix));
        let other = format!("{long}x");
        assert_ne!(fitted, fit_name(std::ffi::OsStr::new(&other), suffix));
    }
}

/// Design §4.3: a name that fits NAME_MAX is kept as it is, however
/// long; one that does not is cut to exactly NAME_MAX bytes (the
/// stem's first bytes, `~`, 16 hex digits of its hash, the suffix),
/// backing off at most 3 bytes to a UTF-8 boundary, and a stem that
/// is not UTF-8 is cut where it is.
#[test]
fn names_that_fit_are_kept_and_the_others_cut_to_exactly_name_max() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    // 64 to 251 bytes + ".rle": fits, unchanged.
    for len in [64, 100, 200, NAME_MAX - 4] {
        let stem = "a".repeat(len);
        let fitted = fit_name(std::ffi::OsStr::new(&stem), ".rle");
        assert_eq!(
            fitted,
            std::ffi::OsString::from(format!("{stem}.rle")),
            "{len}"
        );
    }
    // One byte more: cut, to exactly NAME_MAX bytes.
    let stem = "a".repeat(NAME_MAX - 3);
    let fitted = fit_name(std::ffi::OsStr::new(&stem), ".rle");
    let b = fitted.as_bytes();
    assert_eq!(b.len(), NAME_MAX);
    let kept = NAME_MAX - ".rle".len() - 17;
    assert_eq!(&b[..kept], &stem.as_bytes()[..kept]);
    assert_eq!(b[kept], b'~');
    assert!(b[kept + 1..kept + 17].iter().all(u8::is_ascii_hexdigit));
    // Not UTF-8 from byte 100 on: cut where it is, not backed off to
    // the last valid UTF-8 boundary 134 bytes before the cut.
    let mut raw = vec![b'a'; 100];
    raw.push(0xff);
    raw.extend(std::iter::repeat_n(b'b', 300));
    let fitted = fit_name(&std::ffi::OsString::from_vec(raw.clone()), ".rle");
    assert_eq!(fitted.as_bytes().len(), NAME_MAX);
    assert_eq!(&fitted.as_bytes()[..kept], &raw[..kept]);
}

#[test]
fn may_remove_at_follows_the_folders_write_permission() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), b"x").unwrap();
    let dir = File::open(t.path()).unwrap();
    may_remove_at(&dir, std::ffi::OsStr::new("f")).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o500)).unwrap();
    // Root may write anyway (the daemon's own tests as `nobody` cover
    // the refusal: tests/all/deployed.rs).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(may_remove_at(&dir, std::ffi::OsStr::new("f")).is_err());
    }
}

/// Root, a tmpfs at /dev/shm on another device than the temporary folder,
/// and `chattr`; `None` (said on stderr) when one is missing, a failure
/// when `RLEWATCH_REQUIRE_ROOT=1` (CI).
fn other_filesystem() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let here = std::env::temp_dir();
    let missing = if unsafe { libc::geteuid() } != 0 {
        Some("not root")
    } else if fs::metadata(shm).map(|m| m.dev()).ok() == fs::metadata(&here).map(|m| m.dev()).ok() {
        Some("/dev/shm is not another filesystem")
    } else if std::process::Command::new("chattr")
        .arg("--help")
        .output()
        .is_err()
    {
        Some("no chattr")
    } else {
        None
    };
    match missing {
        None => Some(shm.to_path_buf()),
        Some(why) if std::env::var_os("RLEWATCH_REQUIRE_ROOT").is_some_and(|v| v == "1") => {
            panic!("RLEWATCH_REQUIRE_ROOT=1 but {why}")
        }
        Some(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn an_original_that_cannot_be_unlinked_after_its_copy_keeps_no_second_copy() {
    let Some(shm) = other_filesystem() else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir_in(shm).unwrap();
    fs::write(src.path().join("a.bmp"), b"the only original").unwrap();
    // Immutable: root's removability check passes, the unlink fails.
    let chattr = |flag: &str| {
        let ok = std::process::Command::new("chattr")
            .arg(flag)
            .arg(src.path().join("a.bmp"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "chattr {flag}");
    };
    chattr("+i");
    let from = File::open(src.path()).unwrap();
    let moved = move_at(&from, std::ffi::OsStr::new("a.bmp"), dest.path(), 0o640);
    chattr("-i");
    let err = moved.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert_eq!(
        fs::read(src.path().join("a.bmp")).unwrap(),
        b"the only original"
    );
    let left: Vec<_> = fs::read_dir(dest.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left in the destination: {left:?}");
    // Once it can be removed, it moves: one copy, no original.
    let moved = move_at(&from, std::ffi::OsStr::new("a.bmp"), dest.path(), 0o640).unwrap();
    assert_eq!(fs::read(&moved).unwrap(), b"the only original");
    assert!(!src.path().join("a.bmp").exists());
}

#[test]
fn one_of_two_renames_wins_and_nothing_is_replaced() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
    for p in [&a, &b, &c] {
        fs::create_dir(p).unwrap();
    }
    fs::write(a.join("x.bmp"), b"first").unwrap();
    fs::write(c.join("x.bmp"), b"already claimed").unwrap();
    let (fa, fb, fc) = (
        File::open(&a).unwrap(),
        File::open(&b).unwrap(),
        File::open(&c).unwrap(),
    );
    // Into a folder that holds that name already: refused.
    let e = rename_noreplace(&fa, std::ffi::OsStr::new("x.bmp"), &fc).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(fs::read(c.join("x.bmp")).unwrap(), b"already claimed");
    rename_noreplace(&fa, std::ffi::OsStr::new("x.bmp"), &fb).unwrap();
    // The loser finds the source gone.
    let e = rename_noreplace(&fa, std::ffi::OsStr::new("x.bmp"), &fb).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"first");
}

/// Design §4.8: on NFS a retransmitted rename reports ENOENT or EEXIST
/// although it was done. Only the file itself found under the name at
/// the target confirms it; another file there never does (taking that
/// for a claim would let two daemons work on one file).
#[test]
fn a_rename_is_confirmed_only_by_the_file_itself_at_the_target() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for p in [&a, &b] {
        fs::create_dir(p).unwrap();
    }
    let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
    let name = std::ffi::OsStr::new("x.bmp");

    // ENOENT: the rename was done already (by the first transmission).
    fs::write(a.join("x.bmp"), b"mine").unwrap();
    let mine = File::open(a.join("x.bmp")).unwrap();
    fs::rename(a.join("x.bmp"), b.join("x.bmp")).unwrap();
    rename_confirmed(&fa, name, &fb, &mine).unwrap();
    // ENOENT with another file under the name at the target: refused.
    fs::write(a.join("y.bmp"), b"other").unwrap();
    let other = File::open(a.join("y.bmp")).unwrap();
    let e = rename_confirmed(&fa, name, &fb, &other).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

    // EEXIST: the file is at both names (a retransmitted link, or a
    // rename seen half done) — it is the target: confirmed.
    fs::hard_link(b.join("x.bmp"), a.join("x.bmp")).unwrap();
    rename_confirmed(&fa, name, &fb, &mine).unwrap();
    // EEXIST with another file at the target: refused, both kept.
    fs::remove_file(a.join("x.bmp")).unwrap();
    fs::write(a.join("x.bmp"), b"newer").unwrap();
    let newer = File::open(a.join("x.bmp")).unwrap();
    let e = rename_confirmed(&fa, name, &fb, &newer).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(fs::read(a.join("x.bmp")).unwrap(), b"newer");
    assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"mine");
}

#[test]
fn a_lock_is_exclusive_between_open_files_and_ends_with_them() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x");
    fs::write(&p, b"x").unwrap();
    let first = File::open(&p).unwrap();
    assert!(try_lock(&first).unwrap());
    let second = File::open(&p).unwrap();
    assert!(!try_lock(&second).unwrap());
    drop(first);
    assert!(try_lock(&second).unwrap());
}

/// A link or no-replace publish refused for another reason than EEXIST
/// while the name is taken (sshfs says EPERM for a name another host took)
/// moves on to the next name; with the name free the error stands.
#[test]
fn an_error_for_a_name_now_taken_is_eexist_and_any_other_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let eperm = || io::Error::from_raw_os_error(libc::EPERM);
    fs::write(dir.path().join("a.rle"), b"theirs").unwrap();
    symlink("nowhere", dir.path().join("a-1.rle")).unwrap();
    let taken = |p: &Path| taken_as_exists(eperm(), p).raw_os_error();
    assert_eq!(taken(&dir.path().join("a.rle")), Some(libc::EEXIST));
    assert_eq!(taken(&dir.path().join("a-1.rle")), Some(libc::EEXIST));
    assert_eq!(taken(&dir.path().join("a-2.rle")), Some(libc::EPERM));
    // As a publisher on sshfs sees it: EPERM on each taken name.
    let got = with_numbered(dir.path(), std::ffi::OsStr::new("a"), "rle", |to| {
        if fs::symlink_metadata(to).is_ok() {
            return Err(taken_as_exists(eperm(), to));
        }
        fs::write(to, b"mine").map(|()| to.to_path_buf())
    })
    .unwrap();
    assert_eq!(got, dir.path().join("a-2.rle"));
    assert_eq!(fs::read(dir.path().join("a.rle")).unwrap(), b"theirs");
    // Refused with the name free: the refusal is reported as it is.
    let refused = with_numbered(dir.path(), std::ffi::OsStr::new("b"), "rle", |to| {
        Err::<PathBuf, _>(taken_as_exists(eperm(), to))
    });
    assert_eq!(refused.unwrap_err().raw_os_error(), Some(libc::EPERM));
}

/// The second half of a claim (design §4.7): the inbox name goes when it
/// is the claimed file; a file a writer put under it after the link is
/// put back, never destroyed; a name already gone is said so.
#[test]
fn removing_a_claims_inbox_name_never_destroys_a_newer_file() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("inbox"), t.path().join("claims"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
    let name = std::ffi::OsStr::new("x.bmp");
    let scratch_left = || {
        fs::read_dir(&b)
            .unwrap()
            .flatten()
            .any(|e| is_unclaim_name(&e.file_name()))
    };

    fs::write(a.join("x.bmp"), b"claimed").unwrap();
    link_at(&fa, name, &fb).unwrap();
    let m = fs::metadata(b.join("x.bmp")).unwrap();
    assert_eq!(m.nlink(), 2);
    // The claim's own name is taken now: a second link is refused.
    assert_eq!(
        link_at(&fa, name, &fb).unwrap_err().raw_os_error(),
        Some(libc::EEXIST)
    );
    assert_eq!(
        unlink_twin_durably(&fa, name, &fb, &m).unwrap(),
        Twin::Removed
    );
    assert!(!a.join("x.bmp").exists());
    assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"claimed");
    assert_eq!(fs::metadata(b.join("x.bmp")).unwrap().nlink(), 1);
    assert!(!scratch_left());

    // Gone already.
    assert_eq!(unlink_twin(&fa, name, &fb, &m).unwrap(), Twin::Gone);

    // Replaced by a writer between the link and the removal.
    fs::remove_file(b.join("x.bmp")).unwrap();
    fs::write(a.join("x.bmp"), b"claimed").unwrap();
    link_at(&fa, name, &fb).unwrap();
    let m = fs::metadata(b.join("x.bmp")).unwrap();
    fs::write(t.path().join("newer"), b"newer").unwrap();
    fs::rename(t.path().join("newer"), a.join("x.bmp")).unwrap();
    assert_eq!(unlink_twin(&fa, name, &fb, &m).unwrap(), Twin::Replaced);
    assert_eq!(fs::read(a.join("x.bmp")).unwrap(), b"newer");
    assert_eq!(fs::read(b.join("x.bmp")).unwrap(), b"claimed");
    assert!(!scratch_left());
}

/// `link_at` links a symlink as itself, never its target.
#[test]
fn a_claim_link_never_follows_a_symlink() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(t.path().join("target"), b"secret").unwrap();
    symlink(t.path().join("target"), a.join("s.bmp")).unwrap();
    let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
    link_at(&fa, std::ffi::OsStr::new("s.bmp"), &fb).unwrap();
    assert!(
        fs::symlink_metadata(b.join("s.bmp"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A scratch name left beside a claim by a cut-short removal of its inbox
/// name is removed when it is the claim's second name, and only then.
#[test]
fn a_scratch_name_of_the_claim_itself_is_removed_and_any_other_kept() {
    let t = tempfile::tempdir().unwrap();
    let claim = t.path().join("a.bmp");
    fs::write(&claim, b"claimed").unwrap();
    let scratch = t.path().join(unclaim_name(std::ffi::OsStr::new("a.bmp")));
    fs::hard_link(&claim, &scratch).unwrap();
    let dir = File::open(t.path()).unwrap();
    let m = fs::metadata(&claim).unwrap();
    remove_scratch_twin(&dir, std::ffi::OsStr::new("a.bmp"), &m).unwrap();
    assert!(!scratch.exists(), "the claim's own second name stays");
    assert_eq!(fs::read(&claim).unwrap(), b"claimed");
    // Another file under the scratch name (a newer arrival): kept.
    fs::write(&scratch, b"newer").unwrap();
    remove_scratch_twin(&dir, std::ffi::OsStr::new("a.bmp"), &m).unwrap();
    assert_eq!(fs::read(&scratch).unwrap(), b"newer");
    // None at all: nothing to do.
    fs::remove_file(&scratch).unwrap();
    remove_scratch_twin(&dir, std::ffi::OsStr::new("a.bmp"), &m).unwrap();
}

/// What a test saw made durable, in order: each successful fsync of a
/// file or folder by `sync_dir`, `sync_moved`, a ledger append or a
/// delete, with what the file or folder held right then. Recorded on the
/// test's own thread only ([`recording`]), so tests running in parallel
/// do not see each other's; outside a recording nothing is kept.
#[derive(Debug, Clone)]
pub(crate) struct Synced {
    /// The file or folder fsynced (as `/proc/self/fd` names it).
    pub path: PathBuf,
    /// A folder: the names in it. A file: empty.
    pub names: Vec<std::ffi::OsString>,
    /// A file: its bytes. A folder: empty.
    pub bytes: Vec<u8>,
}

impl Synced {
    /// A folder `dir` fsynced while it held `name`.
    pub fn dir_with(&self, dir: &Path, name: &str) -> bool {
        self.path == dir && self.names.iter().any(|n| n == name)
    }
    /// A folder `dir` fsynced while it did not hold `name`.
    pub fn dir_without(&self, dir: &Path, name: &str) -> bool {
        self.path == dir && !self.names.iter().any(|n| n == name)
    }
}

thread_local! {
    static JOURNAL: std::cell::RefCell<Option<Vec<Synced>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, returning what it made durable on this thread, in order.
pub(crate) fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<Synced>) {
    JOURNAL.with(|j| *j.borrow_mut() = Some(Vec::new()));
    let out = f();
    let journal = JOURNAL.with(|j| j.borrow_mut().take()).unwrap_or_default();
    (out, journal)
}

/// Called right after `file` (a file or a folder) was fsynced.
pub(crate) fn synced(file: &File) {
    use std::os::fd::AsRawFd;
    JOURNAL.with(|j| {
        let mut j = j.borrow_mut();
        let Some(journal) = j.as_mut() else {
            return;
        };
        let path = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .expect("/proc/self/fd names an open file");
        let (mut names, mut bytes) = (Vec::new(), Vec::new());
        if path.is_dir() {
            names = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
        } else {
            bytes = fs::read(&path).unwrap_or_default();
        }
        journal.push(Synced { path, names, bytes });
    });
}

/// The index of the first entry of `journal` for which `what` holds, for
/// a failure message naming `rule`.
pub(crate) fn first(journal: &[Synced], rule: &str, what: impl Fn(&Synced) -> bool) -> usize {
    journal
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("never made durable: {rule}\nfsyncs, in order: {journal:#?}"))
}

/// A rename is durable only once both folders are fsynced: the destination
/// first, then the source. The other order leaves a moment when the file
/// is durably in neither (a writer's fsync of the source folder in
/// between, then a power cut: design §4.7, "Power loss").
#[test]
fn a_move_is_durable_in_its_destination_before_its_source_lets_it_go() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
    for p in [&a, &b, &c] {
        fs::create_dir(p).unwrap();
    }
    fs::write(a.join("x.bmp"), b"moved").unwrap();
    fs::write(b.join("y.bmp"), b"renamed").unwrap();
    let (fa, fb, fc) = (
        File::open(&a).unwrap(),
        File::open(&b).unwrap(),
        File::open(&c).unwrap(),
    );
    // `move_at` (originals to done/ and failed/) and `rename_noreplace`
    // (a claim put back), each on its own.
    let (moved, journal) = recording(|| move_at(&fa, std::ffi::OsStr::new("x.bmp"), &b, 0o640));
    assert_eq!(moved.unwrap(), b.join("x.bmp"));
    let (renamed, journal2) =
        recording(|| rename_noreplace(&fb, std::ffi::OsStr::new("y.bmp"), &fc));
    renamed.unwrap();
    for (journal, (from, to, name)) in [(journal, (&a, &b, "x.bmp")), (journal2, (&b, &c, "y.bmp"))]
    {
        let there = first(&journal, "the destination folder holding the file", |s| {
            s.dir_with(to, name)
        });
        let gone = first(&journal, "the source folder without the file", |s| {
            s.dir_without(from, name)
        });
        assert!(
            there < gone,
            "{name}: the source folder was fsynced before the destination: {journal:#?}"
        );
    }
}
