//! The Prometheus textfile (`[metrics] textfile`, docs/operations.md):
//! the daemon's counters and gauges in the text exposition format that
//! node_exporter's textfile collector reads, rewritten every
//! `interval_secs` and at stop. The unit has no network, so nothing
//! listens: node_exporter serves the file. Written to a temporary name in
//! the same folder (not `*.prom`, so the collector never reads it half
//! written), fsynced, then renamed over the file.
//!
//! The format is written by hand: it is a few lines of `# HELP`, `# TYPE`
//! and `name{label="value"} number`, and the crates that encode it
//! (`prometheus`, `prometheus-client`) want the values kept in their own
//! registry of atomic types, while here one thread owns plain counters
//! (`super::stats`); a renderer over those is smaller than the glue.
//! Labels are fixed, low-cardinality sets (reason classes, `done`/
//! `failed`, the version): never a file name. No timestamps.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::stats::{Histogram, Stats};
use crate::archive::ReasonClass;
use crate::heartbeat::unix;

/// What the coordinator knows now, beside the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    pub waiting: u64,
    pub oldest_waiting_secs: f64,
    pub retrying: u64,
    pub in_progress: u64,
    pub ignored: u64,
    pub workers: u64,
    /// False in the file written at stop.
    pub running: bool,
}

