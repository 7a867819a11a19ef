//! `rlewatch retry` (design §4.4, "Retrying failures"): puts quarantined
//! files from failed/ back into the inbox under the path they were dropped
//! as, so that the daemons — on this host or any other of a shared inbox —
//! take them as new arrivals; and `--now`, which asks every running daemon
//! of the inbox to retry its files in backoff at once.
//!
//! Never overwrites: a name taken in the inbox is reported and the file
//! stays in failed/ with its note. A file appears in the inbox only whole
//! and under its final name (a rename, or a copy published by a rename), so
//! no daemon can take it half moved. Its note goes to the history first
//! ([`crate::archive::notes`]), so a file that fails again shows its
//! earlier failures.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::archive::notes::{self, Note};
use crate::daemon::config::{self, Config};
use crate::display::shown;
use crate::durable;
use crate::layout::InboxLayout;
use crate::ledger::{self, Ledger, Line, Retried};

/// The arguments of `rlewatch retry`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true)
    .args(["files", "all", "since", "now"])))]
pub struct RetryArgs {
    /// TOML configuration (default: built-in defaults, folders relative to
    /// the working directory).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Say what would be done; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Every file in failed/.
    #[arg(long, conflicts_with_all = ["files", "since"])]
    pub all: bool,
    /// The files quarantined since TIME: RFC 3339 (`2026-03-01T08:00:00Z`),
    /// a date (`2026-03-01`, midnight UTC) or a duration ago (`2h`, `3days`).
    #[arg(long, value_name = "TIME", conflicts_with = "files")]
    pub since: Option<String>,
    /// Ask every running daemon of this inbox to retry its files in backoff
    /// at once: those on this machine by SIGUSR1, those of other hosts
    /// through INBOX/.rlewatch/retry-now at their next heartbeat.
    #[arg(long)]
    pub now: bool,
    /// Files in failed/ (absolute, or relative to the working folder or to
    /// failed/), their notes, subfolders of failed/ (everything below), or
    /// the path they were dropped as (relative to the inbox).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// One quarantined file.
#[derive(Debug, Clone)]
struct Quarantined {
    /// Relative to failed/.
    rel: PathBuf,
    /// Relative to the inbox: where it goes back.
    target: PathBuf,
    /// Its note, if it has one, and what it says.
    note: Option<(PathBuf, String)>,
    /// When it was quarantined (the note's time, else its mtime, else the
    /// file's).
    when: SystemTime,
}

/// `rlewatch retry`: true when every file asked for went back (or there
/// was nothing to do).
pub fn retry_cmd(args: &RetryArgs) -> Result<bool> {
    let config = match &args.config {
        Some(p) => config::load(p)?,
        None => {
            Config::defaults(&std::env::current_dir().context("cannot read the working directory")?)
        }
    };
    let failed = &config.paths.failed;
    let inbox = &config.paths.inbox;
    let mut ok = true;
    if args.all || args.since.is_some() || !args.files.is_empty() {
        folder(failed, "failed")?;
        folder(inbox, "inbox")?;
        let all = quarantined(failed)?;
        let chosen = if args.all {
            all
        } else if let Some(since) = &args.since {
            let t = parse_since(since, SystemTime::now())?;
            all.into_iter().filter(|q| q.when >= t).collect()
        } else {
            let mut chosen = Vec::new();
            for f in &args.files {
                match resolve(f, failed, inbox, &all) {
                    Ok(found) => chosen.extend(found),
                    Err(e) => {
                        println!("not found: {e}");
                        ok = false;
                    }
                }
            }
            chosen
        };
        if chosen.is_empty() && ok {
            println!("nothing in {} to retry", shown(failed));
        }
        let mut seen = std::collections::HashSet::new();
        let mut ledger = LedgerOnce::default();
        for q in chosen.into_iter().filter(|q| seen.insert(q.rel.clone())) {
            ok &= put_back(&config, &q, args.dry_run, &mut ledger);
        }
    }
    if args.now {
        ok &= ask_now(&config, args.dry_run)?;
    }
    Ok(ok)
}

/// Refuses a folder that is missing or not readable, naming it.
fn folder(dir: &Path, what: &str) -> Result<()> {
    let m = fs::metadata(dir)
        .map_err(|e| anyhow!("{}: cannot read the {what} folder: {e}", shown(dir)))?;
    if !m.is_dir() {
        bail!("{}: the {what} folder is not a folder", shown(dir));
    }
    fs::read_dir(dir).map_err(|e| anyhow!("{}: cannot read the {what} folder: {e}", shown(dir)))?;
    Ok(())
}

/// Every quarantined file in `failed` (not the notes, nor temporary files).
fn quarantined(failed: &Path) -> Result<Vec<Quarantined>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(failed)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(failed).to_path_buf();
            anyhow!("{}: cannot read it: {}", shown(&at), io::Error::from(e))
        })?;
        let name = entry.file_name();
        if entry.file_type().is_dir() || notes::is_note_name(name) || durable::is_temp_name(name) {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(failed)
            .expect("BUG: walkdir yields paths below its root")
            .to_path_buf();
        out.push(describe(failed, rel));
    }
    Ok(out)
}

