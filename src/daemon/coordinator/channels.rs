//! The coordinator's channels (design §4.1): what the watcher saw, a
//! wake-up from the watcher, reports back from the pipeline and control
//! messages from the signal thread. The coordinator keeps the sending
//! ends it hands out (to a watch, to the workers) and the receiving ends
//! its event loop waits on.

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::daemon::pipeline::JobReport;
use crate::daemon::signals::Control;
use crate::daemon::watch::Seen;

/// Every channel into the coordinator, both ends.
pub(super) struct Channels {
    /// From the watcher, `queue` deep: a full channel makes the watcher
    /// mark a rescan instead of blocking.
    pub(super) events_tx: Sender<Seen>,
    pub(super) events: Receiver<Seen>,
    pub(super) wake_tx: Sender<()>,
    pub(super) wake: Receiver<()>,
    /// From the worker loops and finishers.
    pub(super) reports_tx: Sender<JobReport>,
    pub(super) reports: Receiver<JobReport>,
    /// From the signal thread (or a test).
    pub(super) control: Receiver<Control>,
}

impl Channels {
    /// Events `queue` deep; `control` as given.
    pub(super) fn new(queue: usize, control: Receiver<Control>) -> Channels {
        let (events_tx, events) = bounded(queue);
        let (wake_tx, wake) = bounded(1);
        let (reports_tx, reports) = unbounded();
        Channels {
            events_tx,
            events,
            wake_tx,
            wake,
            reports_tx,
            reports,
            control,
        }
    }
}
