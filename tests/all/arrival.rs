//! Files reaching the daemon and what it makes of them: every way a file
//! arrives (cp, mv, rename, hard link, new subfolders, before the start,
//! bursts, a slow writer, the poll backend), bad inputs quarantined or
//! ignored, archive names that are taken. The real binary, real inotify,
//! real files; expected archives are the reference program's output
//! bundled in `tests/data`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::support::loopfs;
use crate::support::{
    Daemon, FAST, LONG, data, expected, files_below, tempdir, wait_file, wait_until,
};

#[test]
fn files_arriving_every_way_are_archived_exactly_once() {
    arriving_every_way(&std::env::temp_dir());
}

/// The same on each filesystem of the matrix (`support::loopfs`).
#[test]
fn fsmatrix_files_arriving_every_way_are_archived_exactly_once() {
    loopfs::on_each(256, arriving_every_way);
}

fn arriving_every_way(root: &Path) {
    let d = Daemon::start_in(root, FAST);
    let inbox = d.inbox();
    let outside = tempdir();

    // cp
    fs::copy(data("pal8.bmp"), inbox.join("copied.bmp")).unwrap();
    // mv from outside (same filesystem: a rename into the inbox)
    fs::copy(data("rgb24.bmp"), d.path("moved.bmp")).unwrap();
    fs::rename(d.path("moved.bmp"), inbox.join("moved.bmp")).unwrap();
    // mv from another filesystem-like place (copy + rename of a hidden temp)
    fs::copy(data("pal1.bmp"), outside.path().join("x.bmp")).unwrap();
    fs::copy(outside.path().join("x.bmp"), inbox.join(".incoming.tmp")).unwrap();
    fs::rename(inbox.join(".incoming.tmp"), inbox.join("renamed.bmp")).unwrap();
    // hard link
    fs::copy(data("rgb16.bmp"), d.path("linked-src.bmp")).unwrap();
    fs::hard_link(d.path("linked-src.bmp"), inbox.join("linked.bmp")).unwrap();
    // a subfolder created after start, with a file in it at once
    fs::create_dir_all(inbox.join("new/deeper")).unwrap();
    fs::copy(data("pal4rle.bmp"), inbox.join("new/deeper/sub.bmp")).unwrap();

    for (rel, exp) in [
        ("archive/copied.rle", "pal8.dither.rle"),
        ("archive/moved.rle", "rgb24.dither.rle"),
        ("archive/renamed.rle", "pal1.dither.rle"),
        ("archive/linked.rle", "rgb16.dither.rle"),
        ("archive/new/deeper/sub.rle", "pal4rle.dither.rle"),
    ] {
        assert!(wait_file(&d, rel), "{rel} never appeared");
        assert_eq!(fs::read(d.path(rel)).unwrap(), expected(exp), "{rel}");
    }
    for rel in [
        "done/copied.bmp",
        "done/moved.bmp",
        "done/renamed.bmp",
        "done/linked.bmp",
        "done/new/deeper/sub.bmp",
    ] {
        assert!(wait_file(&d, rel), "{rel} never appeared");
    }
    assert_eq!(
        fs::read(d.path("done/copied.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
    // Exactly once: five archives, nothing numbered, inbox empty of work.
    assert_eq!(
        files_below(&d.path("archive")).len(),
        5,
        "{:?}",
        files_below(&d.path("archive"))
    );
    assert!(files_below(&inbox).is_empty(), "{:?}", files_below(&inbox));
}

#[test]
fn a_slow_writer_is_never_processed_early() {
    let d = Daemon::start(FAST);
    let bytes = fs::read(data("rgb24.bmp")).unwrap();
    let target = d.inbox().join("slow.bmp");
    let mut f = fs::File::create(&target).unwrap();
    // Header first, then the pixels in pieces with pauses far longer than
    // settle_ms (this simulates a slow writer; the test itself polls).
    f.write_all(&bytes[..30]).unwrap();
    for piece in bytes[30..].chunks(6000) {
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !d.path("archive/slow.rle").exists(),
            "archived while still being written"
        );
        assert!(
            d.path("inbox/slow.bmp").exists(),
            "original taken while still being written"
        );
        f.write_all(piece).unwrap();
        f.flush().unwrap();
    }
    drop(f);
    assert!(wait_file(&d, "archive/slow.rle"));
    assert_eq!(
        fs::read(d.path("archive/slow.rle")).unwrap(),
        expected("rgb24.dither.rle")
    );
    assert!(!d.log().contains("failed"));
}

#[test]
fn files_present_before_start_are_archived() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("inbox/old")).unwrap();
    for i in 0..20 {
        fs::copy(
            data("pal1.bmp"),
            dir.path().join(format!("inbox/old/{i}.bmp")),
        )
        .unwrap();
    }
    let mut d = Daemon::start(FAST);
    // Move the prepared backlog in place of the fresh inbox and restart.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some_and(|s| s.success()));
    fs::remove_dir_all(d.inbox()).unwrap();
    fs::rename(dir.path().join("inbox"), d.inbox()).unwrap();
    d.spawn();
    // done/ is filled last, after each archive is published.
    assert!(wait_until(LONG, || files_below(&d.path("done")).len() == 20));
    for i in 0..20 {
        assert_eq!(
            fs::read(d.path(&format!("archive/old/{i}.rle"))).unwrap(),
            expected("pal1.dither.rle")
        );
    }
}

