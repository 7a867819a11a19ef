//! `rlewatch audit` (design §4.7): the fixity check. Every `.rle` in the
//! archive is re-read, decoded strictly and compared (size and XXH3
//! digest) with its ledger entry; reported are archives missing, corrupt
//! (unreadable, another size or digest, not decodable), unrecorded (an
//! `.rle` no ledger entry names) and doubly recorded (named by two
//! entries), ledger lines that cannot be read, and (version 3) `filed`
//! lines naming an archive no archived entry names. The other event lines
//! (quarantines, removals, retries) are read, not checked: they name no
//! archive.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::display::shown;
use crate::layout::ArchiveLayout;
use crate::ledger::{self, Record};

/// What an audit found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Archives checked and their bytes.
    pub checked: usize,
    pub bytes: u64,
    pub entries: usize,
    pub missing: Vec<PathBuf>,
    /// (archive, why).
    pub corrupt: Vec<(PathBuf, CheckError)>,
    pub unrecorded: Vec<PathBuf>,
    pub doubly_recorded: Vec<PathBuf>,
    /// `file:line: why`.
    pub unreadable: Vec<String>,
    /// `filed` lines (ledger version 3) naming an archive no archived
    /// entry names: (archive, `file:line`).
    pub fates_without_entry: Vec<(PathBuf, String)>,
}

impl Findings {
    pub fn clean(&self) -> bool {
        self.missing.is_empty()
            && self.corrupt.is_empty()
            && self.unrecorded.is_empty()
            && self.doubly_recorded.is_empty()
            && self.unreadable.is_empty()
            && self.fates_without_entry.is_empty()
    }
}

/// Audits the archive folder `archive` with `threads` readers; a progress
/// bar when `progress`.
pub fn audit(archive: &Path, threads: usize, progress: bool) -> Result<Findings> {
    let mut f = Findings::default();
    let mut recorded: HashMap<PathBuf, Vec<Record>> = HashMap::new();
    for (_, file) in ledger::files(archive).with_context(|| {
        format!(
            "{}: reading the ledger",
            shown(&ArchiveLayout::new(archive).ledger())
        )
    })? {
        ledger::for_each_line_in(&file, |at, line| match line {
            Ok(ledger::Line::Archived(e)) => {
                f.entries += 1;
                recorded.entry(e.archive_path()).or_default().push(e);
            }
            Ok(ledger::Line::Filed(e)) => f
                .fates_without_entry
                .push((e.archive_path(), format!("{}:{}", shown(&file), at.number))),
            // Quarantines, removals and retries name no archive.
            Ok(_) => {}
            Err(why) => f
                .unreadable
                .push(format!("{}:{}: {why}", shown(&file), at.number)),
        })
        .with_context(|| shown(&file))?;
    }
    // A `filed` line is written after its archived entry is durable, by
    // the same host (design §4.7): one without is a ledger file lost or
    // moved away, or edited.
    f.fates_without_entry
        .retain(|(archive, _)| !recorded.contains_key(archive));
    let on_disk = archive_files(archive)?;
    for rel in &on_disk {
        if !recorded.contains_key(rel) {
            f.unrecorded.push(rel.clone());
        }
    }
    let present: std::collections::HashSet<&PathBuf> = on_disk.iter().collect();
    let mut work: Vec<(PathBuf, Record)> = Vec::new();
    let mut names: Vec<&PathBuf> = recorded.keys().collect();
    names.sort();
    for rel in names {
        let entries = &recorded[rel];
        if entries.len() > 1 {
            f.doubly_recorded.push(rel.clone());
        }
        if present.contains(rel) {
            work.push((rel.clone(), entries[entries.len() - 1].clone()));
        } else {
            f.missing.push(rel.clone());
        }
    }
    let total: u64 = work.iter().map(|(_, e)| e.archive_size).sum();
    let bar = if progress {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let corrupt = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((rel, entry)) = work.get(i) else {
                        break;
                    };
                    if let Err(why) = check(&archive.join(rel), entry) {
                        corrupt
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((rel.clone(), why));
                    }
                    bar.inc(entry.archive_size);
                }
            });
        }
    });
    bar.finish_and_clear();
    f.corrupt = corrupt.into_inner().unwrap_or_else(|p| p.into_inner());
    // By archive: each is checked once, so no two share a path.
    f.corrupt.sort_by(|a, b| a.0.cmp(&b.0));
    f.checked = work.len();
    f.bytes = total;
    Ok(f)
}

