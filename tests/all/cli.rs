//! The one-shot commands through the real binary: outputs, naming, no
//! clobbering, exit statuses and error lines.

use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

use crate::support::{data, run_in, stderr, tempdir};

fn copy_vector(dir: &std::path::Path, name: &str, to: &str) {
    fs::copy(data(name), dir.join(to)).unwrap();
}

#[test]
fn compress_writes_beside_the_input_and_matches_the_reference() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "page.bmp");
    let out = run_in(dir.path(), &["compress", "page.bmp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("page.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );

    let out = run_in(
        dir.path(),
        &["compress", "--threshold", "-o", "t.rle", "page.bmp"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("t.rle")).unwrap(),
        fs::read(data("pal8.threshold.rle")).unwrap()
    );
    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn compress_never_overwrites_without_force() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "page.bmp");
    fs::write(dir.path().join("page.rle"), b"precious").unwrap();
    let out = run_in(dir.path(), &["compress", "page.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("page.rle: already exists (use --force to overwrite)"),
        "{err}"
    );
    assert_eq!(fs::read(dir.path().join("page.rle")).unwrap(), b"precious");

    let out = run_in(dir.path(), &["compress", "--force", "page.bmp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("page.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
}

#[test]
fn compress_folders_in_parallel_mirrors_subfolders() {
    let dir = tempdir();
    let src = dir.path().join("scans");
    fs::create_dir_all(src.join("a/b")).unwrap();
    for (i, name) in ["pal1", "pal4rle", "pal8", "rgb24", "rgb16"]
        .iter()
        .enumerate()
    {
        let sub = ["", "a", "a/b"][i % 3];
        copy_vector(
            &src.join(sub),
            &format!("{name}.bmp"),
            &format!("{name}.BMP"),
        );
    }
    fs::write(src.join("notes.txt"), "not an image").unwrap();
    let out = run_in(dir.path(), &["compress", "-j", "2", "-o", "out", "scans"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("compressed 5 files"),
        "{}",
        stderr(&out)
    );
    for (i, name) in ["pal1", "pal4rle", "pal8", "rgb24", "rgb16"]
        .iter()
        .enumerate()
    {
        let sub = ["", "a", "a/b"][i % 3];
        let got = fs::read(dir.path().join("out").join(sub).join(format!("{name}.rle"))).unwrap();
        assert_eq!(
            got,
            fs::read(data(&format!("{name}.dither.rle"))).unwrap(),
            "{name}"
        );
    }
    assert!(!dir.path().join("out/notes.rle").exists());
}

#[test]
fn a_bad_file_among_good_ones_fails_by_name_and_the_rest_are_done() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal1.bmp", "good.bmp");
    fs::write(dir.path().join("fake.bmp"), b"\x89PNG\r\n\x1a\nrest").unwrap();
    let out = run_in(dir.path(), &["compress", "good.bmp", "fake.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // Its name says BMP, its first bytes PNG: it is read as a PNG (the
    // content decides), and this one is cut short.
    assert!(err.contains("fake.bmp: ") && err.contains(" PNG"), "{err}");
    assert!(dir.path().join("good.rle").exists());
    assert!(!dir.path().join("fake.rle").exists());
}

#[test]
fn errors_name_the_file_and_the_reason_in_one_line() {
    let dir = tempdir();
    let out = run_in(dir.path(), &["compress", "missing.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: missing.bmp: No such file or directory (os error 2)"
    );

    fs::write(dir.path().join("empty.bmp"), b"").unwrap();
    let out = run_in(dir.path(), &["compress", "empty.bmp"]);
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: empty.bmp: an empty file, not an image"
    );

    let mut short = fs::read(data("rgb24.bmp")).unwrap();
    short.truncate(5000);
    fs::write(dir.path().join("short.bmp"), short).unwrap();
    let out = run_in(dir.path(), &["compress", "short.bmp"]);
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: short.bmp: truncated BMP: the pixel data needs 24630 bytes, the file has 5000"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempdir();
    assert_eq!(run_in(dir.path(), &["compress"]).status.code(), Some(2));
    assert_eq!(run_in(dir.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run_in(dir.path(), &["verify", "x.rle", "--threshold"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn decompress_then_compress_gives_the_same_rle() {
    let dir = tempdir();
    fs::copy(data("rgb24.dither.rle"), dir.path().join("img.rle")).unwrap();
    let out = run_in(dir.path(), &["decompress", "img.rle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A 1-bit black/white BMP: every rule gives the same bits back.
    for args in [
        &["compress", "-o", "again.rle", "img.bmp"][..],
        &["compress", "--threshold", "-o", "again2.rle", "img.bmp"],
    ] {
        let out = run_in(dir.path(), args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let original = fs::read(dir.path().join("img.rle")).unwrap();
    assert_eq!(fs::read(dir.path().join("again.rle")).unwrap(), original);
    assert_eq!(fs::read(dir.path().join("again2.rle")).unwrap(), original);
    // It does not overwrite either.
    let out = run_in(dir.path(), &["decompress", "img.rle"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("img.bmp: already exists"));
}

#[test]
fn decompress_reports_corruption_with_the_byte_offset() {
    let dir = tempdir();
    let mut rle = fs::read(data("pal1.dither.rle")).unwrap();
    rle[10] = 0x80; // count 0
    fs::write(dir.path().join("bad.rle"), &rle).unwrap();
    let out = run_in(dir.path(), &["decompress", "bad.rle"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: bad.rle: corrupt run at byte 10: count 0"
    );
    assert!(!dir.path().join("bad.bmp").exists());
    let out = run_in(dir.path(), &["verify", "bad.rle"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: bad.rle: corrupt run at byte 10: count 0"
    );
}

#[test]
fn verify_checks_structure_and_equality_with_the_source() {
    let dir = tempdir();
    copy_vector(dir.path(), "rgb24.bmp", "img.bmp");
    copy_vector(dir.path(), "rgb24.dither.rle", "d.rle");
    copy_vector(dir.path(), "rgb24.threshold.rle", "t.rle");
    copy_vector(dir.path(), "pal8.dither.rle", "other.rle");

    let out = run_in(dir.path(), &["verify", "d.rle"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "d.rle: ok, 127x64"
    );

    let out = run_in(dir.path(), &["verify", "d.rle", "--source", "img.bmp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(dither)"));
    let out = run_in(dir.path(), &["verify", "t.rle", "--source", "img.bmp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(threshold)"));
    let out = run_in(
        dir.path(),
        &["verify", "d.rle", "--threshold", "--source", "img.bmp"],
    );
    assert_eq!(out.status.code(), Some(1));

    let out = run_in(dir.path(), &["verify", "other.rle", "--source", "img.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("other.rle: does not equal img.bmp: content mismatch"),
        "{}",
        stderr(&out)
    );
}

/// `DIR/scans/` holding `real.bmp`, a symlink `link` to the folder
/// `DIR/outside/` and a symlink `file.bmp` to `outside/secret.bmp`.
fn scans_with_symlinks(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let outside = dir.join("outside");
    fs::create_dir(&outside).unwrap();
    copy_vector(&outside, "pal1.bmp", "secret.bmp");
    let scans = dir.join("scans");
    fs::create_dir(&scans).unwrap();
    symlink(&outside, scans.join("link")).unwrap();
    symlink(outside.join("secret.bmp"), scans.join("file.bmp")).unwrap();
    copy_vector(&scans, "pal1.bmp", "real.bmp");
    (outside, scans)
}

#[test]
fn folder_walk_does_not_follow_symlinks() {
    let dir = tempdir();
    let (outside, scans) = scans_with_symlinks(dir.path());
    let out = run_in(dir.path(), &["compress", "scans"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(scans.join("real.rle").exists());
    assert!(!outside.join("secret.rle").exists());
    assert!(!scans.join("file.rle").exists());
}

/// The Debian package ships what `generate-assets` writes: man pages for the
/// command and each visible subcommand, and completions that know the
/// subcommands.
#[test]
fn generate_assets_writes_man_pages_and_completions_from_the_clap_definitions() {
    let dir = tempdir();
    let out = run_in(dir.path(), &["generate-assets", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = dir.path().join("out");
    let man = fs::read_to_string(o.join("rlewatch.1")).unwrap();
    assert!(man.contains(".TH rlewatch 1"), "{man}");
    for sub in [
        "run",
        "check-config",
        "compress",
        "decompress",
        "verify",
        "reload",
    ] {
        // roff writes every hyphen as `\-`.
        let name = format!("rlewatch-{sub}(1)").replace('-', "\\-");
        assert!(man.contains(&name), "{name} in {man}");
        let page = fs::read_to_string(o.join(format!("rlewatch-{sub}.1"))).unwrap();
        assert!(
            page.contains(&format!(
                ".TH rlewatch-{sub} 1  \"{sub} {}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{sub}: {page}"
        );
    }
    // Hidden: not a documented command (clap_complete still completes it).
    assert!(!man.contains("generate"), "{man}");
    assert!(!o.join("rlewatch-generate-assets.1").exists());
    for (file, needle) in [
        ("rlewatch.bash", "check-config"),
        ("_rlewatch", "check-config"),
        ("rlewatch.fish", "check-config"),
    ] {
        let text = fs::read_to_string(o.join(file)).unwrap();
        assert!(text.contains(needle) && text.contains("reload"), "{file}");
    }
}

/// Each cause once: `missing.toml: No such file or directory (os error 2)`,
/// not the OS error twice.
#[test]
fn errors_name_the_file_and_the_os_error_once() {
    let dir = tempdir();
    fs::create_dir(dir.path().join("folder")).unwrap();
    fs::write(dir.path().join("latin1.toml"), b"[log]\nlevel = \"\xe9\"\n").unwrap();
    for (args, expected) in [
        (
            vec!["check-config", "missing.toml"],
            "missing.toml: No such file or directory (os error 2)",
        ),
        (
            vec!["check-config", "folder"],
            "folder: Is a directory (os error 21)",
        ),
        (vec!["check-config", "latin1.toml"], "latin1.toml: "),
        (
            vec!["compress", "nothere.bmp"],
            "nothere.bmp: No such file or directory (os error 2)",
        ),
    ] {
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(err.matches("(os error").count() <= 1, "{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn compress_into_an_existing_folder_puts_the_file_there() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "x.bmp");
    fs::create_dir(dir.path().join("out")).unwrap();
    let out = run_in(dir.path(), &["compress", "x.bmp", "-o", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("out/x.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
    // Again: the advice to use --force, and --force then works.
    let out = run_in(dir.path(), &["compress", "x.bmp", "-o", "out"]);
    assert!(stderr(&out).contains("out/x.rle: already exists (use --force"));
    let out = run_in(dir.path(), &["compress", "--force", "x.bmp", "-o", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn compress_of_a_non_bmp_says_so_before_anything_about_its_output() {
    let dir = tempdir();
    fs::copy(data("pal8.dither.rle"), dir.path().join("out.rle")).unwrap();
    let out = run_in(dir.path(), &["compress", "out.rle"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "out.rle: not an image file rlewatch reads (no BMP, TIFF, PNG, PNM or GIF signature)"
        ),
        "{err}"
    );
    assert_eq!(
        fs::read(dir.path().join("out.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
}

#[test]
fn an_output_in_a_missing_folder_is_refused_not_created() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "x.bmp");
    let out = run_in(dir.path(), &["compress", "x.bmp", "-o", "nowhere/y.rle"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nowhere: the output folder does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("nowhere").exists());
    let out = run_in(dir.path(), &["decompress", "x.bmp", "-o", "nowhere/y.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn decompress_of_a_bmp_says_it_is_a_bmp() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "some.bmp");
    for args in [
        vec!["decompress", "some.bmp"],
        vec!["decompress", "some.bmp", "-o", "other.bmp"],
        vec!["verify", "some.bmp"],
    ] {
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("some.bmp: ") && err.contains("this is a BMP file, not an .rle"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        fs::read(dir.path().join("some.bmp")).unwrap(),
        fs::read(data("pal8.bmp")).unwrap()
    );
    assert!(!dir.path().join("other.bmp").exists());
}

#[test]
fn compress_refuses_two_inputs_for_one_output_and_makes_a_missing_output_folder() {
    let dir = tempdir();
    let p = dir.path();
    fs::create_dir(p.join("d")).unwrap();
    copy_vector(&p.join("d"), "pal8.bmp", "y.bmp");
    copy_vector(&p.join("d"), "pal1.bmp", "y.BMP");
    let out = run_in(p, &["compress", "-f", "-o", "o", "d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("would both be written to o/y.rle"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("o/y.rle").exists());
    // Several files and a folder that does not exist yet: it is made.
    copy_vector(p, "pal8.bmp", "a.bmp");
    copy_vector(p, "pal1.bmp", "b.bmp");
    let out = run_in(p, &["compress", "-o", "new", "a.bmp", "b.bmp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(p.join("new/a.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
    assert_eq!(
        fs::read(p.join("new/b.rle")).unwrap(),
        fs::read(data("pal1.dither.rle")).unwrap()
    );
}

#[test]
fn compress_of_a_fifo_says_so_instead_of_hanging() {
    let dir = tempdir();
    let fifo = dir.path().join("f.bmp");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let out = run_in(dir.path(), &["compress", "f.bmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("f.bmp: not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// The binary, for the tests that wire its standard streams themselves.
fn rlewatch_in(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rlewatch"));
    cmd.current_dir(dir);
    cmd
}

/// Several inputs go into a folder: `-o new.rle` is refused instead of
/// becoming a folder of that name, `-o new.rle/` makes one, and an existing
/// file as `-o` is one error naming it, before anything is written.
#[test]
fn compress_of_several_inputs_to_a_file_name_is_refused_once_and_writes_nothing() {
    let dir = tempdir();
    let p = dir.path();
    copy_vector(p, "pal8.bmp", "a.bmp");
    copy_vector(p, "pal1.bmp", "b.bmp");
    fs::create_dir(p.join("scans")).unwrap();
    copy_vector(&p.join("scans"), "pal8.bmp", "c.bmp");

    let out = run_in(p, &["compress", "a.bmp", "b.bmp", "-o", "new.rle"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rlewatch: new.rle: ") && err.contains("write new.rle/ to make a folder"),
        "{err}"
    );
    assert!(!p.join("new.rle").exists());
    assert!(!p.join("a.rle").exists() && !p.join("b.rle").exists());

    fs::write(p.join("out.txt"), b"keep me").unwrap();
    for args in [
        &["compress", "a.bmp", "b.bmp", "-o", "out.txt"][..],
        &["compress", "scans", "-o", "out.txt"],
    ] {
        let out = run_in(p, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("rlewatch: out.txt: is a file, not a folder"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fs::read(p.join("out.txt")).unwrap(), b"keep me");

    // A trailing slash says "a folder", whatever its name.
    let out = run_in(p, &["compress", "a.bmp", "b.bmp", "-o", "new.rle/"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(p.join("new.rle/a.rle")).unwrap(),
        fs::read(data("pal8.dither.rle")).unwrap()
    );
    assert_eq!(
        fs::read(p.join("new.rle/b.rle")).unwrap(),
        fs::read(data("pal1.dither.rle")).unwrap()
    );
    let out = run_in(p, &["compress", "a.bmp", "-o", "one/"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(p.join("one/a.rle").is_file());

    // Standard output takes one input.
    let out = run_in(p, &["compress", "a.bmp", "b.bmp", "-o", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("-o - (standard output) takes one input file"));
}

/// `decompress` takes several inputs and folders, and `-o` a folder, by
/// the same rules as `compress`.
#[test]
fn decompress_takes_a_folder_for_output_and_several_inputs_as_compress_does() {
    let dir = tempdir();
    let p = dir.path();
    copy_vector(p, "pal8.dither.rle", "x.rle");
    copy_vector(p, "pal1.dither.rle", "y.rle");
    // The reference: decompressed beside the input, its default.
    let out = run_in(p, &["decompress", "x.rle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let x_bmp = fs::read(p.join("x.bmp")).unwrap();
    let out = run_in(p, &["decompress", "y.rle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let y_bmp = fs::read(p.join("y.bmp")).unwrap();

    fs::create_dir(p.join("out")).unwrap();
    let out = run_in(p, &["decompress", "x.rle", "-o", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(p.join("out/x.bmp")).unwrap(), x_bmp);
    let out = run_in(p, &["decompress", "x.rle", "-o", "out"]);
    assert!(stderr(&out).contains("out/x.bmp: already exists (use --force"));

    let out = run_in(p, &["decompress", "x.rle", "y.rle", "-o", "new"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(p.join("new/x.bmp")).unwrap(), x_bmp);
    assert_eq!(fs::read(p.join("new/y.bmp")).unwrap(), y_bmp);
    assert!(
        stderr(&out).contains("decompressed 2 files, 0 failed"),
        "{}",
        stderr(&out)
    );

    fs::create_dir_all(p.join("rles/sub")).unwrap();
    copy_vector(&p.join("rles"), "pal8.dither.rle", "x.rle");
    copy_vector(&p.join("rles/sub"), "pal1.dither.rle", "y.rle");
    let out = run_in(p, &["decompress", "rles", "-o", "bmps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(p.join("bmps/x.bmp")).unwrap(), x_bmp);
    assert_eq!(fs::read(p.join("bmps/sub/y.bmp")).unwrap(), y_bmp);

    let out = run_in(p, &["decompress", "x.rle", "y.rle", "-o", "both.bmp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("both.bmp: ") && !p.join("both.bmp").exists(),
        "{}",
        stderr(&out)
    );
}

/// The .rle format has no magic number; a file in a format the BMP reader
/// knows is named for what it is, not as a corrupt run.
#[test]
fn decompress_of_a_png_says_it_is_not_an_rle() {
    let dir = tempdir();
    let p = dir.path();
    // A PNG's signature and the start of its IHDR chunk.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x00\x00\x00\x00";
    fs::write(p.join("page.png"), png).unwrap();
    fs::write(p.join("photo.jpg"), b"\xff\xd8\xff\xe0\0\x10JFIF\0").unwrap();
    fs::write(p.join("scan.tif"), b"II*\0\x08\0\0\0\0\0").unwrap();
    for (file, kind) in [
        ("page.png", "PNG"),
        ("photo.jpg", "JPEG"),
        ("scan.tif", "TIFF"),
    ] {
        for cmd in ["decompress", "verify"] {
            let out = run_in(p, &[cmd, file]);
            assert_eq!(out.status.code(), Some(1), "{cmd} {file}");
            assert_eq!(
                stderr(&out).trim(),
                format!("rlewatch: {file}: not an .rle file (it looks like a {kind})"),
                "{cmd} {file}"
            );
        }
    }
    let made: Vec<_> = fs::read_dir(p).unwrap().collect();
    assert_eq!(made.len(), 3, "nothing written: {made:?}");
}

/// `verify` checks files and folders, says what it found for each, sums up
/// and fails when any one does.
#[test]
fn verify_takes_several_files_and_folders_with_a_summary() {
    let dir = tempdir();
    let p = dir.path();
    fs::create_dir_all(p.join("archive/sub")).unwrap();
    copy_vector(p, "rgb24.dither.rle", "one.rle");
    copy_vector(&p.join("archive"), "pal8.dither.rle", "a.rle");
    copy_vector(&p.join("archive/sub"), "pal1.dither.rle", "b.rle");
    fs::write(p.join("archive/notes.txt"), "not checked").unwrap();

    let out = run_in(p, &["verify", "one.rle", "archive"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], "one.rle: ok, 127x64");
    assert!(lines[1].starts_with("archive/a.rle: ok, "), "{stdout}");
    assert!(lines[2].starts_with("archive/sub/b.rle: ok, "), "{stdout}");
    assert!(
        stderr(&out).contains("verified 3 files: 3 ok, 0 failed"),
        "{}",
        stderr(&out)
    );

    let mut bad = fs::read(data("pal1.dither.rle")).unwrap();
    bad[10] = 0x80; // count 0
    fs::write(p.join("archive/sub/bad.rle"), &bad).unwrap();
    let out = run_in(p, &["verify", "one.rle", "archive"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("rlewatch: archive/sub/bad.rle: corrupt run at byte 10: count 0"),
        "{err}"
    );
    assert!(err.contains("verified 4 files: 3 ok, 1 failed"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    fs::create_dir(p.join("empty")).unwrap();
    let out = run_in(p, &["verify", "empty"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no .rle files found in empty"));

    copy_vector(p, "rgb24.bmp", "img.bmp");
    let out = run_in(p, &["verify", "one.rle", "archive", "--source", "img.bmp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--source"), "{}", stderr(&out));
}

/// `-` is standard input as the input and standard output as `-o`, through
/// real pipes: BMP → .rle → BMP → .rle gives the reference bytes.
#[test]
fn compress_and_decompress_work_in_a_pipeline() {
    use std::process::Stdio;
    let dir = tempdir();
    let p = dir.path();
    let spawn = |args: &[&str], stdin: Stdio| {
        rlewatch_in(p)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let source = fs::File::open(data("pal8.bmp")).unwrap();
    let mut first = spawn(&["compress", "-", "-o", "-"], source.into());
    let mut second = spawn(
        &["decompress", "-", "-o", "-"],
        first.stdout.take().unwrap().into(),
    );
    // Without -o, standard input goes to standard output.
    let third = spawn(&["compress", "-"], second.stdout.take().unwrap().into());
    let last = third.wait_with_output().unwrap();
    for child in [&mut first, &mut second] {
        assert!(child.wait().unwrap().success());
    }
    assert!(last.status.success(), "{}", stderr(&last));
    assert_eq!(last.stdout, fs::read(data("pal8.dither.rle")).unwrap());
    let names: Vec<_> = fs::read_dir(p).unwrap().collect();
    assert!(names.is_empty(), "nothing written beside: {names:?}");

    // An output file from standard input; verify reads it back the same way.
    let out = spawn(
        &["compress", "--threshold", "-", "-o", "t.rle"],
        fs::File::open(data("pal8.bmp")).unwrap().into(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(p.join("t.rle")).unwrap(),
        fs::read(data("pal8.threshold.rle")).unwrap()
    );
    let out = spawn(
        &["verify", "-"],
        fs::File::open(p.join("t.rle")).unwrap().into(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let size = dims(&fs::read(p.join("t.rle")).unwrap());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("standard input: ok, {size}")
    );

    // A wrong input: the reason on stderr, nothing on stdout.
    let out = spawn(
        &["compress", "-", "-o", "-"],
        fs::File::open(data("pal8.dither.rle")).unwrap().into(),
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).starts_with("rlewatch: standard input: not an image file rlewatch reads"),
        "{}",
        stderr(&out)
    );
    let out = spawn(&["compress", "-", "a.bmp"], Stdio::null())
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("must be the only input"));
}

/// `WxH` from an .rle header (design §1: two little-endian u16).
fn dims(rle: &[u8]) -> String {
    let w = u16::from_le_bytes([rle[0], rle[1]]);
    let h = u16::from_le_bytes([rle[2], rle[3]]);
    format!("{w}x{h}")
}

/// Log lines name their event shortly (`report`), not by the module path
/// (`rlewatch::daemon::coordinator::report`), in text and in JSON.
#[test]
fn log_lines_carry_a_short_target() {
    use crate::support::{Daemon, FAST};
    for format in ["text", "json"] {
        let d = Daemon::start(&format!("[log]\nformat = \"{format}\"\n{FAST}"));
        fs::copy(data("pal1.bmp"), d.inbox().join("s.bmp")).unwrap();
        assert!(
            d.wait_log("archived ", 1, Duration::from_secs(20)),
            "{format}"
        );
        let log = d.log();
        assert!(!log.contains("rlewatch::"), "{format}: {log}");
        let archived = log.lines().find(|l| l.contains("s.bmp -> ")).unwrap();
        if format == "text" {
            assert!(archived.contains(" INFO report: archived "), "{archived}");
        } else {
            for line in log.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["fields"]["message"].is_string(), "{line}");
                assert!(v["timestamp"].is_string(), "{line}");
            }
            let v: serde_json::Value = serde_json::from_str(archived).unwrap();
            assert_eq!(v["target"], "report", "{archived}");
            assert_eq!(v["level"], "INFO", "{archived}");
        }
    }
}

/// The packaged man pages and completions know the new flags.
#[test]
fn generated_man_pages_and_completions_know_the_new_flags() {
    let dir = tempdir();
    let out = run_in(dir.path(), &["generate-assets", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = dir.path().join("out");
    let page = fs::read_to_string(o.join("rlewatch-check-config.1")).unwrap();
    assert!(page.contains("defaults") && page.contains("FILE"), "{page}");
    let page = fs::read_to_string(o.join("rlewatch-verify.1")).unwrap();
    assert!(page.contains("INPUT"), "{page}");
    for file in ["rlewatch.bash", "_rlewatch", "rlewatch.fish"] {
        let text = fs::read_to_string(o.join(file)).unwrap();
        assert!(text.contains("defaults"), "{file}");
    }
}

/// Runs the binary in `dir` under `umask`.
fn run_with_umask(dir: &std::path::Path, umask: u32, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = rlewatch_in(dir);
    cmd.args(args).stdin(std::process::Stdio::null());
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// An output is no more readable than its input: created with the input's
/// permission bits (without execute), the umask applying as usual; from
/// standard input, as any new file. A private scan stayed private only in
/// its BMP.
#[test]
fn outputs_are_no_more_readable_than_their_input() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let p = dir.path();
    for (input_mode, umask, expected) in [
        (0o600, 0o022, 0o600),
        (0o640, 0o022, 0o640),
        (0o755, 0o022, 0o644),
        (0o644, 0o077, 0o600),
    ] {
        copy_vector(p, "pal8.bmp", "secret.bmp");
        fs::set_permissions(p.join("secret.bmp"), fs::Permissions::from_mode(input_mode)).unwrap();
        let out = run_with_umask(p, umask, &["compress", "--force", "secret.bmp"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            mode_of(&p.join("secret.rle")),
            expected,
            "compress of a {input_mode:o} file under umask {umask:o}"
        );
        fs::set_permissions(p.join("secret.rle"), fs::Permissions::from_mode(input_mode)).unwrap();
        let out = run_with_umask(
            p,
            umask,
            &["decompress", "--force", "-o", "back.bmp", "secret.rle"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            mode_of(&p.join("back.bmp")),
            expected,
            "decompress of a {input_mode:o} file under umask {umask:o}"
        );
        fs::remove_file(p.join("secret.bmp")).unwrap();
    }
    // Folder mode too.
    fs::create_dir(p.join("scans")).unwrap();
    copy_vector(&p.join("scans"), "pal8.bmp", "a.bmp");
    fs::set_permissions(p.join("scans/a.bmp"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_with_umask(p, 0o022, &["compress", "-o", "out", "scans"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode_of(&p.join("out/a.rle")), 0o600);

    // Standard input: a new file's mode.
    let out = rlewatch_with_stdin(p, 0o022, &["compress", "-", "-o", "piped.rle"], "pal8.bmp");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode_of(&p.join("piped.rle")), 0o644);
}

fn rlewatch_with_stdin(
    dir: &std::path::Path,
    umask: u32,
    args: &[&str],
    vector: &str,
) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = rlewatch_in(dir);
    cmd.args(args)
        .stdin(fs::File::open(data(vector)).unwrap())
        .stdout(std::process::Stdio::null());
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Ctrl-C (SIGINT) or SIGTERM during a compress removes its temporary
/// file and writes nothing under the final name; the exit status is 128 +
/// the signal. The hidden `.rlewatch-*.tmp` files used to stay forever.
#[test]
fn an_interrupted_compress_leaves_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempdir();
    let p = dir.path();
    let out_dir = p.join("out");
    fs::create_dir(&out_dir).unwrap();
    fs::write(p.join("big.bmp"), crate::support::big_bmp(8000, 8000)).unwrap();
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = rlewatch_in(p)
            .args(["compress", "-o", "out/big.rle", "big.bmp"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let temp_seen = crate::support::wait_until(crate::support::LONG, || {
            !crate::support::no_temp_files(&out_dir)
        });
        assert!(temp_seen, "no temporary file appeared");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "signal {sig}: {status:?} (killed by {:?}): {err}",
            status.signal()
        );
        assert!(
            crate::support::no_temp_files(&out_dir),
            "signal {sig}: left {:?}",
            crate::support::files_below(&out_dir)
        );
        assert!(
            !out_dir.join("big.rle").exists(),
            "signal {sig}: something under the final name"
        );
        assert!(err.contains("interrupted"), "{err}");
    }
}

/// Options and inputs that cannot go together are usage errors (exit 2,
/// as documented), not failures (1); the messages stay.
#[test]
fn usage_mistakes_in_the_combination_of_arguments_exit_2() {
    let dir = tempdir();
    let p = dir.path();
    copy_vector(p, "pal8.bmp", "a.bmp");
    copy_vector(p, "pal1.bmp", "b.bmp");
    copy_vector(p, "pal1.dither.rle", "a.rle");
    copy_vector(p, "pal8.dither.rle", "b.rle");
    fs::create_dir(p.join("existingdir")).unwrap();
    for (args, message) in [
        (
            &["compress", "a.bmp", "b.bmp", "-o", "new.rle"][..],
            "write new.rle/ to make a folder",
        ),
        (
            &["compress", "-", "b.bmp", "-o", "outB/"],
            "- (standard input) must be the only input",
        ),
        (
            &["compress", "a.bmp", "b.bmp", "-o", "-"],
            "-o - (standard output) takes one input file",
        ),
        (
            &["verify", "--source", "a.bmp", "a.rle", "b.rle"],
            "--source compares one .rle file with its BMP, not several",
        ),
        (
            &["compress", "-", "-o", "existingdir"],
            "existingdir: with standard input, -o names the output file",
        ),
        (
            &["decompress", "a.rle", "b.rle", "-o", "new.bmp"],
            "write new.bmp/ to make a folder",
        ),
    ] {
        let out = rlewatch_in(p)
            .args(args)
            .stdin(fs::File::open(data("pal8.bmp")).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("rlewatch: ") && err.contains(message) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert!(!p.join("outB").exists() && !p.join("new.rle").exists());
}

/// `--max-pixels 0` would refuse every image; the configuration rejects
/// `max_pixels = 0`, and so does the command line, when it is parsed.
#[test]
fn max_pixels_0_is_a_usage_error() {
    let dir = tempdir();
    copy_vector(dir.path(), "pal8.bmp", "a.bmp");
    copy_vector(dir.path(), "pal8.dither.rle", "a.rle");
    for args in [
        &["compress", "--max-pixels", "0", "a.bmp"][..],
        &["verify", "--max-pixels", "0", "--source", "a.bmp", "a.rle"],
    ] {
        let out = run_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--max-pixels"), "{}", stderr(&out));
    }
    let out = run_in(
        dir.path(),
        &["compress", "--max-pixels", "1", "-o", "x.rle", "a.bmp"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A symlink inside a folder given to compress (or verify) is not
/// followed, and says so: one line each, the folder's as the file's.
#[test]
fn symlinks_skipped_in_a_folder_are_named_on_stderr() {
    let dir = tempdir();
    let (outside, scans) = scans_with_symlinks(dir.path());
    let out = run_in(dir.path(), &["compress", "scans"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let mut skipped: Vec<&str> = err.lines().filter(|l| l.contains("skipped")).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "rlewatch: scans/file.bmp: skipped: a symlink, not followed",
            "rlewatch: scans/link: skipped: a symlink, not followed",
        ],
        "{err}"
    );
    assert!(scans.join("real.rle").exists());
    assert!(!outside.join("secret.rle").exists());
    assert!(!scans.join("file.rle").exists());
    assert!(!scans.join("link/secret.rle").exists());
}

/// A text file given to decompress fails with the decoder's finding and a
/// hint that it is probably no .rle (the format has no magic number, so
/// only a hint); a damaged real .rle gets no hint.
#[test]
fn decompress_of_a_text_file_hints_that_it_is_not_an_rle() {
    let dir = tempdir();
    let p = dir.path();
    fs::write(
        p.join("notes.txt"),
        "Meeting notes: scan the ledgers on Monday.\n",
    )
    .unwrap();
    for cmd in ["decompress", "verify"] {
        let out = run_in(p, &[cmd, "notes.txt"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.starts_with("rlewatch: notes.txt: corrupt run at byte ")
                && err.trim_end().ends_with(" (not an .rle file?)"),
            "{cmd}: {err}"
        );
    }
    assert!(!p.join("notes.bmp").exists());
    let mut rle = fs::read(data("pal1.dither.rle")).unwrap();
    rle.truncate(rle.len() - 1);
    fs::write(p.join("cut.rle"), &rle).unwrap();
    let out = run_in(p, &["decompress", "cut.rle"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("not an .rle"), "{}", stderr(&out));
}

/// Compression code 4 is an embedded JPEG in a Windows INFO header
/// (BI_JPEG) and RLE24 only in an OS/2 2.x header.
#[test]
fn compression_4_is_named_by_its_header_kind() {
    let dir = tempdir();
    let p = dir.path();
    let bmp = |info_size: u32| {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&(14 + info_size).to_le_bytes());
        let mut info = vec![0u8; info_size as usize];
        info[0..4].copy_from_slice(&info_size.to_le_bytes());
        info[4..8].copy_from_slice(&4i32.to_le_bytes());
        info[8..12].copy_from_slice(&4i32.to_le_bytes());
        info[12..14].copy_from_slice(&1u16.to_le_bytes());
        info[14..16].copy_from_slice(&24u16.to_le_bytes());
        info[16..20].copy_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&info);
        b.resize(4096, 0);
        b
    };
    for (size, name, expected) in [
        (40, "info.bmp", "embedded JPEG"),
        (108, "v4.bmp", "embedded JPEG"),
        (124, "v5.bmp", "embedded JPEG"),
        (64, "os2.bmp", "RLE24 compression"),
    ] {
        fs::write(p.join(name), bmp(size)).unwrap();
        let out = run_in(p, &["compress", name]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out).trim(),
            format!("rlewatch: {name}: unsupported BMP variant: {expected}")
        );
    }
}

/// `audit` of a small archive reads in milliseconds: its rate is not
/// "(0 MB/s)" (a unit that fits, or none for a run that short).
#[test]
fn audit_of_a_small_archive_prints_no_zero_rate() {
    let mut d = crate::support::Daemon::start(crate::support::FAST);
    fs::copy(data("pal1.bmp"), d.inbox().join("a.bmp")).unwrap();
    assert!(
        d.wait_log("archived ", 1, crate::support::LONG),
        "{}",
        d.log()
    );
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(crate::support::LONG).is_some(), "{}", d.log());
    let out = run_in(d.dir.path(), &["audit", "--config", "config.toml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("audited 1 recorded archive(s)"), "{text}");
    assert!(!text.contains("(0 MB/s)"), "{text}");

    // And an empty one: a daemon started on it and archived nothing.
    let mut d = crate::support::Daemon::start(crate::support::FAST);
    assert!(
        d.wait_log("watching", 1, crate::support::LONG),
        "{}",
        d.log()
    );
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(crate::support::LONG).is_some(), "{}", d.log());
    let out = run_in(d.dir.path(), &["audit", "archive"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("audited 0 recorded archive(s)"), "{text}");
    assert!(!text.contains("MB/s"), "{text}");
}

/// `audit` of a folder no daemon archived into (a typo in a cron job)
/// says there is no ledger there and fails, instead of "0 recorded".
#[test]
fn audit_of_a_folder_without_a_ledger_fails_saying_so() {
    let dir = tempdir();
    fs::create_dir(dir.path().join("archve")).unwrap();
    let out = run_in(dir.path(), &["audit", "archve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "rlewatch: archve: no ledger there (archve/.rlewatch/ledger is missing): not an archive \
         folder of rlewatch (check the path, or give -c with the daemon's configuration)"
    );
    assert!(out.stdout.is_empty());
}