fn burst(config: &str, n: usize) {
    let d = Daemon::start(config);
    let staging = d.path("staging");
    fs::create_dir(&staging).unwrap();
    let names = ["pal1", "pal8", "rgb16"];
    for i in 0..n {
        let name = names[i % names.len()];
        fs::copy(
            data(&format!("{name}.bmp")),
            staging.join(format!("{i}-{name}.bmp")),
        )
        .unwrap();
    }
    // Rename them in as fast as possible.
    for i in 0..n {
        let name = names[i % names.len()];
        let file = format!("{i}-{name}.bmp");
        fs::rename(staging.join(&file), d.inbox().join(&file)).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(120), || files_below(&d.path("done"))
            .len()
            == n),
        "only {} of {n} done",
        files_below(&d.path("done")).len()
    );
    let archived = files_below(&d.path("archive"));
    assert_eq!(archived.len(), n);
    for i in 0..n {
        let name = names[i % names.len()];
        let got = fs::read(d.path(&format!("archive/{i}-{name}.rle"))).unwrap();
        assert!(got == expected(&format!("{name}.dither.rle")), "{i}-{name}");
    }
}

#[test]
fn a_burst_of_500_files_is_archived_exactly_once() {
    burst(FAST, 500);
}

#[test]
fn a_queue_of_one_still_loses_nothing_in_a_burst_of_300() {
    burst("[workers]\nqueue = 1\n[watch]\nsettle_ms = 50\n", 300);
}

