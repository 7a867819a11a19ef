//! The daemon (`rlewatch run`, design §4): watch the inbox, let files settle,
//! hand them to a fixed thread pool that archives them, react to SIGHUP
//! (reload) and SIGTERM/SIGINT (drain and exit).
//!
//! Threads: notify's thread runs the watcher callback ([`watch::Handler`]),
//! which only does non-blocking sends onto the bounded channel; a signal
//! thread turns signals into messages; the *coordinator* (the thread that
//! called [`run`]) owns all state: files waiting to settle with their due
//! times, retries, what is in flight (its schedule), the worker threads,
//! the channels and its own deadlines, one role each. The pool runs exactly one long-lived worker loop per
//! thread (its own unbounded queue stays empty); the loops take files from
//! a channel the coordinator keeps a step ahead of them, encode each into a
//! temporary file and pass it to finisher threads, which fsync, verify,
//! publish and file the original while the worker encodes the next one.
//! At most four files per worker are handed out at a time; backpressure
//! stays on the disk: whatever is not in flight is still just a file in
//! the inbox.

pub mod completion;
pub mod config;
mod coordinator;
pub mod filter;
mod hosts;
pub mod journal;
pub mod lock;
pub mod logging;
pub mod metrics;
mod pipeline;
pub mod retention;
mod settle;
mod signals;
mod startup;
pub mod stats;
pub mod systemd;
pub mod watch;

use std::path::Path;

use anyhow::{Context, Result};
use crossbeam_channel::unbounded;
use signal_hook::iterator::Signals;

use config::Config;
use coordinator::Coordinator;
pub use signals::register_signals;

/// Runs the daemon until SIGTERM/SIGINT; `signals` must have been
/// registered first thing in `main` ([`register_signals`]).
pub fn run(config_path: Option<&Path>, signals: Signals) -> Result<()> {
    let config = match config_path {
        Some(p) => config::load(p)?,
        None => {
            let c = Config::defaults(
                &std::env::current_dir().context("cannot read the working directory")?,
            );
            c.paths.check_on_disk().map_err(anyhow::Error::msg)?;
            c
        }
    };
    let level = logging::init(&config.log_level, config.log_format);
    startup::make_folders(&config)?;
    let the_lock = lock::lock(&config.paths.inbox, &config.host)?;
    crate::faults::arm();
    // Stale temporary files are removed once the daemon is ready
    // (`Coordinator::start`), told from this instance's own by this token.
    crate::durable::set_temp_owner(&config.host);
    let ledger = std::sync::Arc::new(
        crate::ledger::Ledger::open(&config.paths.archive, &config.host).with_context(|| {
            format!(
                "{}: cannot read the ledger",
                crate::display::shown(
                    &crate::layout::ArchiveLayout::new(&config.paths.archive).ledger()
                )
            )
        })?,
    );

    let (control_tx, control) = unbounded();
    let signal_handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || signals::signal_loop(signals, control_tx))
        .context("cannot start the signal thread")?;

    let mut c = Coordinator::new(config_path, config, level, the_lock, ledger, control)?;
    c.start()?;
    c.run();

    signal_handle.close();
    let _ = signal_thread.join();
    c.stop();
    // What the last files left registered and unflushed (a claim's removal
    // of its inbox name, design §4.7, "Group commit") made durable before
    // the exit.
    crate::durable::group::flush();
    Ok(())
}

/// `rlewatch check-config`: validates and returns the effective
/// configuration as TOML.
pub fn check_config(path: &Path) -> Result<String> {
    Ok(config::load(path)?.to_string())
}
