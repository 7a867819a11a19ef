//! systemd integration (design §4.5): `READY=1`, `RELOADING=1` with
//! `MONOTONIC_USEC`, `STOPPING=1`, `STATUS=` and watchdog pings. Outside
//! systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

#[derive(Debug, Clone, Copy)]
pub struct Systemd {
    /// Half the watchdog interval, when systemd asked for pings.
    pub watchdog: Option<Duration>,
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

fn monotonic_usec() -> i128 {
    // SAFETY: clock_gettime fills the zeroed timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000 + i128::from(ts.tv_nsec) / 1000
}

impl Systemd {
    pub fn new() -> Systemd {
        Systemd {
            watchdog: sd_notify::watchdog_enabled().map(|d| d / 2),
        }
    }
    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }
    pub fn reloading(&self) {
        send(&[
            NotifyState::Reloading,
            NotifyState::MonotonicUsec(monotonic_usec()),
        ]);
    }
    pub fn stopping(&self) {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing files in progress"),
        ]);
    }
    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }
    pub fn watchdog(&self) {
        send(&[NotifyState::Watchdog]);
    }
}

impl Default for Systemd {
    fn default() -> Self {
        Systemd::new()
    }
}
