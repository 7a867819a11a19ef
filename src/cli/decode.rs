//! `rlewatch decompress` (`.rle` files back to 1-bit BMPs) and `verify`
//! (`.rle` files checked strictly, or one against its source).

use std::os::unix::fs::FileExt;

use super::*;

/// What decompress reads and writes.
const KIND: Kind = Kind {
    input: &["rle"],
    output: "bmp",
};

/// `rlewatch decompress`: returns the number of files that failed.
pub fn decompress_cmd(args: &DecompressArgs) -> Result<usize> {
    let jobs = plan::plan(&args.inputs, args.output.as_deref(), KIND)?;
    if jobs.is_empty() {
        bail!("no .rle files found in {}", listed(&args.inputs));
    }
    if jobs.iter().any(|j| is_stdio(&j.output)) {
        check_stdout()?;
    }
    interrupt::remove_temps_on_signals()?;
    let failed = run_each(&jobs, |job| decompress_file(job, args.force))?;
    if jobs.len() > 1 {
        eprintln!(
            "rlewatch: decompressed {} files, {failed} failed",
            jobs.len() - failed
        );
    }
    Ok(failed)
}

/// The inputs, for a message.
fn listed(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decompresses one file to its output through a temporary file
/// ([`Staged`]).
fn decompress_file(job: &Job, force: bool) -> Result<()> {
    let (input, output) = (&job.input, &job.output);
    let file = open_input(input)?;
    let head = Head::of(&file);
    let fail = |e| rle_error(input, &head, e);
    let mut dec = rle::Decoder::new(BufReader::with_capacity(64 * 1024, &file)).map_err(fail)?;
    if same_file(input, output) {
        // Say first what is wrong with the input, if anything (a BMP given
        // by mistake has the very name its output would get).
        let h = dec.header();
        let mut row = vec![0u64; rle::words_for(usize::from(h.width))];
        while dec.next_row(&mut row).map_err(fail)? {}
        bail!("{}: the output would overwrite the input", input.display());
    }
    let mode = output_mode(input, &file)?;
    let staged = Staged::for_output(output, force, job.create_dir, mode)?;
    let h = dec.header();
    // Decoder errors travel through io::Error; keep the original to report.
    let mut failure: Option<rle::RleError> = None;
    let written = bmp::write_1bit(
        staged.file(),
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
        return Err(fail(e));
    }
    written.with_context(|| shown_output(output))?;
    // The decoder also checks that nothing follows the last row.
    let mut spare = vec![0u64; rle::words_for(usize::from(h.width))];
    dec.next_row(&mut spare).map_err(fail)?;
    staged.publish(output, force)
}

fn shown_output(output: &Path) -> String {
    if is_stdio(output) {
        "standard output".into()
    } else {
        output.display().to_string()
    }
}

/// The first bytes of an input, kept to tell what it is when it does not
/// decode as an .rle.
struct Head {
    bytes: Vec<u8>,
    /// The file's length, if known.
    len: Option<u64>,
}

impl Head {
    fn of(file: &File) -> Head {
        let mut bytes = vec![0u8; 32];
        let got = file.read_at(&mut bytes, 0).unwrap_or(0);
        bytes.truncate(got);
        let len = file.metadata().ok().map(|m| m.len());
        Head { bytes, len }
    }

    /// True when the file cannot plausibly be an .rle: its first bytes are
    /// printable text (an .rle's runs are mostly bytes above 0x80 or
    /// control characters), or it is longer than its header allows (at
    /// most one run byte per pixel).
    fn implausible(&self) -> bool {
        let b = &self.bytes;
        let text = b.len() >= 8
            && b.iter()
                .all(|&c| matches!(c, b' '..=b'~' | b'\t' | b'\n' | b'\r'));
        let too_long = match (b.get(..4), self.len) {
            (Some(h), Some(len)) => {
                let w = u64::from(u16::from_le_bytes([h[0], h[1]]));
                let h = u64::from(u16::from_le_bytes([h[2], h[3]]));
                len > 4 + w * h
            }
            _ => false,
        };
        text || too_long
    }
}

/// An .rle decoding error for `input`. The .rle format has no magic number
/// (design §1), so only a file that fails to decode is looked at: one in a
/// format the BMP reader recognises is named as such (its own detection,
/// [`bmp::BmpInfo::parse`] on the first bytes).
fn rle_error(input: &Path, head: &Head, e: rle::RleError) -> anyhow::Error {
    let named = shown_input(input);
    let bytes: &[u8] = &head.bytes;
    match bmp::BmpInfo::parse(&bytes, u64::MAX) {
        // "it looks like a PNG", a JPEG, …: a known format that is not BMP.
        Err(bmp::BmpError::NotBmp(magic)) if magic.other_format().is_some() => {
            anyhow!("{named}: not an .rle file{magic}")
        }
        // Text, or longer than any .rle of its header: the decoder's
        // finding, then a hint (only a hint: any bytes may start an .rle).
        Err(bmp::BmpError::NotBmp(_)) if head.implausible() => {
            anyhow!("{named}: {e} (not an .rle file?)")
        }
        // No "BM" signature, or empty: nothing better to say than the
        // decoder's finding.
        Err(bmp::BmpError::NotBmp(_)) => anyhow!("{named}: {e}"),
        // It starts as a BMP does.
        _ => {
            anyhow!("{named}: {e} (this is a BMP file, not an .rle; `rlewatch compress` makes one)")
        }
    }
}

/// `rlewatch verify`: prints what it found for each file; returns the
/// number of files that failed.
pub fn verify_cmd(args: &VerifyArgs) -> Result<usize> {
    let mut files = Vec::new();
    for input in &args.inputs {
        if !is_stdio(input) && input.is_dir() {
            files.extend(plan::walk(input, &["rle"])?);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        bail!("no .rle files found in {}", listed(&args.inputs));
    }
    if args.source.is_some() && (files.len() > 1 || args.inputs.len() > 1) {
        return Err(usage(
            "--source compares one .rle file with its BMP, not several",
        ));
    }
    let jobs: Vec<Job> = files
        .into_iter()
        .map(|input| Job {
            input,
            output: PathBuf::new(),
            create_dir: false,
        })
        .collect();
    let failed = run_each(&jobs, |job| {
        let found = verify_file(&job.input, args)?;
        println!("{found}");
        Ok(())
    })?;
    if jobs.len() > 1 {
        eprintln!(
            "rlewatch: verified {} files: {} ok, {failed} failed",
            jobs.len(),
            jobs.len() - failed
        );
    }
    Ok(failed)
}

/// Checks one .rle; returns the line to print.
fn verify_file(input: &Path, args: &VerifyArgs) -> Result<String> {
    let named = shown_input(input);
    let file = open_input(input)?;
    let head = Head::of(&file);
    let fail = |e| rle_error(input, &head, e);
    let Some(source) = &args.source else {
        let mut dec =
            rle::Decoder::new(BufReader::with_capacity(64 * 1024, &file)).map_err(fail)?;
        let h = dec.header();
        let mut row = vec![0u64; rle::words_for(usize::from(h.width))];
        while dec.next_row(&mut row).map_err(fail)? {}
        return Ok(format!("{named}: ok, {}x{}", h.width, h.height));
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
                formats: crate::formats::FormatSet::DECODED,
            },
        )
        .map_err(|e| anyhow!("{}: {e}", source.display()))?;
        // Positioned reads: each attempt reads the file from its start.
        let reader = BufReader::new(ReadFrom { file: &file, at: 0 });
        match compress::verify_rle(reader, &expected) {
            Ok(()) => {
                return Ok(format!(
                    "{named}: ok, equals {} ({conversion})",
                    source.display()
                ));
            }
            Err(compress::VerifyError::Corrupt(e)) => return Err(fail(e)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("BUG: at least one conversion was tried");
    bail!("{named}: does not equal {}: {e}", source.display())
}

/// A file read from offset `at` on, by positioned reads.
struct ReadFrom<'a> {
    file: &'a File,
    at: u64,
}

impl io::Read for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}
