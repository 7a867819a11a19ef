//! What `where` found, file by file: the ledger's lines grouped by the
//! source they are about, what the folders show of it now, and the one
//! line that says where it is; as text or as one JSON document
//! (docs/guide.md, "Finding a file").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Value, json};

use super::Query;
use super::disk::{self, Seen, time_of};
use super::search::{Hit, IndexUse, Matcher, search};
use crate::daemon::config::{Config, Paths};
use crate::display::shown;
use crate::ledger::index::{self, Tag};
use crate::ledger::{Fate, Line, RemovedWhat};

/// Everything found for the queries.
pub struct Report {
    pub files: Vec<History>,
    pub warnings: Vec<String>,
    /// Queries nothing was found for.
    pub not_found: Vec<String>,
    pub indexed: usize,
    pub scanned: usize,
}

/// One file's history.
pub struct History {
    /// The path relative to the inbox it was dropped as; or, for a removal
    /// whose earlier lines were not found, the done/ or failed/ path.
    pub source: PathBuf,
    pub events: Vec<Event>,
    pub seen: Vec<Seen>,
}

/// One ledger line, and with `--verify` the check of its archive.
pub struct Event {
    pub hit: Hit,
    pub verified: Option<Result<(), String>>,
}

/// Searches the ledger (then again for the lines that name what the
/// first lines found: the removal of a done/ original, a retry of a
/// failed/ file) and the folders, and groups what was found by source.
pub fn gather(
    config: &Config,
    queries: &[Query],
    use_index: IndexUse,
    threads: usize,
    verify: bool,
) -> Result<Report> {
    let paths = &config.paths;
    let first = Matcher {
        terms: queries
            .iter()
            .flat_map(|q| q.matcher_terms.clone())
            .collect(),
        globs: queries.iter().filter_map(|q| q.glob.clone()).collect(),
    };
    let mut found = search(&paths.archive, &first, use_index, threads)?;
    let mut warnings_extra = Vec::new();
    let mut links = BTreeSet::new();
    for h in &found.hits {
        for t in index::terms(&h.line) {
            if matches!(t.0, Tag::Archive | Tag::Done | Tag::Failed) && !first.terms.contains(&t) {
                links.insert(t);
            }
        }
    }
    if !links.is_empty() {
        let second = Matcher {
            terms: links,
            globs: Vec::new(),
        };
        let more = search(&paths.archive, &second, use_index, threads)?;
        if more.truncated && !found.truncated {
            warnings_extra.extend(more.warnings.iter().cloned());
        }
        let known: BTreeSet<(PathBuf, u64)> = found
            .hits
            .iter()
            .map(|h| (h.file.clone(), h.offset))
            .collect();
        found.hits.extend(
            more.hits
                .into_iter()
                .filter(|h| !known.contains(&(h.file.clone(), h.offset))),
        );
        found.hits.sort_by(|a, b| {
            (a.line.time(), &a.file, a.offset).cmp(&(b.line.time(), &b.file, b.offset))
        });
    }
    let mut warnings: Vec<String> = found
        .unreadable
        .iter()
        .map(|u| format!("{u} (an unreadable ledger line, skipped)"))
        .collect();
    warnings.extend(found.warnings.iter().cloned());
    warnings.extend(warnings_extra);
    let mut seen = Vec::new();
    for q in queries {
        if let Some(look) = q.disk() {
            seen.extend(disk::look(paths, &look, &mut |w| warnings.push(w)));
        }
    }
    for (what, dir) in [("inbox", &paths.inbox), ("failed", &paths.failed)] {
        if let Err(e) = std::fs::metadata(dir) {
            warnings.push(format!("{}: the {what} folder: {e}", shown(dir)));
        }
    }
    let files = group(found.hits, seen, paths, verify);
    let not_found = queries
        .iter()
        .filter(|q| !files.iter().any(|f| answers(q, f)))
        .map(|q| q.text.clone())
        .collect();
    Ok(Report {
        files,
        warnings,
        not_found,
        indexed: found.indexed,
        scanned: found.scanned,
    })
}

/// True when `f` is (part of) the answer to `q`.
fn answers(q: &Query, f: &History) -> bool {
    let m = q.matcher();
    f.events.iter().any(|e| m.matches(&e.hit.line))
        || q.disk()
            .is_some_and(|look| !f.seen.is_empty() && look_matches(&look, f))
}

fn look_matches(look: &disk::Look, f: &History) -> bool {
    f.seen.iter().any(|s| match (look, s) {
        (_, Seen::Failed { path, source, .. }) => {
            look.matches(path) || source.as_deref().is_some_and(|p| look.matches(p))
        }
        (_, s) => look.matches(&s.source()),
    })
}

