//! Logging for the daemon: `tracing-subscriber` to stderr, text or JSON,
//! without timestamps and colours under systemd (`JOURNAL_STREAM` set: the
//! journal adds its own), with a filter that a reload can replace.
//!
//! Each line names its event by a short target, the last segment of the
//! module that logged it (`report`, `reload`, `dispose`), not the full
//! module path; other crates' targets (`notify::inotify`) stay whole.
//! Filter directives still match the full path (`rlewatch::daemon=debug`).

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use super::config::LogFormat;

/// Replaces the level filter of the running subscriber.
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

/// Why a new level was not applied; the running filter stays.
#[derive(Debug, thiserror::Error)]
pub enum LevelError {
    #[error("{0}")]
    Parse(#[from] tracing_subscriber::filter::ParseError),
    #[error("{0}")]
    Reload(#[from] reload::Error),
}

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
    pub fn set(&self, level: &str) -> Result<(), LevelError> {
        let filter = EnvFilter::try_new(directive(level))?;
        Ok(self.0.reload(filter)?)
    }
}

/// The name a log line gives its event: the last segment of an rlewatch
/// module path, any other target whole.
fn short_target(target: &str) -> &str {
    match target.strip_prefix("rlewatch::") {
        Some(rest) => rest.rsplit("::").next().unwrap_or(rest),
        None => target,
    }
}

/// One line per event: `[time] LEVEL target: message fields`.
struct Text {
    time: bool,
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if self.time {
            SystemTime.format_time(&mut writer)?;
            writer.write_char(' ')?;
        }
        let level = *meta.level();
        if writer.has_ansi_escapes() {
            let colour = match level {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                Level::DEBUG => "34",
                Level::TRACE => "35",
            };
            write!(writer, "\x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(writer, "{level:>5} ")?;
        }
        write!(writer, "{}: ", short_target(meta.target()))?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// One JSON object per event, shaped as tracing-subscriber's own
/// (`timestamp`, `level`, `fields`, `target`), with the short target.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let object = serde_json::json!({
            "timestamp": timestamp,
            "level": meta.level().as_str(),
            "fields": fields.0,
            "target": short_target(meta.target()),
        });
        writeln!(writer, "{object}")
    }
}

/// An event's fields as JSON values.
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// Installs the global subscriber. Call once.
pub fn init(level: &str, format: LogFormat) -> LevelHandle {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = EnvFilter::try_new(directive(level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = !journal && std::io::stderr().is_terminal();
    type Below = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
    let output: Box<dyn Layer<Below> + Send + Sync> = match format {
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(Json)
                .with_writer(std::io::stderr),
        ),
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .event_format(Text { time: !journal })
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

#[cfg(test)]
mod tests {
    use super::short_target;

    #[test]
    fn rlewatch_targets_are_shortened_to_their_last_segment() {
        assert_eq!(
            short_target("rlewatch::daemon::coordinator::report"),
            "report"
        );
        assert_eq!(short_target("rlewatch::archive"), "archive");
        assert_eq!(short_target("rlewatch"), "rlewatch");
        assert_eq!(short_target("notify::inotify"), "notify::inotify");
    }
}