/// The file `rel` in failed/, with its note and where it goes back.
fn describe(failed: &Path, rel: PathBuf) -> Quarantined {
    let file = failed.join(&rel);
    let note_path = notes::note_of(&file);
    let note = fs::read(&note_path)
        .ok()
        .map(|b| (note_path.clone(), String::from_utf8_lossy(&b).into_owned()));
    let parsed = note
        .as_ref()
        .map(|(_, t)| Note::parse(t))
        .unwrap_or_default();
    let when = parsed
        .time
        .or_else(|| fs::metadata(&note_path).and_then(|m| m.modified()).ok())
        .or_else(|| fs::symlink_metadata(&file).and_then(|m| m.modified()).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let target = target_of(&rel, parsed.file.as_deref());
    Quarantined {
        rel,
        target,
        note,
        when,
    }
}

/// Where the file `rel` of failed/ goes back in the inbox: the same
/// relative path, unless failed/ had to number it (`a-1.bmp`, its name
/// taken by an earlier failure) and its note says it was dropped as
/// `a.bmp`.
fn target_of(rel: &Path, dropped: Option<&str>) -> PathBuf {
    let Some(dropped) = dropped else {
        return rel.to_path_buf();
    };
    let name = rel.file_name().unwrap_or_default();
    let (stem, ext) = durable::split_name(name);
    let stem = stem.as_bytes();
    let unnumbered = stem
        .iter()
        .rposition(|&b| b == b'-')
        .filter(|&i| i + 1 < stem.len() && stem[i + 1..].iter().all(u8::is_ascii_digit))
        .map(|i| {
            let mut n = OsString::from(OsStr::from_bytes(&stem[..i]));
            if !ext.is_empty() {
                n.push(".");
                n.push(&ext);
            }
            rel.with_file_name(n)
        });
    let said = |c: &Path| {
        let c = shown(c);
        dropped == c || dropped.ends_with(&format!("/{c}"))
    };
    match unnumbered {
        Some(u) if said(&u) && !said(rel) => u,
        _ => rel.to_path_buf(),
    }
}

/// The quarantined files `arg` names: a file in failed/ or its note
/// (absolute, relative to the working folder, or to failed/), or the path
/// it was dropped as (relative to the inbox, or absolute in it).
fn resolve(
    arg: &Path,
    failed: &Path,
    inbox: &Path,
    all: &[Quarantined],
) -> Result<Vec<Quarantined>> {
    let in_failed = |p: &Path| -> Option<PathBuf> {
        let real = fs::canonicalize(p.parent()?).ok()?.join(p.file_name()?);
        let root = fs::canonicalize(failed).ok()?;
        let rel = real.strip_prefix(&root).ok()?;
        (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
    };
    let mut tries = vec![arg.to_path_buf()];
    if arg.is_relative() {
        tries.push(failed.join(arg));
    }
    for p in &tries {
        if fs::symlink_metadata(p).is_err() {
            continue;
        }
        if let Some(mut rel) = in_failed(p) {
            if p.is_dir() {
                // A subfolder of failed/: everything below it.
                let below: Vec<Quarantined> = all
                    .iter()
                    .filter(|q| q.rel.starts_with(&rel))
                    .cloned()
                    .collect();
                if below.is_empty() {
                    bail!("{}: no quarantined file below this folder", shown(arg));
                }
                return Ok(below);
            }
            if notes::is_note_name(rel.as_os_str()) {
                let name = rel.file_name().unwrap_or_default().as_bytes();
                let file = &name[..name.len() - notes::NOTE_SUFFIX.len()];
                rel = rel.with_file_name(OsStr::from_bytes(file));
            }
            if let Some(q) = all.iter().find(|q| q.rel == rel) {
                return Ok(vec![q.clone()]);
            }
            bail!(
                "{}: only an error note in {}, its file is not there",
                shown(arg),
                shown(failed)
            );
        }
    }
    // The path it was dropped as.
    let dropped = arg.strip_prefix(inbox).unwrap_or(arg);
    if dropped
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        let found: Vec<Quarantined> = all
            .iter()
            .filter(|q| q.target == dropped)
            .cloned()
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    bail!(
        "{}: no such quarantined file in {} (give its path there, or the path it was dropped as)",
        shown(arg),
        shown(failed)
    )
}

/// `--since`: RFC 3339, a date (midnight UTC) or a duration before `now`.
fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{s} 00:00:00")) {
        return Ok(t);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| anyhow!("--since {s}: too far back"));
    }
    Err(crate::cli::UsageError(format!(
        "--since {s}: not a time (RFC 3339 such as 2026-03-01T08:00:00Z), a date \
         (2026-03-01) or a duration (2h, 3days)"
    ))
    .into())
}

