//! What becomes of an original once it is archived (`[originals] action`):
//! moved to done/, kept in the inbox and recognised as archived across
//! rescans and restarts, or deleted only when a verified archive holds
//! it without loss.

use std::fs;
use std::time::Duration;

use crate::support::{Daemon, FAST, LONG, data, expected, files_below, wait_file, wait_until};

#[test]
fn delete_removes_only_lossless_originals() {
    let d = Daemon::start(&format!("[originals]\naction = \"delete\"\n{FAST}"));
    fs::copy(data("pal1.bmp"), d.inbox().join("bw.bmp")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("grey.bmp")).unwrap();
    assert!(wait_file(&d, "archive/bw.rle"));
    assert!(wait_file(&d, "archive/grey.rle"));
    assert!(
        wait_file(&d, "done/grey.bmp"),
        "the lossy original must be kept in done/"
    );
    assert!(wait_until(LONG, || !d.inbox().join("bw.bmp").exists()));
    assert!(
        !d.path("done/bw.bmp").exists(),
        "the lossless original is deleted"
    );
    assert!(d.wait_log("grey.bmp: conversion was lossy", 1, LONG));
}

/// Lossless is judged on each format's source pixels (design §2.1): a
/// 16-bit grey 255 converts to white but is near black, and a pixel of
/// alpha 254 is not opaque, so those originals are not deleted; a 16-bit
/// 65535 and an 8-bit 255 are white.
#[test]
fn delete_judges_lossless_on_the_source_pixels_of_each_format() {
    let d = Daemon::start(&format!("[originals]\naction = \"delete\"\n{FAST}"));
    let lossy = ["grey16-255.tif", "grey16-255.png", "rgba-translucent.png"];
    let lossless = ["grey16-white.tif", "grey8-white.png"];
    for name in lossy.iter().chain(&lossless) {
        fs::copy(
            data(&format!("formats/lossless/{name}")),
            d.inbox().join(name),
        )
        .unwrap();
    }
    for name in lossy {
        assert!(
            wait_file(&d, &format!("done/{name}")),
            "{name}: a lossy original must be kept in done/: {}",
            d.log()
        );
    }
    for name in lossless {
        let stem = name.rsplit_once('.').unwrap().0;
        assert!(wait_file(&d, &format!("archive/{stem}.rle")), "{name}");
        assert!(
            wait_until(LONG, || !d.inbox().join(name).exists()),
            "{name}"
        );
        assert!(
            !d.path(&format!("done/{name}")).exists(),
            "{name}: a lossless original is deleted: {}",
            d.log()
        );
    }
}

/// Deleting needs a *verified* lossless archive: with `verify = false` the
/// lossless original is moved to done/ instead.
#[test]
fn delete_without_verification_keeps_originals() {
    let d = Daemon::start(&format!(
        "[originals]\naction = \"delete\"\n[compress]\nverify = false\n{FAST}"
    ));
    fs::copy(data("pal1.bmp"), d.inbox().join("bw.bmp")).unwrap();
    assert!(wait_file(&d, "done/bw.bmp"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("done/bw.bmp")).unwrap(),
        expected("pal1.bmp")
    );
    assert_eq!(
        fs::read(d.path("archive/bw.rle")).unwrap(),
        expected("pal1.dither.rle")
    );
}

#[test]
fn with_delete_an_already_archived_original_is_moved_not_deleted() {
    // Whether that archive was lossless is not known, so the original must
    // survive (as after a crash between publishing and deleting).
    let mut d = Daemon::start(&format!("[originals]\naction = \"delete\"\n{FAST}"));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    fs::copy(data("pal8.bmp"), d.inbox().join("lossy.bmp")).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // distinct mtimes, not synchronisation
    fs::write(d.path("archive/lossy.rle"), expected("pal8.dither.rle")).unwrap();
    d.spawn();
    assert!(wait_file(&d, "done/lossy.bmp"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("done/lossy.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
}

/// With `keep` the original stays in the inbox: rescans and restarts find
/// it again and must recognise it as archived, by content (its archive may
/// even carry the very same coarse timestamp as the source).
#[test]
fn kept_originals_are_archived_once_across_rescans_and_restarts() {
    let mut d =
        Daemon::start("[originals]\naction = \"keep\"\n[watch]\nsettle_ms = 0\nrescan_secs = 1\n");
    for name in ["a", "b", "c", "d"] {
        // Plain cp, as people do (write(2) in a loop, then close).
        let ok = std::process::Command::new("cp")
            .arg(data("pal8.bmp"))
            .arg(d.inbox().join(format!("{name}.bmp")))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    assert!(d.wait_log("original kept", 4, LONG), "{}", d.log());
    // Each restart forgets what it kept and finds all four archived.
    for round in 1..=2 {
        d.signal(libc::SIGTERM);
        assert!(d.wait_exit(LONG).is_some());
        d.spawn();
        assert!(
            d.wait_log("already archived", 4 * round, LONG),
            "{}",
            d.log()
        );
    }
    assert_eq!(files_below(&d.path("archive")).len(), 4, "{}", d.log());
    assert_eq!(d.log().matches("archived /").count(), 4, "{}", d.log());
}