/// The exposition text for `stats` and `g`.
pub fn render(stats: &Stats, g: &Gauges) -> String {
    let mut out = String::new();
    let o = &mut out;
    head(
        o,
        "rlewatch_build_info",
        "gauge",
        "rlewatch's version, as a label; always 1.",
    );
    line(
        o,
        "rlewatch_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    one(
        o,
        "rlewatch_start_time_seconds",
        "gauge",
        "When the daemon started, Unix time.",
        unix(stats.started),
    );
    one(
        o,
        "rlewatch_running",
        "gauge",
        "1 while the daemon runs; 0 in the file it writes as it stops.",
        f64::from(u8::from(g.running)),
    );
    one(
        o,
        "rlewatch_workers",
        "gauge",
        "Compression worker threads.",
        g.workers as f64,
    );
    one(
        o,
        "rlewatch_files_archived_total",
        "counter",
        "Files archived since the daemon started.",
        stats.archived as f64,
    );
    head(
        o,
        "rlewatch_files_failed_total",
        "counter",
        "Files quarantined to the failed folder since the daemon started, by reason class.",
    );
    for c in ReasonClass::ALL {
        line(
            o,
            "rlewatch_files_failed_total",
            &[("reason", c.name())],
            stats.failed_of(c) as f64,
        );
    }
    one(
        o,
        "rlewatch_retries_total",
        "counter",
        "Failed attempts that were scheduled for a retry.",
        stats.retries as f64,
    );
    one(
        o,
        "rlewatch_bytes_read_total",
        "counter",
        "Bytes of source images archived.",
        stats.bytes_in as f64,
    );
    one(
        o,
        "rlewatch_bytes_written_total",
        "counter",
        "Bytes of .rle archives written.",
        stats.bytes_out as f64,
    );
    one(
        o,
        "rlewatch_ignored_files_total",
        "counter",
        "Distinct names in the inbox found ignored (no pattern takes them).",
        stats.ignored_total as f64,
    );
    head(
        o,
        "rlewatch_removed_files_total",
        "counter",
        "Files removed by retention, by folder.",
    );
    line(
        o,
        "rlewatch_removed_files_total",
        &[("what", "done")],
        stats.removed_done as f64,
    );
    line(
        o,
        "rlewatch_removed_files_total",
        &[("what", "failed")],
        stats.removed_failed as f64,
    );
    one(
        o,
        "rlewatch_inbox_waiting_files",
        "gauge",
        "Files waiting in the inbox to be archived (not retrying).",
        g.waiting as f64,
    );
    one(
        o,
        "rlewatch_inbox_oldest_waiting_seconds",
        "gauge",
        "How long the longest-waiting file has waited unchanged.",
        g.oldest_waiting_secs,
    );
    one(
        o,
        "rlewatch_retrying_files",
        "gauge",
        "Files failing and retried with backoff.",
        g.retrying as f64,
    );
    one(
        o,
        "rlewatch_in_progress_files",
        "gauge",
        "Files being archived now (not retrying).",
        g.in_progress as f64,
    );
    one(
        o,
        "rlewatch_ignored_files",
        "gauge",
        "Names in the inbox now that no pattern takes.",
        g.ignored as f64,
    );
    one(
        o,
        "rlewatch_last_archived_timestamp_seconds",
        "gauge",
        "When this daemon last archived a file, Unix time; 0 before its first.",
        stats.last_archived.map_or(0.0, unix),
    );
    histogram(
        o,
        "rlewatch_archive_latency_seconds",
        "From a file judged complete to its archive recorded.",
        &stats.latency,
    );
    histogram(
        o,
        "rlewatch_file_processing_seconds",
        "One attempt: read, encode, verify, publish, record, file the original.",
        &stats.processing,
    );
    out
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn one(o: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    head(o, name, kind, help);
    line(o, name, &[], value);
}

fn line(o: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    o.push_str(name);
    if !labels.is_empty() {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = write!(o, "{{{}}}", l.join(","));
    }
    let _ = writeln!(o, " {}", number(value));
}

fn histogram(o: &mut String, name: &str, help: &str, h: &Histogram) {
    head(o, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for (le, n) in h.cumulative() {
        let le = if le.is_infinite() {
            "+Inf".to_string()
        } else {
            number(le)
        };
        line(o, &bucket, &[("le", &le)], n as f64);
    }
    line(o, &format!("{name}_sum"), &[], h.sum);
    line(o, &format!("{name}_count"), &[], h.count as f64);
}

/// A label value escaped as the format says (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints
/// them (both are valid Go `ParseFloat` input).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Writes `text` as `path`: a temporary `.NAME.PID.tmp` beside it,
/// mode 0644 whatever the umask, fsynced, renamed over it, the folder
/// fsynced.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temp)?;
        // Read by node_exporter, another user: 0644 whatever the umask
        // (the unit's UMask=0027 would make it 0640, unreadable there).
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn every_metric_has_help_and_type_and_no_timestamps() {
        let mut s = Stats::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        s.failed(ReasonClass::Invalid);
        s.archived(
            (1000, 10),
            Some(Duration::from_millis(300)),
            Duration::from_millis(20),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100),
        );
        let text = render(
            &s,
            &Gauges {
                waiting: 3,
                running: true,
                ..Gauges::default()
            },
        );
        let mut typed = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if l.starts_with('#') {
                continue;
            }
            let name = l.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| typed.contains(*b)))
                .unwrap_or(name);
            assert!(typed.contains(base), "no TYPE before {l}");
            // name, optional labels, one value: no timestamp.
            let value_part = l.rsplit_once('}').map_or(l, |(_, v)| v);
            assert_eq!(
                value_part.split_whitespace().count(),
                if value_part == l { 2 } else { 1 },
                "{l}"
            );
        }
        assert!(text.contains("rlewatch_files_failed_total{reason=\"invalid\"} 1\n"));
        assert!(text.contains("rlewatch_files_failed_total{reason=\"too_large\"} 0\n"));
        assert!(text.contains("rlewatch_files_archived_total 1\n"));
        assert!(text.contains("rlewatch_start_time_seconds 1700000000\n"));
        assert!(text.contains("rlewatch_last_archived_timestamp_seconds 1700000100\n"));
        assert!(text.contains("rlewatch_archive_latency_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(text.contains("rlewatch_archive_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("rlewatch_archive_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("rlewatch_inbox_waiting_files 3\n"));
    }
}
