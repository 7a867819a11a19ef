//! `rlewatch audit` (design §4.7): the fixity check. Every `.rle` in the
//! archive is re-read, decoded strictly and compared (size and XXH3
//! digest) with its ledger entry; reported are archives missing, corrupt
//! (unreadable, another size or digest, not decodable), unrecorded (an
//! `.rle` no ledger entry names) and doubly recorded (named by two
//! entries), ledger lines that cannot be read, and (version 3) `filed`
//! lines naming an archive no archived entry names. The other event lines
//! (quarantines, removals, retries) are read, not checked: they name no
//! archive.

use std::cmp::Ordering;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::display::shown;
use crate::extsort::{self, Budget, Item, Merge, Peek, Spill};
use crate::layout::ArchiveLayout;
use crate::ledger::{self, AuditLine, Checked};

/// What an audit found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Archives checked and their bytes.
    pub checked: usize,
    pub bytes: u64,
    pub entries: usize,
    pub missing: Vec<PathBuf>,
    /// (archive, why), why as [`CheckError`] shows it.
    pub corrupt: Vec<(PathBuf, String)>,
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
/// bar when `progress`. Every finding is held in memory: `rlewatch audit`
/// itself prints them from a report that keeps them on disk.
pub fn audit(archive: &Path, threads: usize, progress: bool) -> Result<Findings> {
    audit_within(archive, threads, progress, Budget::default())?.findings()
}

/// What an audit found, each kind of finding in the order it is printed
/// in, held in [`Spill`]s: in memory up to the budget, then on disk.
pub(crate) struct Report {
    pub checked: u64,
    pub bytes: u64,
    pub entries: u64,
    missing: Spill<PathBuf>,
    corrupt: Spill<Corrupt>,
    unrecorded: Spill<PathBuf>,
    doubly_recorded: Spill<PathBuf>,
    unreadable: Spill<String>,
    fates_without_entry: Spill<Fate>,
    /// The ledger files, as `Fate::file` numbers them.
    files: Vec<PathBuf>,
}

impl Report {
    fn clean(&self) -> bool {
        self.missing.len() == 0
            && self.corrupt.len() == 0
            && self.unrecorded.len() == 0
            && self.doubly_recorded.len() == 0
            && self.unreadable.len() == 0
            && self.fates_without_entry.len() == 0
    }

    /// Everything, in memory.
    fn findings(self) -> Result<Findings> {
        fn all<T: Item>(s: Spill<T>) -> io::Result<Vec<T>> {
            let mut m = s.finish()?;
            let mut out = Vec::new();
            while let Some(x) = m.next()? {
                out.push(x);
            }
            Ok(out)
        }
        let spill = "reading back the audit's temporary files";
        let files = self.files;
        Ok(Findings {
            checked: self.checked as usize,
            bytes: self.bytes,
            entries: self.entries as usize,
            missing: all(self.missing).context(spill)?,
            corrupt: all(self.corrupt)
                .context(spill)?
                .into_iter()
                .map(|c| (c.archive, c.why))
                .collect(),
            unrecorded: all(self.unrecorded).context(spill)?,
            doubly_recorded: all(self.doubly_recorded).context(spill)?,
            unreadable: all(self.unreadable).context(spill)?,
            fates_without_entry: all(self.fates_without_entry)
                .context(spill)?
                .into_iter()
                .map(|f| {
                    let at = f.at(&files);
                    (f.archive, at)
                })
                .collect(),
        })
    }
}

/// An archived entry: what its archive is checked against, and its place
/// in the ledger (every line numbered, file after file).
struct Entry {
    checked: Checked,
    seq: u64,
}

/// By archive (as paths compare: component by component), then ledger
/// order.
fn by_archive(a: &Entry, b: &Entry) -> Ordering {
    a.checked
        .archive
        .cmp(&b.checked.archive)
        .then(a.seq.cmp(&b.seq))
}

impl Item for Entry {
    fn put(&self, out: &mut Vec<u8>) {
        let c = &self.checked;
        c.archive.put(out);
        extsort::put_u64(out, self.seq);
        extsort::put_u64(out, c.archive_size);
        match &c.archive_xxh3 {
            Ok(d) => {
                out.push(0);
                extsort::put_u64(out, *d);
            }
            Err(text) => {
                out.push(1);
                extsort::put_bytes(out, text.as_bytes());
            }
        }
        extsort::put_u64(out, c.source_size);
        extsort::put_u64(out, u64::from(c.width) << 32 | u64::from(c.height));
        let format = crate::formats::Format::ALL
            .iter()
            .position(|f| *f == c.format)
            .unwrap_or(0);
        out.push(u8::from(c.lossless));
        out.push(format as u8);
    }

