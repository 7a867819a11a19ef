//! What the daemon counts and knows about its files, for the `STATUS=`
//! line, the heartbeat (`crate::heartbeat`) and the metrics textfile
//! (`super::metrics`): counters since the process started, two latency
//! histograms, and the files retrying and ignored. Owned by the
//! coordinator thread; pure (times are passed in), never touches the
//! filesystem.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::archive::ReasonClass;

/// Upper bounds (seconds) of the `rlewatch_archive_latency_seconds`
/// buckets: from a file judged complete to its archive recorded.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Upper bounds (seconds) of the `rlewatch_file_processing_seconds`
/// buckets: one attempt, from taking the file to its original filed.
pub const PROCESSING_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How many ignored names are remembered (each logged once); beyond it
/// they are still counted but may be logged again after a restart.
pub const IGNORED_MAX: usize = 10_000;

/// What [`Stats::ignored`] made of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// Seen for the first time: to be logged.
    First,
    /// Known already (or past the limit, said once).
    Already,
    /// The limit was reached just now: say so once.
    TooMany,
}

/// A Prometheus histogram with fixed buckets (cumulative when rendered).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one for `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// (upper bound, cumulative count) per bucket, `+Inf` last as
    /// `f64::INFINITY`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(b, c)| {
                total += c;
                (b, total)
            })
            .collect()
    }
}

/// A file waiting out a backoff after a failure (or being retried now).
#[derive(Debug, Clone, PartialEq)]
pub struct Retrying {
    /// Its path as dropped, relative to the inbox.
    pub rel: PathBuf,
    pub attempts: u32,
    pub error: String,
    pub next: SystemTime,
    /// When it first failed (since this process started).
    pub since: SystemTime,
}

/// The daemon's counters and what it knows of its files.
#[derive(Debug)]
pub struct Stats {
    pub started: SystemTime,
    pub archived: u64,
    /// Per [`ReasonClass::ALL`] index.
    pub failed: [u64; 6],
    pub retries: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Distinct names found ignored since start.
    pub ignored_total: u64,
    pub removed_done: u64,
    pub removed_failed: u64,
    pub last_archived: Option<SystemTime>,
    pub latency: Histogram,
    pub processing: Histogram,
    /// Files failing, by their path now (inbox or claim).
    pub retrying: BTreeMap<PathBuf, Retrying>,
    /// Names in the inbox no pattern takes, with why (logged once each).
    pub ignored: BTreeMap<PathBuf, String>,
    /// More than [`IGNORED_MAX`] ignored names were met (said once).
    ignored_overflow: bool,
    /// When each file in flight was judged complete and handed out.
    handed_out: HashMap<(u64, u64), Instant>,
    /// Archives this daemon wrote and recorded whose original is not filed
    /// yet (counted as archived when written, once).
    unfiled: std::collections::HashSet<PathBuf>,
    /// Something a reader of the heartbeat would see changed.
    pub dirty: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(SystemTime::now())
    }
}

impl Stats {
    pub fn new(started: SystemTime) -> Stats {
        Stats {
            started,
            archived: 0,
            failed: [0; 6],
            retries: 0,
            bytes_in: 0,
            bytes_out: 0,
            ignored_total: 0,
            removed_done: 0,
            removed_failed: 0,
            last_archived: None,
            latency: Histogram::new(&LATENCY_BUCKETS),
            processing: Histogram::new(&PROCESSING_BUCKETS),
            retrying: BTreeMap::new(),
            ignored: BTreeMap::new(),
            ignored_overflow: false,
            handed_out: HashMap::new(),
            unfiled: Default::default(),
            dirty: true,
        }
    }

    /// Every failure counted, whatever its class.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// A file judged complete was handed to a worker at `now`.
    pub fn handed_out(&mut self, key: (u64, u64), now: Instant) {
        self.handed_out.insert(key, now);
        self.dirty = true;
    }

