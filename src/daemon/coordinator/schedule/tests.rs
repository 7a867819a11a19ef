//! The schedule with made-up instants (design §4.2): a file due,
//! rescheduled, superseded, in flight, kept; new folders.

use super::*;
use crate::daemon::completion::Declared;

const SETTLE: Duration = Duration::from_millis(250);
const CAP: usize = 100;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A regular file of `size` bytes, inode `ino`.
fn stat(ino: u64, size: u64) -> Stat {
    Stat {
        key: (1, ino),
        size,
        mtime: (7, 0),
        regular: true,
        id: (1, ino, size, 7, 0),
    }
}

/// Nobody writes it and it is complete.
fn complete() -> Completion {
    Completion {
        writers: Some(false),
        declared: Declared::Complete,
    }
}

#[test]
fn an_unobserved_file_is_due_once_it_has_settled_and_is_then_handed_out() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let a = Path::new("/in/a.bmp");
    s.seen(a, &stat(1, 10), t0, SETTLE, false, CAP);
    assert_eq!(s.next_due(4), Some(t0 + SETTLE));
    assert_eq!(s.take_due(t0 + ms(249), 4), None);
    assert_eq!(s.take_due(t0 + SETTLE, 4).as_deref(), Some(a));
    let v = s.decide(a, &stat(1, 10), None, t0 + SETTLE, SETTLE);
    assert_eq!(v, Verdict::Ready);
    assert_eq!(s.hand_out(a, (1, 1)), (0, None));
    assert!(!s.is_waiting(a) && s.in_flight().has_path(a));
    assert_eq!(s.next_due(4), None);
    assert_eq!(s.returned((1, 1)).as_deref(), Some(a));
    assert!(s.in_flight().is_empty());
}

#[test]
fn a_change_reschedules_and_an_event_brings_an_observed_file_forward() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let a = Path::new("/in/a.bmp");
    s.seen(a, &stat(1, 10), t0, SETTLE, false, CAP);
    // Grown at t0 + 200 ms: due a whole settle after that, and the
    // earlier due time is gone, not left behind as a stale timer.
    let t1 = t0 + ms(200);
    s.seen(a, &stat(1, 20), t1, SETTLE, false, CAP);
    assert_eq!(s.next_due(4), Some(t1 + SETTLE));
    assert_eq!(s.take_due(t0 + SETTLE, 4), None);
    // Unchanged: the due time stays.
    s.seen(a, &stat(1, 20), t1 + ms(10), SETTLE, false, CAP);
    assert_eq!(s.next_due(4), Some(t1 + SETTLE));
    // Writers observable: an event makes it due at once.
    let t2 = t1 + ms(20);
    s.seen(a, &stat(1, 20), t2, SETTLE, true, CAP);
    assert_eq!(s.take_due(t2, 4).as_deref(), Some(a));
    assert_eq!(s.take_due(t2, 4), None, "one due time per file");
}

#[test]
fn a_file_put_back_supersedes_its_earlier_time_and_a_backoff_is_kept() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let a = Path::new("/in/a.bmp");
    s.seen(a, &stat(1, 10), t0, SETTLE, true, CAP);
    // Put back for a retry in 4 s: the old time (now) is superseded.
    let mut p = Pending::new(10, (7, 0), t0 + Duration::from_secs(4), t0);
    p.attempts = 3;
    p.retry = true;
    s.put(a.to_path_buf(), p);
    assert_eq!(s.take_due(t0 + ms(10), 4), None);
    assert_eq!(s.waiting(), (1, 1));
    // An event does not cut a backoff short, nor does a change.
    s.seen(a, &stat(1, 10), t0 + ms(20), SETTLE, true, CAP);
    s.seen(a, &stat(1, 11), t0 + ms(30), SETTLE, false, CAP);
    assert_eq!(s.next_due(4), Some(t0 + Duration::from_secs(4)));
    let t1 = t0 + Duration::from_secs(4);
    assert_eq!(s.take_due(t1, 4).as_deref(), Some(a));
    assert_eq!(s.decide(a, &stat(1, 11), None, t1, SETTLE), Verdict::Ready);
    assert_eq!(s.hand_out(a, (1, 1)).0, 3);
}