/// Puts one file back, printing one line; true when it went back (or
/// would, with `dry_run`).
fn put_back(config: &Config, q: &Quarantined, dry_run: bool, ledger: &mut LedgerOnce) -> bool {
    let from = config.paths.failed.join(&q.rel);
    let to = config.paths.inbox.join(&q.target);
    let earlier = q
        .note
        .as_ref()
        .and_then(|(_, t)| Note::parse(t).reason)
        .map(|r| format!(" (it failed: {r})"))
        .unwrap_or_default();
    if fs::symlink_metadata(&to).is_ok() {
        println!(
            "skipped {}: {} is taken in the inbox; nothing was overwritten, the file stays in failed/",
            shown(&from),
            shown(&to)
        );
        return false;
    }
    if dry_run {
        println!("would put back {} -> {}{earlier}", shown(&from), shown(&to));
        return true;
    }
    match move_back(config, q) {
        Ok(()) => {
            println!("put back {} -> {}{earlier}", shown(&from), shown(&to));
            ledger.retried(config, q);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            println!(
                "skipped {}: {} is taken in the inbox; nothing was overwritten, the file stays in failed/",
                shown(&from),
                shown(&to)
            );
            false
        }
        Err(e) => {
            println!(
                "failed {}: {e}; the file stays in failed/ with its note",
                shown(&from)
            );
            false
        }
    }
}

/// This host's ledger, opened at the first retry that is recorded.
#[derive(Default)]
struct LedgerOnce(Option<std::result::Result<Ledger, String>>);

