//! The configuration file exactly as written: every key optional, unknown
//! keys rejected; the defaults are the built-in configuration
//! (`rlewatch.toml(5)`, `docs/rlewatch.toml.5`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::compress::DEFAULT_MAX_PIXELS;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub paths: RawPaths,
    pub compress: RawCompress,
    pub originals: RawOriginals,
    pub failed: RawFailed,
    pub workers: RawWorkers,
    pub watch: RawWatch,
    pub daemon: RawDaemon,
    pub log: RawLog,
    pub status: RawStatus,
    pub metrics: RawMetrics,
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
    pub formats: Vec<String>,
}

impl Default for RawCompress {
    fn default() -> Self {
        RawCompress {
            conversion: "dither".into(),
            verify: true,
            max_pixels: DEFAULT_MAX_PIXELS,
            formats: crate::formats::FormatSet::DECODED
                .iter()
                .map(|f| f.name().to_string())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOriginals {
    pub action: String,
    /// Originals in done/ older than this many days are removed once their
    /// archive verifies; 0: never (design §4.4, "Retention").
    pub done_retention_days: u64,
}

impl Default for RawOriginals {
    fn default() -> Self {
        RawOriginals {
            action: "move".into(),
            done_retention_days: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFailed {
    /// Quarantined files and their notes older than this many days are
    /// removed; 0: never.
    pub retention_days: u64,
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

/// `[status]`: what `rlewatch status --check` calls stuck.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStatus {
    /// A file retrying or waiting longer than this is a WARNING.
    pub stuck_secs: u64,
}

impl Default for RawStatus {
    fn default() -> Self {
        RawStatus { stuck_secs: 600 }
    }
}

/// `[metrics]`: the Prometheus textfile (node_exporter's textfile
/// collector).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// The `*.prom` file to rewrite; empty: off.
    pub textfile: PathBuf,
    /// How often it is rewritten.
    pub interval_secs: u64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            textfile: PathBuf::new(),
            interval_secs: 15,
        }
    }
}
