//! Logging for the daemon: `tracing-subscriber` to stderr, text or JSON,
//! or, when stderr is the systemd journal, native journal entries through
//! `tracing-journald` (structured fields: `MESSAGE_ID`, `RLEWATCH_*`,
//! `PRIORITY` from the level; docs/operations.md, "Journal fields"), with
//! a filter that a reload can replace.
//!
//! Stderr is the journal when `$JOURNAL_STREAM` names its device and inode
//! (systemd.exec(5)): a variable merely inherited by a daemon started from
//! a unit's shell, its stderr elsewhere, does not count. Then entries go
//! only to the journal's socket, never also to stderr (no duplicates); if
//! that socket cannot be reached (a sandbox without AF_UNIX, a container
//! without journald), the lines go to stderr as text or JSON, without
//! timestamps and colours (the journal adds its own), and one warning
//! says so.
//!
//! Each line names its event by a short target, the last segment of the
//! module that logged it (`report`, `reload`, `dispose`), not the full
//! module path; other crates' targets (`notify::inotify`) stay whole.
//! Filter directives still match the full path (`rlewatch::daemon=debug`).

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use super::config::LogFormat;
use super::journal;

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

/// An event's fields on a text line: the message, then any other field as
/// ` name=value`, as tracing-subscriber's default does, but without the
/// journal's fields ([`journal::is_journal_field`]: the message says the
/// same in words) and the `log.*` fields of records from the `log` crate.
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = TextVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct TextVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for TextVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || journal::is_journal_field(name) || name.starts_with("log.") {
            return;
        }
        let space = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{space}{value:?}")
        } else {
            write!(self.writer, "{space}{name}={value:?}")
        };
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

/// True when stderr is the journal's stream: `$JOURNAL_STREAM` is
/// `DEVICE:INODE` (decimal) of the very file stderr is (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    names_stream(&value.to_string_lossy(), meta.dev(), meta.ino())
}

