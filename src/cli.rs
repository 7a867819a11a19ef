//! The one-shot commands behind `rlewatch compress`, `decompress` and
//! `verify`: argument types (clap) and what each does. Errors name the file
//! and the reason; outputs go through a temporary file and are renamed into
//! place, never over an existing file unless `--force`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal};
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

/// Mode of files the one-shot commands create (before the umask).
const OUTPUT_MODE: u32 = 0o666;

#[derive(Debug, Args)]
pub struct CompressArgs {
    /// Threshold at 128 instead of dithering.
    #[arg(long)]
    pub threshold: bool,
    /// Output file (one input file) or folder (several inputs or a folder).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(short, long)]
    pub force: bool,
    /// Refuse images with more pixels than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Worker threads for folders (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// BMP files, or folders searched for *.bmp.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// The .rle file.
    #[arg(value_name = "IN.rle")]
    pub input: PathBuf,
    /// Output BMP (default: the input with a .bmp extension).
    #[arg(short, long, value_name = "OUT.bmp")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .rle file to check.
    #[arg(value_name = "IN.rle")]
    pub input: PathBuf,
    /// Also check it equals the compression of this BMP.
    #[arg(long, value_name = "IN.bmp")]
    pub source: Option<PathBuf>,
    /// With --source: compare with the threshold conversion only
    /// (default: dither, then threshold).
    #[arg(long, requires = "source")]
    pub threshold: bool,
    /// Refuse sources with more pixels than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PIXELS)]
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

/// One file to compress.
struct Job {
    input: PathBuf,
    output: PathBuf,
    /// Folder mode mirrors subfolders below the output folder, creating
    /// them; a single output file's folder must already exist.
    create_dir: bool,
}

fn is_bmp_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bmp"))
}

