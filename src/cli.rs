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

/// One file to compress.
struct Job {
    input: PathBuf,
    output: PathBuf,
}

fn is_bmp_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bmp"))
}

/// Works out input → output pairs.
fn plan_jobs(args: &CompressArgs) -> Result<Vec<Job>> {
    let single_file = args.inputs.len() == 1 && !args.inputs[0].is_dir();
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
            });
        }
    }
    Ok(jobs)
}

/// Compresses one file to its output through a temporary file.
pub fn compress_file(input: &Path, output: &Path, opts: Options, force: bool) -> Result<Outcome> {
    let file = File::open(input).with_context(|| format!("{}", input.display()))?;
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !force && output.exists() {
        bail!(
            "{}: already exists (use --force to overwrite)",
            output.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let temp = durable::temp_in(dir, OUTPUT_MODE).with_context(|| format!("{}", dir.display()))?;
    let outcome = compress::compress(
        &file,
        BufWriter::with_capacity(256 * 1024, temp.as_file()),
        opts,
    )
    .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    durable::publish(temp, output, force).map_err(|e| match e {
        durable::PublishError::Exists(p) => {
            anyhow!("{}: already exists (use --force to overwrite)", p.display())
        }
        other => anyhow!(other),
    })?;
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
                    let result = compress_file(&job.input, &job.output, opts, args.force);
                    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(o) => {
                            t.0 += 1;
                            t.2 += o.bytes_in;
                            t.3 += o.bytes_out;
                        }
                        Err(e) => {
                            t.1 += 1;
                            bar.suspend(|| eprintln!("rlewatch: {e:#}"));
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
        .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    if !args.force && output.exists() {
        bail!(
            "{}: already exists (use --force to overwrite)",
            output.display()
        );
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = durable::temp_in(dir, OUTPUT_MODE).with_context(|| format!("{}", dir.display()))?;
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
        bail!("{}: {e}", input.display());
    }
    written.with_context(|| format!("{}", output.display()))?;
    // The decoder also checks that nothing follows the last row.
    let mut spare = vec![0u64; rle::words_for(usize::from(h.width))];
    dec.next_row(&mut spare)
        .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    durable::publish(temp, &output, args.force).map_err(|e| anyhow!(e))?;
    Ok(())
}

/// `rlewatch verify`: prints what it found; errors when the check fails.
pub fn verify_cmd(args: &VerifyArgs) -> Result<()> {
    let input = &args.input;
    let open = || File::open(input).with_context(|| format!("{}", input.display()));
    let Some(source) = &args.source else {
        let mut dec = rle::Decoder::new(BufReader::with_capacity(64 * 1024, open()?))
            .map_err(|e| anyhow!("{}: {e}", input.display()))?;
        let h = dec.header();
        let mut row = vec![0u64; rle::words_for(usize::from(h.width))];
        while dec
            .next_row(&mut row)
            .map_err(|e| anyhow!("{}: {e}", input.display()))?
        {}
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
            Err(compress::VerifyError::Corrupt(e)) => bail!("{}: {e}", input.display()),
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
