//! The one-shot commands behind `rlewatch compress`, `decompress` and
//! `verify` (`cli/encode.rs`, `cli/decode.rs`, with the `-o` rules in
//! `cli/plan.rs`), `reload` (`cli/reload.rs`) and `generate-assets`:
//! argument types (clap) and the output rules they share. Errors name the
//! file and the reason; refusals of the command line itself are
//! [`UsageError`]s (exit 2). Outputs go through a temporary file, created
//! no more readable than the input, removed if the command is interrupted
//! (`cli/interrupt.rs`), and renamed into place, never over an existing file
//! unless `--force`; `-` is standard input or output, and standard output
//! receives nothing unless the whole conversion succeeded.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Seek};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::bilevel::Conversion;
use crate::bmp;
use crate::compress::{self, DEFAULT_MAX_PIXELS, Options, Outcome};
use crate::durable;
use crate::rle;

mod decode;
mod encode;
mod interrupt;
mod plan;
mod reload;

use interrupt::TempOutput;
use plan::{Job, Kind, is_stdio, shown_input};

pub use decode::{decompress_cmd, verify_cmd};
pub use encode::{compress_cmd, compress_file};
pub use reload::{ReloadArgs, reload_cmd};

/// Mode of an output written from standard input (before the umask), as
/// any new file.
const OUTPUT_MODE: u32 = 0o666;

/// A refusal of the command line itself: options and inputs that cannot
/// go together. The binary exits 2 for it, as for clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] with this message.
fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The mode to create the output of `input` with (before the umask): the
/// input's permission bits without execute, so that an output is never
/// more readable than its input (as gzip does); a new file's 0o666 for
/// standard input.
fn output_mode(input: &Path, file: &File) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    if is_stdio(input) {
        return Ok(OUTPUT_MODE);
    }
    let meta = file
        .metadata()
        .with_context(|| format!("{}", input.display()))?;
    Ok(meta.permissions().mode() & 0o666)
}

#[derive(Debug, Args)]
pub struct CompressArgs {
    /// Threshold at 128 instead of dithering.
    #[arg(long)]
    pub threshold: bool,
    /// Output file, or folder: with several inputs, a folder input or OUT
    /// ending in `/`, OUT is a folder (made if missing; never an existing
    /// file or a missing NAME.rle). `-`: standard output (one input only).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(short, long)]
    pub force: bool,
    /// Refuse images with more pixels than this (at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pixels: u64,
    /// Worker threads for folders (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Image files (BMP, TIFF, PNG, PNM, GIF; known by content), or folders
    /// searched for *.bmp *.dib *.tif *.tiff *.png *.pbm *.pgm *.ppm *.pnm
    /// *.gif *.jpg *.jpeg (any case; JPEG is refused, saying why); `-`:
    /// standard input (alone, written to standard output unless -o names a
    /// file).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// .rle files, or folders searched for *.rle; `-`: standard input
    /// (alone, written to standard output unless -o names a file).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output BMP (default: each input with a .bmp extension), or folder:
    /// with several inputs, a folder input or OUT ending in `/`, OUT is a
    /// folder (made if missing; never an existing file or a missing
    /// NAME.bmp). `-`: standard output (one input only).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// .rle files to check, or folders searched for *.rle; `-`: standard
    /// input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Also check it equals the compression of this image (BMP, TIFF, PNG,
    /// PNM or GIF; one .rle file only).
    #[arg(long, value_name = "IMAGE")]
    pub source: Option<PathBuf>,
    /// With --source: compare with the threshold conversion only
    /// (default: dither, then threshold).
    #[arg(long, requires = "source")]
    pub threshold: bool,
    /// Refuse sources with more pixels than this (at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pixels: u64,
}

/// An error and its causes on one line, each cause once. The library's
/// errors show their cause in their own message (the daemon logs them
/// whole) and also expose it as `source()`, so a plain `{:#}` would print
/// it twice; a cause already contained in the text so far is skipped.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Opens an input that must be a regular file, without blocking on a FIFO.
fn open_regular(input: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(input)
        .with_context(|| format!("{}", input.display()))?;
    if !file.metadata()?.is_file() {
        bail!("{}: not a regular file", input.display());
    }
    Ok(file)
}

/// Opens an input file, or copies standard input (`-`) into an anonymous
/// temporary file, since the readers want a file they can read at any
/// offset.
fn open_input(input: &Path) -> Result<File> {
    if !is_stdio(input) {
        return open_regular(input);
    }
    if io::stdin().is_terminal() {
        bail!("standard input is a terminal: pipe or redirect a file into it");
    }
    let mut spool = tempfile::tempfile().context("cannot create a temporary file")?;
    io::copy(&mut io::stdin().lock(), &mut spool).context("standard input")?;
    spool.rewind().context("standard input")?;
    Ok(spool)
}