/// The hits and files seen, grouped by the source they are about.
fn group(hits: Vec<Hit>, seen: Vec<Seen>, paths: &Paths, verify: bool) -> Vec<History> {
    // Done/ and failed/ paths → the source their lines name.
    let mut owner: HashMap<(Tag, PathBuf), PathBuf> = HashMap::new();
    for h in &hits {
        match &h.line {
            Line::Filed(f) => {
                if let Some(p) = f.done_path() {
                    owner.insert((Tag::Done, p), f.source_path());
                }
            }
            Line::Quarantined(q) => {
                owner.insert((Tag::Failed, q.failed_path()), q.source_path());
            }
            Line::Retried(r) => {
                owner.insert((Tag::Failed, r.failed_path()), r.source_path());
            }
            _ => {}
        }
    }
    let mut out: BTreeMap<PathBuf, History> = BTreeMap::new();
    for h in hits {
        let source = match &h.line {
            Line::Archived(e) => e.source_path(),
            Line::Filed(f) => f.source_path(),
            Line::Quarantined(q) => q.source_path(),
            Line::Retried(r) => r.source_path(),
            Line::Removed(r) => {
                let (tag, dir) = match r.what {
                    RemovedWhat::Done => (Tag::Done, &paths.done),
                    RemovedWhat::Failed => (Tag::Failed, &paths.failed),
                };
                owner
                    .get(&(tag, r.removed_path()))
                    .cloned()
                    .unwrap_or_else(|| dir.join(r.removed_path()))
            }
        };
        let verified = match (&h.line, verify) {
            (Line::Archived(e), true) => Some(
                crate::audit::check(&paths.archive.join(e.archive_path()), e)
                    .map_err(|why| why.to_string()),
            ),
            _ => None,
        };
        out.entry(source.clone())
            .or_insert_with(|| History {
                source,
                events: Vec::new(),
                seen: Vec::new(),
            })
            .events
            .push(Event { hit: h, verified });
    }
    for s in seen {
        let source = s.source();
        let g = out.entry(source.clone()).or_insert_with(|| History {
            source,
            events: Vec::new(),
            seen: Vec::new(),
        });
        // The same file seen by two queries once.
        if !g.seen.iter().any(|x| same_seen(x, &s)) {
            g.seen.push(s);
        }
    }
    out.into_values().collect()
}

fn same_seen(a: &Seen, b: &Seen) -> bool {
    match (a, b) {
        (Seen::Waiting { rel: x, .. }, Seen::Waiting { rel: y, .. }) => x == y,
        (
            Seen::Claimed {
                rel: x, host: h, ..
            },
            Seen::Claimed {
                rel: y, host: k, ..
            },
        ) => x == y && h == k,
        (Seen::Failed { path: x, .. }, Seen::Failed { path: y, .. }) => x == y,
        _ => false,
    }
}

/// One ledger line as a sentence (without its time).
fn sentence(line: &Line, paths: &Paths) -> String {
    match line {
        Line::Archived(e) => format!(
            "archived by {} as {} ({} {}x{}, {}; source {} bytes, xxh3 {}; archive {} bytes, \
             xxh3 {})",
            e.host,
            shown(&paths.archive.join(e.archive_path())),
            e.format,
            e.width,
            e.height,
            if e.lossless {
                "lossless"
            } else {
                &e.conversion
            },
            e.source_size,
            e.source_xxh3,
            e.archive_size,
            e.archive_xxh3
        ),
        Line::Filed(f) => match (f.fate, f.done_path()) {
            (Fate::Done, Some(p)) => format!(
                "original moved to {} by {}",
                shown(&paths.done.join(p)),
                f.host
            ),
            (fate, _) => format!("original {} (by {})", fate_words(fate), f.host),
        },
        Line::Quarantined(q) => format!(
            "quarantined by {} as {}: {} (class {}, attempt {})",
            q.host,
            shown(&paths.failed.join(q.failed_path())),
            q.reason,
            q.class.name(),
            q.attempts
        ),
        Line::Retried(r) => format!(
            "put back into the inbox as {} by `rlewatch retry` on {} (from {})",
            shown(&paths.inbox.join(r.source_path())),
            r.host,
            shown(&paths.failed.join(r.failed_path()))
        ),
        Line::Removed(r) => {
            let dir = match r.what {
                RemovedWhat::Done => &paths.done,
                RemovedWhat::Failed => &paths.failed,
            };
            format!(
                "removed by retention on {}: {} ({})",
                r.host,
                shown(&dir.join(r.removed_path())),
                r.why
            )
        }
    }
}