/// True when `JOURNAL_STREAM`'s value names device `dev`, inode `ino`.
fn names_stream(value: &str, dev: u64, ino: u64) -> bool {
    value
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

/// The journal layer: the fields as the daemon names them (no `F_`
/// prefix: `message_id` is `MESSAGE_ID`), `SYSLOG_IDENTIFIER=rlewatch`
/// whatever the binary is called, and priorities by syslog's meaning:
/// INFO, the routine line per file, is informational (6), not the
/// crate's default notice (5).
fn journal_layer() -> std::io::Result<tracing_journald::Layer> {
    use tracing_journald::{Priority, PriorityMappings};
    Ok(tracing_journald::layer()?
        .with_field_prefix(None)
        .with_syslog_identifier("rlewatch".into())
        .with_priority_mappings(PriorityMappings {
            error: Priority::Error,
            warn: Priority::Warning,
            info: Priority::Informational,
            debug: Priority::Debug,
            trace: Priority::Debug,
        }))
}

/// Runs `log` with its events sent to the journal, natively, when stderr
/// is the journal and its socket can be reached; returns whether it did
/// (otherwise `log` is not run). For one-shot commands run by the unit
/// (`rlewatch reload` as `ExecReload=`), whose events must carry their
/// `MESSAGE_ID` as the daemon's do; the process's own logging is not
/// touched.
pub fn to_journal(log: impl FnOnce()) -> bool {
    if !stderr_is_journal() {
        return false;
    }
    let Ok(layer) = journal_layer() else {
        return false;
    };
    tracing::subscriber::with_default(Registry::default().with(layer), log);
    true
}

/// Installs the global subscriber. Call once.
pub fn init(level: &str, format: LogFormat) -> LevelHandle {
    let under_journal = stderr_is_journal();
    let filter = EnvFilter::try_new(directive(level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = !under_journal && std::io::stderr().is_terminal();
    type Below = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
    let mut unreachable = None;
    let native = if under_journal {
        journal_layer().map_err(|e| unreachable = Some(e)).ok()
    } else {
        None
    };
    let output: Box<dyn Layer<Below> + Send + Sync> = match (native, format) {
        (Some(layer), _) => Box::new(layer),
        (None, LogFormat::Json) => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(Json)
                .with_writer(std::io::stderr),
        ),
        (None, LogFormat::Text) => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .fmt_fields(TextFields)
                .event_format(Text {
                    time: !under_journal,
                })
                .with_writer(std::io::stderr),
        ),
    };
    // The filter sits right on the Registry, so its handle can reload it.
    let subscriber = Registry::default().with(filter).with(output);
    let installed = subscriber.try_init().is_ok();
    if let (true, Some(e)) = (installed, unreachable) {
        tracing::warn!(
            "stderr is the journal, but its socket {JOURNAL_SOCKET} cannot be reached ({e}): \
             logging to stderr, without the structured fields (MESSAGE_ID, RLEWATCH_SOURCE, …); \
             the unit needs RestrictAddressFamilies=AF_UNIX and that socket in its mount namespace"
        );
    }
    LevelHandle(handle)
}

/// Where `tracing-journald` sends entries (the native protocol's fixed
/// path), for the message when it cannot.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

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
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `log` prints through a subscriber with `layer`'s formatting.
    fn lines<L>(layer: impl FnOnce(Buffer) -> L, log: impl FnOnce()) -> String
    where
        L: Layer<Registry> + Send + Sync + 'static,
    {
        let buf = Buffer::default();
        let subscriber = Registry::default().with(layer(buf.clone()));
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// An archived event tagged as the coordinator tags it.
    fn tagged_event() {
        let (source, source_raw) = journal::path(std::path::Path::new("sub/a.bmp"));
        tracing::info!(
            message_id = journal::ARCHIVED,
            rlewatch_source = %source,
            rlewatch_source_raw = source_raw.as_deref(),
            rlewatch_archive = "sub/a.rle",
            rlewatch_host = "scanner-1",
            "archived /in/sub/a.bmp -> /arc/sub/a.rle: 10 -> 5 bytes"
        );
    }

    #[test]
    fn text_lines_leave_the_journal_fields_out_and_keep_the_others() {
        let out = lines(
            |buf| {
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .fmt_fields(TextFields)
                    .event_format(Text { time: false })
                    .with_writer(move || buf.clone())
            },
            || {
                tagged_event();
                tracing::warn!(attempts = 3, "plain {}", "words");
            },
        );
        assert_eq!(
            out,
            " INFO tests: archived /in/sub/a.bmp -> /arc/sub/a.rle: 10 -> 5 bytes\n \
             WARN tests: plain words attempts=3\n"
        );
    }

    #[test]
    fn json_lines_carry_the_journal_fields() {
        let out = lines(
            |buf| {
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(Json)
                    .with_writer(move || buf.clone())
            },
            tagged_event,
        );
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        let f = &v["fields"];
        assert_eq!(f["message_id"], "f31fd86b424d4093947edea39e34f61e");
        assert_eq!(f["rlewatch_source"], "sub/a.bmp");
        assert_eq!(f["rlewatch_archive"], "sub/a.rle");
        assert_eq!(f["rlewatch_host"], "scanner-1");
        // A UTF-8 name has no _raw field.
        assert!(f.get("rlewatch_source_raw").is_none(), "{v}");
    }

    #[test]
    fn journal_stream_must_name_stderrs_device_and_inode() {
        assert!(names_stream("64769:1234", 64769, 1234));
        assert!(!names_stream("64769:1234", 64769, 1235));
        assert!(!names_stream("64769:1234", 8, 1234));
        for bad in [
            "",
            ":",
            "64769",
            "64769:",
            "x:1234",
            "64769:1234:5",
            " 64769:1234",
        ] {
            assert!(!names_stream(bad, 64769, 1234), "{bad:?}");
        }
    }

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