/// Works out input → output pairs.
fn plan_jobs(args: &CompressArgs) -> Result<Vec<Job>> {
    // `-o DIR` with one input file puts its .rle into that existing folder.
    let single_file = args.inputs.len() == 1
        && !args.inputs[0].is_dir()
        && !args.output.as_deref().is_some_and(Path::is_dir);
    let mut jobs = Vec::new();
    for input in &args.inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in walkdir::WalkDir::new(input).follow_links(false) {
                let entry = entry.with_context(|| format!("{}", input.display()))?;
                if entry.file_type().is_file() && is_bmp_name(entry.path()) {
                    found.push(entry.into_path());
                }
            }
            found.sort();
            for file in found {
                let output = match &args.output {
                    None => file.with_extension("rle"),
                    Some(out) => out
                        .join(
                            file.strip_prefix(input)
                                .expect("BUG: walkdir yields paths under its root"),
                        )
                        .with_extension("rle"),
                };
                jobs.push(Job {
                    input: file,
                    output,
                    create_dir: true,
                });
            }
        } else {
            let output = match &args.output {
                Some(out) if single_file => out.clone(),
                Some(out) => out.join(
                    Path::new(input.file_name().unwrap_or(input.as_os_str())).with_extension("rle"),
                ),
                None => input.with_extension("rle"),
            };
            jobs.push(Job {
                input: input.clone(),
                output,
                // `-o` names a folder here (several inputs): made if missing.
                create_dir: args.output.is_some() && !single_file,
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

/// A hidden temporary file beside `output`; the folder must exist unless
/// `create_dir`.
fn temp_beside(output: &Path, create_dir: bool) -> Result<tempfile::NamedTempFile> {
    let dir = parent_of(output);
    if create_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    } else if !dir.is_dir() {
        bail!("{}: the output folder does not exist", dir.display());
    }
    durable::temp_in(dir, OUTPUT_MODE).with_context(|| format!("{}", dir.display()))
}

/// Renames the finished temporary file to `output`.
fn publish_output(temp: tempfile::NamedTempFile, output: &Path, force: bool) -> Result<()> {
    durable::publish(temp, output, force).map_err(|e| match e {
        durable::PublishError::Exists(p) => exists(&p),
        other => anyhow!(other),
    })
}

/// Compresses one file to its output through a temporary file. The input
/// is checked to be a BMP before anything about the output is decided, so
/// a wrong input is reported as such.
pub fn compress_file(
    input: &Path,
    output: &Path,
    opts: Options,
    force: bool,
    create_dir: bool,
) -> Result<Outcome> {
    let file = open_regular(input)?;
    bmp::BmpInfo::parse(&file, opts.max_pixels).map_err(|e| anyhow!("{}: {e}", input.display()))?;
    if same_file(input, output) {
        bail!("{}: the output would overwrite the input", input.display());
    }
    check_output(output, force)?;
    let temp = temp_beside(output, create_dir)?;
    let outcome = compress::compress(
        &file,
        BufWriter::with_capacity(256 * 1024, temp.as_file()),
        opts,
    )
    .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    publish_output(temp, output, force)?;
    Ok(outcome)
}

/// `rlewatch compress`: returns the number of files that failed.
pub fn compress_cmd(args: &CompressArgs) -> Result<usize> {
    let opts = Options {
        conversion: if args.threshold {
            Conversion::Threshold
        } else {
            Conversion::Dither
        },
        max_pixels: args.max_pixels,
    };
    let jobs = plan_jobs(args)?;
    if jobs.is_empty() {
        bail!(
            "no .bmp files found in {}",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    let bar = if jobs.len() > 1 && io::stderr().is_terminal() {
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files, {elapsed} elapsed, ETA {eta} {msg}",
            )
            .expect("BUG: static progress template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let totals = Mutex::new((0usize, 0usize, 0u64, 0u64)); // ok, failed, in, out
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result =
                        compress_file(&job.input, &job.output, opts, args.force, job.create_dir);
                    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(o) => {
                            t.0 += 1;
                            t.2 += o.bytes_in;
                            t.3 += o.bytes_out;
                        }
                        Err(e) => {
                            t.1 += 1;
                            bar.suspend(|| eprintln!("rlewatch: {}", error_line(&e)));
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let (ok, failed, bytes_in, bytes_out) = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    if jobs.len() > 1 {
        eprintln!(
            "rlewatch: compressed {ok} files ({bytes_in} → {bytes_out} bytes), {failed} failed"
        );
    }
    Ok(failed)
}

/// `rlewatch decompress`.
pub fn decompress_cmd(args: &DecompressArgs) -> Result<()> {
    let input = &args.input;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| input.with_extension("bmp"));
    let file = File::open(input).with_context(|| format!("{}", input.display()))?;
    let mut dec = rle::Decoder::new(BufReader::with_capacity(64 * 1024, file))
        .map_err(|e| rle_error(input, e))?;
    if same_file(input, &output) {
        // Say first what is wrong with the input, if anything (a BMP given
        // by mistake has the very name its output would get).
        let h = dec.header();
        let mut row = vec![0u64; rle::words_for(usize::from(h.width))];
        while dec.next_row(&mut row).map_err(|e| rle_error(input, e))? {}
        bail!("{}: the output would overwrite the input", input.display());
    }
    check_output(&output, args.force)?;
    let temp = temp_beside(&output, false)?;
    let h = dec.header();
    // Decoder errors travel through io::Error; keep the original to report.
    let mut failure: Option<rle::RleError> = None;
    let written = bmp::write_1bit(
        temp.as_file(),
        u32::from(h.width),
        u32::from(h.height),
        |row| {
            dec.next_row(row).map(drop).map_err(|e| {
                failure = Some(e);
                io::Error::other("decode failed")
            })
        },
    );
    if let Some(e) = failure {
        return Err(rle_error(input, e));
    }
    written.with_context(|| format!("{}", output.display()))?;
    // The decoder also checks that nothing follows the last row.
    let mut spare = vec![0u64; rle::words_for(usize::from(h.width))];
    dec.next_row(&mut spare).map_err(|e| rle_error(input, e))?;
    publish_output(temp, &output, args.force)
}

/// An .rle decoding error for `input`; a file that starts like a BMP gets
/// the hint that it is one (the .rle format has no magic number, so its
/// header alone cannot tell).
fn rle_error(input: &Path, e: rle::RleError) -> anyhow::Error {
    let mut head = [0u8; 2];
    let is_bmp = File::open(input)
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"BM";
    if is_bmp {
        anyhow!(
            "{}: {e} (this is a BMP file, not an .rle; `rlewatch compress` makes one)",
            input.display()
        )
    } else {
        anyhow!("{}: {e}", input.display())
    }
}

/// `rlewatch verify`: prints what it found; errors when the check fails.
pub fn verify_cmd(args: &VerifyArgs) -> Result<()> {
    let input = &args.input;
    let open = || File::open(input).with_context(|| format!("{}", input.display()));
    let Some(source) = &args.source else {
        let mut dec = rle::Decoder::new(BufReader::with_capacity(64 * 1024, open()?))
            .map_err(|e| rle_error(input, e))?;
        let h = dec.header();
        let mut row = vec![0u64; rle::words_for(usize::from(h.width))];
        while dec.next_row(&mut row).map_err(|e| rle_error(input, e))? {}
        println!("{}: ok, {}x{}", input.display(), h.width, h.height);
        return Ok(());
    };
    let src = File::open(source).with_context(|| format!("{}", source.display()))?;
    let modes: &[Conversion] = if args.threshold {
        &[Conversion::Threshold]
    } else {
        &[Conversion::Dither, Conversion::Threshold]
    };
    let mut last = None;
    for &conversion in modes {
        let expected = compress::compress(
            &src,
            io::sink(),
            Options {
                conversion,
                max_pixels: args.max_pixels,
            },
        )
        .map_err(|e| anyhow!("{}: {e}", source.display()))?;
        match compress::verify_rle(open()?, &expected) {
            Ok(()) => {
                println!(
                    "{}: ok, equals {} ({conversion})",
                    input.display(),
                    source.display()
                );
                return Ok(());
            }
            Err(compress::VerifyError::Corrupt(e)) => return Err(rle_error(input, e)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("BUG: at least one conversion was tried");
    bail!(
        "{}: does not equal {}: {e}",
        input.display(),
        source.display()
    )
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The configuration file the daemon runs on.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// The daemon's process id (in the unit: $MAINPID).
    #[arg(value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: i32,
}

/// `rlewatch reload`: validates the file exactly as `check-config` does and
/// only then sends SIGHUP, so the unit's `ExecReload=` fails, with the reason
/// in `systemctl status` and the journal, when the file is broken. The daemon
/// re-reads and re-validates the file itself on SIGHUP; this check exists to
/// make the failure visible to `systemctl reload`, and it needs no `kill`
/// binary (procps is missing on minimal Debian).
pub fn reload_cmd(args: &ReloadArgs) -> Result<()> {
    crate::daemon::check_config(&args.config)
        .context("not reloaded, the daemon keeps its running configuration")?;
    // SAFETY: kill has no memory effects; the pid range excludes 0 and
    // negative values, which would signal whole process groups.
    if unsafe { libc::kill(args.pid, libc::SIGHUP) } != 0 {
        bail!(
            "cannot signal process {}: {}",
            args.pid,
            io::Error::last_os_error()
        );
    }
    println!(
        "{}: valid; asked process {} to reload it",
        args.config.display(),
        args.pid
    );
    Ok(())
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
