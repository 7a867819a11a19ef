//! `rlewatch where QUERY…` (design §4.7, "Finding a file"): a file's
//! history across every host's ledger, the failed folder and its notes,
//! every host's claims and the inbox. It only reads the folders (and
//! writes the ledger's index tables, which are not the truth: see
//! [`crate::ledger::index`]); it needs no daemon, and answers the same on
//! every host of a shared inbox.
//!
//! A QUERY is a name or path as dropped (relative to the inbox, or
//! absolute under the inbox, archive, done or failed folder), a glob
//! (`*`, `?`, `[…]`, matched against the relative path and the file
//! name), or a 16-hex-digit digest (a source's or an archive's XXH3, as
//! the ledger writes them).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::UsageError;
use crate::daemon::config::{Config, Paths};
use crate::display::shown;
use crate::ledger::index::{self, Tag, Term};

mod disk;
mod now;
mod search;
mod show;

pub use search::{Found, Hit, IndexUse, Matcher, search};

/// The arguments of `rlewatch where`.
#[derive(Debug, Args)]
pub struct WhereArgs {
    /// A name or path as dropped (relative to the inbox, or absolute), a
    /// glob (`*`, `?`, `[...]`: quote it), or a 16-hex-digit source or
    /// archive digest from the ledger.
    #[arg(value_name = "QUERY", required_unless_present = "build_index")]
    pub queries: Vec<std::ffi::OsString>,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also check that each archive still decodes to its recorded digest.
    #[arg(long)]
    pub verify: bool,
    /// The daemon's configuration (default: built-in defaults, folders
    /// relative to the working directory).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Build the ledger's index tables that are missing or stale, then
    /// exit (also done by any query, for the files it reads).
    #[arg(long, conflicts_with_all = ["json", "verify"])]
    pub build_index: bool,
    /// Read the whole ledger, ignoring the index (slower; a check of it).
    #[arg(long)]
    pub no_index: bool,
}

/// One QUERY, understood.
#[derive(Debug)]
pub struct Query {
    pub text: String,
    matcher_terms: Vec<Term>,
    glob: Option<globset::GlobMatcher>,
    disk: DiskQuery,
}

#[derive(Debug)]
enum DiskQuery {
    Path(PathBuf),
    Name(std::ffi::OsString),
    Glob,
    None,
}

/// A query as the command line gives it (names that are not UTF-8
/// included), against the folders of `paths`.
pub fn parse_query(query: &OsStr, paths: &Paths) -> Result<Query> {
    let usage = |m: String| anyhow::Error::new(UsageError(m));
    if query.is_empty() {
        return Err(usage("an empty QUERY".into()));
    }
    let path = Path::new(query);
    let text = &shown(path);
    let mut q = Query {
        text: text.clone(),
        matcher_terms: Vec::new(),
        glob: None,
        disk: DiskQuery::None,
    };
    let bytes = query.as_encoded_bytes();
    if bytes.len() == 16 && bytes.iter().all(u8::is_ascii_hexdigit) {
        let d = u64::from_str_radix(text, 16).expect("BUG: 16 hex digits");
        q.matcher_terms.push(index::digest_term(d));
        // A file may be named so, too.
        q.matcher_terms
            .push(index::path_term(Tag::Name, Path::new(text)));
        q.disk = DiskQuery::Name(text.into());
        return Ok(q);
    }
    if bytes.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        let rel = if path.is_absolute() {
            path.strip_prefix(&paths.inbox).map_err(|_| {
                usage(format!(
                    "{text}: a glob must be relative to the inbox ({}), or below it",
                    shown(&paths.inbox)
                ))
            })?
        } else {
            path
        };
        let glob = globset::GlobBuilder::new(&rel.to_string_lossy())
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| usage(format!("{text}: not a glob: {e}")))?;
        q.glob = Some(glob.compile_matcher());
        q.disk = DiskQuery::Glob;
        return Ok(q);
    }
    if path.is_absolute() {
        let path = normalize(path);
        let under = |root: &Path| {
            path.strip_prefix(normalize(root))
                .ok()
                .map(Path::to_path_buf)
        };
        if let Some(rel) = under(&paths.inbox) {
            return Ok(by_path(q, rel));
        }
        for (root, tag) in [
            (&paths.archive, Tag::Archive),
            (&paths.done, Tag::Done),
            (&paths.failed, Tag::Failed),
        ] {
            if let Some(rel) = under(root) {
                q.matcher_terms.push(index::path_term(tag, &rel));
                if tag == Tag::Failed {
                    q.disk = DiskQuery::Path(rel);
                }
                return Ok(q);
            }
        }
        return Err(usage(format!(
            "{text}: not below the inbox ({}), archive ({}), done ({}) or failed ({}) folder",
            shown(&paths.inbox),
            shown(&paths.archive),
            shown(&paths.done),
            shown(&paths.failed)
        )));
    }
    let rel = normalize(path);
    if rel.components().count() == 1 {
        let name = rel.as_os_str().to_os_string();
        q.matcher_terms.push(index::path_term(Tag::Name, &rel));
        q.disk = DiskQuery::Name(name);
        return Ok(q);
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(usage(format!(
            "{text}: a path relative to the inbox may not leave it"
        )));
    }
    Ok(by_path(q, rel))
}

