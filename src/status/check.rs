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

/// Why the claims of `dead` are not being taken over, or `None` while a
/// live host with takeover on is still due to take them: none is alive,
/// every live one has `takeover_secs = 0`, or `dead` has been silent
/// longer than the live hosts' takeover_secs + one heartbeat interval + a
/// margin (another interval, at least 10 s), when takeover should have
/// happened.
fn not_taken_over(s: &Status, dead: &super::Host) -> Option<String> {
    let takers: Vec<&super::Host> = s
        .hosts
        .iter()
        .filter(|h| h.alive && h.takeover_secs.is_some_and(|t| t > 0))
        .collect();
    if !s.hosts.iter().any(|h| h.alive) {
        return Some("no live host to take them".into());
    }
    if takers.is_empty() {
        return Some("takeover_secs = 0 on every live host".into());
    }
    let interval = takers
        .iter()
        .filter_map(|h| h.interval_secs)
        .fold(0.0, f64::max);
    let takeover = takers
        .iter()
        .filter_map(|h| h.takeover_secs)
        .max()
        .unwrap_or(0) as f64;
    let due = takeover + interval + interval.max(10.0);
    // No heartbeat at all (a claim folder only): silent for ever.
    let silent = dead.heartbeat_age_secs.unwrap_or(f64::INFINITY);
    (silent > due).then(|| {
        format!(
            "silent longer than takeover_secs {} + a heartbeat interval + a margin: takeover \
             should have happened",
            takeover as u64
        )
    })
}

/// The verdict and its one line. CRITICAL: no live daemon for the inbox.
/// WARNING: a file retrying or waiting longer than `stuck_secs`, claims
/// of a dead host, files quarantined since the last `--ack`, or something
/// unreadable (a corrupt heartbeat, a ledger line).
pub fn check(s: &Status) -> (Verdict, String) {
    // Could not look: neither "no daemon" nor "all well".
    if let Some(why) = &s.hosts_unreadable {
        return (Verdict::Unknown, Verdict::unknown_line(why));
    }
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
    if let Some(oldest) = s.inbox.oldest_waiting_secs.filter(|&a| a > stuck) {
        let which = match s.inbox.oldest.first() {
            Some(a) => format!("{}, {}", a.path, secs(a.age_secs)),
            None => format!(
                "{} waiting, the oldest {}, as the live daemons' heartbeats say",
                s.inbox.waiting,
                secs(oldest)
            ),
        };
        warnings.push(format!(
            "file(s) waiting in the inbox for over {} ({which})",
            secs(stuck)
        ));
    }
    for h in s.hosts.iter().filter(|h| !h.alive && h.claims > 0) {
        if let Some(why) = not_taken_over(s, h) {
            warnings.push(format!(
                "host {} is not alive ({}) and holds {} claimed file(s) not taken over ({why})",
                h.host, h.why, h.claims
            ));
        }
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
