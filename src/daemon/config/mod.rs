//! The daemon's configuration (design §4.6), in two stages: [`RawConfig`]
//! mirrors the TOML exactly (unknown keys rejected, every key optional),
//! [`Config::from_raw`] validates it and resolves relative paths against the
//! config file's folder. Touches the filesystem only to read the file in
//! [`load`] and, in [`Paths::check_on_disk`], to look at the folders.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::archive::OriginalsAction;
use crate::bilevel::Conversion;
use crate::formats::{Format, FormatSet};

mod paths;
mod raw;
#[cfg(test)]
mod tests;

pub use paths::{FolderError, Paths};
pub use raw::{
    RawCompress, RawConfig, RawDaemon, RawFailed, RawLog, RawMetrics, RawOriginals, RawPaths,
    RawStatus, RawWatch, RawWorkers,
};

/// A configuration problem, naming the file when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}", .path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default(), .message)]
    Invalid {
        path: Option<PathBuf>,
        message: String,
    },
    /// The folders as they are on disk ([`Paths::check_on_disk`]).
    #[error("{}: {source}", .path.display())]
    Folders {
        path: PathBuf,
        source: Box<FolderError>,
    },
}

/// How the inbox is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Native,
    Poll,
    /// Poll on network and FUSE filesystems, native elsewhere.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub paths: Paths,
    /// The formats archived (`compress.formats`); a file of another is
    /// quarantined, saying so.
    pub formats: FormatSet,
    pub conversion: Conversion,
    pub verify: bool,
    pub max_pixels: u64,
    pub originals: OriginalsAction,
    /// How long an original stays in done/ before retention may remove it
    /// (`originals.done_retention_days`); `None`: for ever.
    pub done_retention: Option<Duration>,
    /// How long a quarantined file stays in failed/ (`failed.retention_days`);
    /// `None`: for ever.
    pub failed_retention: Option<Duration>,
    /// Worker threads (0 in the file means one per CPU, resolved here).
    pub threads: usize,
    pub queue: usize,
    pub backend: Backend,
    pub recursive: bool,
    pub settle: Duration,
    /// `None`: no periodic rescan.
    pub rescan: Option<Duration>,
    pub ignore_patterns: Vec<String>,
    pub ignore: GlobSet,
    pub shutdown_timeout: Duration,
    /// This host's id (design §4.7): names its claim folder, ledger file
    /// and lock.
    pub host: String,
    /// How long another host's heartbeat may stay unchanged before its
    /// claims are taken over (design §4.8); `None`: never.
    pub takeover: Option<Duration>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// `[status] stuck_secs`: a file retrying or waiting longer is stuck
    /// (`rlewatch status --check` warns).
    pub stuck: Duration,
    /// `[metrics]`: the Prometheus textfile, when configured.
    pub metrics: Option<MetricsFile>,
    /// The validated form, for printing (`check-config`, `Display`).
    /// Reloads compare the typed fields above.
    pub raw: RawConfig,
}

/// `n` days; `None` for 0 (never). Capped at 100 years, far beyond any
/// file's age, so that a huge number cannot overflow a time.
fn days(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n.min(36_500) * 86_400))
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        message,
    }
}

/// Where and how often the metrics textfile is written (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFile {
    /// An absolute path ending in `.prom` (node_exporter reads no other).
    pub path: PathBuf,
    pub interval: Duration,
}

/// The `[metrics]` table checked; a relative path resolves against `base`.
fn metrics(raw: &RawMetrics, base: &Path) -> Result<Option<MetricsFile>, ConfigError> {
    if raw.interval_secs == 0 || raw.interval_secs > 86_400 {
        return Err(invalid(format!(
            "metrics.interval_secs must be 1 to 86400, not {}",
            raw.interval_secs
        )));
    }
    if raw.textfile.as_os_str().is_empty() {
        return Ok(None);
    }
    let path = base.join(&raw.textfile);
    let name_ok = path
        .file_name()
        .is_some_and(|n| n.as_encoded_bytes().ends_with(b".prom") && n.len() > 5);
    if !name_ok {
        return Err(invalid(format!(
            "metrics.textfile = {:?}: node_exporter's textfile collector reads only files \
             named *.prom",
            raw.textfile
        )));
    }
    Ok(Some(MetricsFile {
        path,
        interval: Duration::from_secs(raw.interval_secs),
    }))
}

/// `value` as one of `options` (name, meaning); otherwise an error that
/// names `key` and every option.
fn choice<T: Copy>(key: &str, value: &str, options: &[(&str, T)]) -> Result<T, ConfigError> {
    if let Some(&(_, meaning)) = options.iter().find(|(name, _)| *name == value) {
        return Ok(meaning);
    }
    let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
    let list = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    };
    Err(invalid(format!("{key} must be {list}, not {value:?}")))
}