/// Refuses to send binary data to a terminal: standard output as the
/// output must be redirected.
fn check_stdout() -> Result<()> {
    if io::stdout().is_terminal() {
        bail!("standard output is a terminal: redirect it, or name an output file with -o");
    }
    Ok(())
}

/// Where an output is written until it is complete: a hidden temporary
/// file beside it, renamed into place; for standard output (`-`), an
/// anonymous temporary file copied out, so that a failed conversion sends
/// nothing down the pipe.
enum Staged {
    Beside(TempOutput),
    Stdout(File),
}

impl Staged {
    /// Checks `output` ([`check_output`]) and stages a file for it, created
    /// with `mode` (before the umask).
    fn for_output(output: &Path, force: bool, create_dir: bool, mode: u32) -> Result<Staged> {
        if is_stdio(output) {
            let file = tempfile::tempfile().context("cannot create a temporary file")?;
            return Ok(Staged::Stdout(file));
        }
        check_output(output, force)?;
        Ok(Staged::Beside(temp_beside(output, create_dir, mode)?))
    }

    fn file(&self) -> &File {
        match self {
            Staged::Beside(temp) => temp.file(),
            Staged::Stdout(file) => file,
        }
    }

    /// Renames the finished file to `output`, or copies it to standard
    /// output.
    fn publish(self, output: &Path, force: bool) -> Result<()> {
        match self {
            Staged::Beside(temp) => temp.publish(output, force),
            Staged::Stdout(mut file) => {
                use std::io::Write;
                file.rewind().context("temporary file")?;
                let mut out = io::stdout().lock();
                io::copy(&mut file, &mut out)
                    .and_then(|_| out.flush())
                    .context("standard output")?;
                Ok(())
            }
        }
    }
}

/// Runs `one` on every job; a single job's error is the command's, several
/// are reported one line each and counted. Returns the number that failed.
fn run_each(jobs: &[Job], mut one: impl FnMut(&Job) -> Result<()>) -> Result<usize> {
    if let [job] = jobs {
        return one(job).map(|()| 0);
    }
    let mut failed = 0;
    for job in jobs {
        if let Err(e) = one(job) {
            failed += 1;
            eprintln!("rlewatch: {}", error_line(&e));
        }
    }
    Ok(failed)
}

/// True when both paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The folder an output file goes into (`.` for a bare name).
fn parent_of(output: &Path) -> &Path {
    output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuses an output that exists, unless `force` and it is a file that may
/// be replaced.
fn check_output(output: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(output) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => bail!("{}: is a folder, not a file", output.display()),
        Ok(_) if force => Ok(()),
        Ok(_) => Err(exists(output)),
    }
}

/// The one place the `--force` advice is given.
fn exists(output: &Path) -> anyhow::Error {
    anyhow!(
        "{}: already exists (use --force to overwrite)",
        output.display()
    )
}

/// A hidden temporary file beside `output`, created with `mode`, removed if
/// the command is interrupted ([`interrupt`]); the folder must exist unless
/// `create_dir`.
fn temp_beside(output: &Path, create_dir: bool, mode: u32) -> Result<TempOutput> {
    let dir = parent_of(output);
    if create_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    } else if !dir.is_dir() {
        bail!("{}: the output folder does not exist", dir.display());
    }
    TempOutput::create(dir, mode).with_context(|| format!("{}", dir.display()))
}

/// Writes the man pages (`rlewatch.1`, and `rlewatch-SUBCOMMAND.1`, which
/// it refers to) and the bash, zsh and fish completions (`rlewatch.bash`,
/// `_rlewatch`, `rlewatch.fish`) for `cmd` into `dir`, for the Debian package
/// (`debian/build-deb.sh`). Generated from the real clap definitions, so they
/// never drift from the binary; hidden subcommands are left out.
pub fn write_assets(cmd: clap::Command, dir: &Path) -> Result<()> {
    // Subcommand pages carry the version in their footer, as the main page.
    let mut cmd = cmd.propagate_version(true);
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    clap_mangen::generate_to(cmd.clone(), dir)
        .with_context(|| format!("{}: man pages", dir.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "rlewatch", dir)
            .with_context(|| format!("{}: {shell} completions", dir.display()))?;
    }
    Ok(())
}
