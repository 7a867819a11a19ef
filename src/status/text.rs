//! `status` for people: a few short sections, the worst first.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::Status;
use super::gather::{ago, secs};

fn when(t: f64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The status as text.
pub fn text(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "inbox {}", s.inbox_path);
    for p in &s.problems {
        let _ = writeln!(o, "  problem: {p}");
    }
    let _ = writeln!(o, "hosts:");
    if let Some(why) = &s.hosts_unreadable {
        let _ = writeln!(o, "  unknown: {why}");
    } else if s.hosts.is_empty() {
        let _ = writeln!(o, "  none: no rlewatch has run on this inbox");
    }
    for h in &s.hosts {
        let _ = writeln!(
            o,
            "  {} {}: {}",
            h.host,
            if h.alive { "ALIVE" } else { "DOWN" },
            h.why
        );
        if let (Some(pid), Some(v)) = (h.pid, &h.version) {
            let _ = writeln!(
                o,
                "    pid {pid} on {}, rlewatch {v}, started {}, {} worker(s)",
                h.machine.as_deref().unwrap_or("?"),
                h.started.map_or("?".into(), when),
                h.workers.unwrap_or(0)
            );
        }
        if let Some(c) = &h.counts {
            let _ = writeln!(
                o,
                "    since start: archived {}, failed {}, retried {}, ignored {}, {} -> {} bytes",
                c.archived, c.failed, c.retries, c.ignored, c.bytes_read, c.bytes_written
            );
        }
        if h.in_progress_count > 0 {
            let _ = writeln!(
                o,
                "    in progress {}: {}",
                h.in_progress_count,
                h.in_progress.join(", ")
            );
        }
        if h.claims > 0 {
            let _ = writeln!(
                o,
                "    claims {} (oldest {})",
                h.claims,
                h.oldest_claim_secs.map_or("?".into(), ago)
            );
        }
    }
    let i = &s.inbox;
    let _ = writeln!(
        o,
        "inbox: {} waiting{}{}",
        i.waiting,
        i.oldest_waiting_secs
            .map_or(String::new(), |a| format!(", oldest {}", secs(a))),
        if i.source == "heartbeats" {
            " (as the live daemons' heartbeats say)"
        } else {
            ""
        }
    );
    for a in &i.oldest {
        let _ = writeln!(o, "  {} ({})", a.path, secs(a.age_secs));
    }
    if i.ignored.count > 0 {
        let _ = writeln!(
            o,
            "ignored: {} name(s) in the inbox no pattern takes (they stay there):",
            i.ignored.count
        );
        for n in &i.ignored.files {
            let _ = writeln!(o, "  {}: {}", n.path, n.why);
        }
    }
    let _ = writeln!(o, "retrying: {}", s.retrying.len());
    for r in &s.retrying {
        let next = r.next_attempt - s.time;
        let _ = writeln!(
            o,
            "  {} on {}: attempt {}, failing for {}, next {}: {}",
            r.path,
            r.host,
            r.attempts,
            secs(s.time - r.since),
            if next > 0.0 {
                format!("in {}", secs(next))
            } else {
                "now".into()
            },
            r.error
        );
    }
    let f = &s.failed;
    let _ = writeln!(
        o,
        "failed: {} ({} new since {})",
        f.count,
        f.new,
        f.acknowledged
            .map_or("ever: never acknowledged".into(), |t| format!(
                "the acknowledgement at {}",
                when(t)
            ))
    );
    for x in &f.newest {
        let _ = writeln!(
            o,
            "  {} {}: {}",
            when(x.time),
            x.path,
            x.reason.as_deref().unwrap_or("(no note)")
        );
    }
    let a = &s.archived;
    let _ = writeln!(
        o,
        "archived: {} in the last 24h; last {}",
        a.last_24h,
        a.last_time.map_or("never".into(), |t| format!(
            "{} ({}{})",
            when(t),
            ago(s.time - t),
            a.last_host
                .as_deref()
                .map_or(String::new(), |h| format!(", by {h}"))
        ))
    );
    o
}
