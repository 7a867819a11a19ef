//! `rlewatch compress`: files and folders in, one `.rle` beside each or
//! under `--output`, several at once with a progress bar.

use super::*;

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
