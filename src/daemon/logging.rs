//! Logging for the daemon: `tracing-subscriber` to stderr, text or JSON,
//! without timestamps and colours under systemd (`JOURNAL_STREAM` set: the
//! journal adds its own), with a filter that a reload can replace.

use std::io::IsTerminal;

use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use super::config::LogFormat;

/// Replaces the level filter of the running subscriber.
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

/// The filter for a configured level: a plain `info` keeps the `notify`
/// crate to warnings (it logs, at info, routine inotify bookkeeping such as
/// a watch already gone with its folder) and its poll backend to errors
/// (it warns of each file gone between listing and looking, routine on
/// shared storage; it hands the same error to the watcher, which decides —
/// design §4.8); any other directive as given.
fn directive(level: &str) -> String {
    if level.trim().eq_ignore_ascii_case("info") {
        "info,notify=warn,notify::poll=error".into()
    } else {
        level.to_string()
    }
}

impl LevelHandle {
    pub fn set(&self, level: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(directive(level)).map_err(|e| e.to_string())?;
        self.0.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. Call once.
pub fn init(level: &str, format: LogFormat) -> LevelHandle {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = EnvFilter::try_new(directive(level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = !journal && std::io::stderr().is_terminal();
    type Below = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
    let output: Box<dyn Layer<Below> + Send + Sync> = match (format, journal) {
        (LogFormat::Json, _) => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr),
        ),
        (LogFormat::Text, true) => Box::new(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        ),
        (LogFormat::Text, false) => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr),
        ),
    };
    // The filter sits right on the Registry, so its handle can reload it.
    let subscriber = Registry::default().with(filter).with(output);
    let _ = subscriber.try_init();
    LevelHandle(handle)
}

#[cfg(test)]
impl LevelHandle {
    /// A handle to a filter no subscriber uses, for in-process tests of
    /// the coordinator (the process's logging is not touched).
    pub(crate) fn detached() -> (LevelHandle, impl Sized) {
        let (layer, handle) = reload::Layer::new(EnvFilter::new("info"));
        (LevelHandle(handle), layer)
    }
}
