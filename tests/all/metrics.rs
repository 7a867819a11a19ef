//! The Prometheus textfile (`[metrics] textfile`) through the real
//! binary: what a run wrote, checked against what the test dropped; then
//! `promtool check metrics` on it, `promtool check rules` on the example
//! alerts (docs/alerts.yml), and a real node_exporter serving it through
//! its textfile collector on 127.0.0.1, scraped. The tools come from
//! Debian's `prometheus` and `prometheus-node-exporter` packages
//! (`.ci/run` extracts them and sets `RLEWATCH_PROMTOOL` and
//! `RLEWATCH_NODE_EXPORTER`). That test is ignored by default (shown as
//! such in the summary) and run by `cargo test -- --ignored`; run so
//! without the tools it says it skips, unless `RLEWATCH_REQUIRE_PROMETHEUS`
//! is set (CI), when it fails.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Daemon, LONG, data, wait_until};

const CONFIG: &str = "[watch]\nsettle_ms = 50\n[daemon]\nhost = \"alpha\"\n\
                      [metrics]\ntextfile = \"textfile/rlewatch.prom\"\ninterval_secs = 1\n";

/// The value of the sample `name` (with its labels as written) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A daemon that archived two good pages and quarantined one junk file,
/// then stopped; the bytes the good ones hold.
fn run() -> (Daemon, u64) {
    let mut d = Daemon::start(CONFIG);
    fs::create_dir(d.path("textfile")).unwrap();
    let mut bytes = 0;
    for (name, from) in [("a.bmp", "pal1.bmp"), ("b.bmp", "rgb24.bmp")] {
        fs::copy(data(from), d.inbox().join(name)).unwrap();
        bytes += fs::metadata(data(from)).unwrap().len();
    }
    fs::write(d.inbox().join("junk.bmp"), "not an image").unwrap();
    assert!(wait_until(LONG, || d.path("done/a.bmp").exists()
        && d.path("done/b.bmp").exists()
        && d.path("failed/junk.bmp").exists()));
    let prom = d.path("textfile/rlewatch.prom");
    assert!(wait_until(LONG, || fs::read_to_string(&prom).is_ok_and(
        |t| sample(&t, "rlewatch_files_archived_total") == Some(2.0)
            && sample(&t, "rlewatch_files_failed_total{reason=\"not_an_image\"}") == Some(1.0)
    )));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    (d, bytes)
}

