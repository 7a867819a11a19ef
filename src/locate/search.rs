//! The ledger half of `where`: every host's day files, each answered from
//! its index table when that is usable and by a scan otherwise (design
//! §4.7, "The index"). Every line returned was read from the ledger and
//! parsed; the table only says where to look.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::display::shown;
use crate::layout::ArchiveLayout;
use crate::ledger::index::{self, Index, Term, Unusable};
use crate::ledger::{self, Line};

/// Lines appended since a table was built are scanned; once there are
/// more than this many bytes of them, the table is built again.
const REBUILD_TAIL: u64 = 8 << 20;

/// At most this many lines are gathered (a glob such as `'*'` over a year
/// of ledger would otherwise hold millions in memory): the search stops
/// there and says so.
pub const MAX_HITS: usize = 100_000;

/// More terms than this are looked for by reading the day file.
const MAX_LOOKUPS: usize = 2048;

/// What a line must have to match.
pub struct Matcher {
    /// Any of these terms.
    pub terms: BTreeSet<Term>,
    /// Or a relative path or file name matching one of these globs (a
    /// scan).
    pub globs: Vec<globset::GlobMatcher>,
}

impl Matcher {
    pub fn matches(&self, line: &Line) -> bool {
        self.matches_terms(&index::terms(line))
    }

    /// [`Matcher::matches`] for a line of these terms.
    pub fn matches_terms(&self, terms: &[Term]) -> bool {
        if terms.iter().any(|t| self.terms.contains(t)) {
            return true;
        }
        use std::os::unix::ffi::OsStrExt;
        self.globs.iter().any(|glob| {
            terms.iter().any(|(tag, bytes)| {
                matches!(tag, index::Tag::Path | index::Tag::Name)
                    && glob.is_match(Path::new(std::ffi::OsStr::from_bytes(bytes)))
            })
        })
    }
}

/// One line found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub host: String,
    pub file: PathBuf,
    pub offset: u64,
    pub line: Line,
}

/// What a search found, and what it had to say about the ledger.
#[derive(Debug, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// `FILE:LINE: why` of lines that cannot be read (skipped).
    pub unreadable: Vec<String>,
    /// Other warnings (an index that could not be written: once).
    pub warnings: Vec<String>,
    /// Day files answered from their table, and scanned.
    pub indexed: usize,
    pub scanned: usize,
    /// Stopped at `MAX_HITS` lines.
    pub truncated: bool,
}

/// How a search may use the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexUse {
    /// Use the tables, and write the ones missing or stale.
    ReadWrite,
    /// Use the tables, write none.
    ReadOnly,
    /// Scan every file (a check of the index, and the bench).
    Ignore,
}

