//! The settling rules and the wait list with made-up instants: when a file
//! is due, how a change, a writer or a short file moves that, the backoff.

use super::*;

#[test]
fn a_full_wait_list_leaves_new_paths_out_and_asks_for_a_rescan_once_half_drained() {
    let now = Instant::now();
    let mut w = WaitList::default();
    let cap = 4;
    for i in 0..cap {
        let p = PathBuf::from(format!("/in/{i}.bmp"));
        assert!(w.room_for(&p, cap));
        w.insert(p, Pending::new(1, (0, 0), now, now));
    }
    assert!(!w.rescan_due(cap));
    // Full: a known path still has room, a new one does not.
    assert!(w.room_for(Path::new("/in/0.bmp"), cap));
    assert!(!w.rescan_due(cap));
    assert!(!w.room_for(Path::new("/in/new.bmp"), cap));
    assert_eq!(w.len(), cap);
    // Drained to half: not yet; below half: rescan.
    w.remove(Path::new("/in/0.bmp"));
    w.remove(Path::new("/in/1.bmp"));
    assert!(!w.rescan_due(cap));
    w.remove(Path::new("/in/2.bmp"));
    assert!(w.rescan_due(cap));
    w.rescanning();
    assert!(!w.rescan_due(cap));
    assert!(w.room_for(Path::new("/in/new.bmp"), cap));
}

#[test]
fn a_due_time_is_kept_once_and_leaves_no_timer_behind() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let (a, b) = (Path::new("/in/a.bmp"), Path::new("/in/b.bmp"));
    let mut w = WaitList::default();
    w.insert(a.to_path_buf(), Pending::new(1, (0, 0), t0 + ms(50), t0));
    w.insert(b.to_path_buf(), Pending::new(1, (0, 0), t0 + ms(80), t0));
    // Put back later, moved earlier, removed: only the last time counts.
    w.insert(a.to_path_buf(), Pending::new(1, (0, 0), t0 + ms(90), t0));
    assert_eq!(w.first_due(), Some(t0 + ms(80)));
    w.set_due(b, t0 + ms(10));
    assert_eq!(w.take_due(t0 + ms(60)).as_deref(), Some(b));
    assert!(w.contains_key(b), "taken to be looked at, still waiting");
    assert_eq!(w.take_due(t0 + ms(60)), None);
    w.remove(a);
    assert_eq!(w.first_due(), None);
    // A taken file given a new time is due again, once.
    w.set_due(b, t0 + ms(70));
    assert_eq!(w.take_due(t0 + ms(70)).as_deref(), Some(b));
    assert_eq!(w.take_due(t0 + ms(70)), None);
    w.clear();
    assert_eq!((w.len(), w.first_due()), (0, None));
}

/// First seen at `since`, due at `due`.
fn pending(since: Instant, due: Instant) -> Pending {
    Pending {
        size: 10,
        mtime: (1, 0),
        due,
        since,
        attempts: 0,
        retry: false,
        published: None,
    }
}

#[test]
fn a_change_restarts_settling_and_no_change_keeps_it() {
    let t0 = Instant::now();
    let settle = Duration::from_millis(250);
    let mut p = pending(t0, t0 + settle);
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(p.update(10, (1, 0), t1, settle), None);
    assert_eq!(p.since, t0);
    // Size or mtime moved: stable from now, due a full settle later.
    assert_eq!(p.update(11, (1, 0), t1, settle), Some(t1 + settle));
    assert_eq!(p.since, t1);
    let t2 = t1 + Duration::from_millis(10);
    assert_eq!(p.update(11, (1, 5), t2, settle), Some(t2 + settle));
    // A due time already later (a backoff) is never brought forward.
    let mut q = pending(t0, t0 + Duration::from_secs(60));
    assert_eq!(
        q.update(12, (1, 0), t1, settle),
        Some(t0 + Duration::from_secs(60))
    );
}

