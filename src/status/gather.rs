//! Reading what `status` shows, from the disk only.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::{
    Aged, Archived, Failed, FailedFile, Host, Ignored, IgnoredName, Inbox, Retrying, Status,
};
use crate::daemon::config::Config;
use crate::daemon::filter::Filter;
use crate::display::shown;
use crate::heartbeat::{self, Heartbeat, ReadError, unix};
use crate::layout::{ArchiveLayout, InboxLayout};

/// How many names each list shows at most.
const SHOWN: usize = 10;
const IGNORED_SHOWN: usize = 100;

/// What to gather beside the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Now (a test may pass another time).
    pub now: SystemTime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            now: SystemTime::now(),
        }
    }
}

/// Everything `status` shows for the inbox of `config`. Fails (naming the
/// folder) only when the inbox itself cannot be read; anything else that
/// cannot be read is a line in `problems`.
pub fn gather(config: &Config, opts: Options) -> Result<Status> {
    let inbox = &config.paths.inbox;
    fs::read_dir(inbox).with_context(|| format!("{}: cannot read the inbox", shown(inbox)))?;
    let now = opts.now;
    let layout = InboxLayout::new(inbox);
    let mut problems = Vec::new();
    let hosts_unreadable = state_unreadable(&layout);
    problems.extend(hosts_unreadable.clone());
    let mut hosts = hosts(&layout, now, &mut problems);
    let retrying: Vec<Retrying> = hosts
        .iter()
        .filter(|(h, _)| h.alive)
        .flat_map(|(h, hb)| {
            hb.iter().flat_map(|hb| {
                hb.retrying.files.iter().map(|r| Retrying {
                    host: h.host.clone(),
                    path: r.path.clone(),
                    attempts: r.attempts,
                    error: r.error.clone(),
                    next_attempt: r.next_attempt,
                    since: r.since,
                })
            })
        })
        .collect();
    let retrying_paths: Vec<&str> = retrying.iter().map(|r| r.path.as_str()).collect();
    let mut inbox_status = scan_inbox(config, now, &retrying_paths);
    from_heartbeats(&mut inbox_status, &hosts, now);
    let failed = failed(config, &layout, now, &mut problems);
    if hosts_unreadable.is_some() {
        // The acknowledgement lives in the same folder: said once above.
        let ack = shown(&layout.status_ack());
        problems.retain(|p| !p.starts_with(&ack));
    }
    let archived = archived(&config.paths.archive, now, &mut problems);
    Ok(Status {
        time: unix(now),
        inbox_path: shown(inbox),
        stuck_secs: config.stuck.as_secs(),
        hosts: hosts.drain(..).map(|(h, _)| h).collect(),
        hosts_unreadable,
        inbox: inbox_status,
        retrying,
        failed,
        archived,
        problems,
    })
}

/// Why the daemon's state folder or its `hosts/` cannot be listed (a
/// caller who is neither root nor the daemon's user: the folder is 0700),
/// or `None` when they can be, or do not exist (no daemon ever ran). When
/// they cannot be, no host can be judged alive or not.
fn state_unreadable(layout: &InboxLayout) -> Option<String> {
    for dir in [layout.state().to_path_buf(), layout.hosts()] {
        match fs::read_dir(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Some(format!(
                    "{}: permission denied: run as root or as the daemon's user",
                    shown(&dir)
                ));
            }
            Err(e) => return Some(format!("{}: cannot list the heartbeats: {e}", shown(&dir))),
        }
    }
    None
}