/// Searches every ledger file under `archive` for lines `m` matches, with
/// `threads` readers.
pub fn search(
    archive: &Path,
    m: &Matcher,
    use_index: IndexUse,
    threads: usize,
) -> anyhow::Result<Found> {
    let files = ledger::files(archive).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read the ledger: {e}",
            shown(&ArchiveLayout::new(archive).ledger())
        )
    })?;
    let layout = ArchiveLayout::new(archive);
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Found::default());
    let failed = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    {
                        let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
                        if f.hits.len() >= MAX_HITS {
                            f.truncated = true;
                            break;
                        }
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((host, file)) = files.get(i) else {
                        break;
                    };
                    let day = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let table = layout.index_file(host, &day);
                    match search_file(host, file, &table, m, use_index) {
                        Ok(part) => {
                            let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
                            f.hits.extend(part.hits);
                            f.unreadable.extend(part.unreadable);
                            // The first index that could not be written is
                            // said, not every one.
                            if f.warnings.is_empty() {
                                f.warnings.extend(part.warnings);
                            }
                            f.indexed += part.indexed;
                            f.scanned += part.scanned;
                            f.truncated |= part.truncated;
                        }
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(anyhow::anyhow!("{}: {e}", shown(file)));
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut f = found.into_inner().unwrap_or_else(|p| p.into_inner());
    if f.truncated {
        f.warnings.push(format!(
            "more than {MAX_HITS} ledger lines match: only those of the first day files read \
             are shown; narrow the query"
        ));
    }
    f.hits.sort_by(|a, b| {
        (a.line.time(), &a.file, a.offset).cmp(&(b.line.time(), &b.file, b.offset))
    });
    f.unreadable.sort();
    Ok(f)
}

/// One day file: from its table when usable (and the lines appended
/// since by a scan), else by a scan that also builds the table.
fn search_file(
    host: &str,
    path: &Path,
    table: &Path,
    m: &Matcher,
    use_index: IndexUse,
) -> std::io::Result<Found> {
    // Not blocking on a FIFO put where a day file should be.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a ledger day file should be one)",
        ));
    }
    let len = meta.len();
    let index = match use_index {
        IndexUse::Ignore => None,
        // A glob, or so many terms (the second pass after a broad query)
        // that a bucket read for each costs more than reading the file.
        _ if !m.globs.is_empty() || m.terms.len() > MAX_LOOKUPS => None,
        _ => Index::open(table, &file).ok(),
    };
    if let Some(index) = index.filter(|i| len - i.covered <= REBUILD_TAIL) {
        let mut part = Found::default();
        if from_index(host, path, &file, &index, m, &mut part)?.is_some() {
            part.indexed += 1;
            // The lines appended since.
            index::build_from(
                &file,
                index.covered,
                index.lines,
                &mut |n, offset, line, terms| {
                    visit(host, path, m, &mut part, (n, offset), line, terms);
                },
            )?;
            return Ok(part);
        }
    }
    // A scan, building the table on the way.
    let mut part = Found::default();
    let built = index::build_from(&file, 0, 0, &mut |n, offset, line, terms| {
        visit(host, path, m, &mut part, (n, offset), line, terms);
    })?;
    part.scanned += 1;
    // A glob scan keeps a usable table as it is.
    let usable =
        (!m.globs.is_empty() || m.terms.len() > MAX_LOOKUPS) && Index::open(table, &file).is_ok();
    if use_index == IndexUse::ReadWrite && !usable {
        let written = built
            .to_bytes(&file)
            .and_then(|bytes| index::write(table, &bytes));
        if let Err(e) = written {
            part.warnings.push(format!(
                "the index could not be written ({}: {e}): answered by reading the ledger, \
                 which is slower",
                shown(table)
            ));
        }
    }
    Ok(part)
}

/// A scanned line: a hit when it matches, a warning when unreadable.
fn visit(
    host: &str,
    path: &Path,
    m: &Matcher,
    out: &mut Found,
    (n, offset): (usize, u64),
    line: &Result<Line, ledger::LineError>,
    terms: &[Term],
) {
    match line {
        Ok(_) if out.hits.len() >= MAX_HITS && m.matches_terms(terms) => out.truncated = true,
        Ok(l) if m.matches_terms(terms) => out.hits.push(Hit {
            host: host.to_string(),
            file: path.to_path_buf(),
            offset,
            line: l.clone(),
        }),
        Ok(_) => {}
        Err(why) => out.unreadable.push(format!("{}:{n}: {why}", shown(path))),
    }
}

/// The hits of `m` through `index`; `None` when a bucket turns out
/// damaged (the file is then scanned).
fn from_index(
    host: &str,
    path: &Path,
    file: &File,
    index: &Index,
    m: &Matcher,
    out: &mut Found,
) -> std::io::Result<Option<()>> {
    let mut offsets = BTreeSet::new();
    for t in &m.terms {
        match index.lookup(index::key(t)) {
            Ok(o) => offsets.extend(o),
            Err(Unusable::Io(e)) => return Err(e),
            Err(_) => return Ok(None),
        }
    }
    for offset in offsets {
        // Confirmed by the ledger itself: the table only says where.
        let Some(bytes) = index::read_line_from(file, offset)? else {
            return Ok(None);
        };
        match ledger::parse_line(&bytes) {
            Ok(l) if m.matches(&l) => out.hits.push(Hit {
                host: host.to_string(),
                file: path.to_path_buf(),
                offset,
                line: l,
            }),
            // The table said a line with one of these terms is there, or
            // a readable line: it is out of date (the ledger edited in
            // place) or the rarest hash collision; either way the file is
            // read instead.
            Ok(_) | Err(_) => return Ok(None),
        }
    }
    for &(n, offset) in &index.bad {
        let why = match index::read_line_from(file, offset)? {
            Some(bytes) => match ledger::parse_line(&bytes) {
                Err(why) => why.to_string(),
                Ok(_) => return Ok(None),
            },
            None => return Ok(None),
        };
        out.unreadable.push(format!("{}:{n}: {why}", shown(path)));
    }
    Ok(Some(()))
}