#[test]
fn a_file_waits_for_its_writer_its_settle_time_or_its_grace_and_no_longer() {
    let t0 = Instant::now();
    let settle = Duration::from_millis(250);
    let ms = Duration::from_millis;
    let complete = Declared::Complete;
    let short = Declared::NotYet("shorter than its header says");
    // Held open for writing: waits at least a second, and counts its
    // stable time from now (a paused writer is still a writer).
    let mut p = pending(t0, t0);
    let now = t0 + Duration::from_secs(30);
    assert_eq!(
        p.wait_until(Some(true), &complete, now, settle),
        Some(now + Duration::from_secs(1))
    );
    assert_eq!(p.since, now);
    // Observed and nobody writes it: goes at once, settle or not.
    let mut p = pending(t0, t0);
    assert_eq!(p.wait_until(Some(false), &complete, t0, settle), None);
    // Cannot be observed: size and mtime stable for settle_ms first.
    let mut p = pending(t0, t0);
    assert_eq!(
        p.wait_until(None, &complete, t0 + ms(100), settle),
        Some(t0 + settle)
    );
    assert_eq!(p.wait_until(None, &complete, t0 + settle, settle), None);
    // Shorter than declared: the grace (40 settles, at least 5 s) from
    // its last change. Observed, one wake-up at its end; unobserved,
    // looked at every settle_ms.
    let grace = Duration::from_secs(10);
    let mut p = pending(t0, t0);
    assert_eq!(
        p.wait_until(Some(false), &short, t0 + ms(300), settle),
        Some(t0 + grace)
    );
    assert_eq!(
        p.wait_until(None, &short, t0 + ms(300), settle),
        Some(t0 + ms(300) + settle)
    );
    // Once the grace is over it goes (to be quarantined, most likely).
    assert_eq!(p.wait_until(Some(false), &short, t0 + grace, settle), None);
    assert_eq!(p.wait_until(None, &short, t0 + grace, settle), None);
    // A retry after a failure gets no second grace.
    let mut p = pending(t0, t0);
    p.retry = true;
    assert_eq!(
        p.wait_until(Some(false), &short, t0 + ms(300), settle),
        None
    );
}

#[test]
fn backoff_doubles_from_one_second_to_five_minutes() {
    // docs/guide.md and design §4.4: 1 s doubling, capped at 5 min. Whole
    // Durations, so a sub-second error cannot hide behind as_secs.
    let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300];
    let got: Vec<Duration> = (1..=12).map(backoff).collect();
    let want: Vec<Duration> = expected.iter().map(|&s| Duration::from_secs(s)).collect();
    assert_eq!(got, want);
    // The cap holds however many attempts there were (no overflow of
    // the shift), and the schedule never shrinks.
    for n in [13, 31, 32, 33, 64, 1_000, u32::MAX] {
        assert_eq!(backoff(n), Duration::from_secs(300), "attempt {n}");
    }
    for n in 1..100 {
        assert!(backoff(n + 1) >= backoff(n), "attempt {n}");
    }
}

#[test]
fn the_grace_is_forty_settles_but_at_least_five_seconds() {
    assert_eq!(truncation_grace(Duration::ZERO), Duration::from_secs(5));
    assert_eq!(
        truncation_grace(Duration::from_millis(50)),
        Duration::from_secs(5)
    );
    assert_eq!(
        truncation_grace(Duration::from_millis(250)),
        Duration::from_secs(10)
    );
    // Rechecks never spin, even with settle_ms = 0.
    assert_eq!(recheck(Duration::ZERO), Duration::from_millis(100));
    assert_eq!(
        recheck(Duration::from_millis(250)),
        Duration::from_millis(250)
    );
}

#[test]
fn jitter_stays_within_ten_percent() {
    let d = Duration::from_secs(300);
    for _ in 0..100 {
        let j = jittered(d);
        assert!(
            j >= Duration::from_secs(270) && j <= Duration::from_secs(330),
            "{j:?}"
        );
    }
    assert_eq!(jittered(Duration::from_millis(3)), Duration::from_millis(3));
    // The whole ±10 % is used, by the millisecond, whatever the noise.
    let ms = Duration::from_millis;
    assert_eq!(jittered_by(d, 0), ms(270_000));
    assert_eq!(jittered_by(d, 59_999), ms(329_999));
    assert_eq!(jittered_by(d, 60_000 + 30_000), ms(300_000));
}