/// The `[compress]` table checked: the conversion, the pixel limit, then
/// the formats.
fn compress(raw: &RawCompress) -> Result<(Conversion, FormatSet), ConfigError> {
    let conversion = choice(
        "compress.conversion",
        &raw.conversion,
        &[
            ("dither", Conversion::Dither),
            ("threshold", Conversion::Threshold),
        ],
    )?;
    if raw.max_pixels == 0 {
        return Err(invalid("compress.max_pixels must be at least 1".into()));
    }
    Ok((conversion, formats(&raw.formats)?))
}

/// `compress.formats` checked: known names, at least one, JPEG refused
/// with its reason.
fn formats(names: &[String]) -> Result<FormatSet, ConfigError> {
    let known: Vec<String> = FormatSet::DECODED
        .iter()
        .map(|f| format!("{:?}", f.name()))
        .collect();
    let mut set = Vec::new();
    for name in names {
        match Format::from_name(name) {
            Some(Format::Jpeg) => {
                return Err(invalid(format!(
                    "compress.formats: \"jpeg\" cannot be archived: {}",
                    crate::compress::jpeg_refused()
                )));
            }
            Some(f) => set.push(f),
            None => {
                return Err(invalid(format!(
                    "compress.formats: {name:?} is not a format; the formats are {}",
                    known.join(", ")
                )));
            }
        }
    }
    if set.is_empty() {
        return Err(invalid(format!(
            "compress.formats is empty; list at least one of {}",
            known.join(", ")
        )));
    }
    Ok(FormatSet::of(&set))
}

/// The `[workers]` table checked; the thread count resolved (0: one per
/// CPU).
fn workers(raw: &RawWorkers) -> Result<usize, ConfigError> {
    if raw.threads > 1024 {
        return Err(invalid(format!(
            "workers.threads = {} is more than 1024",
            raw.threads
        )));
    }
    let threads = match raw.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    if raw.queue == 0 || raw.queue > 1_000_000 {
        return Err(invalid(format!(
            "workers.queue must be 1 to 1000000, not {}",
            raw.queue
        )));
    }
    Ok(threads)
}

/// The `[watch]` table checked: the backend, the settle time, the ignore
/// patterns.
fn watch(raw: &RawWatch) -> Result<(Backend, GlobSet), ConfigError> {
    let backend = choice(
        "watch.backend",
        &raw.backend,
        &[
            ("native", Backend::Native),
            ("poll", Backend::Poll),
            ("auto", Backend::Auto),
        ],
    )?;
    if raw.settle_ms > 3_600_000 {
        return Err(invalid(format!(
            "watch.settle_ms = {} is more than an hour",
            raw.settle_ms
        )));
    }
    Ok((backend, ignore_set(&raw.ignore)?))
}

/// The `watch.ignore` patterns as one matcher.
fn ignore_set(patterns: &[String]) -> Result<GlobSet, ConfigError> {
    let mut globs = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|e| invalid(format!("watch.ignore: {e}")))?;
        globs.add(glob);
    }
    globs
        .build()
        .map_err(|e| invalid(format!("watch.ignore: {e}")))
}