/// Every host id with a heartbeat or a claim folder, judged.
fn hosts(
    layout: &InboxLayout,
    now: SystemTime,
    problems: &mut Vec<String>,
) -> Vec<(Host, Option<Heartbeat>)> {
    let mut names: Vec<String> = [layout.hosts(), layout.claims_root()]
        .iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|h| !h.starts_with('.'))
        .collect();
    names.sort();
    names.dedup();
    let me = Local::new();
    names
        .into_iter()
        .map(|name| {
            let path = layout.heartbeat(&name);
            let claims = crate::claim::list(&layout.claims(&name));
            let oldest_claim = claims
                .iter()
                .filter_map(|c| fs::symlink_metadata(c).ok())
                .map(|m| age(now, changed(&m)))
                .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
            let mut host = Host {
                host: name.clone(),
                alive: false,
                why: String::new(),
                pid: None,
                version: None,
                machine: None,
                state: None,
                started: None,
                heartbeat_age_secs: None,
                interval_secs: None,
                takeover_secs: None,
                workers: None,
                counts: None,
                in_progress: Vec::new(),
                in_progress_count: 0,
                claims: claims.len() as u64,
                oldest_claim_secs: oldest_claim,
            };
            let hb = match heartbeat::read(&path) {
                Ok(hb) => Some(hb),
                Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    host.why =
                        "no heartbeat (only a claim folder: a retired or renamed host id?)".into();
                    None
                }
                Err(e) => {
                    if let Some(pid) = e.old_pid() {
                        // An older rlewatch rewrote it in place: its
                        // modification time is its last beat.
                        host.pid = Some(pid);
                        let a = fs::metadata(&path).map(|m| age(now, m.mtime() as f64)).ok();
                        host.heartbeat_age_secs = a;
                        host.alive = a.is_some_and(|a| a <= 90.0);
                        host.why = format!(
                            "old-format heartbeat (an older rlewatch), last changed {}",
                            a.map_or("at an unknown time".into(), ago)
                        );
                    } else {
                        host.why = e.to_string();
                        problems.push(e.to_string());
                    }
                    None
                }
            };
            if let Some(hb) = &hb {
                judge(&mut host, hb, now, &me, &path);
            }
            (host, hb)
        })
        .collect()
}

/// Alive or not, and why, from a heartbeat read.
fn judge(host: &mut Host, hb: &Heartbeat, now: SystemTime, me: &Local, path: &Path) {
    let a = age(now, hb.written);
    host.pid = Some(hb.pid);
    host.version = Some(hb.version.clone());
    host.machine = Some(hb.machine.clone());
    host.state = Some(hb.state.clone());
    host.started = Some(hb.started);
    host.heartbeat_age_secs = Some(a);
    host.interval_secs = Some(hb.interval_secs);
    host.takeover_secs = Some(hb.takeover_secs);
    host.workers = Some(hb.workers);
    host.counts = Some(hb.counts.clone());
    host.in_progress = hb.in_progress.files.clone();
    host.in_progress_count = hb.in_progress.count;
    // Three beats missed (and at least ten seconds: clocks of two hosts
    // differ a little) is a stopped heartbeat.
    let stale_after = (hb.interval_secs * 3.0).max(hb.interval_secs + 10.0);
    let (alive, why) = if hb.state == "stopped" {
        (false, format!("stopped cleanly {}", ago(a)))
    } else if a > stale_after {
        (
            false,
            format!(
                "no heartbeat for {} (it beats every {}; died, hung or cut off?)",
                secs(a),
                secs(hb.interval_secs)
            ),
        )
    } else if me.same_machine(hb) && !me.process_is_rlewatch(hb.pid) {
        (
            false,
            format!("process {} is not running on this machine", hb.pid),
        )
    } else if me.same_machine(hb) && !lock_held(path, &hb.host) {
        (
            false,
            format!("its lock {}.lock is not held on this machine", hb.host),
        )
    } else {
        let state = if hb.state == "stopping" {
            "stopping (draining after SIGTERM)"
        } else {
            "running"
        };
        (true, format!("{state}, heartbeat {}", ago(a)))
    };
    host.alive = alive;
    host.why = why;
}

/// Whether the inbox lock of `host` (beside the hosts folder of the
/// heartbeat at `heartbeat`) is held, as `/proc/locks` shows: a flock on
/// its inode. True when that cannot be told.
fn lock_held(heartbeat: &Path, host: &str) -> bool {
    let Some(state) = heartbeat.parent().and_then(Path::parent) else {
        return true;
    };
    let Ok(m) = fs::metadata(state.join(format!("{host}.lock"))) else {
        return false;
    };
    let Ok(locks) = fs::read_to_string("/proc/locks") else {
        return true;
    };
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF"
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"FLOCK")
            && f.get(5)
                .and_then(|d| d.rsplit(':').next())
                .and_then(|i| i.parse::<u64>().ok())
                == Some(m.ino())
    })
}

/// This machine, to tell whether a heartbeat's process is one the kernel
/// here can be asked about.
struct Local {
    boot_id: String,
    machine: String,
}

impl Local {
    fn new() -> Local {
        Local {
            boot_id: heartbeat::boot_id(),
            machine: crate::daemon::config::machine_name(),
        }
    }

