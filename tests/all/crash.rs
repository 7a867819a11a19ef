//! Crash consistency (design §4.4): SIGKILL the daemon at random moments
//! while files keep arriving, restart it each time, then check that every
//! dropped file is accounted for exactly once: archived (and equal to the
//! reference output) with its original in done/, or quarantined with its
//! reason; no temporary file anywhere, no duplicate archive.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use crate::harness::{Daemon, data, files_below, wait_until};

/// (vector, good?) dropped in turn.
const KINDS: &[(&str, bool)] = &[
    ("pal1", true),
    ("pal8", true),
    ("rgb24", true),
    ("rgb16", true),
    ("pal4rle", true),
    ("bad", false),
];

/// A small deterministic generator for kill moments.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    const FILES: usize = 360;
    const KILLS: usize = 24;
    let mut d = Daemon::start("[watch]\nsettle_ms = 20\nrescan_secs = 1\n");
    let inbox = d.inbox();
    let staging = d.path("staging");
    fs::create_dir(&staging).unwrap();
    let mut sources = BTreeMap::new();
    for i in 0..FILES {
        let (kind, _) = KINDS[i % KINDS.len()];
        let name = format!("f{i:03}-{kind}.bmp");
        let bytes = if kind == "bad" {
            b"BMnot really a bitmap".to_vec()
        } else {
            fs::read(data(&format!("{kind}.bmp"))).unwrap()
        };
        fs::write(staging.join(&name), &bytes).unwrap();
        sources.insert(name, (kind, bytes));
    }

    // Files keep arriving on another thread while the daemon is killed.
    let names: Vec<String> = sources.keys().cloned().collect();
    let feeder = {
        let (staging, inbox) = (staging.clone(), inbox.clone());
        std::thread::spawn(move || {
            for (i, name) in names.iter().enumerate() {
                fs::rename(staging.join(name), inbox.join(name)).unwrap();
                if i % 3 == 0 {
                    std::thread::sleep(Duration::from_millis(20)); // pacing arrivals over the kills
                }
            }
        })
    };

    let mut rng = Lcg(0x5eed);
    let mut kills = 0;
    let mut while_arriving = 0;
    while kills < KILLS {
        // A random moment: the point is to hit every phase of the work.
        std::thread::sleep(Duration::from_millis(20 + rng.below(120)));
        if !feeder.is_finished() {
            while_arriving += 1;
        }
        d.signal(libc::SIGKILL);
        assert!(
            d.wait_exit(Duration::from_secs(10)).is_some(),
            "SIGKILL did not end the daemon"
        );
        kills += 1;
        d.spawn();
    }
    feeder.join().unwrap();

    // Let it finish: nothing left in the inbox, no claim either (the
    // daemon's lock and heartbeat are not counted).
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(120), || files_below(&inbox).is_empty()),
        "inbox never emptied: {:?}",
        files_below(&inbox)
    );
    d.signal(libc::SIGTERM);
    assert!(
        d.wait_exit(Duration::from_secs(40))
            .is_some_and(|s| s.success())
    );

    let archive = files_below(&d.path("archive"));
    let done = files_below(&d.path("done"));
    let failed = files_below(&d.path("failed"));
    for (dir, list) in [("archive", &archive), ("done", &done), ("failed", &failed)] {
        assert!(
            list.iter()
                .all(|p| !p.to_string_lossy().contains(".rlewatch-")),
            "temporary files left in {dir}: {list:?}"
        );
    }
    let (mut archived, mut quarantined) = (0, 0);
    for (name, (kind, bytes)) in &sources {
        let stem = name.trim_end_matches(".bmp");
        if *kind == "bad" {
            assert_eq!(
                fs::read(d.path(&format!("failed/{name}"))).unwrap(),
                *bytes,
                "{name}"
            );
            let note = fs::read_to_string(d.path(&format!("failed/{name}.error.txt"))).unwrap();
            assert!(
                note.contains("reason: unsupported BMP variant"),
                "{name}: {note}"
            );
            quarantined += 1;
        } else {
            let rle = fs::read(d.path(&format!("archive/{stem}.rle")))
                .unwrap_or_else(|_| panic!("{name} not archived"));
            assert!(
                rle == fs::read(data(&format!("{kind}.dither.rle"))).unwrap(),
                "{name}: archive differs"
            );
            assert_eq!(
                fs::read(d.path(&format!("done/{name}"))).unwrap(),
                *bytes,
                "{name}: original not in done/"
            );
            archived += 1;
        }
    }
    // Exactly once: nothing else anywhere (no numbered duplicates).
    assert_eq!(archive.len(), archived, "extra archives: {archive:?}");
    assert_eq!(done.len(), archived, "extra originals: {done:?}");
    assert_eq!(
        failed.len(),
        2 * quarantined,
        "extra quarantined files: {failed:?}"
    );
    println!(
        "crash test: {FILES} files, {KILLS} SIGKILLs ({while_arriving} while files were arriving), {archived} archived exactly once, {quarantined} quarantined, \
         drained {:.1} s after the last restart",
        started.elapsed().as_secs_f64()
    );
}