#[test]
fn bad_inputs_are_quarantined_or_ignored_and_good_files_still_flow() {
    let d = Daemon::start(FAST);
    let inbox = d.inbox();
    let mut bad = vec!["fake.bmp", "empty.bmp", "short.bmp", "link.bmp"];
    fs::write(inbox.join("fake.bmp"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    fs::write(inbox.join("empty.bmp"), b"").unwrap();
    // Truncated: shorter than its header says, and it stays so.
    let rgb = fs::read(data("rgb24.bmp")).unwrap();
    fs::write(inbox.join("short.bmp"), &rgb[..4000]).unwrap();
    fs::create_dir(inbox.join("folder.bmp")).unwrap();
    let outside = tempdir();
    fs::copy(data("pal1.bmp"), outside.path().join("secret.bmp")).unwrap();
    symlink(outside.path().join("secret.bmp"), inbox.join("link.bmp")).unwrap();
    for name in [
        "badbitcount.bmp",
        "badheadersize.bmp",
        "badpalettesize.bmp",
        "badwidth.bmp",
        "reallybig.bmp",
    ] {
        fs::copy(data(&format!("bad/{name}")), inbox.join(name)).unwrap();
        bad.push(name);
    }
    fs::write(inbox.join("notes.txt"), "ignored").unwrap();
    fs::copy(data("pal8.bmp"), inbox.join("good.bmp")).unwrap();

    assert!(wait_file(&d, "archive/good.rle"));
    for name in &bad {
        assert!(
            wait_file(&d, &format!("failed/{name}")),
            "{name} not quarantined"
        );
        let note = d.path(&format!("failed/{name}.error.txt"));
        assert!(wait_until(LONG, || note.exists()), "{name}: no error note");
        let text = fs::read_to_string(&note).unwrap();
        assert!(
            text.contains("reason: ") && text.contains("time: ") && text.contains("attempts: 1"),
            "{text}"
        );
    }
    let reason =
        |name: &str| fs::read_to_string(d.path(&format!("failed/{name}.error.txt"))).unwrap();
    // Named .bmp, PNG by content: read (and refused) as a PNG.
    assert!(
        reason("fake.bmp").contains(" PNG"),
        "{}",
        reason("fake.bmp")
    );
    assert!(reason("empty.bmp").contains("an empty file"));
    assert!(reason("short.bmp").contains("truncated BMP"));
    assert!(reason("link.bmp").contains("symbolic links are not followed"));
    // The symlink itself was moved, its target untouched and not archived.
    assert!(
        fs::symlink_metadata(d.path("failed/link.bmp"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(outside.path().join("secret.bmp").exists());
    // Ignored: not touched.
    assert!(inbox.join("notes.txt").exists());
    assert!(inbox.join("folder.bmp").is_dir());
    // Still working after all that.
    fs::copy(data("pal1.bmp"), inbox.join("after.bmp")).unwrap();
    assert!(wait_file(&d, "archive/after.rle"));
    assert!(d.log().contains("short.bmp: truncated BMP"));
}

#[test]
fn an_existing_archive_is_never_overwritten() {
    let d = Daemon::start(FAST);
    fs::create_dir_all(d.path("archive")).unwrap();
    fs::write(d.path("archive/page.rle"), b"someone else's archive").unwrap();
    // The source is newer than that archive, so it is not "already archived".
    std::thread::sleep(Duration::from_millis(20)); // distinct mtimes, not synchronisation
    fs::copy(data("pal8.bmp"), d.inbox().join("page.bmp")).unwrap();
    assert!(wait_file(&d, "archive/page-1.rle"));
    assert_eq!(
        fs::read(d.path("archive/page.rle")).unwrap(),
        b"someone else's archive"
    );
    assert_eq!(
        fs::read(d.path("archive/page-1.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
}

#[test]
fn the_poll_backend_finds_files_too() {
    let d = Daemon::start("[watch]\nbackend = \"poll\"\nsettle_ms = 50\n");
    assert!(d.log().contains("(polling"));
    fs::create_dir(d.inbox().join("sub")).unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("sub/p.bmp")).unwrap();
    assert!(wait_file(&d, "archive/sub/p.rle"));
    assert_eq!(
        fs::read(d.path("archive/sub/p.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
}

/// A different image under a name already archived, carrying an older
/// mtime (`cp -p`, `mv`, `rsync`, `tar` keep mtimes): it is archived, not
/// taken for the one archived before.
#[test]
fn a_different_image_under_a_used_name_with_an_older_mtime_is_archived() {
    let d = Daemon::start(FAST);
    let staged = d.path("scan.bmp");
    fs::copy(data("rgb24.bmp"), &staged).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(86_400);
    fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::copy(data("pal8.bmp"), d.inbox().join("scan.bmp")).unwrap();
    assert!(wait_file(&d, "done/scan.bmp"), "{}", d.log());
    fs::rename(&staged, d.inbox().join("scan.bmp")).unwrap();
    assert!(wait_file(&d, "archive/scan-1.rle"), "{}", d.log());
    assert_eq!(
        fs::read(d.path("archive/scan.rle")).unwrap(),
        expected("pal8.dither.rle")
    );
    assert_eq!(
        fs::read(d.path("archive/scan-1.rle")).unwrap(),
        expected("rgb24.dither.rle")
    );
    // And the very same image again is recognised by its content.
    fs::copy(data("pal8.bmp"), d.inbox().join("scan.bmp")).unwrap();
    assert!(d.wait_log("already archived as", 1, LONG), "{}", d.log());
    assert_eq!(files_below(&d.path("archive")).len(), 2);
}

#[test]
fn a_format_left_out_of_compress_formats_and_every_jpeg_are_quarantined_saying_why() {
    let d = Daemon::start(&format!("{FAST}[compress]\nformats = [\"bmp\"]\n"));
    let inbox = d.inbox();
    // Judged by content: a PNG named .bmp is still a PNG.
    fs::write(inbox.join("page.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    fs::write(inbox.join("renamed.bmp"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    fs::write(inbox.join("photo.jpg"), b"\xff\xd8\xff\xe0\0\x10JFIF\0").unwrap();
    fs::copy(data("pal8.bmp"), inbox.join("good.bmp")).unwrap();
    assert!(wait_file(&d, "archive/good.rle"));
    for name in ["page.png", "renamed.bmp", "photo.jpg"] {
        let note = d.path(&format!("failed/{name}.error.txt"));
        assert!(wait_until(LONG, || note.exists()), "{name}: no error note");
        let text = fs::read_to_string(&note).unwrap();
        let want = if name == "photo.jpg" {
            "JPEG is not archived"
        } else {
            "PNG files are not archived here (compress.formats leaves PNG out)"
        };
        assert!(text.contains(want), "{name}: {text}");
        assert!(
            !d.path(&format!("archive/{}", name.replace(".png", ".rle")))
                .exists()
        );
    }
}
