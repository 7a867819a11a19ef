//! `rlewatch compress`: files and folders in, one `.rle` beside each or
//! under `--output`, several at once with a progress bar.

use super::*;

/// What compress reads and writes.
const KIND: Kind = Kind {
    input: crate::formats::ALL_EXTENSIONS,
    output: "rle",
};

/// Compresses one file to its output through a temporary file. The input
/// is checked to be an image rlewatch reads (its header parsed) before
/// anything about the output is decided, so a wrong input is reported as
/// such. `-` as input is standard input, as
/// output standard output.
pub fn compress_file(
    input: &Path,
    output: &Path,
    opts: Options,
    force: bool,
    create_dir: bool,
) -> Result<Outcome> {
    let file = open_input(input)?;
    let named = shown_input(input);
    compress::probe(&file, opts.max_pixels).map_err(|e| anyhow!("{named}: {e}"))?;
    if !is_stdio(output) && same_file(input, output) {
        bail!("{}: the output would overwrite the input", input.display());
    }
    let mode = output_mode(input, &file)?;
    let staged = Staged::for_output(output, force, create_dir, mode)?;
    let outcome = compress::compress(
        &file,
        BufWriter::with_capacity(
            256 * 1024,
            // Not for standard output's anonymous staging file, copied out
            // and dropped: nothing of it needs to reach the disk.
            WriteBehind::new(staged.file(), matches!(staged, Staged::Beside(_))),
        ),
        opts,
    )
    .map_err(|e| anyhow!("{named}: {e}"))?;
    staged.publish(output, force)?;
    Ok(outcome)
}

/// A file written front to back whose pages the kernel is asked to start
/// writing to disk as each [`WRITE_BEHIND`] bytes are written
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), so
/// that the fsync before publishing finds most of the output on its way
/// instead of starting all of it. Only when it is done changes; the
/// fsync stays and is what makes the output durable.
struct WriteBehind<'f> {
    file: &'f File,
    /// False: a plain writer.
    enabled: bool,
    written: u64,
    started: u64,
}

/// Bytes written between two write-back requests of [`WriteBehind`].
const WRITE_BEHIND: u64 = 256 * 1024;

impl<'f> WriteBehind<'f> {
    fn new(file: &'f File, enabled: bool) -> Self {
        WriteBehind {
            file,
            enabled,
            written: 0,
            started: 0,
        }
    }
}

impl io::Write for WriteBehind<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.file;
        let n = io::Write::write(&mut file, buf)?;
        self.written += n as u64;
        if self.enabled && self.written - self.started >= WRITE_BEHIND {
            start_write_back(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes of `file` at `offset` to
/// disk, without waiting. A hint: the result is ignored (a filesystem
/// that refuses it, a pipe or an anonymous file changes only speed).
#[cfg(target_os = "linux")]
fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: no pointers are passed; the descriptor is this open file's
    // and outlives the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_write_back(_file: &File, _offset: u64, _len: u64) {}

/// `rlewatch compress`: returns the number of files that failed.
pub fn compress_cmd(args: &CompressArgs) -> Result<usize> {
    let opts = Options {
        conversion: if args.threshold {
            Conversion::Threshold
        } else {
            Conversion::Dither
        },
        max_pixels: args.max_pixels,
        formats: crate::formats::FormatSet::DECODED,
    };
    let jobs = plan::plan(&args.inputs, args.output.as_deref(), KIND)?;
    if jobs.iter().any(|j| is_stdio(&j.output)) {
        check_stdout()?;
    }
    interrupt::remove_temps_on_signals()?;
    if jobs.is_empty() {
        bail!(
            "no image files ({}) found in {}",
            crate::formats::ALL_EXTENSIONS
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" "),
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
    if let [job] = jobs.as_slice() {
        // One file: on this thread (a thread's start is a measurable part
        // of compressing one page).
        return match compress_file(&job.input, &job.output, opts, args.force, job.create_dir) {
            Ok(_) => Ok(0),
            Err(e) => {
                eprintln!("rlewatch: {}", error_line(&e));
                Ok(1)
            }
        };
    }
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
