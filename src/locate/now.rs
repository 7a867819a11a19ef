//! Where a file is now, in one line: from the last ledger line about it
//! and what the folders show (a claim or a waiting file first: they are
//! newer than any line).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::disk::{Seen, time_of};
use super::show::History;
use crate::daemon::config::Paths;
use crate::display::shown;
use crate::ledger::{Fate, Line, RemovedWhat};

/// Where the file is now, in one line (and its JSON form).
pub struct Now {
    pub state: &'static str,
    pub path: Option<PathBuf>,
    pub present: Option<bool>,
    pub text: String,
}

fn age(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

impl History {
    pub fn now(&self, paths: &Paths) -> Now {
        let last = self.events.last().map(|e| &e.hit.line);
        let now = |state, path: Option<PathBuf>, present, text: String| Now {
            state,
            path,
            present,
            text,
        };
        for s in &self.seen {
            if let Seen::Claimed {
                rel,
                host,
                since,
                heartbeat,
            } = s
            {
                let alive = match heartbeat {
                    Some(h) => format!(
                        "its heartbeat is {} old",
                        humantime::format_duration(std::time::Duration::from_secs(h.as_secs()))
                    ),
                    None => "it has no heartbeat".to_string(),
                };
                let path = crate::layout::InboxLayout::new(&paths.inbox)
                    .claims(host)
                    .join(rel);
                return now(
                    "claimed",
                    Some(path.clone()),
                    Some(true),
                    format!(
                        "claimed by host {host} since {} ({} ago; {alive}): {}",
                        time_of(*since),
                        age(*since),
                        shown(&path)
                    ),
                );
            }
        }
        let waiting = self.seen.iter().find_map(|s| match s {
            Seen::Waiting { rel, since, size } => Some((rel, *since, *size)),
            _ => None,
        });
        if let Some((rel, since, size)) = waiting {
            let kept_since = match last {
                Some(Line::Filed(f)) if f.fate == Fate::Kept => humantime::parse_rfc3339(&f.time)
                    .ok()
                    .filter(|filed| since <= *filed),
                _ => None,
            };
            let path = paths.inbox.join(rel);
            if kept_since.is_none() {
                return now(
                    "waiting",
                    Some(path.clone()),
                    Some(true),
                    format!(
                        "waiting in the inbox: {} ({size} bytes, last written {}, {} ago)",
                        shown(&path),
                        time_of(since),
                        age(since)
                    ),
                );
            }
        }
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        match last {
            Some(Line::Archived(e)) => now(
                "archived",
                Some(paths.archive.join(e.archive_path())),
                None,
                "archived; where the original went is not recorded (a ledger of version 1 or 2, \
                 or a line lost in a power cut)"
                    .into(),
            ),
            Some(Line::Filed(f)) => match (f.fate, f.done_path()) {
                (Fate::Done, Some(p)) => {
                    let p = paths.done.join(p);
                    let present = exists(&p);
                    let text = if present {
                        format!("original in {}", shown(&p))
                    } else {
                        format!("original was moved to {}, no longer there", shown(&p))
                    };
                    now("done", Some(p), Some(present), text)
                }
                (Fate::Kept, _) => {
                    let p = paths.inbox.join(f.source_path());
                    let present = exists(&p);
                    now(
                        "kept",
                        Some(p.clone()),
                        Some(present),
                        format!(
                            "original kept in the inbox: {}{}",
                            shown(&p),
                            if present { "" } else { " (no longer there)" }
                        ),
                    )
                }
                (Fate::Deleted, _) => now("deleted", None, None, "original deleted".into()),
                (Fate::Vanished, _) => now(
                    "vanished",
                    None,
                    None,
                    "original was removed by someone else before it could be filed".into(),
                ),
                (Fate::Replaced, _) | (Fate::Done, None) => now(
                    "replaced",
                    None,
                    None,
                    "another file had taken the original's name; that one was left to be archived"
                        .into(),
                ),
            },
            Some(Line::Quarantined(q)) => {
                let p = paths.failed.join(q.failed_path());
                let present = exists(&p);
                now(
                    "failed",
                    Some(p.clone()),
                    Some(present),
                    format!(
                        "in the failed folder{}: {}: {}",
                        if present { "" } else { " (no longer there)" },
                        shown(&p),
                        q.reason
                    ),
                )
            }
            Some(Line::Retried(r)) => {
                let p = paths.inbox.join(r.source_path());
                now(
                    "retried",
                    Some(p.clone()),
                    Some(exists(&p)),
                    format!(
                        "put back into the inbox by `rlewatch retry` as {}; not there now (taken \
                     again: its next line is not written yet)",
                        shown(&p)
                    ),
                )
            }
            Some(Line::Removed(r)) => {
                let dir = match r.what {
                    RemovedWhat::Done => &paths.done,
                    RemovedWhat::Failed => &paths.failed,
                };
                let p = dir.join(r.removed_path());
                now(
                    "removed",
                    Some(p.clone()),
                    Some(exists(&p)),
                    format!("removed by retention: {} ({})", shown(&p), r.why),
                )
            }
            None => {
                if let Some((rel, _, _)) = waiting {
                    let p = paths.inbox.join(rel);
                    return now(
                        "kept",
                        Some(p.clone()),
                        Some(true),
                        format!("kept in the inbox: {}", shown(&p)),
                    );
                }
                match self.seen.iter().find_map(|s| match s {
                    Seen::Failed { path, note, .. } => Some((path, note)),
                    _ => None,
                }) {
                    Some((path, note)) => {
                        let p = paths.failed.join(path);
                        let reason = note
                            .as_ref()
                            .map_or("no error note beside it".to_string(), |n| n.reason.clone());
                        now(
                            "failed",
                            Some(p.clone()),
                            Some(true),
                            format!("in the failed folder: {}: {reason}", shown(&p)),
                        )
                    }
                    None => now("unknown", None, None, "nothing known".into()),
                }
            }
        }
    }
}
