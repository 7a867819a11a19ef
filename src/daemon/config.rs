//! The daemon's configuration (design §4.6), in two stages: [`RawConfig`]
//! mirrors the TOML exactly (unknown keys rejected, every key optional),
//! [`Config::from_raw`] validates it and resolves relative paths against the
//! config file's folder. Never touches the filesystem beyond reading the
//! file in [`load`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::archive::OriginalsAction;
use crate::bilevel::Conversion;
use crate::compress::DEFAULT_MAX_PIXELS;

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
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub paths: RawPaths,
    pub compress: RawCompress,
    pub originals: RawOriginals,
    pub workers: RawWorkers,
    pub watch: RawWatch,
    pub daemon: RawDaemon,
    pub log: RawLog,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPaths {
    pub inbox: PathBuf,
    pub archive: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            inbox: "inbox".into(),
            archive: "archive".into(),
            done: "done".into(),
            failed: "failed".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCompress {
    pub conversion: String,
    pub verify: bool,
    pub max_pixels: u64,
}

impl Default for RawCompress {
    fn default() -> Self {
        RawCompress {
            conversion: "dither".into(),
            verify: true,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOriginals {
    pub action: String,
}

impl Default for RawOriginals {
    fn default() -> Self {
        RawOriginals {
            action: "move".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWorkers {
    pub threads: usize,
    pub queue: usize,
}

impl Default for RawWorkers {
    fn default() -> Self {
        RawWorkers {
            threads: 0,
            queue: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWatch {
    pub backend: String,
    pub recursive: bool,
    pub settle_ms: u64,
    pub rescan_secs: u64,
    pub ignore: Vec<String>,
}

impl Default for RawWatch {
    fn default() -> Self {
        RawWatch {
            backend: "native".into(),
            recursive: true,
            settle_ms: 250,
            rescan_secs: 300,
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDaemon {
    pub shutdown_timeout_secs: u64,
    /// This host's id in claims, ledgers and locks; empty: the hostname.
    pub host: String,
    /// Claims of a host whose heartbeat has not changed for this long are
    /// taken over; 0: never.
    pub takeover_secs: u64,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            shutdown_timeout_secs: 30,
            host: String::new(),
            takeover_secs: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            format: "text".into(),
        }
    }
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

/// The four folders, absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub inbox: PathBuf,
    pub archive: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub paths: Paths,
    pub conversion: Conversion,
    pub verify: bool,
    pub max_pixels: u64,
    pub originals: OriginalsAction,
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
    /// The validated form, for printing (`check-config`, `Display`).
    /// Reloads compare the typed fields above.
    pub raw: RawConfig,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        message,
    }
}

impl Config {
    /// Validates `raw`; relative paths are resolved against `base`.
    pub fn from_raw(mut raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let resolve = |p: &Path| -> PathBuf { normalize(&base.join(p)) };
        let paths = Paths {
            inbox: resolve(&raw.paths.inbox),
            archive: resolve(&raw.paths.archive),
            done: resolve(&raw.paths.done),
            failed: resolve(&raw.paths.failed),
        };
        let named = [
            ("inbox", &paths.inbox),
            ("archive", &paths.archive),
            ("done", &paths.done),
            ("failed", &paths.failed),
        ];
        for (i, (a, pa)) in named.iter().enumerate() {
            for (b, pb) in &named[i + 1..] {
                if pa == pb {
                    return Err(invalid(format!(
                        "paths.{a} and paths.{b} are the same folder ({})",
                        pa.display()
                    )));
                }
                if *a == "inbox" && pa.starts_with(pb) {
                    return Err(invalid(format!(
                        "paths.inbox ({}) is inside paths.{b}",
                        pa.display()
                    )));
                }
            }
        }
        let conversion = match raw.compress.conversion.as_str() {
            "dither" => Conversion::Dither,
            "threshold" => Conversion::Threshold,
            other => {
                return Err(invalid(format!(
                    "compress.conversion must be \"dither\" or \"threshold\", not {other:?}"
                )));
            }
        };
        if raw.compress.max_pixels == 0 {
            return Err(invalid("compress.max_pixels must be at least 1".into()));
        }
        let originals = match raw.originals.action.as_str() {
            "move" => OriginalsAction::Move,
            "keep" => OriginalsAction::Keep,
            "delete" => OriginalsAction::Delete,
            other => {
                return Err(invalid(format!(
                    "originals.action must be \"move\", \"keep\" or \"delete\", not {other:?}"
                )));
            }
        };
        if raw.workers.threads > 1024 {
            return Err(invalid(format!(
                "workers.threads = {} is more than 1024",
                raw.workers.threads
            )));
        }
        let threads = match raw.workers.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if raw.workers.queue == 0 || raw.workers.queue > 1_000_000 {
            return Err(invalid(format!(
                "workers.queue must be 1 to 1000000, not {}",
                raw.workers.queue
            )));
        }
        let backend = match raw.watch.backend.as_str() {
            "native" => Backend::Native,
            "poll" => Backend::Poll,
            "auto" => Backend::Auto,
            other => {
                return Err(invalid(format!(
                    "watch.backend must be \"native\", \"poll\" or \"auto\", not {other:?}"
                )));
            }
        };
        if raw.watch.settle_ms > 3_600_000 {
            return Err(invalid(format!(
                "watch.settle_ms = {} is more than an hour",
                raw.watch.settle_ms
            )));
        }
        let mut globs = GlobSetBuilder::new();
        for pattern in &raw.watch.ignore {
            let glob = Glob::new(pattern).map_err(|e| invalid(format!("watch.ignore: {e}")))?;
            globs.add(glob);
        }
        let ignore = globs
            .build()
            .map_err(|e| invalid(format!("watch.ignore: {e}")))?;
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
        let log_format = match raw.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(format!(
                    "log.format must be \"text\" or \"json\", not {other:?}"
                )));
            }
        };
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
            verify: raw.compress.verify,
            max_pixels: raw.compress.max_pixels,
            originals,
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
            raw,
        })
    }

    /// The built-in defaults, relative to `base`.
    pub fn defaults(base: &Path) -> Config {
        Config::from_raw(RawConfig::default(), base).expect("BUG: the defaults are valid")
    }
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

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
    parse(&text, base)
        .map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
        .and_then(|c| {
            c.paths
                .check_on_disk()
                .map_err(|message| ConfigError::Invalid {
                    path: Some(path.to_path_buf()),
                    message,
                })?;
            Ok(c)
        })
}

impl Paths {
    /// The folders as they are on disk (design §4.6): an inbox that exists
    /// but is not a folder, and any two folders that are one (through a
    /// symlink or `..`), or an output folder that lies inside the inbox
    /// only through an alias (the watcher would archive its own outputs,
    /// since it leaves alone only what is lexically below the inbox), are
    /// errors. Folders not created yet are judged by their nearest
    /// existing ancestor. The one check here that reads the filesystem;
    /// run at start, at reload and by `check-config`.
    pub fn check_on_disk(&self) -> Result<(), String> {
        if self.inbox.exists() && !self.inbox.is_dir() {
            return Err(format!(
                "paths.inbox ({}) is not a folder",
                self.inbox.display()
            ));
        }
        let named = [
            ("inbox", &self.inbox),
            ("archive", &self.archive),
            ("done", &self.done),
            ("failed", &self.failed),
        ];
        let real: Vec<PathBuf> = named.iter().map(|(_, p)| resolved(p)).collect();
        for (i, (a, pa)) in named.iter().enumerate() {
            for (j, (b, pb)) in named.iter().enumerate().skip(i + 1) {
                if real[i] == real[j] {
                    return Err(format!(
                        "paths.{a} ({}) and paths.{b} ({}) are the same folder ({})",
                        pa.display(),
                        pb.display(),
                        real[i].display()
                    ));
                }
            }
            if i > 0 && real[i].starts_with(&real[0]) && !pa.starts_with(&self.inbox) {
                return Err(format!(
                    "paths.{a} ({}) is inside the inbox through a symlink ({}): \
                     the daemon would archive its own outputs",
                    pa.display(),
                    real[i].display()
                ));
            }
            if i > 0 && real[0].starts_with(&real[i]) {
                return Err(format!(
                    "paths.inbox ({}) is inside paths.{a} ({})",
                    self.inbox.display(),
                    real[i].display()
                ));
            }
        }
        Ok(())
    }
}

/// `path` with symlinks resolved: its nearest existing ancestor
/// canonicalized, the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A log level, or EnvFilter directives. A directive without `=` that is
/// not a level names a target to log at every level and nothing else, so
/// a typo such as `"inof"` would silently switch off all of the daemon's
/// logging: such a directive must name rlewatch itself to be accepted.
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

/// Removes `.` and `..` components lexically (no symlink resolution: the
/// folders may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Config {
    /// The effective configuration as TOML.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = toml::to_string(&self.raw).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults_relative_to_the_file() {
        let c = parse("", Path::new("/etc/rlewatch")).unwrap();
        assert_eq!(c.paths.inbox, Path::new("/etc/rlewatch/inbox"));
        assert_eq!(c.paths.failed, Path::new("/etc/rlewatch/failed"));
        assert_eq!(c.conversion, Conversion::Dither);
        assert!(c.verify);
        assert_eq!(c.originals, OriginalsAction::Move);
        assert_eq!(c.queue, 256);
        assert_eq!(c.settle, Duration::from_millis(250));
        assert_eq!(c.rescan, Some(Duration::from_secs(300)));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
        assert!(c.threads >= 1);
    }

    #[test]
    fn every_key_of_the_spec_is_accepted() {
        let text = r#"
            [paths]
            inbox   = "/var/spool/rlewatch/inbox"
            archive = "../archive"
            done    = "done"
            failed  = "failed"
            [compress]
            conversion = "threshold"
            verify     = false
            max_pixels = 1_000
            [originals]
            action = "delete"
            [workers]
            threads = 3
            queue   = 1
            [watch]
            backend     = "poll"
            recursive   = false
            settle_ms   = 10
            rescan_secs = 0
            ignore      = ["*.scan", "drafts/**"]
            [daemon]
            shutdown_timeout_secs = 5
            [log]
            level  = "rlewatch=debug"
            format = "json"
        "#;
        let c = parse(text, Path::new("/srv/x")).unwrap();
        assert_eq!(c.paths.inbox, Path::new("/var/spool/rlewatch/inbox"));
        assert_eq!(c.paths.archive, Path::new("/srv/archive"));
        assert_eq!(c.conversion, Conversion::Threshold);
        assert_eq!(c.originals, OriginalsAction::Delete);
        assert_eq!((c.threads, c.queue), (3, 1));
        assert_eq!(c.backend, Backend::Poll);
        assert_eq!(c.rescan, None);
        assert!(c.ignore.is_match("a.scan"));
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| parse(text, Path::new("/x")).unwrap_err().to_string();
        assert!(err("[paths]\ninbx = \"a\"").contains("unknown field `inbx`"));
        assert!(err("[compress]\nconversion = \"fancy\"").contains("compress.conversion must be"));
        assert!(err("[originals]\naction = \"shred\"").contains("originals.action must be"));
        assert!(err("[workers]\nqueue = 0").contains("workers.queue"));
        assert!(err("[watch]\nignore = [\"a{\"]").contains("watch.ignore"));
        assert!(err("[log]\nlevel = \"=\"").contains("log.level"));
        assert!(
            err("[paths]\narchive = \"inbox\"")
                .contains("paths.inbox and paths.archive are the same folder")
        );
        assert!(err("[paths]\ninbox = \"archive/in\"").contains("is inside paths.archive"));
        // A typo that EnvFilter would take as a target (logging nothing).
        assert!(err("[log]\nlevel = \"bogus!!\"").contains("neither a level"));
        assert!(err("[log]\nlevel = \"inof\"").contains("neither a level"));
        for ok in [
            "debug",
            "WARN",
            "info,notify=warn",
            "rlewatch=debug",
            "rlewatch::daemon",
        ] {
            let text = format!("[log]\nlevel = {ok:?}");
            assert!(parse(&text, Path::new("/srv")).is_ok(), "{ok}");
        }
    }
}
