//! Several hosts on a real network filesystem (design §4.8): an `sshd` the
//! test starts on loopback serves one folder over SFTP; three `sshfs`
//! mounts of it stand for three client hosts, each running its own daemon
//! with its own host id. Between mounts neither `flock` nor inotify crosses
//! (as between NFS clients) and sshfs has no `RENAME_NOREPLACE` (nor has
//! NFS), so the claim rename alone decides who archives a file, and the
//! daemons poll. One daemon is SIGKILLed while it holds claims and never
//! restarted; the other two race to take them over.
//!
//! Needs root, `sshd`, `sshfs` and `/dev/fuse` (`.ci/run` installs the
//! Debian packages `openssh-server` and `sshfs`); elsewhere it says
//! `skipped: …`, and with `RLEWATCH_REQUIRE_ROOT` set (CI sets it) a
//! missing prerequisite fails it. Mounts and processes are cleaned up on
//! drop, also when the test fails.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Daemon, data, files_below, is_root, ledger, run_in, skip_without_root, stderr, tempdir,
    wait_until,
};

/// The first of `names` found on PATH or in the sbin folders.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An `sshd` on 127.0.0.1 that lets in one key, for root. Killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, sshd: &Path) -> Sshd {
        let keygen = |path: &Path| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .status()
                .expect("ssh-keygen");
            assert!(ok.success(), "ssh-keygen failed");
        };
        let (host_key, key) = (dir.join("host_key"), dir.join("client_key"));
        keygen(&host_key);
        keygen(&key);
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege separation needs this folder to exist.
        fs::create_dir_all("/run/sshd").unwrap();
        let log = dir.join("sshd.log");
        // A free port: asked of the kernel, then given to sshd. Another
        // process could take it in between; then sshd exits and we retry.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\n\
                     AuthorizedKeysFile {}\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\n\
                     PermitRootLogin prohibit-password\nStrictModes no\n\
                     PidFile none\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
                    host_key.display(),
                    dir.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let mut child = Command::new(sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("start sshd");
            let listening = wait_until(Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || child.try_wait().unwrap().is_some()
            });
            if listening && child.try_wait().unwrap().is_none() {
                return Sshd {
                    child,
                    port,
                    key,
                    log,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- sshd log ---\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// `remote` mounted at `at` with sshfs, as a client host mounts shared
/// storage: its default caches on. Unmounted on drop.
struct Sshfs(PathBuf);

impl Sshfs {
    fn mount(sshd: &Sshd, remote: &Path, at: &Path) -> Sshfs {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("sshfs")
            .arg(format!("root@127.0.0.1:{}", remote.display()))
            .arg(at)
            .arg("-o")
            .arg(format!(
                "port={},IdentityFile={},StrictHostKeyChecking=no,\
                 UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR",
                sshd.port,
                sshd.key.display()
            ))
            .stdin(Stdio::null())
            .output()
            .expect("run sshfs");
        assert!(
            out.status.success(),
            "sshfs {} failed: {}",
            at.display(),
            stderr(&out)
        );
        let mount = Sshfs(at.to_path_buf());
        // SAFETY: statfs on a valid NUL-terminated path into a zeroed struct.
        let magic = unsafe {
            let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
            let mut st: libc::statfs = std::mem::zeroed();
            assert_eq!(libc::statfs(c.as_ptr(), &mut st), 0);
            st.f_type as i64 & 0xffff_ffff
        };
        assert_eq!(magic, 0x6573_5546, "{} is not a FUSE mount", at.display());
        mount
    }
}

impl Drop for Sshfs {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn three_hosts_on_sshfs_one_killed_archive_each_file_once() {
    const N: usize = 300;
    if !is_root() {
        return skip_without_root("mounting sshfs and running sshd need root");
    }
    let Some(sshd_bin) = find_program("sshd") else {
        return skip_without_root("sshd is not installed (Debian package openssh-server)");
    };
    if find_program("sshfs").is_none() || find_program("fusermount3").is_none() {
        return skip_without_root("sshfs is not installed (Debian package sshfs)");
    }
    if !Path::new("/dev/fuse").exists() {
        return skip_without_root("/dev/fuse is missing");
    }

    // The server's folder, its two client mounts, then the daemons: locals
    // drop in reverse order, so daemons stop before mounts go.
    let top = tempdir();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let server = top.path().join("server");
    for sub in ["inbox", "archive", "done", "failed", "staging"] {
        fs::create_dir_all(server.join(sub)).unwrap();
    }
    let sshd = Sshd::start(top.path(), &sshd_bin);
    let mounts: Vec<Sshfs> = ["a", "b", "c"]
        .iter()
        .map(|h| Sshfs::mount(&sshd, &server, &top.path().join(format!("mnt-{h}"))))
        .collect();
    let config = |host: &str, m: &Sshfs| {
        let p = |sub: &str| m.0.join(sub).display().to_string();
        format!(
            "[paths]\ninbox = \"{}\"\narchive = \"{}\"\ndone = \"{}\"\nfailed = \"{}\"\n\
             [watch]\nbackend = \"auto\"\nsettle_ms = 100\nrescan_secs = 2\n\
             [daemon]\nhost = \"{host}\"\ntakeover_secs = 5\n",
            p("inbox"),
            p("archive"),
            p("done"),
            p("failed")
        )
    };
    let mut a = Daemon::start(&config("a", &mounts[0]));
    let b = Daemon::start(&config("b", &mounts[1]));
    let c = Daemon::start(&config("c", &mounts[2]));
    for d in [&a, &b, &c] {
        // `auto` must see a network filesystem, where inotify would miss
        // the other host's writes, and poll.
        assert!(d.log().contains("(polling"), "not polling:\n{}", d.log());
    }

    // With `native`, an inbox on a network filesystem gets a warning at
    // start (files other hosts write would wait for the rescan). An inbox
    // of its own, so this daemon takes no part in the rest.
    let solo = mounts[0].0.join("solo");
    for sub in ["inbox", "archive", "done", "failed"] {
        fs::create_dir_all(solo.join(sub)).unwrap();
    }
    let native = config("solo", &mounts[0])
        .replace("backend = \"auto\"", "backend = \"native\"")
        .replace(
            &mounts[0].0.display().to_string(),
            &solo.display().to_string(),
        );
    let solo_daemon = Daemon::start(&native);
    assert!(
        solo_daemon
            .log()
            .contains("is on a network filesystem: inotify does not see files other hosts write"),
        "no warning for native on sshfs:\n{}",
        solo_daemon.log()
    );
    drop(solo_daemon);

    // Files arrive on the server as a scanner writing to shared storage
    // would deliver them: written aside, then renamed in.
    let kinds = ["pal1", "pal8", "rgb16", "pal4rle"];
    let name = move |i: usize| format!("{i:03}-{}.bmp", kinds[i % kinds.len()]);
    for i in 0..N {
        fs::copy(
            data(&format!("{}.bmp", kinds[i % kinds.len()])),
            server.join("staging").join(name(i)),
        )
        .unwrap();
    }
    let feeder = {
        let server = server.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let n = name(i);
                fs::rename(
                    server.join("staging").join(&n),
                    server.join("inbox").join(&n),
                )
                .unwrap();
                if i % 20 == 19 {
                    std::thread::sleep(Duration::from_millis(50)); // a steady stream, not sync
                }
            }
        })
    };

    // Kill a while it holds claims, seen on the server.
    let a_claims = server.join("inbox/.rlewatch/claims/a");
    assert!(
        wait_until(Duration::from_secs(120), || !files_below(&a_claims)
            .is_empty()),
        "a never held a claim:\n{}",
        a.log()
    );
    a.kill();
    let held = files_below(&a_claims).len();
    println!("a killed holding {held} claim(s)");
    feeder.join().unwrap();

    let started = Instant::now();
    let finished = wait_until(Duration::from_secs(300), || {
        files_below(&server.join("done")).len() >= N
            && files_below(&server.join("inbox")).is_empty()
    });
    assert!(
        finished,
        "done {} of {N}; left in the inbox: {:?}",
        files_below(&server.join("done")).len(),
        files_below(&server.join("inbox"))
    );
    println!(
        "all {N} filed {:.1} s after the last arrival",
        started.elapsed().as_secs_f64()
    );
    if held > 0 {
        assert!(
            (b.log() + &c.log()).contains("host \"a\" has shown no heartbeat"),
            "no one took over a's claims:\n{}\n{}",
            b.log(),
            c.log()
        );
    }

    // Exactly once: N archives, each the reference output, N ledger lines
    // across both hosts' files, and the audit agrees.
    let archive = server.join("archive");
    // sshfs keeps a file deleted while still open (a temporary archive
    // dropped after a lost race) as `.fuse_hidden…` until it is closed:
    // wait for those to go; an extra archive would not.
    let mut archives = files_below(&archive);
    wait_until(Duration::from_secs(10), || {
        archives = files_below(&archive);
        archives.len() == N + M
    });
    assert_eq!(archives.len(), N, "duplicates or losses: {archives:?}");
    for i in 0..N {
        let kind = kinds[i % kinds.len()];
        let rle = format!("{i:03}-{kind}.rle");
        assert_eq!(
            fs::read(archive.join(&rle)).unwrap(),
            fs::read(data(&format!("{kind}.dither.rle"))).unwrap(),
            "{rle}"
        );
    }
    assert!(files_below(&server.join("failed")).is_empty());
    // Each original filed once: a file two hosts both thought they had
    // claimed would be filed twice (the second copy under another name).
    let done = files_below(&server.join("done"));
    assert_eq!(done.len(), N, "originals filed twice: {done:?}");
    assert_eq!(ledger::lines(&archive).len(), N);

    // The same name delivered again and again, different bytes each time
    // (pal8.bmp with its last byte, row padding, changed), each as soon as
    // the last one has left the inbox: a host that opened one and then
    // renamed the next (the other host took the first meanwhile) must
    // archive what it claimed. Where inode numbers are the client's own, as
    // on sshfs, only reading the claim itself makes sure of that.
    const M: usize = 120;
    let base = fs::read(data("pal8.bmp")).unwrap();
    let delivery = |i: usize| {
        let mut b = base.clone();
        *b.last_mut().unwrap() = i as u8;
        b
    };
    for i in 0..M {
        let part = server.join("staging").join(format!("same-{i}.part"));
        fs::write(&part, delivery(i)).unwrap();
        assert!(
            wait_until(Duration::from_secs(60), || !server
                .join("inbox/same.bmp")
                .exists()),
            "delivery {i} was never taken"
        );
        fs::rename(&part, server.join("inbox/same.bmp")).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(120), || files_below(
            &server.join("done")
        )
        .len()
            >= N + M
            && files_below(&server.join("inbox")).is_empty()),
        "done {} of {}",
        files_below(&server.join("done")).len(),
        N + M
    );
    // Each delivery recorded once, by its own digest (computed here), and
    // filed once: a host that archived one and filed another would leave
    // one digest missing and another twice.
    let mut wanted: Vec<String> = (0..M)
        .map(|i| format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&delivery(i))))
        .collect();
    wanted.sort();
    let mut recorded: Vec<String> = ledger::lines(&archive)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["source"] == "same.bmp")
        .map(|e| e["source_xxh3"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(
        recorded, wanted,
        "ledger digests of the same-name deliveries"
    );
    let mut filed: Vec<String> = files_below(&server.join("done"))
        .iter()
        .filter(|p| p.to_string_lossy().starts_with("same"))
        .map(|p| {
            let bytes = fs::read(server.join("done").join(p)).unwrap();
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
        })
        .collect();
    filed.sort();
    assert_eq!(
        filed, wanted,
        "originals of the same-name deliveries in done/"
    );
    // sshfs keeps a file deleted while still open (a temporary archive
    // dropped after a lost race) as `.fuse_hidden…` until it is closed:
    // wait for those to go; an extra archive would not.
    let mut archives = files_below(&archive);
    wait_until(Duration::from_secs(10), || {
        archives = files_below(&archive);
        archives.len() == N + M
    });
    // Should one be missing: the ledger entries whose archive is not there.
    let unbacked: Vec<String> = ledger::lines(&archive)
        .into_iter()
        .filter(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            !archive.join(e["archive"].as_str().unwrap()).exists()
        })
        .collect();
    assert_eq!(
        archives.len(),
        N + M,
        "ledger entries without their archive: {unbacked:?}; \
         archives other than 000-…rle to 299-…rle and same*.rle: {:?}",
        archives
            .iter()
            .filter(|p| {
                let n = p.to_string_lossy();
                !(n.ends_with(".rle")
                    && (n.starts_with("same") || n.as_bytes()[0].is_ascii_digit()))
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(ledger::lines(&archive).len(), N + M);
    let out = run_in(top.path(), &["audit", archive.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "audit: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    // Races lost to the other host are routine here, not worth a warning:
    // the only one expected is the take-over.
    let log = a.log() + &b.log() + &c.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains("has shown no heartbeat"))
        .collect();
    assert!(
        warnings.is_empty(),
        "unexpected warnings:\n{}",
        warnings.join("\n")
    );
    drop((b, c));
}
