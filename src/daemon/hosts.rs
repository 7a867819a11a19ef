//! Several hosts, one inbox (design §4.8): each daemon refreshes a
//! heartbeat file `INBOX/.rlewatch/hosts/HOST` (its state as JSON,
//! [`crate::heartbeat`]) and watches the others'.
//! A host whose heartbeat has not changed for `takeover_secs` — measured
//! on this host's monotonic clock from when the change was last *seen*,
//! so clocks that disagree do not matter — is taken for dead, and its
//! claims are taken over: each renamed into this host's claim folder (a
//! rename decides the race with any other host doing the same), unless a
//! live process on this machine holds it locked. A claim folder with no
//! heartbeat at all (a retired or renamed host id) is treated alike.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::claim;
use crate::layout::InboxLayout;

/// The heartbeats, this host's and what it has seen of the others'.
pub(super) struct Hosts {
    me: String,
    /// Where the heartbeats and claim folders are.
    layout: InboxLayout,
    timeout: Option<Duration>,
    beats: u64,
    /// Per other host: its heartbeat's content when last read, and when it
    /// was last seen to change (or first seen).
    seen: HashMap<String, (Vec<u8>, Instant)>,
    /// Silent hosts whose claims were found held by a live local process
    /// (said once until they change).
    held: std::collections::HashSet<String>,
    /// The heartbeat could not be written (said once until it can).
    failing: bool,
    pub(super) next: Instant,
}

impl Hosts {
    pub(super) fn new(inbox: &Path, me: &str, timeout: Option<Duration>) -> Hosts {
        Hosts {
            me: me.to_string(),
            layout: InboxLayout::new(inbox),
            timeout,
            beats: 0,
            seen: HashMap::new(),
            held: Default::default(),
            failing: false,
            next: Instant::now(),
        }
    }

    /// A new take-over timeout (a reload): the next beat and look at the
    /// others comes at once, at the new interval from then on.
    pub(super) fn set_timeout(&mut self, timeout: Option<Duration>) {
        if timeout != self.timeout {
            self.next = Instant::now();
        }
        self.timeout = timeout;
    }

