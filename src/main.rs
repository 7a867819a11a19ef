//! The `rlewatch` command line: parses arguments, runs the command, maps the
//! result to an exit status (0 success, 1 failure, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use rlewatch::cli;

#[derive(Debug, Parser)]
#[command(
    name = "rlewatch",
    version,
    about = "Archive black-and-white images (BMP, TIFF, PNG, PNM, GIF) as run-length encoded .rle files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: watch the inbox and archive what arrives.
    Run {
        /// TOML configuration (default: built-in defaults, folders relative
        /// to the working directory).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print the effective configuration.
    ///
    /// Prints the configuration in effect: every key, defaults filled in,
    /// folders made absolute; exits 1 with the reason when FILE is invalid.
    /// With --defaults, prints the built-in configuration instead.
    CheckConfig {
        /// The TOML configuration file to check (as `run --config FILE`
        /// would read it: relative folders resolve against its folder).
        #[arg(value_name = "FILE", required_unless_present = "defaults")]
        file: Option<PathBuf>,
        /// Print the built-in defaults as a configuration file (every key;
        /// relative folders; threads = 0 is one per CPU, host = "" the
        /// hostname).
        #[arg(long, conflicts_with = "file")]
        defaults: bool,
    },
    /// Compress images (BMP, TIFF, PNG, PNM, GIF), or folders of them, to .rle.
    Compress(cli::CompressArgs),
    /// Turn .rle files (or folders of them) back into 1-bit BMPs.
    Decompress(cli::DecompressArgs),
    /// Check .rle files (or folders of them) strictly, or one against its image.
    Verify(cli::VerifyArgs),
    /// Check every archive against the ledger (fixity): exit 0 when clean.
    ///
    /// Re-reads every .rle, decodes it strictly and compares its size and
    /// digest with the ledger; reports missing, corrupt, unrecorded and
    /// doubly recorded archives and unreadable ledger lines.
    Audit {
        /// Take the archive folder from this configuration.
        #[arg(short, long, value_name = "FILE", conflicts_with = "archive")]
        config: Option<PathBuf>,
        /// Reader threads (default: one per CPU).
        #[arg(short = 'j', long, value_name = "N")]
        jobs: Option<usize>,
        /// The archive folder (default: the configuration's, or ./archive).
        #[arg(value_name = "ARCHIVE")]
        archive: Option<PathBuf>,
    },
    /// Show every daemon of the inbox, what waits, retries and failed.
    ///
    /// Reads the disk only (heartbeats, the inbox, claims, failed/, the
    /// ledgers): works with or without a daemon, on any host of a shared
    /// inbox. --json prints one JSON object; --check prints one Monitoring
    /// Plugins line and exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Status {
        /// TOML configuration (default: built-in defaults, folders
        /// relative to the working directory, as `run`).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print one JSON object (fields in docs/operations.md).
        #[arg(long, conflicts_with = "check")]
        json: bool,
        /// Nagios/Icinga plugin output: one line, exit 0/1/2/3.
        #[arg(long)]
        check: bool,
        /// Mark the files now in failed/ as seen: --check warns only of
        /// files quarantined after this.
        #[arg(long)]
        ack: bool,
    },
    /// Find a file: its history across every host's ledger, the claims, the
    /// inbox and the failed folder.
    ///
    /// QUERY is a name or path as dropped (relative to the inbox, or
    /// absolute), a glob (quoted), or a 16-hex-digit digest from the ledger.
    /// Exits 0 when something was found, 1 when nothing was, 2 on a bad
    /// QUERY.
    Where(rlewatch::locate::WhereArgs),
    /// Validate a configuration file, then tell the daemon to reload it.
    ///
    /// Checks FILE exactly as check-config does, and that PID is an
    /// `rlewatch run` started with `--config FILE` (read from /proc); if
    /// either fails, prints the reason and exits 1 without signalling.
    /// Otherwise sends SIGHUP to PID.
    /// Used by the systemd unit's ExecReload=, so that `systemctl reload`
    /// fails visibly on a broken file.
    Reload(cli::ReloadArgs),
    /// Put quarantined files from failed/ back into the inbox; or make the
    /// running daemons retry their files in backoff now (--now).
    ///
    /// Each file goes back under the path it was dropped as, never over a
    /// file there (a taken name is reported and the file stays in failed/);
    /// its error note is kept as its history, so a file that fails again
    /// shows its earlier failures. Prints one line per file; exits 1 when
    /// some file could not go back or was not found. Safe while daemons run,
    /// on any host of a shared inbox.
    Retry(rlewatch::retry::RetryArgs),
    /// Write the man page and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if !matches!(args.command, Command::Run { .. }) {
        // A command's output piped into `head` or `grep -q` ends it as it
        // ends `cat`: by SIGPIPE, quietly. (Rust ignores SIGPIPE, so a
        // print to a closed pipe would panic.) The daemon keeps ignoring
        // it: a closed log stream must not kill it.
        // SAFETY: setting a signal's disposition to the default, before
        // any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if let Command::Status {
        config,
        json,
        check,
        ack,
    } = &args.command
    {
        use rlewatch::status::Output;
        let output = match (json, check) {
            (true, _) => Output::Json,
            (_, true) => Output::Check,
            _ => Output::Text,
        };
        return match rlewatch::status::command(config.as_deref(), output, *ack) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("rlewatch: {}", cli::error_line(&e));
                ExitCode::FAILURE
            }
        };
    }
    let result = match &args.command {
        Command::Run { config } => {
            // Signal handlers first: a SIGHUP before them would kill us.
            match rlewatch::daemon::register_signals() {
                Ok(signals) => rlewatch::daemon::run(config.as_deref(), signals).map(|()| true),
                Err(e) => Err(anyhow::anyhow!("cannot install signal handlers: {e}")),
            }
        }
        Command::CheckConfig { file, defaults } => match file {
            Some(file) if !defaults => rlewatch::daemon::check_config(file),
            _ => Ok(rlewatch::daemon::config::defaults_toml()),
        }
        .map(|text| {
            print!("{text}");
            true
        }),
        Command::Compress(a) => cli::compress_cmd(a).map(|failed| failed == 0),
        Command::Decompress(a) => cli::decompress_cmd(a).map(|failed| failed == 0),
        Command::Verify(a) => cli::verify_cmd(a).map(|failed| failed == 0),
        Command::Audit {
            config,
            jobs,
            archive,
        } => rlewatch::audit::archive_of(archive.as_deref(), config.as_deref()).and_then(|dir| {
            let threads = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            rlewatch::audit::run(&dir, threads)
        }),
        Command::Reload(a) => cli::reload_cmd(a),
        Command::Status { .. } => unreachable!("handled above"),
        Command::Where(a) => rlewatch::locate::run(a),
        Command::Retry(a) => rlewatch::retry::retry_cmd(a),
        Command::GenerateAssets { dir } => cli::write_assets(Cli::command(), dir).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rlewatch: {}", cli::error_line(&e));
            if e.downcast_ref::<cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