fn by_path(mut q: Query, rel: PathBuf) -> Query {
    q.matcher_terms.push(index::path_term(Tag::Path, &rel));
    q.disk = DiskQuery::Path(rel);
    q
}

/// `p` without `.` components and trailing slashes (no symlinks resolved).
fn normalize(p: &Path) -> PathBuf {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

/// The configuration `where` reads the folders from.
pub fn config_of(config: Option<&Path>) -> Result<Config> {
    Ok(match config {
        Some(p) => crate::daemon::config::load(p)?,
        None => {
            Config::defaults(&std::env::current_dir().context("cannot read the working directory")?)
        }
    })
}

/// The command: prints what was found; true when something was.
pub fn run(args: &WhereArgs) -> Result<bool> {
    let config = config_of(args.config.as_deref())?;
    let paths = &config.paths;
    let archive = &paths.archive;
    match std::fs::metadata(archive) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("{}: the archive folder is not a folder", shown(archive)),
        Err(e) => anyhow::bail!("{}: the archive folder: {e}", shown(archive)),
    }
    let ledger_dir = crate::layout::ArchiveLayout::new(archive).ledger();
    if !ledger_dir.is_dir() {
        anyhow::bail!(
            "{}: no ledger there ({} is missing): not an archive folder of rlewatch (check the \
             path, or give -c with the daemon's configuration)",
            shown(archive),
            shown(&ledger_dir)
        );
    }
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let use_index = if args.no_index {
        IndexUse::Ignore
    } else {
        IndexUse::ReadWrite
    };
    if args.build_index {
        let nothing = Matcher {
            terms: BTreeSet::new(),
            globs: Vec::new(),
        };
        let found = search(archive, &nothing, use_index, threads)?;
        for w in found.warnings.iter().chain(&found.unreadable) {
            eprintln!("rlewatch: warning: {w}");
        }
        println!(
            "{} ledger file(s): {} indexed already, {} read and indexed",
            found.indexed + found.scanned,
            found.indexed,
            found.scanned
        );
        return Ok(found.warnings.is_empty());
    }
    let queries = args
        .queries
        .iter()
        .map(|q| parse_query(q, paths))
        .collect::<Result<Vec<_>>>()?;
    let report = show::gather(&config, &queries, use_index, threads, args.verify)?;
    for w in &report.warnings {
        eprintln!("rlewatch: warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json(paths))?);
    } else {
        print!("{}", report.to_text(paths, args.verify));
    }
    Ok(!report.files.is_empty())
}

impl Query {
    fn matcher(&self) -> Matcher {
        Matcher {
            terms: self.matcher_terms.iter().cloned().collect(),
            globs: self.glob.iter().cloned().collect(),
        }
    }

    fn disk(&self) -> Option<disk::Look<'_>> {
        match &self.disk {
            DiskQuery::Path(p) => Some(disk::Look::Path(p)),
            DiskQuery::Name(n) => Some(disk::Look::Name(OsStr::new(n))),
            DiskQuery::Glob => self.glob.as_ref().map(disk::Look::Glob),
            DiskQuery::None => None,
        }
    }
}