#[test]
fn a_file_waits_while_it_is_in_flight_under_another_name_and_while_written() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let (a, b) = (Path::new("/in/a.bmp"), Path::new("/in/b.bmp"));
    s.seen(a, &stat(1, 10), t0, SETTLE, true, CAP);
    s.take_due(t0, 4);
    s.decide(a, &stat(1, 10), Some(&complete()), t0, SETTLE);
    s.hand_out(a, (1, 1));
    // b is a hard link to a: waits a recheck, however often asked.
    s.seen(b, &stat(1, 10), t0, SETTLE, true, CAP);
    assert_eq!(s.take_due(t0, 4).as_deref(), Some(b));
    let v = s.decide(b, &stat(1, 10), Some(&complete()), t0, SETTLE);
    assert_eq!(v, Verdict::Wait);
    assert_eq!(s.next_due(4), Some(t0 + SETTLE));
    // Full: nothing more is handed out, nor does it wake anyone.
    assert_eq!(s.next_due(1), None);
    assert_eq!(s.take_due(t0 + SETTLE, 1), None);
    // Held open for writing: at least a second more.
    let t1 = t0 + SETTLE;
    assert_eq!(s.take_due(t1, 4).as_deref(), Some(b));
    let writing = Completion {
        writers: Some(true),
        declared: Declared::Complete,
    };
    let v = s.decide(b, &stat(1, 10), Some(&writing), t1, SETTLE);
    assert_eq!(v, Verdict::Wait);
    assert_eq!(s.next_due(4), Some(t1 + Duration::from_secs(1)));
}

#[test]
fn a_kept_original_unchanged_is_done_with_and_a_changed_one_goes_again() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let a = Path::new("/in/a.bmp");
    s.keep(a.to_path_buf(), stat(1, 10).id);
    s.seen(a, &stat(1, 10), t0, SETTLE, true, CAP);
    s.take_due(t0, 4);
    let v = s.decide(a, &stat(1, 10), Some(&complete()), t0, SETTLE);
    assert_eq!(v, Verdict::Done);
    assert!(!s.is_waiting(a));
    // Rewritten since: archived again.
    s.seen(a, &stat(1, 12), t0, SETTLE, true, CAP);
    s.take_due(t0, 4);
    let v = s.decide(a, &stat(1, 12), Some(&complete()), t0, SETTLE);
    assert_eq!(v, Verdict::Ready);
    // Gone from the inbox: forgotten.
    s.retain_kept(|_| false);
    s.forget(a);
    assert_eq!(s.waiting(), (0, 0));
}

#[test]
fn a_new_folder_is_scanned_again_when_due_and_only_once() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    s.new_folder(PathBuf::from("/in/x"), t0 + NEW_FOLDER_RESCAN);
    s.new_folder(PathBuf::from("/in/y"), t0 + ms(600));
    assert_eq!(s.next_folder(), Some(t0 + NEW_FOLDER_RESCAN));
    assert_eq!(s.folder_due(t0), None);
    let t1 = t0 + NEW_FOLDER_RESCAN;
    assert_eq!(s.folder_due(t1), Some(PathBuf::from("/in/x")));
    assert_eq!(s.folder_due(t1), None);
    assert_eq!(s.next_folder(), Some(t0 + ms(600)));
}

#[test]
fn retry_now_makes_only_the_files_in_backoff_due_and_keeps_their_attempts() {
    let t0 = Instant::now();
    let mut s = Schedule::default();
    let (a, b) = (Path::new("/in/a.bmp"), Path::new("/in/b.bmp"));
    let mut backing_off = Pending::new(10, (7, 0), t0 + Duration::from_secs(300), t0);
    backing_off.retry = true;
    backing_off.attempts = 9;
    s.put(a.to_path_buf(), backing_off);
    // Settling, not in backoff: its due time is its own.
    s.seen(b, &stat(2, 10), t0, SETTLE, false, CAP);
    let t1 = t0 + ms(10);
    assert_eq!(s.retry_now(t1), 1);
    assert_eq!(s.take_due(t1, 4).as_deref(), Some(a));
    assert_eq!(s.take_due(t1, 4), None, "b settles until t0 + SETTLE");
    assert_eq!(s.decide(a, &stat(1, 10), None, t1, SETTLE), Verdict::Ready);
    assert_eq!(s.hand_out(a, (1, 1)).0, 9, "the attempts so far go along");
    assert_eq!(s.retry_now(t1), 0);
}