    fn get(bytes: &mut &[u8]) -> io::Result<Entry> {
        let archive = PathBuf::get(bytes)?;
        let seq = extsort::get_u64(bytes)?;
        let archive_size = extsort::get_u64(bytes)?;
        let (&tag, rest) = bytes.split_first().ok_or_else(damaged)?;
        *bytes = rest;
        let archive_xxh3 = match tag {
            0 => Ok(extsort::get_u64(bytes)?),
            _ => Err(String::get(bytes)?),
        };
        let source_size = extsort::get_u64(bytes)?;
        let wh = extsort::get_u64(bytes)?;
        let &[lossless, format] = *bytes else {
            return Err(damaged());
        };
        Ok(Entry {
            checked: Checked {
                archive,
                archive_size,
                archive_xxh3,
                source_size,
                width: (wh >> 32) as u32,
                height: wh as u32,
                lossless: lossless != 0,
                format: *crate::formats::Format::ALL
                    .get(usize::from(format))
                    .ok_or_else(damaged)?,
            },
            seq,
        })
    }

    fn weight(&self) -> usize {
        self.checked.archive.weight()
            + self
                .checked
                .archive_xxh3
                .as_ref()
                .map_or_else(String::len, |_| 0)
    }
}

fn damaged() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a temporary run file is damaged",
    )
}

/// A `filed` line: the archive it names and where it is.
struct Fate {
    archive: PathBuf,
    seq: u64,
    /// Index in [`Report::files`], and line number.
    file: u32,
    line: u64,
}

impl Fate {
    /// `file:line`.
    fn at(&self, files: &[PathBuf]) -> String {
        format!("{}:{}", shown(&files[self.file as usize]), self.line)
    }
}

impl Item for Fate {
    fn put(&self, out: &mut Vec<u8>) {
        self.archive.put(out);
        extsort::put_u64(out, self.seq);
        extsort::put_u64(out, u64::from(self.file));
        extsort::put_u64(out, self.line);
    }
    fn get(bytes: &mut &[u8]) -> io::Result<Fate> {
        let archive = PathBuf::get(bytes)?;
        let seq = extsort::get_u64(bytes)?;
        let file = u32::try_from(extsort::get_u64(bytes)?).map_err(|_| damaged())?;
        let line = extsort::get_u64(bytes)?;
        Ok(Fate {
            archive,
            seq,
            file,
            line,
        })
    }
    fn weight(&self) -> usize {
        self.archive.weight()
    }
}

/// A corrupt archive and why.
struct Corrupt {
    archive: PathBuf,
    why: String,
}

impl Item for Corrupt {
    fn put(&self, out: &mut Vec<u8>) {
        self.archive.put(out);
        self.why.put(out);
    }
    fn get(bytes: &mut &[u8]) -> io::Result<Corrupt> {
        Ok(Corrupt {
            archive: PathBuf::get(bytes)?,
            why: String::get(bytes)?,
        })
    }
    fn weight(&self) -> usize {
        self.archive.weight() + self.why.len()
    }
}

/// The ledger's lines as they are read: archived entries and `filed`
/// lines to be sorted, unreadable lines in ledger order.
struct Reading {
    entries: Spill<Entry>,
    fates: Spill<Fate>,
    unreadable: Spill<String>,
    /// Lines taken so far, every file's.
    seq: u64,
    /// The ledger files as shown, by index.
    names: Vec<String>,
}

impl Reading {
    /// Takes a block's lines, parsed, of file `file`.
    fn take(
        &mut self,
        file: u32,
        parsed: Vec<(usize, Result<AuditLine, ledger::LineError>)>,
    ) -> io::Result<()> {
        for (number, line) in parsed {
            self.seq += 1;
            let seq = self.seq;
            match line {
                Ok(AuditLine::Archived(checked)) => self.entries.push(Entry { checked, seq })?,
                Ok(AuditLine::Filed(archive)) => self.fates.push(Fate {
                    archive,
                    seq,
                    file,
                    line: number as u64,
                })?,
                // Quarantines, removals and retries name no archive.
                Ok(AuditLine::Other) => {}
                Err(why) => self
                    .unreadable
                    .push(format!("{}:{number}: {why}", self.names[file as usize]))?,
            }
        }
        Ok(())
    }
}