    /// The file `key` is back from the pipeline, whatever happened.
    pub fn returned(&mut self, key: (u64, u64)) -> Option<Instant> {
        self.dirty = true;
        self.handed_out.remove(&key)
    }

    /// A file archived at `at`: `latency` since it was judged complete,
    /// `processing` its attempt.
    pub fn archived(
        &mut self,
        bytes: (u64, u64),
        latency: Option<Duration>,
        processing: Duration,
        at: SystemTime,
    ) {
        self.archived += 1;
        self.bytes_in += bytes.0;
        self.bytes_out += bytes.1;
        if let Some(l) = latency {
            self.latency.observe(l);
        }
        self.processing.observe(processing);
        self.last_archived = Some(at);
        self.dirty = true;
    }

    /// An archive written and recorded whose original could not be filed
    /// yet: archived all the same (its file is retried only to be filed),
    /// counted the first time it is reported (no timings: the attempt's
    /// are not known here).
    pub fn archived_unfiled(&mut self, archive: &Path, bytes: (u64, u64), at: SystemTime) {
        if self.unfiled.insert(archive.to_path_buf()) {
            self.archived += 1;
            self.bytes_in += bytes.0;
            self.bytes_out += bytes.1;
            self.last_archived = Some(at);
            self.dirty = true;
        }
    }

    /// The original of `archive` was filed (or found already archived).
    pub fn filed(&mut self, archive: &Path) {
        self.unfiled.remove(archive);
    }

    /// A file quarantined for a reason of `class`.
    pub fn failed(&mut self, class: ReasonClass) {
        let i = ReasonClass::ALL
            .iter()
            .position(|&c| c == class)
            .expect("BUG: every class is in ALL");
        self.failed[i] += 1;
        self.dirty = true;
    }

    /// How many failed for a reason of `class`.
    pub fn failed_of(&self, class: ReasonClass) -> u64 {
        ReasonClass::ALL
            .iter()
            .position(|&c| c == class)
            .map_or(0, |i| self.failed[i])
    }

    /// The files removed by retention so far (`[originals]
    /// done_retention_days`, `[failed] retention_days`), as the retention
    /// thread counts them.
    pub fn set_removed(&mut self, done: u64, failed: u64) {
        if (done, failed) != (self.removed_done, self.removed_failed) {
            (self.removed_done, self.removed_failed) = (done, failed);
            self.dirty = true;
        }
    }

    /// A failed attempt of the file now at `path` (`rel` as dropped; it
    /// may have been known as `earlier` paths, its inbox name before a
    /// claim): it is retried at `next`.
    #[allow(clippy::too_many_arguments)]
    pub fn retrying(
        &mut self,
        path: &Path,
        earlier: &[&Path],
        rel: &Path,
        attempts: u32,
        error: String,
        next: SystemTime,
        now: SystemTime,
    ) {
        self.retries += 1;
        let mut since = self.retrying.get(path).map_or(now, |r| r.since);
        for e in earlier {
            if *e != path
                && let Some(r) = self.retrying.remove(*e)
            {
                since = since.min(r.since);
            }
        }
        self.retrying.insert(
            path.to_path_buf(),
            Retrying {
                rel: rel.to_path_buf(),
                attempts,
                error,
                next,
                since,
            },
        );
        self.dirty = true;
    }

    /// The file at `path` is done with retrying (archived, quarantined,
    /// gone); also under its inbox name `dropped` (a claim's retry).
    pub fn not_retrying(&mut self, path: &Path, dropped: &Path) {
        let a = self.retrying.remove(path).is_some();
        let b = self.retrying.remove(dropped).is_some();
        self.dirty |= a || b;
    }

    /// Forgets the retrying files for which `still` is false (gone from
    /// the waiting list and not in flight: removed by someone).
    pub fn retain_retrying(&mut self, mut still: impl FnMut(&Path) -> bool) {
        let before = self.retrying.len();
        self.retrying.retain(|p, _| still(p));
        self.dirty |= self.retrying.len() != before;
    }

