//! `rlewatch decompress` (a `.rle` back to a 1-bit BMP) and `verify` (a
//! `.rle` checked strictly, or against its source).

use super::*;

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