    /// Same boot and same hostname (a container on this kernel shares the
    /// boot id but not its pid numbers, and usually has its own name).
    fn same_machine(&self, hb: &Heartbeat) -> bool {
        !self.boot_id.is_empty() && hb.boot_id == self.boot_id && hb.machine == self.machine
    }

    /// Whether `pid` is a live rlewatch here.
    fn process_is_rlewatch(&self, pid: u32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "rlewatch")
            || fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0)
                    .next()
                    .is_some_and(|a| a.ends_with(b"rlewatch"))
            })
    }
}

/// The inbox scanned with the daemon's filter: waiting files (less those
/// a live host retries) and ignored names.
fn scan_inbox(config: &Config, now: SystemTime, retrying: &[&str]) -> Inbox {
    let filter = Filter::new(config);
    let inbox = &config.paths.inbox;
    let walker = walkdir::WalkDir::new(inbox)
        .follow_links(false)
        // Subfolders are walked even with recursive = false: their files
        // are told as ignored (the filter says why), never as waiting.
        .into_iter()
        .filter_entry(|e| {
            !e.file_type().is_dir()
                || filter.wants_dir(e.path())
                // Ignored folders' files are told as ignored, not the
                // daemon's own or hidden ones.
                || filter.ignored(&e.path().join("x")).is_some()
        });
    let mut waiting = Vec::new();
    let mut ignored = Ignored::default();
    for e in walker.flatten() {
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(inbox).unwrap_or(e.path());
        if filter.wants_file(e.path()) {
            if retrying.contains(&shown(rel).as_str()) {
                continue;
            }
            if let Ok(m) = e.metadata() {
                waiting.push(Aged {
                    path: shown(rel),
                    age_secs: age(now, changed(&m)),
                });
            }
        } else if let Some(why) = filter.ignored(e.path()) {
            ignored.count += 1;
            ignored.files.push(IgnoredName {
                path: shown(rel),
                why,
            });
        }
    }
    waiting.sort_by(|a, b| b.age_secs.total_cmp(&a.age_secs));
    ignored.files.sort_by(|a, b| a.path.cmp(&b.path));
    ignored.files.truncate(IGNORED_SHOWN);
    Inbox {
        source: "disk".into(),
        waiting: waiting.len() as u64,
        oldest_waiting_secs: waiting.first().map(|a| a.age_secs),
        oldest: waiting.into_iter().take(SHOWN).collect(),
        ignored,
    }
}

/// With a live daemon, what waits is what it would still take, as its
/// heartbeat says: the disk scan cannot tell an original kept by design
/// (`[originals] action = "keep"`, archived already) from one to take.
/// Each daemon sees the whole inbox, so the hosts' counts are combined by
/// the largest; the oldest's age is the one written plus the heartbeat's
/// age. The disk's list of names is dropped then (it would show kept
/// files); the ignored names stay the disk's.
fn from_heartbeats(inbox: &mut Inbox, hosts: &[(Host, Option<Heartbeat>)], now: SystemTime) {
    let live: Vec<&Heartbeat> = hosts
        .iter()
        .filter(|(h, _)| h.alive)
        .filter_map(|(_, hb)| hb.as_ref())
        .collect();
    if live.is_empty() {
        return;
    }
    inbox.source = "heartbeats".into();
    inbox.waiting = live.iter().map(|hb| hb.waiting.count).max().unwrap_or(0);
    inbox.oldest_waiting_secs = live
        .iter()
        .filter(|hb| hb.waiting.count > 0)
        .map(|hb| hb.waiting.oldest_secs + age(now, hb.written))
        .max_by(f64::total_cmp);
    inbox.oldest.clear();
}

/// The failed folder: quarantined files, their notes, the newest ten, and
/// how many came after the acknowledgement.
fn failed(
    config: &Config,
    layout: &InboxLayout,
    now: SystemTime,
    problems: &mut Vec<String>,
) -> Failed {
    let dir = &config.paths.failed;
    let acknowledged = read_ack(&layout.status_ack(), problems);
    if let Some(p) = not_a_folder(dir, "paths.failed") {
        problems.push(p);
        return Failed {
            acknowledged,
            ..Failed::default()
        };
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir).follow_links(false).into_iter();
    for e in walker.filter_entry(|e| !e.file_name().as_encoded_bytes().starts_with(b".")) {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                problems.push(format!("{}: {err}", shown(dir)));
                continue;
            }
        };
        if e.file_type().is_dir() || e.file_name().as_encoded_bytes().ends_with(b".error.txt") {
            continue;
        }
        let note = note_of(e.path());
        let (reason, noted) = note.as_deref().map(read_note).unwrap_or_default();
        let ctime = e
            .metadata()
            .ok()
            .map(|m| m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9);
        let time = quarantined(noted, ctime, unix(now));
        files.push(FailedFile {
            path: shown(e.path().strip_prefix(dir).unwrap_or(e.path())),
            reason,
            time,
        });
    }
    files.sort_by(|a, b| b.time.total_cmp(&a.time));
    let new = files
        .iter()
        .filter(|f| acknowledged.is_none_or(|a| f.time > a))
        .count() as u64;
    Failed {
        count: files.len() as u64,
        new,
        acknowledged,
        newest: files.into_iter().take(SHOWN).collect(),
    }
}

