//! Signals (design §4.5): the handlers, registered first thing in `main`,
//! and the thread that turns signals into messages for the coordinator.
//! Never touches the coordinator's state itself.

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// Signals, as messages to the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    Reload,
    Shutdown,
    /// SIGUSR1 (`rlewatch retry --now`): retry every file in backoff now.
    RetryNow,
}

/// Registers the signal handlers. Call first thing in `main`: a SIGHUP
/// before this would kill the process.
pub fn register_signals() -> std::io::Result<Signals> {
    // The lease probe (design §4.2) holds a read lease for microseconds; a
    // writer opening the file then makes the kernel send the holder SIGIO,
    // whose default action would end the process.
    // SAFETY: setting a signal's disposition to "ignore" has no
    // preconditions and installs no handler.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    Signals::new([SIGHUP, SIGTERM, SIGINT, SIGUSR1])
}

/// Turns signals into messages: SIGHUP a reload, SIGUSR1 a retry of the
/// files in backoff, the first SIGTERM or SIGINT a shutdown, a second one
/// an immediate exit.
pub(super) fn signal_loop(mut signals: Signals, control: Sender<Control>) {
    let mut terminating = false;
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                let _ = control.send(Control::Reload);
            }
            SIGUSR1 => {
                let _ = control.send(Control::RetryNow);
            }
            _ if terminating => {
                eprintln!(
                    "rlewatch: second termination signal: exiting now (files in progress stay claimed and are finished at the next start)"
                );
                std::process::exit(1);
            }
            _ => {
                terminating = true;
                let _ = control.send(Control::Shutdown);
            }
        }
    }
}