impl LedgerOnce {
    /// Records the retry: a `retried` line (design §4.7) in this host's
    /// ledger. A file put back stays put back when the line cannot be
    /// written; that is said on standard error.
    fn retried(&mut self, config: &Config, q: &Quarantined) {
        let archive = &config.paths.archive;
        let ledger = self.0.get_or_insert_with(|| {
            Ledger::open(archive, &config.host).map_err(|e| {
                format!(
                    "{}: cannot open the ledger: {e}",
                    shown(&crate::layout::ArchiveLayout::new(archive).ledger())
                )
            })
        });
        let (path, path_raw) = ledger::path_fields(&q.rel);
        let (source, source_raw) = ledger::path_fields(&q.target);
        let line = Line::Retried(Retried {
            v: ledger::VERSION,
            time: ledger::now(),
            host: config.host.clone(),
            path,
            path_raw,
            source,
            source_raw,
        });
        let written = match ledger {
            Ok(l) => l.append_event(&line).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = written {
            eprintln!(
                "rlewatch: {}: put back, but not recorded in the ledger: {e}",
                shown(&config.paths.failed.join(&q.rel))
            );
        }
    }
}

/// The move itself: note into the history (durably), note out of failed/,
/// then the file into the inbox without replacing anything; on failure
/// the note and the history are put back as they were.
fn move_back(config: &Config, q: &Quarantined) -> io::Result<()> {
    let failed = &config.paths.failed;
    let inbox = &config.paths.inbox;
    let from_dir = failed.join(q.rel.parent().unwrap_or(Path::new("")));
    let to_dir = inbox.join(q.target.parent().unwrap_or(Path::new("")));
    let name = q.rel.file_name().unwrap_or_default();
    let to_name = q.target.file_name().unwrap_or_default();
    let old_history = fs::read(notes::history_path(inbox, &q.target)).ok();
    // The note leaves failed/ before the file does: a daemon that
    // quarantines the file again at once writes its note under the same
    // name, which must not be the old one removed after it.
    if let Some((note, text)) = &q.note {
        let history = notes::add_to_history(inbox, &q.target, text)?;
        own_like_state(inbox, &history);
        if let Err(e) = fs::remove_file(note).and_then(|()| durable::sync_dir(&from_dir)) {
            undo_history(inbox, &q.target, old_history.as_deref());
            if e.kind() == io::ErrorKind::NotFound {
                // Another `rlewatch retry` took it first.
                return Err(io::Error::new(
                    e.kind(),
                    "its note went meanwhile (another `rlewatch retry` at work?)",
                ));
            }
            return Err(e);
        }
    }
    // Subfolders made for it, as root, go to the inbox's owner, as the
    // folders writers make are the daemon's to take files out of.
    let missing: Vec<PathBuf> = to_dir
        .ancestors()
        .take_while(|d| d.starts_with(inbox) && *d != inbox && fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    durable::create_dir_all(&to_dir)?;
    own_like(inbox, &missing);
    let moved = File::open(&from_dir)
        .and_then(|from| Ok((from, File::open(&to_dir)?)))
        .and_then(|(from, to)| move_noreplace(&from, name, &to, &to_dir, to_name));
    if let Err(e) = moved {
        if let Some((note, text)) = &q.note {
            if let Err(undo) = restore_note(note, text) {
                eprintln!(
                    "rlewatch: {}: cannot put the error note back ({undo}); its text is in {}",
                    shown(note),
                    shown(&notes::history_path(inbox, &q.target))
                );
                return Err(e);
            }
            undo_history(inbox, &q.target, old_history.as_deref());
        }
        return Err(e);
    }
    Ok(())
}

/// Run as root (`sudo rlewatch retry`): what this command created under
/// `INBOX/.rlewatch` (`path` and the folders above it there) is given to
/// the owner of that folder, the daemon's user, which must be able to read
/// and remove it. Otherwise nothing to do: the files are the caller's.
fn own_like_state(inbox: &Path, path: &Path) {
    let layout = InboxLayout::new(inbox);
    let state = layout.state();
    let paths: Vec<PathBuf> = path
        .ancestors()
        .take_while(|p| *p != state && p.starts_with(state))
        .map(Path::to_path_buf)
        .collect();
    own_like(state, &paths);
}

/// As root: `paths` given to the owner and group of `like`.
fn own_like(like: &Path, paths: &[PathBuf]) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if paths.is_empty() || unsafe { libc::geteuid() } != 0 {
        return;
    }
    let Ok(owner) = fs::metadata(like) else {
        return;
    };
    for p in paths {
        if let Err(e) = std::os::unix::fs::lchown(p, Some(owner.uid()), Some(owner.gid())) {
            eprintln!(
                "rlewatch: {}: cannot give it to the owner of {}: {e}",
                shown(p),
                shown(like)
            );
        }
    }
}

/// The history of `rel` as it was before (`None`: there was none).
fn undo_history(inbox: &Path, rel: &Path, old: Option<&[u8]>) {
    let path = notes::history_path(inbox, rel);
    let undone = match old {
        Some(bytes) => fs::write(&path, bytes),
        None => fs::remove_file(&path),
    };
    if let Err(e) = undone {
        eprintln!("rlewatch: {}: cannot undo the history: {e}", shown(&path));
    }
}

fn restore_note(note: &Path, text: &str) -> io::Result<()> {
    let dir = note.parent().unwrap_or(Path::new("."));
    let mut t = durable::temp_in(dir, crate::archive::FILE_MODE)?;
    io::Write::write_all(&mut t, text.as_bytes())?;
    durable::publish(t, note, false).map_err(|e| io::Error::other(e.to_string()))
}

/// Moves `name` from the folder `from` to `to_name` in the folder `to`
/// (path `to_dir`), never replacing anything (EEXIST), made durable: a
/// `renameat2(RENAME_NOREPLACE)`; link + unlink where the filesystem has
/// none; across filesystems a copy to a temporary file published under
/// the name without replacing, then the source removed. The file appears
/// under its name only whole.
fn move_noreplace(
    from: &File,
    name: &OsStr,
    to: &File,
    to_dir: &Path,
    to_name: &OsStr,
) -> io::Result<()> {
    // The rename without replacing (link + unlink where the filesystem
    // has none), as a claim is put back.
    let e = match durable::put_back(from, name, to, to_name) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    match e.raw_os_error() {
        Some(libc::EXDEV) => {
            // Never blocks on a FIFO; only a regular file is copied (a
            // symlink or a device would not be itself once copied).
            let mut src =
                durable::open_beneath(from, Path::new(name), libc::O_RDONLY | libc::O_NONBLOCK)?;
            if !src.metadata()?.is_file() {
                return Err(io::Error::other(
                    "not a regular file, and failed/ is on another filesystem than the \
                     inbox: move it by hand",
                ));
            }
            let mut temp = durable::temp_in(to_dir, crate::archive::FILE_MODE)?;
            io::copy(&mut src, temp.as_file_mut())?;
            let dest = to_dir.join(to_name);
            durable::publish(temp, &dest, false).map_err(|e| match e {
                durable::PublishError::Exists(_) => io::Error::from(io::ErrorKind::AlreadyExists),
                durable::PublishError::Io { source, .. } => source,
            })?;
            durable::unlink_at(from, name)?;
            from.sync_all()
        }
        _ => Err(durable::taken_as_exists(e, &to_dir.join(to_name))),
    }
}

/// `--now`: the request file for every host, and SIGUSR1 to the daemons
/// of this inbox running on this machine. True when at least one was
/// asked (a daemon signalled, or the request file written).
fn ask_now(config: &Config, dry_run: bool) -> Result<bool> {
    let layout = InboxLayout::new(&config.paths.inbox);
    let request = layout.retry_request();
    let daemons = local_daemons(&layout);
    if dry_run {
        for (host, pid) in &daemons {
            println!("would ask daemon {host} (pid {pid}) to retry its files in backoff now");
        }
        println!(
            "would ask the daemons of other hosts through {}",
            shown(&request)
        );
        return Ok(true);
    }
    durable::create_dir_all(layout.state())
        .and_then(|()| {
            let mut t = durable::temp_in(layout.state(), crate::archive::FILE_MODE)?;
            io::Write::write_all(
                &mut t,
                format!("{}\n", humantime::format_rfc3339_millis(SystemTime::now())).as_bytes(),
            )?;
            durable::publish(t, &request, true).map_err(|e| io::Error::other(e.to_string()))
        })
        .with_context(|| format!("{}: cannot write the request", shown(&request)))?;
    own_like_state(&config.paths.inbox, &request);
    for (host, pid) in &daemons {
        // SAFETY: kill has no memory effects; pid is positive (checked in
        // local_daemons), so it never names a process group.
        if unsafe { libc::kill(*pid, libc::SIGUSR1) } == 0 {
            println!("asked daemon {host} (pid {pid}) to retry its files in backoff now");
        } else {
            println!(
                "cannot signal daemon {host} (pid {pid}): {}; it sees {} at its next heartbeat",
                io::Error::last_os_error(),
                shown(&request)
            );
        }
    }
    if daemons.is_empty() {
        println!("no daemon of this inbox runs on this machine (rlewatch status shows which do)");
    }
    println!(
        "asked the daemons of other hosts through {} (they see it at their next heartbeat)",
        shown(&request)
    );
    Ok(true)
}

/// The daemons of this inbox running on this machine: the pid in each
/// `HOST.lock`, kept only if `/proc` shows an `rlewatch run` holding that
/// very lock file open (a pid from another machine of a shared inbox, or a
/// stale one, names some other process here).
fn local_daemons(layout: &InboxLayout) -> Vec<(String, i32)> {
    let Ok(entries) = fs::read_dir(layout.state()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(host) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
            continue;
        };
        let Some(pid) = fs::read_to_string(e.path())
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|&p| p > 0)
        else {
            continue;
        };
        if holds(pid, &e.path()) {
            out.push((host.to_string(), pid));
        }
    }
    out.sort();
    out
}