/// When a file was quarantined: its note's `time:` line (a chmod, chown,
/// touch or restore changes the ctime, not the note), with the ctime's
/// fraction of a second when the ctime falls in the note's second or the
/// next (the note has whole seconds, too coarse beside an `--ack`); the
/// ctime when the note has no time; a time in the future counts as now.
fn quarantined(noted: Option<f64>, ctime: Option<f64>, now: f64) -> f64 {
    let t = match (noted, ctime) {
        (Some(n), Some(c)) if (n..n + 2.0).contains(&c) => c,
        (Some(n), _) => n,
        (None, Some(c)) => c,
        (None, None) => 0.0,
    };
    t.min(now)
}

/// A configured folder that is missing, not a folder or unreadable, as
/// one problem line naming it and its key; `None` when it can be listed.
fn not_a_folder(dir: &Path, key: &str) -> Option<String> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Some(format!("{}: no such folder ({key})", shown(dir)))
        }
        Err(e) => Some(format!("{}: cannot read ({key}): {e}", shown(dir))),
        Ok(m) if !m.is_dir() => Some(format!("{}: not a folder ({key})", shown(dir))),
        Ok(_) => match fs::read_dir(dir) {
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Some(format!(
                "{}: permission denied ({key}): run as root or as the daemon's user",
                shown(dir)
            )),
            Err(e) => Some(format!("{}: cannot read ({key}): {e}", shown(dir))),
        },
    }
}

/// `NAME.error.txt` beside a quarantined file.
fn note_of(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?;
    let mut n = name.to_os_string();
    n.push(".error.txt");
    let p = file.with_file_name(n);
    p.exists().then_some(p)
}

/// The reason and time a note gives (`reason: …`, `time: RFC 3339`).
fn read_note(note: &Path) -> (Option<String>, Option<f64>) {
    let Ok(text) = fs::read_to_string(note) else {
        return (None, None);
    };
    let note = crate::archive::notes::Note::parse(&text);
    (note.reason, note.time.map(unix))
}

/// The acknowledgement's time (Unix seconds on its first line).
fn read_ack(path: &Path, problems: &mut Vec<String>) -> Option<f64> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            problems.push(format!("{}: {e}", shown(path)));
            return None;
        }
    };
    match text.split_whitespace().next().map(str::parse::<f64>) {
        Some(Ok(t)) => Some(t),
        _ => {
            problems.push(format!(
                "{}: not an acknowledgement (Unix seconds expected); run rlewatch status --ack",
                shown(path)
            ));
            None
        }
    }
}

/// `--ack`: records now as seen-up-to for the failed folder; returns the
/// time written.
pub fn acknowledge(config: &Config, now: SystemTime) -> Result<f64> {
    let layout = InboxLayout::new(&config.paths.inbox);
    let path = layout.status_ack();
    let t = unix(now);
    let text = format!("{t:.3} {}\n", humantime::format_rfc3339_seconds(now));
    let dir = layout.state();
    let temp = dir.join(format!(".status-ack.{}.tmp", std::process::id()));
    fs::write(&temp, text)
        .and_then(|()| fs::rename(&temp, &path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
        .with_context(|| format!("{}: cannot record the acknowledgement", shown(&path)))?;
    Ok(t)
}

/// Archived in the 24 hours before `now` and the newest archive's time,
/// from each host's day files that can hold them: today's, yesterday's,
/// and its newest.
fn archived(archive: &Path, now: SystemTime, problems: &mut Vec<String>) -> Archived {
    let mut out = Archived::default();
    let root = ArchiveLayout::new(archive).ledger();
    let since = unix(now) - 86_400.0;
    let day = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string()[..10].to_string();
    let (today, yesterday) = (day(now), day(now - Duration::from_secs(86_400)));
    let mut by_host: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    if let Some(p) = not_a_folder(archive, "paths.archive") {
        problems.push(p);
        return out;
    }
    // No ledger folder yet is nothing archived yet; one unreadable is a
    // problem.
    if root.exists()
        && let Some(p) = not_a_folder(&root, "the ledger")
    {
        problems.push(p);
        return out;
    }
    match crate::ledger::files(archive) {
        Ok(files) => {
            for (host, path) in files {
                by_host.entry(host).or_default().push(path);
            }
        }
        Err(e) => problems.push(format!("{}: cannot list the ledger: {e}", shown(&root))),
    }
    for files in by_host.values() {
        let mut read: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(&today) || name.starts_with(&yesterday)
            })
            .collect();
        if let Some(newest) = files.last()
            && !read.contains(&newest)
        {
            read.push(newest);
        }
        for path in read {
            if let Err(e) = read_ledger(path, since, &mut out, problems) {
                problems.push(format!("{}: cannot read the ledger file: {e}", shown(path)));
            }
        }
    }
    out
}

