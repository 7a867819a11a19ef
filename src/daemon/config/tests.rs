//! Tests of parsing and validating the configuration.

use super::*;

#[test]
fn empty_file_gives_the_defaults_relative_to_the_file() {
    let c = parse("", Path::new("/etc/rlewatch")).unwrap();
    assert_eq!(c.paths.inbox, Path::new("/etc/rlewatch/inbox"));
    assert_eq!(c.paths.failed, Path::new("/etc/rlewatch/failed"));
    assert_eq!(c.conversion, Conversion::Dither);
    assert!(c.verify);
    assert_eq!(c.originals, OriginalsAction::Move);
    assert_eq!(c.queue, 256);
    assert_eq!(c.settle, Duration::from_millis(250));
    assert_eq!(c.rescan, Some(Duration::from_secs(300)));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert!(c.threads >= 1);
    assert_eq!(c.formats, crate::formats::FormatSet::DECODED);
}

#[test]
fn every_key_of_the_spec_is_accepted() {
    let text = r#"
        [paths]
        inbox   = "/var/spool/rlewatch/inbox"
        archive = "../archive"
        done    = "done"
        failed  = "failed"
        [compress]
        conversion = "threshold"
        verify     = false
        max_pixels = 1_000
        formats    = ["tiff", "png"]
        [originals]
        action = "delete"
        [workers]
        threads = 3
        queue   = 1
        [watch]
        backend     = "poll"
        recursive   = false
        settle_ms   = 10
        rescan_secs = 0
        ignore      = ["*.scan", "drafts/**"]
        [daemon]
        shutdown_timeout_secs = 5
        [log]
        level  = "rlewatch=debug"
        format = "json"
    "#;
    let c = parse(text, Path::new("/srv/x")).unwrap();
    assert_eq!(c.paths.inbox, Path::new("/var/spool/rlewatch/inbox"));
    assert_eq!(c.paths.archive, Path::new("/srv/archive"));
    assert_eq!(c.conversion, Conversion::Threshold);
    assert_eq!(c.formats, FormatSet::of(&[Format::Tiff, Format::Png]));
    assert_eq!(c.originals, OriginalsAction::Delete);
    assert_eq!((c.threads, c.queue), (3, 1));
    assert_eq!(c.backend, Backend::Poll);
    assert_eq!(c.rescan, None);
    assert!(c.ignore.is_match("a.scan"));
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn mistakes_are_named() {
    let err = |text: &str| parse(text, Path::new("/x")).unwrap_err().to_string();
    assert!(err("[paths]\ninbx = \"a\"").contains("unknown field `inbx`"));
    assert!(err("[compress]\nconversion = \"fancy\"").contains("compress.conversion must be"));
    assert!(err("[originals]\naction = \"shred\"").contains("originals.action must be"));
    assert!(err("[workers]\nqueue = 0").contains("workers.queue"));
    let e = err("[compress]\nformats = [\"png\", \"webp\"]");
    assert!(
        e.contains("compress.formats: \"webp\" is not a format; the formats are \"bmp\", \"tiff\", \"png\", \"pnm\", \"gif\""),
        "{e}"
    );
    let e = err("[compress]\nformats = [\"jpeg\"]");
    assert!(
        e.contains("\"jpeg\" cannot be archived: ") && e.contains("libjpeg-turbo"),
        "{e}"
    );
    assert!(err("[compress]\nformats = []").contains("compress.formats is empty"));
    assert!(err("[watch]\nignore = [\"a{\"]").contains("watch.ignore"));
    assert!(err("[log]\nlevel = \"=\"").contains("log.level"));
    assert!(
        err("[paths]\narchive = \"inbox\"")
            .contains("paths.inbox and paths.archive are the same folder")
    );
    assert!(err("[paths]\ninbox = \"archive/in\"").contains("is inside paths.archive"));
    // A typo that EnvFilter would take as a target (logging nothing).
    assert!(err("[log]\nlevel = \"bogus!!\"").contains("neither a level"));
    assert!(err("[log]\nlevel = \"inof\"").contains("neither a level"));
    for ok in [
        "debug",
        "WARN",
        "info,notify=warn",
        "rlewatch=debug",
        "rlewatch::daemon",
    ] {
        let text = format!("[log]\nlevel = {ok:?}");
        assert!(parse(&text, Path::new("/srv")).is_ok(), "{ok}");
    }
}

#[test]
fn of_several_mistakes_the_first_in_the_file_is_named() {
    let err = |text: &str| parse(text, Path::new("/x")).unwrap_err().to_string();
    let two = "[compress]\nmax_pixels = 0\n[originals]\naction = \"shred\"\n";
    assert!(err(two).contains("compress.max_pixels"), "{}", err(two));
    let two = "[workers]\nthreads = 2000\n[watch]\nbackend = \"x\"\n";
    assert!(err(two).contains("workers.threads"), "{}", err(two));
    let two = "[watch]\nignore = [\"a{\"]\n[daemon]\nshutdown_timeout_secs = 0\n";
    assert!(err(two).contains("watch.ignore"), "{}", err(two));
}