impl Config {
    /// Validates `raw`; relative paths are resolved against `base`.
    pub fn from_raw(mut raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let paths = Paths::resolve(&raw.paths, base)?;
        // Checked in the order of the file's tables, so that of several
        // mistakes the first in the file is named.
        let (conversion, formats) = compress(&raw.compress)?;
        let originals = choice(
            "originals.action",
            &raw.originals.action,
            &[
                ("move", OriginalsAction::Move),
                ("keep", OriginalsAction::Keep),
                ("delete", OriginalsAction::Delete),
            ],
        )?;
        let threads = workers(&raw.workers)?;
        let (backend, ignore) = watch(&raw.watch)?;
        if raw.daemon.shutdown_timeout_secs == 0 {
            return Err(invalid(
                "daemon.shutdown_timeout_secs must be at least 1".into(),
            ));
        }
        check_log_level(&raw.log.level)?;
        if raw.daemon.host.is_empty() {
            raw.daemon.host = hostname();
        }
        check_host(&raw.daemon.host)?;
        let log_format = choice(
            "log.format",
            &raw.log.format,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?;
        if raw.status.stuck_secs == 0 {
            return Err(invalid("status.stuck_secs must be at least 1".into()));
        }
        let metrics = metrics(&raw.metrics, base)?;
        if let Some(m) = &metrics {
            raw.metrics.textfile = m.path.clone();
        }
        // Keep the resolved form, so printing shows what is in effect.
        raw.paths = RawPaths {
            inbox: paths.inbox.clone(),
            archive: paths.archive.clone(),
            done: paths.done.clone(),
            failed: paths.failed.clone(),
        };
        raw.workers.threads = threads;
        Ok(Config {
            paths,
            conversion,
            formats,
            verify: raw.compress.verify,
            max_pixels: raw.compress.max_pixels,
            originals,
            done_retention: days(raw.originals.done_retention_days),
            failed_retention: days(raw.failed.retention_days),
            threads,
            queue: raw.workers.queue,
            backend,
            recursive: raw.watch.recursive,
            settle: Duration::from_millis(raw.watch.settle_ms),
            rescan: (raw.watch.rescan_secs > 0).then(|| Duration::from_secs(raw.watch.rescan_secs)),
            ignore_patterns: raw.watch.ignore.clone(),
            ignore,
            shutdown_timeout: Duration::from_secs(raw.daemon.shutdown_timeout_secs),
            host: raw.daemon.host.clone(),
            takeover: (raw.daemon.takeover_secs > 0)
                .then(|| Duration::from_secs(raw.daemon.takeover_secs)),
            log_level: raw.log.level.clone(),
            log_format,
            stuck: Duration::from_secs(raw.status.stuck_secs),
            metrics,
            raw,
        })
    }

    /// The built-in defaults, relative to `base`.
    pub fn defaults(base: &Path) -> Config {
        Config::from_raw(RawConfig::default(), base).expect("BUG: the defaults are valid")
    }
}

/// The built-in configuration as a configuration file (`check-config
/// --defaults`): every key with its default, folders relative (to the
/// file's folder once saved), `workers.threads = 0` (one per CPU) and
/// `daemon.host = ""` (the hostname) as written, not resolved.
pub fn defaults_toml() -> String {
    toml::to_string(&RawConfig::default()).expect("BUG: the defaults serialise")
}

/// Parses TOML text; relative paths resolve against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(toml_message(text, &e)))?;
    Config::from_raw(raw, base)
}

/// A TOML error as `line L, column C: message`, followed by the offending
/// line with a caret under the spot: the reason stays on the first line
/// (for logs), the picture below it (for people).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    format!(
        "line {line_no}, column {column}: {message}\n    {line}\n    {:>column$}",
        "^"
    )
}

/// Reads and validates a config file, and checks its folders on disk.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_unchecked(path).and_then(|c| {
        c.paths
            .check_on_disk()
            .map_err(|source| ConfigError::Folders {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        Ok(c)
    })
}

/// Reads and validates a config file without looking at its folders
/// (`rlewatch status` reports a folder that is wrong, and goes on).
pub fn load_unchecked(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .join(path)
    };
    let base = abs.parent().unwrap_or(Path::new("/"));
    parse(&text, base).map_err(|e| match e {
        ConfigError::Invalid { message, .. } => ConfigError::Invalid {
            path: Some(path.to_path_buf()),
            message,
        },
        other => other,
    })
}

/// The machine's host name as a heartbeat records it (`localhost` when
/// it has none), whatever `daemon.host` says.
pub fn machine_name() -> String {
    hostname()
}

/// The machine's host name (`localhost` when it has none).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: a buffer of the given length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if check_host(&name).is_ok() {
        name
    } else {
        "localhost".into()
    }
}

/// A host id is a file name: 1–64 of `A-Z a-z 0-9 . _ -`, not starting
/// with a dot.
fn check_host(host: &str) -> Result<(), ConfigError> {
    let ok = !host.is_empty()
        && host.len() <= 64
        && !host.starts_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "daemon.host = {host:?}: a host id is 1 to 64 letters, digits, '.', '_' or '-', \
             not starting with '.'"
        )))
    }
}

/// A log level, or EnvFilter directives. A directive without `=` that is
/// not a level names a target to log at every level and nothing else, so
/// a typo such as `"inof"` would silently switch off all of the daemon's
/// logging: such a directive must name rlewatch itself to be accepted.
fn check_log_level(level: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| invalid(format!("log.level {level:?}: {e}")))?;
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=') && !directive.contains('[');
        let is_level = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive));
        if bare && !is_level && !directive.starts_with("rlewatch") {
            return Err(invalid(format!(
                "log.level {level:?}: {directive:?} is neither a level (error, warn, info, \
                 debug, trace, off) nor a target=level directive"
            )));
        }
    }
    Ok(())
}

impl fmt::Display for Config {
    /// The effective configuration as TOML.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = toml::to_string(&self.raw).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}