/// Counts the archived lines of one day file (through the ledger's own
/// reader, every version and kind); the first unreadable line is named,
/// the rest counted. A last line without its newline is one being
/// written, or torn by a crash, which the ledger tolerates: not judged.
fn read_ledger(
    path: &Path,
    since: f64,
    out: &mut Archived,
    problems: &mut Vec<String>,
) -> io::Result<()> {
    let size = fs::metadata(path)?.len();
    let mut bad = 0;
    crate::ledger::for_each_line_in(path, |at, line| {
        let entry = match line {
            Ok(crate::ledger::Line::Archived(e)) => e,
            Ok(_) => return,
            Err(_) if at.offset + at.len as u64 >= size => return,
            Err(e) => {
                bad += 1;
                if bad == 1 {
                    problems.push(format!(
                        "{} line {}: unreadable ledger line: {e}",
                        shown(path),
                        at.number
                    ));
                }
                return;
            }
        };
        let Ok(t) = humantime::parse_rfc3339(&entry.time) else {
            bad += 1;
            if bad == 1 {
                problems.push(format!(
                    "{} line {}: unreadable ledger line: time {:?}",
                    shown(path),
                    at.number,
                    entry.time
                ));
            }
            return;
        };
        let t = unix(t);
        if t >= since {
            out.last_24h += 1;
        }
        if out.last_time.is_none_or(|l| t > l) {
            out.last_time = Some(t);
            out.last_host = Some(entry.host);
        }
    })?;
    if bad > 1 {
        problems.push(format!(
            "{}: {bad} unreadable ledger lines in all (rlewatch audit lists them)",
            shown(path)
        ));
    }
    Ok(())
}

/// When a file last changed or was renamed in: the later of its mtime and
/// ctime (a file copied with its old mtime kept is new when it arrives).
fn changed(m: &fs::Metadata) -> f64 {
    let mtime = m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9;
    let ctime = m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9;
    mtime.max(ctime)
}

fn age(now: SystemTime, then: f64) -> f64 {
    (unix(now) - then).max(0.0)
}

/// `95s`, `3m 12s`, `2h 5m` — whole seconds.
pub(super) fn secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    let mut d = humantime::format_duration(Duration::from_secs(s)).to_string();
    // "1day 2h 3m 4s": only the two largest units.
    if let Some((i, _)) = d.match_indices(' ').nth(1) {
        d.truncate(i);
    }
    d
}

/// `95s ago`.
pub(super) fn ago(s: f64) -> String {
    format!("{} ago", secs(s))
}

#[cfg(test)]
mod tests {
    use super::quarantined;

    #[test]
    fn a_failed_files_time_is_its_notes_with_the_ctimes_fraction_when_they_agree() {
        // Untouched: the ctime within the note's second (or the next).
        assert_eq!(quarantined(Some(100.0), Some(100.4), 500.0), 100.4);
        assert_eq!(quarantined(Some(100.0), Some(101.9), 500.0), 101.9);
        // Touched, chmod'ed or restored later: the note's time.
        assert_eq!(quarantined(Some(100.0), Some(300.0), 500.0), 100.0);
        // No time in the note: the ctime; a time in the future: now.
        assert_eq!(quarantined(None, Some(300.0), 500.0), 300.0);
        assert_eq!(quarantined(Some(900.0), Some(300.0), 500.0), 500.0);
    }
}