    /// How often the heartbeat is refreshed and the others looked at: a
    /// fifth of the take-over timeout, within 1–30 s.
    pub(super) fn interval(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(30), |t| {
            (t / 5).clamp(Duration::from_secs(1), Duration::from_secs(30))
        })
    }

    /// Writes this host's heartbeat `hb` (its `beat` counted here); a
    /// failure is logged once until it works again.
    pub(super) fn write(&mut self, mut hb: crate::heartbeat::Heartbeat) {
        match self.beat(&mut hb) {
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(
                    "{}: cannot refresh the heartbeat: {e}; other hosts may take over this \
                     host's claims after their takeover_secs (said once until it works again)",
                    crate::display::shown(&self.layout.heartbeat(&self.me))
                );
            }
            Err(_) => {}
            Ok(()) => self.failing = false,
        }
    }

    /// Refreshes this host's heartbeat with `hb`; returns the hosts whose
    /// claims are due to be taken over.
    pub(super) fn tick(&mut self, now: Instant, hb: crate::heartbeat::Heartbeat) -> Vec<String> {
        self.next = now + self.interval();
        self.write(hb);
        let Some(timeout) = self.timeout else {
            return Vec::new();
        };
        let mut stale = Vec::new();
        for host in self.others() {
            let content = fs::read(self.layout.heartbeat(&host)).unwrap_or_default();
            let entry = self
                .seen
                .entry(host.clone())
                .or_insert_with(|| (content.clone(), now));
            if entry.0 != content {
                *entry = (content, now);
                self.held.remove(&host);
            } else if now.duration_since(entry.1) >= timeout {
                stale.push(host);
            }
        }
        stale
    }

    fn beat(&mut self, hb: &mut crate::heartbeat::Heartbeat) -> io::Result<()> {
        let dir = self.layout.hosts();
        // Not recursive: a missing inbox (a share unmounted) is not made
        // again by a heartbeat.
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if self.beats == 0 {
            // Temporary heartbeats an earlier run of this host left (a
            // SIGKILL between write and rename).
            let prefix = format!(".{}.", self.me);
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(&prefix) && name.ends_with(".tmp") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        self.beats += 1;
        // The beat counter makes every write's bytes differ, which is all
        // other hosts look at.
        hb.beat = self.beats;
        crate::heartbeat::write(&dir.join(&self.me), hb)
    }

    /// Host ids with a heartbeat or a claim folder, other than this one.
    fn others(&self) -> Vec<String> {
        let mut hosts: Vec<String> = [self.layout.hosts(), self.layout.claims_root()]
            .iter()
            .filter_map(|d| fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|h| *h != self.me && !h.starts_with('.'))
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// True the first time (until its heartbeat changes) that `host`'s
    /// claims are found held.
    pub(super) fn first_held(&mut self, host: &str) -> bool {
        self.held.insert(host.to_string())
    }

    /// Moves every claim of `host` that no live local process holds into
    /// `mine`; returns the claims taken (their new paths) and how many were
    /// found held.
    pub(super) fn take_over(&self, host: &str, mine: &Path) -> (Vec<PathBuf>, usize) {
        let theirs = self.layout.claims(host);
        // Scratch names its daemon left in the middle of a claim (design
        // §4.7) first: a newer arrival among them goes back to the inbox.
        if let Some(inbox) = self.layout.state().parent() {
            claim::sweep(&theirs, inbox);
        }
        let mut taken = Vec::new();
        let mut held = 0;
        for path in claim::list(&theirs) {
            let Ok(rel) = path.strip_prefix(&theirs) else {
                continue;
            };
            match take_one(&theirs, rel, mine) {
                Ok(Taken::Yes) => taken.push(mine.join(rel)),
                Ok(Taken::Held) => held += 1,
                Ok(Taken::No) => {}
                Err(e) => tracing::warn!(
                    "{}: cannot take over the claim: {e}",
                    crate::display::shown(&path)
                ),
            }
        }
        (taken, held)
    }
}

/// What became of one claim to take over.
enum Taken {
    Yes,
    /// A live process on this machine holds it locked.
    Held,
    /// Gone, or another host took it first.
    No,
}

/// Renames the claim `rel` of the folder `theirs` into `mine`, under the
/// same relative path, unless a live process holds it locked or another
/// host took it first. True when this host has it now.
fn take_one(theirs: &Path, rel: &Path, mine: &Path) -> io::Result<Taken> {
    let rel_dir = rel.parent().unwrap_or(Path::new(""));
    let Some(name) = rel.file_name() else {
        return Ok(Taken::No);
    };
    let from = match File::open(theirs.join(rel_dir)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Taken::No),
        Err(e) => return Err(e),
    };
    let file = match crate::durable::open_beneath(
        &from,
        Path::new(name),
        libc::O_RDONLY | libc::O_NONBLOCK,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Taken::No),
        Err(e) => return Err(e),
    };
    if !crate::durable::try_lock(&file)? {
        return Ok(Taken::Held); // a live daemon here is working on it
    }
    let to = claim::open_dir(mine, rel_dir)?;
    match crate::durable::rename_confirmed(&from, name, &to, &file) {
        Ok(()) => Ok(Taken::Yes),
        // Gone meanwhile, or another host took it first.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EEXIST)) => {
            Ok(Taken::No)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::Heartbeat;

    #[test]
    fn a_heartbeat_that_stops_changing_is_stale_after_the_timeout_only() {
        let d = tempfile::tempdir().unwrap();
        // The state folder the inbox lock makes (heartbeats do not make it).
        fs::create_dir(InboxLayout::new(d.path()).state()).unwrap();
        let t = Duration::from_secs(10);
        let mut a = Hosts::new(d.path(), "a", Some(t));
        let mut b = Hosts::new(d.path(), "b", Some(t));
        let t0 = Instant::now();
        let hb = Heartbeat::default;
        assert!(b.tick(t0, hb()).is_empty());
        assert!(a.tick(t0, hb()).is_empty()); // first sight of b: not stale
        // b keeps beating: never stale, however long.
        assert!(b.tick(t0 + t, hb()).is_empty());
        assert!(a.tick(t0 + t, hb()).is_empty());
        assert!(
            a.tick(t0 + t * 2 - Duration::from_millis(1), hb())
                .is_empty()
        );
        // b stops: stale once unchanged for the timeout, on a's clock.
        assert_eq!(a.tick(t0 + t * 2, hb()), ["b"]);
        // Its heartbeat is JSON that changes at every beat.
        let text = fs::read(InboxLayout::new(d.path()).heartbeat("b")).unwrap();
        let read = crate::heartbeat::parse(Path::new("b"), &text);
        assert!(read.is_err(), "the default's format is empty: {read:?}");
        assert!(String::from_utf8_lossy(&text).contains("\"beat\":2"));
    }

    #[test]
    fn a_corrupt_or_old_heartbeat_still_counts_by_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let layout = InboxLayout::new(d.path());
        fs::create_dir_all(layout.hosts()).unwrap();
        let t = Duration::from_secs(10);
        let mut a = Hosts::new(d.path(), "a", Some(t));
        let t0 = Instant::now();
        fs::write(layout.heartbeat("old"), "7 1234\n").unwrap();
        fs::write(layout.heartbeat("bad"), "{not json").unwrap();
        assert!(a.tick(t0, Heartbeat::default()).is_empty());
        // "bad" keeps changing (garbage, but changing): alive; "old" stops.
        fs::write(layout.heartbeat("bad"), "{not json either").unwrap();
        assert_eq!(a.tick(t0 + t, Heartbeat::default()), ["old"]);
    }

    #[test]
    fn claims_are_taken_over_unless_locked_by_a_live_process() {
        let d = tempfile::tempdir().unwrap();
        let theirs = claim::prepare(d.path(), "dead").unwrap();
        let mine = claim::prepare(d.path(), "me").unwrap();
        fs::create_dir(theirs.join("sub")).unwrap();
        fs::write(theirs.join("sub/x.bmp"), b"x").unwrap();
        fs::write(theirs.join("held.bmp"), b"h").unwrap();
        let held = File::open(theirs.join("held.bmp")).unwrap();
        assert!(crate::durable::try_lock(&held).unwrap());
        let h = Hosts::new(d.path(), "me", Some(Duration::from_secs(1)));
        assert_eq!(
            h.take_over("dead", &mine),
            (vec![mine.join("sub/x.bmp")], 1)
        );
        assert_eq!(fs::read(mine.join("sub/x.bmp")).unwrap(), b"x");
        assert!(theirs.join("held.bmp").exists());
        drop(held);
        assert_eq!(h.take_over("dead", &mine), (vec![mine.join("held.bmp")], 0));
        assert!(mine.join("held.bmp").exists());
    }
}