#[test]
fn the_metrics_file_holds_what_was_dropped_and_says_it_stopped() {
    let (d, bytes) = run();
    let text = fs::read_to_string(d.path("textfile/rlewatch.prom")).unwrap();
    for (name, value) in [
        ("rlewatch_files_archived_total", 2.0),
        ("rlewatch_files_failed_total{reason=\"not_an_image\"}", 1.0),
        ("rlewatch_files_failed_total{reason=\"invalid\"}", 0.0),
        ("rlewatch_bytes_read_total", bytes as f64),
        ("rlewatch_inbox_waiting_files", 0.0),
        ("rlewatch_in_progress_files", 0.0),
        ("rlewatch_retrying_files", 0.0),
        ("rlewatch_running", 0.0),
        ("rlewatch_archive_latency_seconds_count", 2.0),
        ("rlewatch_archive_latency_seconds_bucket{le=\"+Inf\"}", 2.0),
        ("rlewatch_file_processing_seconds_count", 2.0),
        ("rlewatch_removed_files_total{what=\"done\"}", 0.0),
        (
            &format!(
                "rlewatch_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            ),
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    }
    let written = sample(&text, "rlewatch_bytes_written_total").unwrap();
    assert!(written > 0.0);
    let last = sample(&text, "rlewatch_last_archived_timestamp_seconds").unwrap();
    let start = sample(&text, "rlewatch_start_time_seconds").unwrap();
    assert!(last >= start && start > 1.6e9, "{start} {last}");
    // No file names in labels, and no temporary file left beside it.
    assert!(!text.contains("a.bmp") && !text.contains("junk"), "{text}");
    let names: Vec<_> = fs::read_dir(d.path("textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["rlewatch.prom"]);
}

/// A tool from `var`, else `name` on PATH; `None` (said) when neither.
fn tool(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

fn require(what: &str) -> bool {
    let required = std::env::var_os("RLEWATCH_REQUIRE_PROMETHEUS").is_some();
    assert!(
        !required,
        "{what} is required (RLEWATCH_REQUIRE_PROMETHEUS) but missing"
    );
    println!("SKIPPED: {what} not found (set it, or see .ci/run)");
    false
}

fn promtool(args: &[&str], promtool: &Path) -> String {
    let out = Command::new(promtool).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Kills node_exporter on drop.
struct Exporter(std::process::Child);
impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET http://addr/metrics (HTTP/1.0: the body up to the close).
fn scrape(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.0 200").then_some(body)
}

#[test]
#[ignore = "needs promtool and prometheus-node-exporter (RLEWATCH_PROMTOOL, RLEWATCH_NODE_EXPORTER or PATH; .ci/run sets them): cargo test -- --ignored"]
fn promtool_accepts_the_file_and_the_rules_and_node_exporter_serves_the_values() {
    let Some(promtool_bin) = tool("RLEWATCH_PROMTOOL", &["promtool"]) else {
        require("promtool");
        return;
    };
    let Some(exporter) = tool(
        "RLEWATCH_NODE_EXPORTER",
        &["prometheus-node-exporter", "node_exporter"],
    ) else {
        require("prometheus-node-exporter");
        return;
    };
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts.yml");
    promtool(&["check", "rules", rules.to_str().unwrap()], &promtool_bin);

    let (d, bytes) = run();
    let prom = d.path("textfile/rlewatch.prom");
    // promtool reads the exposition from stdin; it prints lint problems
    // (and fails) for any.
    let mut child = Command::new(&promtool_bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(&prom).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );

    // A free port, then node_exporter on it with only the textfile collector.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _exporter = Exporter(
        Command::new(&exporter)
            .arg(format!("--web.listen-address={addr}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                d.path("textfile").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut body = String::new();
    assert!(
        wait_until(LONG, || scrape(&addr).map(|b| body = b).is_some()),
        "node_exporter did not answer on {addr}"
    );
    for (name, value) in [
        ("rlewatch_files_archived_total", 2.0),
        ("rlewatch_files_failed_total{reason=\"not_an_image\"}", 1.0),
        ("rlewatch_bytes_read_total", bytes as f64),
        ("rlewatch_inbox_waiting_files", 0.0),
        ("rlewatch_running", 0.0),
        ("node_textfile_scrape_error", 0.0),
    ] {
        assert_eq!(sample(&body, name), Some(value), "{name} in\n{body}");
    }
}

#[test]
fn a_reload_turns_the_metrics_on_and_an_unwritable_folder_is_said_once() {
    let d = Daemon::start("[watch]\nsettle_ms = 50\n[daemon]\nhost = \"alpha\"\n");
    // A folder that does not exist: said once, the daemon goes on.
    fs::write(
        d.path("config.toml"),
        "[watch]\nsettle_ms = 50\n[daemon]\nhost = \"alpha\"\n\
         [metrics]\ntextfile = \"nowhere/rlewatch.prom\"\ninterval_secs = 1\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("configuration reloaded: metrics ", 1, LONG),
        "{}",
        d.log()
    );
    let said = "nowhere/rlewatch.prom: cannot write the metrics file: ";
    assert!(d.wait_log(said, 1, LONG), "{}", d.log());
    assert!(d.log().contains("ReadWritePaths="), "{}", d.log());
    // Made: written within a second or two, and said so once.
    fs::create_dir(d.path("nowhere")).unwrap();
    let prom = d.path("nowhere/rlewatch.prom");
    assert!(wait_until(LONG, || prom.exists()), "{}", d.log());
    assert!(d.wait_log("metrics written again", 1, LONG), "{}", d.log());
    assert_eq!(d.log().matches(said).count(), 1, "{}", d.log());
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(sample(&text, "rlewatch_running"), Some(1.0), "{text}");
}

#[test]
fn a_textfile_not_named_prom_is_refused_with_the_reason() {
    let t = crate::support::tempdir();
    fs::write(
        t.path().join("c.toml"),
        "[metrics]\ntextfile = \"rlewatch.txt\"\n",
    )
    .unwrap();
    let out = crate::support::run_in(t.path(), &["check-config", "c.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("metrics.textfile = \"rlewatch.txt\": node_exporter's textfile collector reads only files named *.prom"),
        "{err}"
    );
}
