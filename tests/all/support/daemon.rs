//! A running `rlewatch run` on folders of its own, started and restarted
//! as a test needs: with extra environment, confined as where it is
//! deployed, or beside another as a second host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::confine::Confine;
use super::harness::{LONG, bin, wait_until};

/// A running `rlewatch run` in its own temp folder (inbox, archive, done,
/// failed beside `config.toml`), logging to `daemon.log`. Killed on drop.
pub struct Daemon {
    /// The folder; shared with the daemons started [`Daemon::beside`] it.
    pub dir: Arc<tempfile::TempDir>,
    /// Its configuration file and its log, in `dir`.
    config: String,
    log: String,
    child: Option<std::process::Child>,
    env: Vec<(String, String)>,
    confine: Confine,
}

/// Config lines every test daemon gets unless it overrides the section.
pub const FAST: &str = "[watch]\nsettle_ms = 50\n";

impl Daemon {
    /// Writes `config` to `config.toml` and starts the daemon on it, waiting
    /// until it says it has started (watch set, backlog queued).
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_confined(config, env, Confine::default())
    }

    /// [`Daemon::start_with_env`], confined as `confine` says.
    pub fn start_confined(config: &str, env: &[(&str, &str)], confine: Confine) -> Daemon {
        Daemon::start_confined_in(&std::env::temp_dir(), config, env, confine)
    }

    /// [`Daemon::start`] with its folder (inbox, archive, done, failed,
    /// its config and log) made under `root`: a filesystem mounted for the
    /// test (`support::loopfs`).
    pub fn start_in(root: &Path, config: &str) -> Daemon {
        Daemon::start_confined_in(root, config, &[], Confine::default())
    }

    /// [`Daemon::start_confined`] with its folder made under `root`.
    pub fn start_confined_in(
        root: &Path,
        config: &str,
        env: &[(&str, &str)],
        confine: Confine,
    ) -> Daemon {
        let dir = tempfile::tempdir_in(root).expect("create temp dir");
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some((uid, gid)) = confine.user {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut d = Daemon {
            dir: Arc::new(dir),
            config: "config.toml".to_string(),
            log: "daemon.log".to_string(),
            child: None,
            env,
            confine,
        };
        d.spawn();
        d
    }

    /// Another daemon in this one's folder, as another host would run it:
    /// `config` (which names its host id, and the same inbox and archive
    /// unless it says otherwise) goes to `NAME.toml`, its log to
    /// `NAME.log`. Started when it says so; killed on drop.
    pub fn beside(&self, name: &str, config: &str) -> Daemon {
        let toml = format!("{name}.toml");
        std::fs::write(self.path(&toml), config).unwrap();
        let mut other = Daemon {
            dir: Arc::clone(&self.dir),
            config: toml,
            log: format!("{name}.log"),
            child: None,
            env: Vec::new(),
            confine: Confine::default(),
        };
        other.spawn();
        assert!(
            wait_until(LONG, || other.log().contains(" started: ")),
            "the daemon {name} did not start:\n{}",
            other.log()
        );
        other
    }

    /// Replaces the extra environment variables for the next spawn.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// (Re)starts the process on the same folder.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&self.log))
            .unwrap();
        // Counted before the spawn: a fast start must not be missed.
        let starts = self.log().matches(" started: ").count();
        let mut cmd = bin();
        self.confine.apply(&mut cmd);
        let child = cmd
            .args(["run", "--config", &self.config])
            .current_dir(self.dir.path())
            .env("RUST_BACKTRACE", "1")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(20), || self
                .log()
                .matches(" started: ")
                .count()
                > starts
                || self.exited().is_some()),
            "daemon did not start:\n{}",
            self.log()
        );
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path(&self.log)).unwrap_or_default()
    }

    /// Waits for `needle` to appear in the log `count` times in all.
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().matches(needle).count() >= count)
    }

    /// A log line says `what` and ends as a failure that needs someone to
    /// act: "(this will not pass until it is fixed)".
    pub fn logged_as_permanent(&self, what: &str) -> bool {
        self.log()
            .lines()
            .any(|l| l.contains(what) && l.ends_with("(this will not pass until it is fixed)"))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits for the process to end; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        status
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log, self.log());
        }
    }
}
/// Stops the daemon, lets `prepare` change its folders, starts it again.
pub fn restart_with(d: &mut Daemon, prepare: impl FnOnce(&Daemon)) {
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(LONG).is_some());
    prepare(d);
    d.spawn();
}

/// Waits until `rel` exists under the daemon's folder.
pub fn wait_file(d: &Daemon, rel: &str) -> bool {
    let p = d.path(rel);
    wait_until(LONG, || p.exists())
}