fn fate_words(f: Fate) -> &'static str {
    match f {
        Fate::Done => "moved to the done folder",
        Fate::Deleted => "deleted",
        Fate::Kept => "kept in the inbox",
        Fate::Vanished => "was removed by someone else before it could be filed",
        Fate::Replaced => "left alone: another file had taken its name",
    }
}

impl Report {
    pub fn to_text(&self, paths: &Paths, verify: bool) -> String {
        let mut out = String::new();
        for f in &self.files {
            let _ = writeln!(out, "{}", shown(&f.source));
            for e in &f.events {
                let _ = writeln!(
                    out,
                    "  {}  {}",
                    e.hit.line.time(),
                    sentence(&e.hit.line, paths)
                );
                match &e.verified {
                    Some(Ok(())) => {
                        let _ = writeln!(
                            out,
                            "      archive verified: decodes to its recorded digest"
                        );
                    }
                    Some(Err(why)) => {
                        let _ = writeln!(out, "      archive DAMAGED: {why}");
                    }
                    None => {}
                }
            }
            for s in &f.seen {
                if let Seen::Failed {
                    path,
                    note: Some(n),
                    ..
                } = s
                {
                    let _ = writeln!(
                        out,
                        "  {}  in the failed folder: {} ({}; attempts {})",
                        n.time,
                        shown(&paths.failed.join(path)),
                        n.reason,
                        n.attempts
                    );
                }
            }
            let _ = writeln!(out, "  now: {}", f.now(paths).text);
        }
        for q in &self.not_found {
            let _ = writeln!(out, "{q}: nothing found");
        }
        if verify
            && self
                .files
                .iter()
                .all(|f| f.events.iter().all(|e| e.verified.is_none()))
            && !self.files.is_empty()
        {
            let _ = writeln!(out, "(--verify: no archive among these)");
        }
        out
    }

    pub fn to_json(&self, paths: &Paths) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let events: Vec<Value> = f
                    .events
                    .iter()
                    .map(|e| {
                        let mut v: Value = e
                            .hit
                            .line
                            .to_json()
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or(Value::Null);
                        if let Value::Object(o) = &mut v {
                            o.insert("kind".into(), e.hit.line.kind().into());
                            o.insert(
                                "ledger".into(),
                                json!({"file": path_json(&e.hit.file), "offset": e.hit.offset}),
                            );
                            if let Some(r) = &e.verified {
                                o.insert(
                                    "verified".into(),
                                    match r {
                                        Ok(()) => json!({"ok": true}),
                                        Err(why) => json!({"ok": false, "error": why}),
                                    },
                                );
                            }
                        }
                        v
                    })
                    .collect();
                let seen: Vec<Value> = f.seen.iter().map(|s| seen_json(s, paths)).collect();
                let now = f.now(paths);
                json!({
                    "source": path_json(&f.source),
                    "events": events,
                    "seen": seen,
                    "now": {
                        "state": now.state,
                        "path": now.path.as_deref().map(path_json),
                        "present": now.present,
                        "text": now.text,
                    },
                })
            })
            .collect();
        json!({
            "files": files,
            "not_found": self.not_found,
            "warnings": self.warnings,
            "ledger_files": {"indexed": self.indexed, "scanned": self.scanned},
        })
    }
}

/// A path in JSON: text (U+FFFD for bytes that are not UTF-8).
fn path_json(p: &Path) -> Value {
    let text = p.to_string_lossy();
    if std::str::from_utf8(p.as_os_str().as_bytes()).is_ok() {
        Value::String(text.into_owned())
    } else {
        json!({"text": text, "raw": crate::ledger::path_fields(p).1})
    }
}

fn seen_json(s: &Seen, paths: &Paths) -> Value {
    match s {
        Seen::Waiting { rel, since, size } => json!({
            "where": "inbox",
            "path": path_json(&paths.inbox.join(rel)),
            "modified": time_of(*since),
            "size": size,
        }),
        Seen::Claimed {
            rel,
            host,
            since,
            heartbeat,
        } => json!({
            "where": "claim",
            "host": host,
            "path": path_json(&crate::layout::InboxLayout::new(&paths.inbox).claims(host).join(rel)),
            "since": time_of(*since),
            "heartbeat_age_secs": heartbeat.map(|h| h.as_secs()),
        }),
        Seen::Failed { path, source, note } => json!({
            "where": "failed",
            "path": path_json(&paths.failed.join(path)),
            "source": source.as_deref().map(path_json),
            "note": note.as_ref().map(|n| json!({
                "reason": n.reason,
                "time": n.time,
                "attempts": n.attempts,
            })),
        }),
    }
}