/// Whole lines of a ledger file (the last of the file may be one torn
/// without its newline), and the number of the first.
struct Block {
    bytes: Vec<u8>,
    first: usize,
}

/// Bytes read at a time.
const BLOCK: usize = 256 << 10;

/// Ledger parsers at most, whatever `-j`: the blocks read and not yet
/// taken back are at most twice as many, plus one (about 4 MB).
const PARSERS: usize = 8;

/// Reads `path` in blocks of whole lines, given to `each` in order.
fn read_blocks(path: &Path, mut each: impl FnMut(Block)) -> io::Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut carry = Vec::new();
    let mut number = 1;
    loop {
        let mut buf = std::mem::take(&mut carry);
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let mut got = 0;
        while start + got < buf.len() {
            match file.read(&mut buf[start + got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(start + got);
        if got == 0 {
            if !buf.is_empty() {
                each(Block {
                    bytes: buf,
                    first: number,
                });
            }
            return Ok(());
        }
        // A line longer than a block is read on.
        if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
            carry = buf[end + 1..].to_vec();
            buf.truncate(end + 1);
            let first = number;
            number += buf.iter().filter(|&&b| b == b'\n').count();
            each(Block { bytes: buf, first });
        } else {
            carry = buf;
        }
    }
}

/// A block's lines read as `ledger::for_each_raw_line_in` reads them:
/// (line number, its reading) for each line not blank.
fn parse_block(block: &Block) -> Vec<(usize, Result<AuditLine, ledger::LineError>)> {
    let mut out = Vec::new();
    let lines = block.bytes.split_inclusive(|&b| b == b'\n');
    for (number, line) in (block.first..).zip(lines) {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if !text.iter().all(u8::is_ascii_whitespace) {
            out.push((number, ledger::parse_for_audit(text)));
        }
    }
    out
}

/// The audit in bounded memory (design §4.7, "Audit"): the ledger is read
/// once, its archived entries (and `filed` lines) sorted by archive in
/// runs of `budget` bytes spilled to unnamed temporary files; the archive
/// folder's `.rle` files are listed and sorted likewise; the two sorted
/// streams are merged, which gives the missing, unrecorded and doubly
/// recorded archives in order and the archives to check, which `threads`
/// readers then check. Its findings are those the map of every entry gave
/// before, in the same order.
pub(crate) fn audit_within(
    archive: &Path,
    threads: usize,
    progress: bool,
    budget: Budget,
) -> Result<Report> {
    let spill = "writing the audit's temporary files (TMPDIR)";
    let list = ledger::files(archive).with_context(|| {
        format!(
            "{}: reading the ledger",
            shown(&ArchiveLayout::new(archive).ledger())
        )
    })?;
    let mut r = Reading {
        entries: Spill::sorted(budget, by_archive),
        fates: Spill::sorted(budget, |a: &Fate, b: &Fate| {
            a.archive.cmp(&b.archive).then(a.seq.cmp(&b.seq))
        }),
        unreadable: Spill::in_order(budget),
        seq: 0,
        names: Vec::new(),
    };
    let mut files = Vec::new();
    // The lines are parsed by up to `threads` parsers, a block of lines
    // each, and taken back in the order they were read.
    let parsers = threads.clamp(1, PARSERS);
    std::thread::scope(|scope| -> Result<()> {
        type Parsed = Vec<(usize, Result<AuditLine, ledger::LineError>)>;
        let (jobs, queue) =
            crossbeam_channel::bounded::<(Block, crossbeam_channel::Sender<Parsed>)>(parsers);
        for _ in 0..parsers {
            let queue = queue.clone();
            scope.spawn(move || {
                for (block, reply) in queue {
                    let _ = reply.send(parse_block(&block));
                }
            });
        }
        drop(queue);
        let mut pending = std::collections::VecDeque::new();
        for (_, file) in list {
            let index = u32::try_from(files.len()).context("more than 2^32 ledger files")?;
            r.names.push(shown(&file));
            let mut failed: io::Result<()> = Ok(());
            read_blocks(&file, |block| {
                let (reply, parsed) = crossbeam_channel::bounded(1);
                jobs.send((block, reply))
                    .expect("BUG: the parsers run until the queue closes");
                pending.push_back((index, parsed));
                // After a failure the blocks are still taken back (and
                // dropped): the file is read to its end, in bounded memory.
                while pending.len() > parsers * 2 {
                    let (index, parsed) = pending.pop_front().expect("BUG: not empty");
                    let parsed = parsed.recv().expect("BUG: a parser answers");
                    if failed.is_ok() {
                        failed = r.take(index, parsed);
                    }
                }
            })
            .with_context(|| shown(&file))?;
            failed.context(spill)?;
            files.push(file);
        }
        while let Some((index, parsed)) = pending.pop_front() {
            r.take(index, parsed.recv().expect("BUG: a parser answers"))
                .context(spill)?;
        }
        Ok(())
    })?;
    let Reading {
        entries,
        fates,
        unreadable,
        ..
    } = r;
    let entry_count = entries.len();
    let on_disk = archive_files(archive, budget)?;

    // The merge: entries grouped by archive, against the archive's files
    // and the `filed` lines, all sorted by archive.
    let mut missing = Spill::in_order(budget);
    let mut unrecorded = Spill::in_order(budget);
    let mut doubly_recorded = Spill::in_order(budget);
    // A `filed` line is written after its archived entry is durable, by
    // the same host (design §4.7): one without is a ledger file lost or
    // moved away, or edited. Reported in ledger order.
    let mut without = Spill::sorted(budget, |a: &Fate, b: &Fate| a.seq.cmp(&b.seq));
    let mut work = Spill::in_order(budget);
    let mut total = 0u64;
    let mut entries = Peek::new(entries.finish().context(spill)?).context(spill)?;
    let mut on_disk = Peek::new(on_disk).context(spill)?;
    let mut fates = Peek::new(fates.finish().context(spill)?).context(spill)?;
    loop {
        let take_entry = match (entries.peek(), on_disk.peek()) {
            (None, None) => break,
            (Some(e), Some(d)) => e.checked.archive <= *d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if !take_entry {
            let rel = on_disk.pop().context(spill)?.expect("BUG: peeked");
            unrecorded.push(rel).context(spill)?;
            continue;
        }
        // The first entry names the archive as reported; the last is the
        // one checked.
        let first = entries.pop().context(spill)?.expect("BUG: peeked");
        let rel = first.checked.archive.clone();
        let mut last = first;
        let mut count = 1;
        while entries.peek().is_some_and(|e| e.checked.archive == rel) {
            last = entries.pop().context(spill)?.expect("BUG: peeked");
            count += 1;
        }
        while fates.peek().is_some_and(|f| f.archive <= rel) {
            let f = fates.pop().context(spill)?.expect("BUG: peeked");
            if f.archive != rel {
                without.push(f).context(spill)?;
            }
        }
        if count > 1 {
            doubly_recorded.push(rel.clone()).context(spill)?;
        }
        if on_disk.peek().is_some_and(|d| *d == rel) {
            on_disk.pop().context(spill)?;
            total += last.checked.archive_size;
            work.push(Entry {
                checked: Checked {
                    archive: rel,
                    ..last.checked
                },
                seq: last.seq,
            })
            .context(spill)?;
        } else {
            missing.push(rel).context(spill)?;
        }
    }
    while let Some(f) = fates.pop().context(spill)? {
        without.push(f).context(spill)?;
    }
    drop((entries, fates, on_disk));

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
    let checked = work.len();
    let corrupt = Mutex::new((
        Spill::sorted(budget, |a: &Corrupt, b: &Corrupt| a.archive.cmp(&b.archive)),
        Ok(()),
    ));
    let mut work = work.finish().context(spill)?;
    // The archives go to the readers through a short queue, in order.
    let (tx, rx) = crossbeam_channel::bounded::<Entry>(threads.max(1) * 4);
    let fed: io::Result<()> = std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            let (corrupt, bar) = (&corrupt, &bar);
            scope.spawn(move || {
                for e in rx {
                    if let Err(why) = check_against(&archive.join(&e.checked.archive), &e.checked) {
                        let mut g = corrupt.lock().unwrap_or_else(|p| p.into_inner());
                        let c = Corrupt {
                            archive: e.checked.archive,
                            why: why.to_string(),
                        };
                        if let Err(err) = g.0.push(c)
                            && g.1.is_ok()
                        {
                            g.1 = Err(err);
                        }
                    }
                    bar.inc(e.checked.archive_size);
                }
            });
        }
        drop(rx);
        while let Some(e) = work.next()? {
            if tx.send(e).is_err() {
                break;
            }
        }
        drop(tx);
        Ok(())
    });
    fed.context(spill)?;
    bar.finish_and_clear();
    let (corrupt, pushed) = corrupt.into_inner().unwrap_or_else(|p| p.into_inner());
    pushed.context(spill)?;
    Ok(Report {
        checked,
        bytes: total,
        entries: entry_count,
        missing,
        corrupt,
        unrecorded,
        doubly_recorded,
        unreadable,
        fates_without_entry: without,
        files,
    })
}

