//! `rlewatch status` (docs/operations.md): what every daemon of one inbox
//! is doing and what waits, read from the disk alone — every host's
//! heartbeat (`crate::heartbeat`), the inbox scanned with the daemon's own
//! filter, the claim folders, the failed folder's notes and the ledgers'
//! newest day files — so it works with or without a daemon running, on
//! any host of a shared inbox, with no socket and no network. It writes
//! nothing but the acknowledgement file of `--ack`. [`Status`] is also
//! the `--json` document; [`check`] judges it for `--check`
//! (Monitoring Plugins), [`text`] prints it for people.

mod check;
mod gather;
mod text;

use serde::Serialize;

pub use check::{Verdict, check};
pub use gather::{Options, acknowledge, gather};
pub use text::text;

/// How `rlewatch status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    /// The Monitoring Plugins line.
    Check,
}

/// `rlewatch status`: loads the configuration (`None`: the built-in
/// defaults, folders relative to the working directory, as `run`),
/// records the acknowledgement when `ack`, gathers and prints. Returns the
/// exit code: the verdict's with [`Output::Check`] (3, UNKNOWN, when the
/// status cannot be gathered, its reason on the line), otherwise 0 (an
/// error is returned for the caller to print, exit 1).
pub fn command(config: Option<&std::path::Path>, output: Output, ack: bool) -> anyhow::Result<u8> {
    let run = || -> anyhow::Result<(Status, Option<f64>)> {
        // The folders are looked at by `gather`: one that is wrong (done/
        // replaced by a file) is a problem to report, not a reason to
        // report nothing.
        let (config, folders) = match config {
            Some(p) => {
                let c = crate::daemon::config::load_unchecked(p)?;
                let folders = c
                    .paths
                    .check_on_disk()
                    .err()
                    .map(|e| format!("{}: {e}", crate::display::shown(p)));
                (c, folders)
            }
            None => {
                use anyhow::Context;
                let cwd = std::env::current_dir().context("cannot read the working directory")?;
                let c = crate::daemon::config::Config::defaults(&cwd);
                let folders = c.paths.check_on_disk().err().map(|e| e.to_string());
                (c, folders)
            }
        };
        let now = std::time::SystemTime::now();
        let acked = if ack {
            Some(acknowledge(&config, now)?)
        } else {
            None
        };
        let mut s = gather(&config, Options { now })?;
        s.problems.extend(folders);
        Ok((s, acked))
    };
    match (run(), output) {
        (Err(e), Output::Check) => {
            println!("{}", Verdict::unknown_line(&crate::cli::error_line(&e)));
            Ok(Verdict::Unknown as u8)
        }
        (Err(e), _) => Err(e),
        (Ok((s, acked)), output) => {
            if let Some(t) = acked
                && output == Output::Text
            {
                println!(
                    "acknowledged the failed folder up to {}",
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t)
                    )
                );
            }
            match output {
                Output::Text => {
                    print!("{}", text(&s));
                    Ok(0)
                }
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                    Ok(0)
                }
                Output::Check => {
                    let (v, line) = check(&s);
                    println!("{line}");
                    Ok(v as u8)
                }
            }
        }
    }
}

/// Everything `status` found. Times are Unix seconds; ages seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When this was gathered.
    pub time: f64,
    pub inbox_path: String,
    /// `[status] stuck_secs` of the configuration read.
    pub stuck_secs: u64,
    pub hosts: Vec<Host>,
    /// Why the heartbeats could not be listed (`INBOX/.rlewatch` or its
    /// `hosts/` unreadable to the caller), or null: when set, `hosts` is
    /// not known and `--check` says UNKNOWN.
    pub hosts_unreadable: Option<String>,
    pub inbox: Inbox,
    /// Files failing and retried, by every live host.
    pub retrying: Vec<Retrying>,
    pub failed: Failed,
    pub archived: Archived,
    /// What could not be read (corrupt heartbeats, ledger lines), one line
    /// each naming the file.
    pub problems: Vec<String>,
}

/// One host id of the inbox: from its heartbeat, or only its claim folder.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub host: String,
    pub alive: bool,
    /// Why it is taken for alive or not, in words.
    pub why: String,
    pub pid: Option<u32>,
    pub version: Option<String>,
    /// The machine (hostname) it runs on.
    pub machine: Option<String>,
    /// `running`, `stopping`, `stopped`, or null when unknown.
    pub state: Option<String>,
    pub started: Option<f64>,
    pub heartbeat_age_secs: Option<f64>,
    pub interval_secs: Option<f64>,
    /// Its `[daemon] takeover_secs` (0: it takes over no claims).
    pub takeover_secs: Option<u64>,
    pub workers: Option<usize>,
    /// Counts since its start (null when unknown).
    pub counts: Option<crate::heartbeat::Counts>,
    pub in_progress: Vec<String>,
    pub in_progress_count: u64,
    /// Files this host has claimed (`INBOX/.rlewatch/claims/HOST`).
    pub claims: u64,
    pub oldest_claim_secs: Option<f64>,
}

/// The inbox as scanned now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inbox {
    /// Where `waiting` comes from: `heartbeats` (the live daemons': what
    /// they would still take) or `disk` (no daemon alive: the inbox
    /// scanned with the daemon's filter).
    pub source: String,
    /// Files the daemon takes, not claimed and not retrying.
    pub waiting: u64,
    /// Age of the oldest (since its last change or rename in).
    pub oldest_waiting_secs: Option<f64>,
    /// The ten oldest: path relative to the inbox, age (from the disk
    /// scan: empty when the count comes from heartbeats).
    pub oldest: Vec<Aged>,
    pub ignored: Ignored,
}

/// A path with its age.
#[derive(Debug, Clone, Serialize)]
pub struct Aged {
    pub path: String,
    pub age_secs: f64,
}

/// Names in the inbox no pattern takes (at most 100 listed).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ignored {
    pub count: u64,
    pub files: Vec<IgnoredName>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IgnoredName {
    pub path: String,
    pub why: String,
}

/// A file failing on `host`, retried.
#[derive(Debug, Clone, Serialize)]
pub struct Retrying {
    pub host: String,
    pub path: String,
    pub attempts: u32,
    pub error: String,
    pub next_attempt: f64,
    /// When it first failed (since that daemon started).
    pub since: f64,
}

/// The failed folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failed {
    /// Quarantined files there.
    pub count: u64,
    /// Of those, quarantined after the acknowledgement (`--ack`); all of
    /// them when none was made.
    pub new: u64,
    /// When `--ack` was last run, or null.
    pub acknowledged: Option<f64>,
    /// The ten most recently quarantined.
    pub newest: Vec<FailedFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedFile {
    /// Relative to the failed folder.
    pub path: String,
    pub reason: Option<String>,
    pub time: f64,
}

/// From the ledgers of every host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Archived {
    pub last_24h: u64,
    /// When the newest archive was recorded, by any host, or null.
    pub last_time: Option<f64>,
    pub last_host: Option<String>,
}