/// True when process `pid` is an `rlewatch run` with `lock` open.
fn holds(pid: i32, lock: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let mut args = cmdline.split(|&b| b == 0);
    let argv0 = args.next().map(|a| Path::new(OsStr::from_bytes(a)));
    let is_run = args.next() == Some(b"run".as_slice());
    let ours = argv0
        .and_then(Path::file_name)
        .is_some_and(|n| n.as_bytes().starts_with(b"rlewatch"));
    if !(is_run && ours) {
        return false;
    }
    let Ok(lock) = fs::canonicalize(lock) else {
        return false;
    };
    let Ok(fds) = fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|p| p == lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numbered_name_goes_back_as_dropped_when_its_note_says_so() {
        let t = |rel: &str, file: Option<&str>| target_of(Path::new(rel), file);
        assert_eq!(
            t("sub/a-1.bmp", Some("/in/sub/a.bmp")),
            Path::new("sub/a.bmp")
        );
        assert_eq!(
            t("sub/a-1.bmp", Some("/in/sub/a-1.bmp")),
            Path::new("sub/a-1.bmp")
        );
        assert_eq!(t("sub/a-1.bmp", None), Path::new("sub/a-1.bmp"));
        assert_eq!(t("a-12", Some("/other/mount/a")), Path::new("a"));
        assert_eq!(t("a-x.bmp", Some("/in/a.bmp")), Path::new("a-x.bmp"));
    }

    #[test]
    fn since_takes_a_time_a_date_or_a_duration() {
        let now = humantime::parse_rfc3339("2026-03-02T12:00:00Z").unwrap();
        let at = |s| parse_since(s, now).unwrap();
        assert_eq!(
            at("2026-03-01T08:00:00Z"),
            humantime::parse_rfc3339("2026-03-01T08:00:00Z").unwrap()
        );
        assert_eq!(
            at("2026-03-01"),
            humantime::parse_rfc3339("2026-03-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            at("2h"),
            humantime::parse_rfc3339("2026-03-02T10:00:00Z").unwrap()
        );
        assert!(parse_since("yesterday-ish", now).is_err());
    }
}
