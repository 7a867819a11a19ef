//! In-process tests of the archive layer: failures are asserted by kind.

use super::*;
use crate::claim;

/// Settings for an inbox in `t`, archiving into `archive`.
fn settings(t: &Path, archive: PathBuf) -> Arc<Settings> {
    let inbox = t.join("inbox");
    fs::create_dir_all(&inbox).unwrap();
    let claims = claim::prepare(&inbox, "h").unwrap();
    let ledger = Ledger::open(&t.join("ledger-home"), "h").unwrap();
    Arc::new(Settings {
        inbox,
        archive,
        done: t.join("done"),
        failed: t.join("failed"),
        conversion: Conversion::Dither,
        verify: true,
        max_pixels: 1_000_000,
        originals: OriginalsAction::Move,
        claims,
        ledger: Arc::new(ledger),
        devices: Devices::default(),
    })
}

#[test]
fn a_file_where_the_archive_folder_should_be_is_a_permanent_failure_and_the_original_stays() {
    let t = tempfile::tempdir().unwrap();
    let archive = t.path().join("archive");
    fs::write(&archive, b"not a folder").unwrap();
    let s = settings(t.path(), archive.clone());
    let src = s.inbox.join("a.bmp");
    let bmp = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pal1.bmp");
    fs::copy(bmp, &src).unwrap();
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
    assert_eq!(fs::read(&src).unwrap(), fs::read(bmp).unwrap());
    assert!(claim::list(&s.claims).is_empty());
}