    /// A name the filter leaves alone, with why: `Told::First` the first
    /// time (to be logged). Past [`IGNORED_MAX`] names remembered, they
    /// are no longer told one by one (`Told::TooMany` once, to say so).
    pub fn ignored(&mut self, path: &Path, why: &str) -> Told {
        if self.ignored.contains_key(path) {
            return Told::Already;
        }
        if self.ignored.len() >= IGNORED_MAX {
            if self.ignored_overflow {
                return Told::Already;
            }
            self.ignored_overflow = true;
            return Told::TooMany;
        }
        self.ignored_total += 1;
        self.dirty = true;
        self.ignored.insert(path.to_path_buf(), why.to_string());
        Told::First
    }

    /// Forgets ignored names for which `still` is false (gone, renamed).
    pub fn retain_ignored(&mut self, mut still: impl FnMut(&Path) -> bool) {
        let before = self.ignored.len();
        self.ignored.retain(|p, _| still(p));
        self.dirty |= self.ignored.len() != before;
        if self.ignored.len() < IGNORED_MAX {
            self.ignored_overflow = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_value_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for ms in [50, 100, 101, 1000, 5000] {
            h.observe(Duration::from_millis(ms));
        }
        // le=0.1 holds 0.05 and 0.1 (inclusive), le=1 adds 0.101 and 1.0.
        assert_eq!(h.cumulative(), [(0.1, 2), (1.0, 4), (f64::INFINITY, 5)]);
        assert_eq!(h.count, 5);
        assert!((h.sum - 6.251).abs() < 1e-9);
    }

    #[test]
    fn a_retrying_file_keeps_its_first_failure_time_and_goes_when_done() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut s = Stats::new(t0);
        let (p, rel) = (Path::new("/in/a.bmp"), Path::new("a.bmp"));
        let claim = Path::new("/claims/a.bmp");
        s.retrying(p, &[], rel, 1, "e1".into(), t0, t0);
        // Retried from its claim now: one file, failing since t0.
        let t9 = t0 + Duration::from_secs(9);
        s.retrying(claim, &[p], rel, 2, "e2".into(), t0, t9);
        assert_eq!(s.retrying.len(), 1);
        let r = &s.retrying[claim];
        assert_eq!((r.attempts, r.error.as_str(), r.since), (2, "e2", t0));
        assert_eq!(s.retries, 2);
        s.not_retrying(claim, p);
        assert!(s.retrying.is_empty());
    }

    #[test]
    fn an_ignored_name_is_told_once_and_counted_once() {
        let mut s = Stats::default();
        assert_eq!(s.ignored(Path::new("/in/a.pdf"), "why"), Told::First);
        assert_eq!(s.ignored(Path::new("/in/a.pdf"), "why"), Told::Already);
        assert_eq!(s.ignored(Path::new("/in/b.pdf"), "why"), Told::First);
        assert_eq!(s.ignored_total, 2);
        s.retain_ignored(|p| p.ends_with("b.pdf"));
        assert_eq!(s.ignored.len(), 1);
        // Seen again after it went away: a new arrival, told again.
        assert_eq!(s.ignored(Path::new("/in/a.pdf"), "why"), Told::First);
    }

    #[test]
    fn past_the_limit_ignored_names_are_not_told_one_by_one_nor_again() {
        let mut s = Stats::default();
        for i in 0..IGNORED_MAX {
            assert_eq!(
                s.ignored(Path::new(&format!("/in/{i}.pdf")), "w"),
                Told::First
            );
        }
        assert_eq!(s.ignored(Path::new("/in/x.pdf"), "w"), Told::TooMany);
        // Not at every rescan after.
        assert_eq!(s.ignored(Path::new("/in/x.pdf"), "w"), Told::Already);
        assert_eq!(s.ignored(Path::new("/in/y.pdf"), "w"), Told::Already);
        assert_eq!(s.ignored_total, IGNORED_MAX as u64);
    }
}
