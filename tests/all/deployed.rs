//! Conditions of the shipped service that a test run by root in a temp
//! folder would otherwise never meet: a seccomp filter that refuses
//! `openat2` (systemd's `RestrictSUIDSGID=` does), a daemon that is not
//! root, and writers whose folders it cannot write to (umask 022). Tests
//! that need root to set this up say "skipped" when run without it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::mount::Mount;
use crate::support::{
    Confine, Daemon, FAST, LONG, NOBODY, data, files_below, is_root, restart_with, wait_until,
};

fn archives_without_openat2(errno: i32) {
    let d = Daemon::start_confined(
        FAST,
        &[],
        Confine {
            deny_openat2: Some(errno),
            ..Confine::default()
        },
    );
    fs::create_dir(d.inbox().join("sub")).unwrap();
    fs::copy(data("pal1.bmp"), d.inbox().join("top.bmp")).unwrap();
    fs::copy(data("rgb24.bmp"), d.inbox().join("sub/deep.bmp")).unwrap();
    assert!(
        wait_until(LONG, || d.path("done/top.bmp").exists()
            && d.path("done/sub/deep.bmp").exists()),
        "{}",
        d.log()
    );
    assert_eq!(
        fs::read(d.path("archive/top.rle")).unwrap(),
        fs::read(data("pal1.dither.rle")).unwrap()
    );
    assert_eq!(
        fs::read(d.path("archive/sub/deep.rle")).unwrap(),
        fs::read(data("rgb24.dither.rle")).unwrap()
    );
    // The filter really was in force, and nothing was retried.
    assert!(d.log().contains("openat2 is not available"), "{}", d.log());
    assert!(!d.log().contains("retry"), "{}", d.log());
}

#[test]
fn openat2_refused_with_enosys_by_a_seccomp_filter_still_archives() {
    archives_without_openat2(libc::ENOSYS);
}

#[test]
fn openat2_refused_with_eperm_by_a_seccomp_filter_still_archives() {
    archives_without_openat2(libc::EPERM);
}

/// A writer's subfolder made with umask 022 (mode 0755, not the daemon's):
/// the daemon, running as `nobody`, archives the file once but cannot take
/// the original out; it must say how to fix it and never pile up copies.
/// Once the folder is made writable, the original is filed, still with one
/// archive.
fn unremovable_original_is_never_duplicated(other_filesystem: bool) {
    if !is_root() {
        crate::support::skip_without_root("running the daemon as another user needs root");
        return;
    }
    let confine = Confine {
        user: Some(NOBODY),
        ..Confine::default()
    };
    let mut d = Daemon::start_confined(FAST, &[], confine);
    let mut mount = None;
    if other_filesystem {
        restart_with(&mut d, |d| {
            mount = Mount::tmpfs(&d.path("done"), "8m");
            std::os::unix::fs::chown(d.path("done"), Some(NOBODY.0), Some(NOBODY.1)).unwrap();
        });
        let Some(_) = mount else {
            panic!("cannot mount a tmpfs although root");
        };
        assert!(d.log().contains("on another filesystem"), "{}", d.log());
    }
    let sub = d.inbox().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(data("pal8.bmp"), sub.join("pal8.bmp")).unwrap();
    // A modification time in the future (clock skew, `touch`, an archive
    // tool): "is the archive newer than the source?" cannot recognise the
    // retries as the same file; they must still archive it only once.
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(sub.join("pal8.bmp"))
        .unwrap()
        .set_modified(later)
        .unwrap();

    // Let it fail three times (1 s, 2 s backoff in between).
    assert!(d.wait_log("retry 3 in", 1, LONG), "{}", d.log());
    let log = d.log();
    assert!(log.contains("writers need umask 002"), "{log}");
    assert!(
        log.contains("Permission denied") || log.contains("Operation not permitted"),
        "{log}"
    );
    assert!(sub.join("pal8.bmp").exists());
    assert_eq!(
        files_below(&d.path("done")),
        Vec::<std::path::PathBuf>::new()
    );
    // It cannot be claimed (taken out of its folder), so it is not even
    // archived yet: nothing to duplicate.
    assert_eq!(
        files_below(&d.path("archive")),
        Vec::<std::path::PathBuf>::new()
    );

    // The fix the message names: the folder writable by the daemon.
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(
        wait_until(LONG, || d.path("done/sub/pal8.bmp").exists()),
        "{}",
        d.log()
    );
    assert!(wait_until(LONG, || !sub.join("pal8.bmp").exists()));
    assert_eq!(
        files_below(&d.path("done")),
        vec![std::path::PathBuf::from("sub/pal8.bmp")]
    );
    assert_eq!(
        fs::read(d.path("done/sub/pal8.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
    assert_eq!(
        files_below(&d.path("archive")),
        vec![std::path::PathBuf::from("sub/pal8.rle")]
    );
    assert_eq!(
        fs::read(d.path("archive/sub/pal8.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
}

#[test]
fn an_original_in_a_folder_made_with_umask_022_is_never_duplicated() {
    unremovable_original_is_never_duplicated(false);
}

#[test]
fn an_original_in_a_folder_made_with_umask_022_is_never_copied_across_filesystems() {
    unremovable_original_is_never_duplicated(true);
}

/// The daemon as an unprivileged user, as the unit runs it: with
/// `fs.protected_hardlinks` (the kernel's default) a file it may not write
/// (a writer's 0644 file) cannot be hard-linked into the claim folder; that
/// file is claimed by a rename, said once, and a file it may write right
/// after is still claimed by a link (the refusal is the file's, not the
/// filesystem's).
#[test]
fn a_file_the_daemon_may_not_link_is_claimed_by_a_rename_and_the_next_by_a_link() {
    if !is_root() {
        crate::support::skip_without_root("running the daemon as another user needs root");
        return;
    }
    if fs::read_to_string("/proc/sys/fs/protected_hardlinks").is_ok_and(|v| v.trim() != "1") {
        println!("skipped: fs.protected_hardlinks is off here, every file can be linked");
        return;
    }
    let confine = Confine {
        user: Some(NOBODY),
        ..Confine::default()
    };
    let d = Daemon::start_confined(&format!("{FAST}[log]\nlevel = \"debug\"\n"), &[], confine);
    // Written by root: 0644 is not the daemon's to write, 0666 is.
    for (name, vector, mode) in [
        ("ro.bmp", "pal8.bmp", 0o644),
        ("rw.bmp", "rgb24.bmp", 0o666),
    ] {
        let path = d.inbox().join(name);
        fs::copy(data(vector), &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let done = d.path(&format!("done/{name}"));
        assert!(wait_until(LONG, || done.exists()), "{}", d.log());
        assert_eq!(fs::read(&done).unwrap(), fs::read(data(vector)).unwrap());
    }
    assert_eq!(
        fs::read(d.path("archive/ro.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
    assert_eq!(
        fs::read(d.path("archive/rw.rle")).unwrap(),
        fs::read(data("rgb24.dither.rle")).unwrap()
    );
    let log = d.log();
    assert_eq!(
        log.matches("the kernel refuses a hard link").count(),
        1,
        "{log}"
    );
    assert!(log.contains("ro.bmp: hard link refused"), "{log}");
    assert!(!log.contains("rw.bmp: hard link refused"), "{log}");
    assert!(!log.contains("hard links are not available"), "{log}");
    assert!(!log.contains("retry"), "{log}");
}