// The check of one archive lives in `fixity`, which the daemon's
// retention uses too (the daemon cannot import `audit`, which imports its
// configuration).
pub use crate::fixity::{CheckError, check};

/// Every `.rle` below `archive` (relative paths), leaving out rlewatch's
/// own folder and temporary files.
fn archive_files(archive: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(archive)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || !crate::layout::is_state_dir(e.file_name()));
    for entry in walker {
        let entry = entry.with_context(|| shown(archive))?;
        let name = entry.file_name();
        if entry.file_type().is_file()
            && !crate::durable::is_temp_name(name)
            && Path::new(name).extension().is_some_and(|x| x == "rle")
        {
            let rel = entry
                .path()
                .strip_prefix(archive)
                .expect("BUG: walkdir yields paths under its root");
            out.push(rel.to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

/// The command: prints the findings; true when clean.
pub fn run(archive: &Path, threads: usize) -> Result<bool> {
    match std::fs::metadata(archive) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("{}: not a folder (give the archive folder)", shown(archive)),
        Err(e) => anyhow::bail!("{}: the archive folder: {e}", shown(archive)),
    }
    // A daemon makes the ledger's folder when it starts: without it this
    // is no archive rlewatch writes (a wrong path in a cron job), not an
    // archive with nothing in it.
    let ledger = ArchiveLayout::new(archive).ledger();
    if !ledger.is_dir() {
        anyhow::bail!(
            "{}: no ledger there ({} is missing): not an archive folder of rlewatch (check the \
             path, or give -c with the daemon's configuration)",
            shown(archive),
            shown(&ledger)
        );
    }
    let started = Instant::now();
    let f = audit(archive, threads, io::stderr().is_terminal())?;
    let secs = started.elapsed().as_secs_f64();
    // Names are escaped as in the daemon's log: one line per finding, no
    // control characters reaching the terminal.
    for rel in &f.missing {
        println!(
            "missing: {} (recorded in the ledger, not in the archive)",
            shown(rel)
        );
    }
    for (rel, why) in &f.corrupt {
        println!("corrupt: {}: {why}", shown(rel));
    }
    for rel in &f.unrecorded {
        println!("unrecorded: {} (no ledger entry)", shown(rel));
    }
    for rel in &f.doubly_recorded {
        println!(
            "doubly recorded: {} (more than one ledger entry)",
            shown(rel)
        );
    }
    for line in &f.unreadable {
        println!("unreadable ledger line: {line}");
    }
    for (rel, at) in &f.fates_without_entry {
        println!(
            "fate without entry: {} (the `filed` line at {at} names it; no archived entry does: \
             a ledger file missing or moved away?)",
            shown(rel)
        );
    }
    println!(
        "audited {} recorded archive(s), {} bytes, against {} ledger entr{} in {secs:.2} s\
         {}: {} missing, {} corrupt, {} unrecorded, {} doubly recorded, {} unreadable \
         ledger line(s)",
        f.checked,
        f.bytes,
        f.entries,
        if f.entries == 1 { "y" } else { "ies" },
        rate(f.bytes, secs),
        f.missing.len(),
        f.corrupt.len(),
        f.unrecorded.len(),
        f.doubly_recorded.len(),
        f.unreadable.len()
    );
    if !f.fates_without_entry.is_empty() {
        println!(
            "and {} `filed` line(s) naming no archived entry",
            f.fates_without_entry.len()
        );
    }
    Ok(f.clean())
}

/// The read rate for the summary in a unit that fits it, ` (N MB/s)`,
/// ` (N KB/s)` or ` (N B/s)`; nothing when no bytes were read or the run
/// took under 10 ms, where the figure is noise.
fn rate(bytes: u64, secs: f64) -> String {
    if bytes == 0 || secs < 0.01 {
        return String::new();
    }
    let per_sec = bytes as f64 / secs;
    if per_sec >= 1e7 {
        format!(" ({:.0} MB/s)", per_sec / 1e6)
    } else if per_sec >= 1e4 {
        format!(" ({:.0} KB/s)", per_sec / 1e3)
    } else {
        format!(" ({per_sec:.0} B/s)")
    }
}

/// The archive folder `audit` checks: given, or the configuration's.
pub fn archive_of(dir: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let config = match config {
        Some(p) => crate::daemon::config::load(p)?,
        None => crate::daemon::config::Config::defaults(
            &std::env::current_dir().context("cannot read the working directory")?,
        ),
    };
    Ok(config.paths.archive)
}
