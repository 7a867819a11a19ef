//! The coordinator's own deadlines (design §4.1, §4.5): the periodic
//! rescan, the systemd watchdog ping, the `STATUS=` line, the end of the
//! shutdown grace — and from them and the other due times, how long the
//! event loop may sleep. Pure: time is passed in (the rescan's jitter
//! aside).

use std::time::{Duration, Instant};

use crate::daemon::settle::jittered;

/// How often the `STATUS=` line is sent.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The longest the event loop sleeps with nothing due.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// When each periodic chore is next due.
#[derive(Debug)]
pub(super) struct Deadlines {
    rescan: Option<Instant>,
    watchdog: Option<Instant>,
    status: Instant,
    /// When a shutdown gives up on the files in flight; `None` while
    /// running.
    stopping: Option<Instant>,
}

impl Deadlines {
    /// From `now`: a rescan every `rescan` (jittered), a watchdog ping
    /// every `watchdog`, the status at once.
    pub(super) fn new(
        now: Instant,
        rescan: Option<Duration>,
        watchdog: Option<Duration>,
    ) -> Deadlines {
        Deadlines {
            rescan: rescan.map(|d| now + jittered(d)),
            watchdog: watchdog.map(|d| now + d),
            status: now,
            stopping: None,
        }
    }

    /// Whether the periodic rescan is due; if so, the next one is set
    /// `every` (jittered) from `now`.
    pub(super) fn rescan_due(&mut self, now: Instant, every: Option<Duration>) -> bool {
        let due = self.rescan.is_some_and(|t| now >= t);
        if due {
            self.rescan_from(now, every);
        }
        due
    }

    /// The next periodic rescan `every` (jittered) from `now` (a reload).
    pub(super) fn rescan_from(&mut self, now: Instant, every: Option<Duration>) {
        self.rescan = every.map(|d| now + jittered(d));
    }

    /// Whether a watchdog ping is due; if so, the next one is set `every`
    /// from `now`.
    pub(super) fn watchdog_due(&mut self, now: Instant, every: Option<Duration>) -> bool {
        let due = self.watchdog.is_some_and(|t| now >= t);
        if due {
            self.watchdog = every.map(|d| now + d);
        }
        due
    }

    /// Whether the `STATUS=` line is due; if so, the next one is set.
    pub(super) fn status_due(&mut self, now: Instant) -> bool {
        let due = now >= self.status;
        if due {
            self.status = now + STATUS_EVERY;
        }
        due
    }

    /// A shutdown began: it gives up on the files in flight at `deadline`.
    pub(super) fn stop_by(&mut self, deadline: Instant) {
        self.stopping = Some(deadline);
    }

    /// When a shutdown that began gives up; `None` while running.
    pub(super) fn stopping(&self) -> Option<Instant> {
        self.stopping
    }

    /// How long the event loop may sleep from `now`: until the first of
    /// these deadlines and the `others` (due files, hosts, new folders),
    /// at most a second, never a time already past (zero then).
    pub(super) fn sleep(&self, now: Instant, others: &[Option<Instant>]) -> Duration {
        let mine = [self.rescan, self.watchdog, self.stopping];
        let next = mine
            .iter()
            .chain(others)
            .flatten()
            .fold(now + MAX_SLEEP, |next, &t| next.min(t));
        next.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_sleeps_until_the_first_deadline_at_most_a_second_never_in_the_past() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let d = Deadlines::new(t0, None, Some(ms(300)));
        // Idle: the watchdog, or a second.
        assert_eq!(d.sleep(t0, &[]), ms(300));
        assert_eq!(d.sleep(t0, &[Some(t0 + ms(100)), None]), ms(100));
        let idle = Deadlines::new(t0, None, None);
        assert_eq!(idle.sleep(t0, &[None]), MAX_SLEEP);
        // A deadline already past: no sleep, not a wrap-around.
        assert_eq!(d.sleep(t0 + ms(400), &[]), Duration::ZERO);
        // A rescan an hour away does not keep the loop from its second.
        let hourly = Deadlines::new(t0, Some(Duration::from_secs(3600)), None);
        assert_eq!(hourly.sleep(t0, &[]), MAX_SLEEP);
    }

    #[test]
    fn each_deadline_fires_once_and_is_set_again_from_when_it_fired() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Deadlines::new(t0, None, Some(ms(300)));
        assert!(!d.watchdog_due(t0 + ms(299), Some(ms(300))));
        assert!(d.watchdog_due(t0 + ms(310), Some(ms(300))));
        assert!(!d.watchdog_due(t0 + ms(320), Some(ms(300))));
        assert_eq!(d.sleep(t0 + ms(310), &[]), ms(300));
        // The status at once, then every five seconds.
        assert!(d.status_due(t0));
        assert!(!d.status_due(t0 + ms(4999)));
        assert!(d.status_due(t0 + STATUS_EVERY));
        // A periodic rescan within ±10 % of its interval, then again.
        let every = Some(Duration::from_secs(10));
        let mut r = Deadlines::new(t0, every, None);
        assert!(!r.rescan_due(t0 + ms(8_999), every));
        assert!(r.rescan_due(t0 + ms(11_000), every));
        assert!(!r.rescan_due(t0 + ms(11_001), every));
        assert!(r.sleep(t0 + ms(11_000), &[]) == MAX_SLEEP);
        // No rescans configured: never due.
        assert!(!Deadlines::new(t0, None, None).rescan_due(t0 + ms(99_999), None));
        // Stopping: the grace's end is a deadline too.
        d.stop_by(t0 + ms(50));
        assert_eq!(d.stopping(), Some(t0 + ms(50)));
        assert_eq!(d.sleep(t0, &[]), ms(50));
    }
}
