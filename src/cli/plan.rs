//! Which output each input of `compress` and `decompress` goes to: the `-o`
//! rules both share, and the folder walk `verify` uses too. Nothing here
//! writes files; the walk reports the symlinks it skips on standard error.
//!
//! - One input file: `-o` is the output file, or an existing folder to put
//!   it in.
//! - Several inputs, a folder, or `-o` ending in `/`: `-o` is a folder,
//!   made if missing. An existing file there, or a missing name with the
//!   output extension (`new.rle`), is refused with one error naming it.
//! - `-` is standard input as the input and standard output as `-o`; each
//!   goes with exactly one input.

use std::os::unix::ffi::OsStrExt;

use super::*;

/// What a command reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kind {
    /// The extensions of the files taken from folders (`rle`; every
    /// image format's for `compress`), any case.
    pub input: &'static [&'static str],
    /// The extension of the outputs (`rle`, `bmp`).
    pub output: &'static str,
}

/// One file to convert.
pub(super) struct Job {
    /// A file, or `-` (standard input).
    pub input: PathBuf,
    /// A file, or `-` (standard output).
    pub output: PathBuf,
    /// Folder mode mirrors subfolders below the output folder, creating
    /// them; a single output file's folder must already exist.
    pub create_dir: bool,
}

/// True for `-`: standard input as an input, standard output as `-o`.
pub(super) fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How a path is named in messages (`-` as the stream it stands for).
pub(super) fn shown_input(path: &Path) -> String {
    if is_stdio(path) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

fn ends_with_slash(path: &Path) -> bool {
    path.as_os_str().as_bytes().ends_with(b"/")
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// True when `path` ends in one of `exts`, any case.
fn has_any_extension(path: &Path, exts: &[&str]) -> bool {
    exts.iter().any(|ext| has_extension(path, ext))
}

/// The files named `*.EXT` (an extension of `exts`) under `dir`, sorted;
/// symlinks are not followed, and each one that would have been (to a
/// folder, or so named) is said so on standard error, one line each.
pub(super) fn walk(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("{}", dir.display()))?;
        if entry.file_type().is_symlink()
            && entry.depth() > 0
            && (entry.path().is_dir() || has_any_extension(entry.path(), exts))
        {
            eprintln!(
                "rlewatch: {}: skipped: a symlink, not followed",
                entry.path().display()
            );
        }
        if entry.file_type().is_file() && has_any_extension(entry.path(), exts) {
            found.push(entry.into_path());
        }
    }
    found.sort();
    Ok(found)
}

/// Refuses an `-o` that cannot be the folder several outputs go into.
fn check_folder(out: &Path, kind: Kind) -> Result<()> {
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(usage(format!(
            "{}: is a file, not a folder (with several inputs or a folder, -o names a folder)",
            out.display()
        ))),
        Err(_) if !ends_with_slash(out) && has_extension(out, kind.output) => Err(usage(format!(
            "{}: with several inputs or a folder, -o names a folder, but this name ends in \
             .{}; write {}/ to make a folder of that name",
            out.display(),
            kind.output,
            out.display()
        ))),
        Err(_) => Ok(()),
    }
}

/// Works out input → output pairs for `inputs` and `-o` (`output`).
pub(super) fn plan(inputs: &[PathBuf], output: Option<&Path>, kind: Kind) -> Result<Vec<Job>> {
    if inputs.iter().any(|p| is_stdio(p)) {
        return plan_stdin(inputs, output);
    }
    let into_folder = inputs.len() > 1
        || inputs[0].is_dir()
        || output.is_some_and(|o| !is_stdio(o) && (o.is_dir() || ends_with_slash(o)));
    match output {
        Some(o) if is_stdio(o) && into_folder => {
            return Err(usage(
                "-o - (standard output) takes one input file, not several or a folder",
            ));
        }
        Some(o) if into_folder => check_folder(o, kind)?,
        _ => {}
    }
    let mut jobs = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
        if meta.is_dir() {
            for file in walk(input, kind.input)? {
                let target = match output {
                    None => file.with_extension(kind.output),
                    Some(out) => out
                        .join(
                            file.strip_prefix(input)
                                .expect("BUG: walkdir yields paths under its root"),
                        )
                        .with_extension(kind.output),
                };
                jobs.push(Job {
                    input: file,
                    output: target,
                    create_dir: true,
                });
            }
        } else {
            let target = match output {
                Some(out) if !into_folder => out.to_path_buf(),
                Some(out) => out.join(
                    Path::new(input.file_name().unwrap_or(input.as_os_str()))
                        .with_extension(kind.output),
                ),
                None => input.with_extension(kind.output),
            };
            jobs.push(Job {
                input: input.clone(),
                output: target,
                // `-o` names a folder here: made if missing.
                create_dir: output.is_some() && into_folder,
            });
        }
    }
    // Two inputs that would write one output (x.bmp and x.BMP, or the same
    // name from two folders): refuse before writing anything, instead of
    // one silently replacing the other.
    let mut seen = std::collections::HashMap::new();
    for job in &jobs {
        if let Some(first) = seen.insert(job.output.clone(), &job.input) {
            bail!(
                "{} and {} would both be written to {}",
                first.display(),
                job.input.display(),
                job.output.display()
            );
        }
    }
    Ok(jobs)
}

/// Standard input: the only input; its output is standard output unless
/// `-o` names a file.
fn plan_stdin(inputs: &[PathBuf], output: Option<&Path>) -> Result<Vec<Job>> {
    if inputs.len() > 1 {
        return Err(usage("- (standard input) must be the only input"));
    }
    let output = match output {
        None => PathBuf::from("-"),
        Some(o) if !is_stdio(o) && (o.is_dir() || ends_with_slash(o)) => {
            return Err(usage(format!(
                "{}: with standard input, -o names the output file (or - for standard output)",
                o.display()
            )));
        }
        Some(o) => o.to_path_buf(),
    };
    Ok(vec![Job {
        input: inputs[0].clone(),
        output,
        create_dir: false,
    }])
}