// The check of one archive lives in `fixity`, which the daemon's
// retention uses too (the daemon cannot import `audit`, which imports its
// configuration).
pub use crate::fixity::{CheckError, check, check_against};

/// Every `.rle` below `archive` (relative paths), sorted, leaving out
/// rlewatch's own folder and temporary files.
fn archive_files(archive: &Path, budget: Budget) -> Result<Merge<PathBuf>> {
    let mut out = Spill::sorted(budget, |a: &PathBuf, b: &PathBuf| a.cmp(b));
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
            out.push(rel.to_path_buf())
                .context("writing the audit's temporary files (TMPDIR)")?;
        }
    }
    out.finish()
        .context("writing the audit's temporary files (TMPDIR)")
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
    let report = audit_within(
        archive,
        threads,
        io::stderr().is_terminal(),
        Budget::default(),
    )?;
    let secs = started.elapsed().as_secs_f64();
    let clean = report.clean();
    let out = io::stdout().lock();
    let mut out = io::BufWriter::new(out);
    print(&mut out, report, secs)?;
    out.flush().context("writing to standard output")?;
    Ok(clean)
}

/// Prints the findings, one line per finding, then the summary. Names are
/// escaped as in the daemon's log: no control characters reaching the
/// terminal.
fn print(out: &mut impl Write, r: Report, secs: f64) -> Result<()> {
    let spill = "reading back the audit's temporary files";
    let counts = (
        r.missing.len(),
        r.corrupt.len(),
        r.unrecorded.len(),
        r.doubly_recorded.len(),
        r.unreadable.len(),
        r.fates_without_entry.len(),
    );
    let mut m = r.missing.finish().context(spill)?;
    while let Some(rel) = m.next().context(spill)? {
        writeln!(
            out,
            "missing: {} (recorded in the ledger, not in the archive)",
            shown(&rel)
        )?;
    }
    let mut m = r.corrupt.finish().context(spill)?;
    while let Some(c) = m.next().context(spill)? {
        writeln!(out, "corrupt: {}: {}", shown(&c.archive), c.why)?;
    }
    let mut m = r.unrecorded.finish().context(spill)?;
    while let Some(rel) = m.next().context(spill)? {
        writeln!(out, "unrecorded: {} (no ledger entry)", shown(&rel))?;
    }
    let mut m = r.doubly_recorded.finish().context(spill)?;
    while let Some(rel) = m.next().context(spill)? {
        writeln!(
            out,
            "doubly recorded: {} (more than one ledger entry)",
            shown(&rel)
        )?;
    }
    let mut m = r.unreadable.finish().context(spill)?;
    while let Some(line) = m.next().context(spill)? {
        writeln!(out, "unreadable ledger line: {line}")?;
    }
    let mut m = r.fates_without_entry.finish().context(spill)?;
    while let Some(f) = m.next().context(spill)? {
        writeln!(
            out,
            "fate without entry: {} (the `filed` line at {} names it; no archived entry does: \
             a ledger file missing or moved away?)",
            shown(&f.archive),
            f.at(&r.files)
        )?;
    }
    let (missing, corrupt, unrecorded, doubly, unreadable, fates) = counts;
    writeln!(
        out,
        "audited {} recorded archive(s), {} bytes, against {} ledger entr{} in {secs:.2} s\
         {}: {missing} missing, {corrupt} corrupt, {unrecorded} unrecorded, {doubly} doubly \
         recorded, {unreadable} unreadable ledger line(s)",
        r.checked,
        r.bytes,
        r.entries,
        if r.entries == 1 { "y" } else { "ies" },
        rate(r.bytes, secs),
    )?;
    if fates > 0 {
        writeln!(out, "and {fates} `filed` line(s) naming no archived entry")?;
    }
    Ok(())
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

#[cfg(test)]
mod tests;
