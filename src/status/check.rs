//! `status --check`: the Monitoring Plugins convention (Nagios, Icinga,
//! Zabbix agents): one line `RLEWATCH OK|WARNING|CRITICAL|UNKNOWN - …`
//! with perfdata after `|`, exit 0/1/2/3 (docs/operations.md).

use super::Status;
use super::gather::secs;

/// The service state and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
            Verdict::Unknown => "UNKNOWN",
        }
    }

    /// The plugin line for a status that could not be gathered.
    pub fn unknown_line(reason: &str) -> String {
        format!("RLEWATCH UNKNOWN - {}", reason.replace(['\n', '|'], " "))
    }
}

/// The verdict and its one line. CRITICAL: no live daemon for the inbox.
/// WARNING: a file retrying or waiting longer than `stuck_secs`, claims
/// of a dead host, files quarantined since the last `--ack`, or something
/// unreadable (a corrupt heartbeat, a ledger line).
pub fn check(s: &Status) -> (Verdict, String) {
    let stuck = s.stuck_secs as f64;
    let alive = s.hosts.iter().filter(|h| h.alive).count();
    let mut critical = Vec::new();
    let mut warnings = Vec::new();
    if alive == 0 {
        let why = match s.hosts.as_slice() {
            [] => "no rlewatch has ever run on this inbox".to_string(),
            hosts => hosts
                .iter()
                .map(|h| format!("{}: {}", h.host, h.why))
                .collect::<Vec<_>>()
                .join("; "),
        };
        critical.push(format!(
            "no live rlewatch daemon for {} ({why})",
            s.inbox_path
        ));
    }
    let stuck_retrying: Vec<&super::Retrying> = s
        .retrying
        .iter()
        .filter(|r| s.time - r.since > stuck)
        .collect();
    if let Some(r) = stuck_retrying.first() {
        warnings.push(format!(
            "{} file(s) failing for over {} ({} on {}, attempt {}: {})",
            stuck_retrying.len(),
            secs(stuck),
            r.path,
            r.host,
            r.attempts,
            r.error
        ));
    }
    let stuck_waiting: Vec<&super::Aged> = s
        .inbox
        .oldest
        .iter()
        .filter(|a| a.age_secs > stuck)
        .collect();
    if let Some(a) = stuck_waiting.first() {
        warnings.push(format!(
            "file(s) waiting in the inbox for over {} ({}, {})",
            secs(stuck),
            a.path,
            secs(a.age_secs)
        ));
    }
    for h in s.hosts.iter().filter(|h| !h.alive && h.claims > 0) {
        warnings.push(format!(
            "host {} is not alive ({}) and holds {} claimed file(s) not taken over",
            h.host, h.why, h.claims
        ));
    }
    if s.failed.new > 0 {
        warnings.push(format!(
            "{} new file(s) in failed/ since {} (newest: {}{}; rlewatch status --ack when seen)",
            s.failed.new,
            s.failed
                .acknowledged
                .map_or("ever (never acknowledged)".to_string(), |t| format!(
                    "the acknowledgement {} ago",
                    secs(s.time - t)
                )),
            s.failed.newest.first().map_or("", |f| f.path.as_str()),
            s.failed
                .newest
                .first()
                .and_then(|f| f.reason.as_deref())
                .map_or(String::new(), |r| format!(": {r}"))
        ));
    }
    for p in &s.problems {
        warnings.push(p.clone());
    }
    let (verdict, summary) = if !critical.is_empty() {
        (Verdict::Critical, [critical, warnings].concat().join("; "))
    } else if !warnings.is_empty() {
        (Verdict::Warning, warnings.join("; "))
    } else {
        let summary = format!(
            "{alive} live host(s), {} waiting, {} archived in 24h",
            s.inbox.waiting, s.archived.last_24h
        );
        (Verdict::Ok, summary)
    };
    let perf = format!(
        "hosts_alive={alive};;1:;0 waiting={} oldest_waiting={}s;{};;0 retrying={};;;0 \
         failed={};;;0 failed_new={};0;;0 dead_host_claims={};0;;0 archived_24h={};;;0 \
         ignored={};;;0",
        s.inbox.waiting,
        s.inbox.oldest_waiting_secs.unwrap_or(0.0).round(),
        s.stuck_secs,
        s.retrying.len(),
        s.failed.count,
        s.failed.new,
        s.hosts
            .iter()
            .filter(|h| !h.alive)
            .map(|h| h.claims)
            .sum::<u64>(),
        s.archived.last_24h,
        s.inbox.ignored.count,
    );
    // One line: the plugin output's first line is what monitors show.
    let summary = summary.replace(['\n', '|'], " ");
    (
        verdict,
        format!("RLEWATCH {} - {summary} | {perf}", verdict.name()),
    )
}
