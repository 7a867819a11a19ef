//! Tests of the watcher's event handling.

use super::*;
use crate::daemon::config;
use std::time::Instant;

fn handler(
    capacity: usize,
) -> (
    Handler,
    crossbeam_channel::Receiver<Seen>,
    crossbeam_channel::Receiver<()>,
) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let (wake, wake_rx) = crossbeam_channel::bounded(1);
    let c = config::parse("", Path::new("/d")).unwrap();
    let h = Handler {
        tx,
        wake,
        flags: Arc::default(),
        filter: Arc::new(Filter::new(&c)),
        polling: false,
    };
    (h, rx, wake_rx)
}

fn created(path: &str) -> notify::Result<Event> {
    Ok(Event::new(EventKind::Create(CreateKind::File)).add_path(PathBuf::from(path)))
}

#[test]
fn process_event_marks_rescan_when_channel_full() {
    let (h, rx, wake) = handler(1);
    h.handle(created("/d/inbox/a.bmp"));
    assert!(!h.flags.rescan.load(Ordering::SeqCst));
    let started = Instant::now();
    for i in 0..1000 {
        h.handle(created(&format!("/d/inbox/f{i}.bmp")));
    }
    // Returns at once (no blocking on the full channel) and flags it.
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(h.flags.rescan.load(Ordering::SeqCst));
    assert_eq!(wake.try_recv(), Ok(()));
    assert_eq!(rx.try_recv().unwrap().path, PathBuf::from("/d/inbox/a.bmp"));
}

#[test]
fn kernel_overflow_and_errors_mark_rescan() {
    let (h, _rx, _wake) = handler(8);
    h.handle(Ok(
        Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)
    ));
    assert!(h.flags.rescan.swap(false, Ordering::SeqCst));
    h.handle(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)));
    assert!(h.flags.rescan.load(Ordering::SeqCst));
    assert!(h.flags.watch_limit.load(Ordering::SeqCst));
}

#[test]
fn a_file_gone_before_the_poll_looked_is_no_error() {
    let (h, _rx, _wake) = handler(8);
    let not_found = || notify::Error::io(std::io::ErrorKind::NotFound.into());
    h.handle(Err(
        not_found().add_path(PathBuf::from("/d/inbox/taken.bmp"))
    ));
    assert!(!h.flags.rescan.load(Ordering::SeqCst));
    assert!(h.flags.error.lock().unwrap().is_none());
    // Anything about the daemon's own folder, where hosts rename claims.
    h.handle(Err(notify::Error::io(std::io::Error::from_raw_os_error(
        libc::ESTALE,
    ))
    .add_path(PathBuf::from("/d/inbox/.rlewatch/claims/b/x.bmp"))));
    assert!(!h.flags.rescan.load(Ordering::SeqCst));
    // The inbox itself gone, an error with no path, or another error
    // about a file: a warning and a rescan.
    for e in [
        not_found().add_path(PathBuf::from("/d/inbox")),
        not_found(),
        notify::Error::io(std::io::ErrorKind::PermissionDenied.into())
            .add_path(PathBuf::from("/d/inbox/a.bmp")),
    ] {
        h.handle(Err(e));
        assert!(h.flags.rescan.swap(false, Ordering::SeqCst));
        assert!(h.flags.error.lock().unwrap().take().is_some());
    }
}

#[test]
fn only_wanted_names_are_sent() {
    let (h, rx, _wake) = handler(8);
    h.handle(created("/d/inbox/.x.bmp"));
    h.handle(created("/d/inbox/x.bmp.part"));
    h.handle(Ok(Event::new(EventKind::Modify(ModifyKind::Data(
        notify::event::DataChange::Any,
    )))
    .add_path(PathBuf::from("/d/inbox/x.bmp"))));
    h.handle(Ok(Event::new(EventKind::Modify(ModifyKind::Name(
        RenameMode::Both,
    )))
    .add_path(PathBuf::from("/tmp/x.bmp"))
    .add_path(PathBuf::from("/d/inbox/moved.bmp"))));
    assert_eq!(
        rx.try_recv().unwrap().path,
        PathBuf::from("/d/inbox/moved.bmp")
    );
    assert!(rx.try_recv().is_err());
}
