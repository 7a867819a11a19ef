//! Journal fields (docs/operations.md, "Journal fields"): the real binary
//! with its stderr named by `JOURNAL_STREAM`, as systemd starts it, and a
//! journal socket of the test's own at `/run/systemd/journal/socket` in a
//! mount namespace of the daemon's (tracing-journald's path is fixed):
//! the test reads the native protocol's datagrams and checks each event's
//! `MESSAGE_ID`, `RLEWATCH_*`, `PRIORITY` and `SYSLOG_IDENTIFIER`, that
//! nothing is also written to stderr, and that without a reachable socket
//! the daemon falls back to stderr and says so once. Needs root (a mount
//! namespace); the real journald is the nspawn test's (tests/systemd-e2e.sh).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::{LONG, bin, data, is_root, skip_without_root, tempdir, wait_until};

/// The published ids (docs/operations.md), written out here rather than
/// taken from the crate: the test checks the binary against the docs.
const ARCHIVED: &str = "f31fd86b424d4093947edea39e34f61e";
const QUARANTINED: &str = "35c6e31167db49dbbc2bfd2dcd53146c";
const RETRYING: &str = "bcaf54f1eddb48b39a808229f4637964";
const RELOADED: &str = "de8e60addef9429989e2bd8b5c18df40";
const RELOAD_REFUSED: &str = "0d830c9b3c124c86a16e04e3067b92a6";

/// One journal entry: its fields in the order sent (a field may repeat).
type Entry = Vec<(String, Vec<u8>)>;

fn field<'a>(e: &'a Entry, name: &str) -> Option<&'a [u8]> {
    e.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

fn text(e: &Entry, name: &str) -> String {
    String::from_utf8_lossy(field(e, name).unwrap_or_default()).into_owned()
}

/// Parses one datagram of the journal's native protocol
/// (systemd.io/JOURNAL_NATIVE_PROTOCOL): `NAME=value\n`, or `NAME\n`, a
/// 64-bit little-endian length, the value's bytes and `\n`.
fn parse(mut d: &[u8]) -> Entry {
    let mut e = Entry::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').expect("a field ends");
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            e.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            d = &d[nl + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            e.push((name, rest[8..8 + len].to_vec()));
            assert_eq!(rest[8 + len], b'\n', "a binary field ends with a newline");
            d = &rest[8 + len + 1..];
        }
    }
    e
}

/// One datagram into `buf`: its length, and the descriptor passed with it
/// (SCM_RIGHTS), if any. `None` when the socket fails.
fn receive(sock: &UnixDatagram, buf: &mut [u8]) -> Option<(usize, Option<OwnedFd>)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one control message holding one descriptor.
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; its pointers are set just below to
    // live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg writes into the buffers msg points to, all alive.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return None;
    }
    let mut fd = None;
    // SAFETY: walks the control messages recvmsg filled in, within
    // msg_controllen; an SCM_RIGHTS message's data is one descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
    }
    Some((n as usize, fd))
}

/// A journal socket of the test's own, read by a thread.
struct FakeJournal {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl FakeJournal {
    fn bind(path: &Path) -> FakeJournal {
        let sock = UnixDatagram::bind(path).unwrap();
        let entries = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&entries);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while let Some((n, fd)) = receive(&sock, &mut buf) {
                if let Some(fd) = fd {
                    // An entry too large for a datagram comes as a sealed
                    // memfd (the protocol's large-entry path).
                    let mut file = fs::File::from(fd);
                    let mut entry = Vec::new();
                    use std::io::{Read, Seek};
                    file.seek(std::io::SeekFrom::Start(0)).unwrap();
                    file.read_to_end(&mut entry).unwrap();
                    store.lock().unwrap().push(parse(&entry));
                } else if n > 0 {
                    // (An empty datagram is tracing-journald's probe.)
                    store.lock().unwrap().push(parse(&buf[..n]));
                }
            }
        });
        FakeJournal { entries }
    }
    fn entries(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }
    fn with_id(&self, id: &str) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| field(e, "MESSAGE_ID") == Some(id.as_bytes()))
            .collect()
    }
    fn wait_message(&self, needle: &str) -> bool {
        wait_until(LONG, || {
            self.entries()
                .iter()
                .any(|e| text(e, "MESSAGE").contains(needle))
        })
    }
}

/// A daemon in `dir` started as systemd starts it (see [`as_under_systemd`]).
fn start(dir: &Path, config: &str) -> Child {
    fs::write(dir.join("config.toml"), config).unwrap();
    let mut cmd = bin();
    cmd.args(["run", "--config", "config.toml"]);
    as_under_systemd(&mut cmd, dir);
    cmd.spawn().unwrap()
}

/// Sets `cmd` up as systemd starts a unit's processes: in `dir`, stderr
/// appended to `dir/daemon.log`, a file whose device and inode
/// `JOURNAL_STREAM` gives, in a mount namespace where `dir/run` is `/run`
/// (so `/run/systemd/journal/socket` is the test's, or missing).
fn as_under_systemd(cmd: &mut std::process::Command, dir: &Path) {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let meta = log.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let run = CString::new(dir.join("run").as_os_str().as_bytes()).unwrap();
    cmd.current_dir(dir)
        .env("JOURNAL_STREAM", stream)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: runs in the forked child before exec, making only plain
    // syscalls (unshare, mount) on a path prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let none = std::ptr::null();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    run.as_ptr(),
                    c"/run".as_ptr(),
                    none,
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The folders, and `run/systemd/journal/` to hold the socket.
fn folders() -> (tempfile::TempDir, PathBuf) {
    let t = tempdir();
    for d in ["inbox", "archive", "done", "failed", "run/systemd/journal"] {
        fs::create_dir_all(t.path().join(d)).unwrap();
    }
    let socket = t.path().join("run/systemd/journal/socket");
    (t, socket)
}

fn stop(child: &mut Child) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_until(LONG, || child.try_wait().unwrap().is_some()));
}

fn sighup(child: &Child) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
}

const CONFIG: &str = "[paths]\ninbox = \"inbox\"\narchive = \"archive\"\n\
    done = \"done\"\nfailed = \"failed\"\n[daemon]\nhost = \"jhost\"\n\
    [watch]\nsettle_ms = 50\n";

#[test]
fn under_the_journal_each_event_carries_its_message_id_and_fields() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    let (t, socket) = folders();
    let dir = t.path();
    let journal = FakeJournal::bind(&socket);
    let mut d = start(dir, CONFIG);
    assert!(
        journal.wait_message(" started: "),
        "{:?}",
        journal.entries()
    );

    // Names as operators drop them, and names no terminal shows as typed.
    let inbox = dir.join("inbox");
    fs::create_dir(inbox.join("sub")).unwrap();
    fs::copy(data("pal1.bmp"), inbox.join("sub/a.bmp")).unwrap();
    fs::copy(data("pal8.bmp"), inbox.join("two\nlines.bmp")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.bmp");
    fs::copy(data("rgb24.bmp"), inbox.join(odd)).unwrap();
    fs::write(inbox.join("bad.bmp"), b"not a bitmap at all\n").unwrap();
    assert!(
        wait_until(LONG, || journal.with_id(ARCHIVED).len() == 3
            && journal.with_id(QUARANTINED).len() == 1),
        "{:#?}",
        journal.entries()
    );

    let archived: HashMap<Vec<u8>, Entry> = journal
        .with_id(ARCHIVED)
        .into_iter()
        .map(|e| (field(&e, "RLEWATCH_SOURCE").unwrap().to_vec(), e))
        .collect();
    let a = &archived[&b"sub/a.bmp".to_vec()];
    assert_eq!(text(a, "RLEWATCH_ARCHIVE"), "sub/a.rle");
    assert_eq!(text(a, "RLEWATCH_HOST"), "jhost");
    // INFO is syslog's informational (6); the identifier is the program's.
    assert_eq!(text(a, "PRIORITY"), "6");
    assert_eq!(text(a, "SYSLOG_IDENTIFIER"), "rlewatch");
    assert!(text(a, "MESSAGE").starts_with("archived "), "{a:?}");
    assert!(field(a, "RLEWATCH_SOURCE_RAW").is_none());
    // No field under another name: no F_ prefix, nothing twice.
    for name in ["F_MESSAGE_ID", "F_RLEWATCH_SOURCE"] {
        assert!(field(a, name).is_none(), "{name} in {a:?}");
    }
    assert_eq!(a.iter().filter(|(n, _)| n == "MESSAGE_ID").count(), 1);
    // A newline in a name is kept exactly (journal fields are bytes).
    let nl = &archived[&b"two\nlines.bmp".to_vec()];
    assert_eq!(text(nl, "RLEWATCH_ARCHIVE"), "two\nlines.rle");
    // A name that is not UTF-8: the text as the ledger gives it, the
    // exact bytes in hex beside it.
    let lossy = "caf\u{fffd}.bmp".as_bytes().to_vec();
    let o = &archived[&lossy];
    assert_eq!(text(o, "RLEWATCH_SOURCE_RAW"), "636166e92e626d70");
    assert_eq!(text(o, "RLEWATCH_ARCHIVE_RAW"), "636166e92e726c65");

    let q = &journal.with_id(QUARANTINED)[0];
    assert_eq!(text(q, "RLEWATCH_SOURCE"), "bad.bmp");
    assert_eq!(text(q, "RLEWATCH_HOST"), "jhost");
    assert_eq!(text(q, "PRIORITY"), "4");
    assert!(field(q, "RLEWATCH_ARCHIVE").is_none());

    // A file that cannot be archived yet: a file stands where its archive
    // subfolder must go.
    fs::write(dir.join("archive/blocked"), b"in the way").unwrap();
    fs::create_dir(inbox.join("blocked")).unwrap();
    fs::copy(data("pal1.bmp"), inbox.join("blocked/x.bmp")).unwrap();
    assert!(
        wait_until(LONG, || !journal.with_id(RETRYING).is_empty()),
        "{:#?}",
        journal.entries()
    );
    let r = &journal.with_id(RETRYING)[0];
    assert_eq!(text(r, "RLEWATCH_SOURCE"), "blocked/x.bmp");
    assert_eq!(text(r, "PRIORITY"), "3");

    // A reload applied, then one refused.
    fs::write(
        dir.join("config.toml"),
        format!("{CONFIG}[compress]\nconversion = \"threshold\"\n"),
    )
    .unwrap();
    sighup(&d);
    assert!(wait_until(LONG, || !journal.with_id(RELOADED).is_empty()));
    let r = &journal.with_id(RELOADED)[0];
    assert!(text(r, "MESSAGE").contains("conversion threshold"), "{r:?}");
    assert_eq!(text(r, "RLEWATCH_HOST"), "jhost");
    fs::write(
        dir.join("config.toml"),
        "[compress]\nconversion = \"sharpen\"\n",
    )
    .unwrap();
    sighup(&d);
    assert!(wait_until(LONG, || !journal
        .with_id(RELOAD_REFUSED)
        .is_empty()));
    let r = &journal.with_id(RELOAD_REFUSED)[0];
    assert!(text(r, "MESSAGE").contains("sharpen"), "{r:?}");
    assert_eq!(text(r, "PRIORITY"), "3");

    stop(&mut d);
    assert!(journal.wait_message("stopped: archived 3 file(s)"));
    // Everything went to the journal's socket, nothing also to stderr.
    let stderr = fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert_eq!(stderr, "", "stderr under the journal");
    // Only the daemon's own events carry an id: one per event above.
    let ids = journal
        .entries()
        .iter()
        .filter(|e| field(e, "MESSAGE_ID").is_some())
        .count();
    let retrying = journal.with_id(RETRYING).len();
    assert_eq!(ids, 3 + 1 + retrying + 2, "{:#?}", journal.entries());
}

#[test]
fn without_a_journal_socket_the_daemon_logs_to_stderr_and_says_so_once() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    // run/systemd/journal/ holds no socket.
    let (t, _) = folders();
    let dir = t.path();
    let mut d = start(dir, CONFIG);
    let log = || fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(
        wait_until(LONG, || log().contains(" started: ")),
        "{}",
        log()
    );
    fs::copy(data("pal1.bmp"), dir.join("inbox/a.bmp")).unwrap();
    assert!(
        wait_until(LONG, || log().contains("archived ")),
        "{}",
        log()
    );
    stop(&mut d);
    let log = log();
    assert_eq!(
        log.matches("/run/systemd/journal/socket cannot be reached")
            .count(),
        1,
        "{log}"
    );
    // Text lines as the journal wants them: no timestamps (the journal adds
    // its own), no colours, no fields meant for the journal.
    for line in log.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        assert!(
            ["INFO", "WARN", "ERROR", "DEBUG"].contains(&first),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(!line.contains("message_id"), "{line}");
    }
    let archived = log.lines().find(|l| l.contains("archived ")).unwrap();
    assert!(
        archived.starts_with(" INFO report: archived ") && archived.contains("a.bmp -> "),
        "{archived}"
    );
}

/// `systemctl reload` runs `rlewatch reload` (the unit's `ExecReload=`):
/// a file it refuses never reaches the daemon, so the refusal must carry
/// the daemon's id itself, said once (not also as a plain stderr line).
#[test]
fn a_reload_refused_by_rlewatch_reload_carries_the_reload_refused_id() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    let (t, socket) = folders();
    let dir = t.path();
    let journal = FakeJournal::bind(&socket);
    fs::write(
        dir.join("broken.toml"),
        "[compress]\nconversion = \"sharpen\"\n",
    )
    .unwrap();
    let mut cmd = bin();
    // PID 1: the file is checked before the process is.
    cmd.args(["reload", "--config", "broken.toml", "1"]);
    as_under_systemd(&mut cmd, dir);
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(wait_until(LONG, || !journal
        .with_id(RELOAD_REFUSED)
        .is_empty()));
    let e = &journal.with_id(RELOAD_REFUSED)[0];
    let message = text(e, "MESSAGE");
    assert!(
        message.starts_with("rlewatch: not reloaded, the daemon keeps its running configuration: ")
            && message.contains("sharpen")
            && message.contains("broken.toml"),
        "{message}"
    );
    assert_eq!(text(e, "PRIORITY"), "3");
    assert_eq!(fs::read_to_string(dir.join("daemon.log")).unwrap(), "");
    assert_eq!(journal.entries().len(), 1, "{:#?}", journal.entries());

    // Without a socket (the journal unreachable): the plain error line on
    // stderr, as before, and the same exit status.
    fs::remove_file(&socket).unwrap();
    let mut cmd = bin();
    cmd.args(["reload", "--config", "broken.toml", "1"]);
    as_under_systemd(&mut cmd, dir);
    assert_eq!(cmd.status().unwrap().code(), Some(1));
    let stderr = fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(
        stderr.starts_with("rlewatch: not reloaded, the daemon keeps its running configuration: "),
        "{stderr}"
    );
}

/// `log.format = "json"` is for stderr: under the journal the entries are
/// native (the journal is structured already; `journalctl -o json` gives
/// JSON with every field), never JSON text inside MESSAGE.
#[test]
fn under_the_journal_a_json_log_format_still_sends_native_entries() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    let (t, socket) = folders();
    let dir = t.path();
    let journal = FakeJournal::bind(&socket);
    let mut d = start(dir, &format!("{CONFIG}[log]\nformat = \"json\"\n"));
    assert!(
        journal.wait_message(" started: "),
        "{:?}",
        journal.entries()
    );
    fs::copy(data("pal1.bmp"), dir.join("inbox/j.bmp")).unwrap();
    assert!(wait_until(LONG, || journal.with_id(ARCHIVED).len() == 1));
    let e = &journal.with_id(ARCHIVED)[0];
    assert!(text(e, "MESSAGE").starts_with("archived "), "{e:?}");
    assert_eq!(text(e, "RLEWATCH_SOURCE"), "j.bmp");
    stop(&mut d);
    assert_eq!(fs::read_to_string(dir.join("daemon.log")).unwrap(), "");
}

/// journald restarted: its socket goes away and comes back (systemd's
/// socket unit keeps it in place, but a container's journald may not).
/// The daemon goes on archiving meanwhile (what it sends then is lost: the
/// native protocol has no queue of its own), and each entry is sent to the
/// socket's path anew, so the entries after it are there.
#[test]
fn a_journal_socket_gone_and_back_mid_run_is_used_again() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    let (t, socket) = folders();
    let dir = t.path();
    let first = FakeJournal::bind(&socket);
    let mut d = start(dir, CONFIG);
    assert!(first.wait_message(" started: "));
    fs::remove_file(&socket).unwrap();
    fs::copy(data("pal1.bmp"), dir.join("inbox/meanwhile.bmp")).unwrap();
    assert!(wait_until(LONG, || dir.join("done/meanwhile.bmp").exists()));
    let second = FakeJournal::bind(&socket);
    fs::copy(data("pal1.bmp"), dir.join("inbox/after.bmp")).unwrap();
    let after = || {
        second
            .with_id(ARCHIVED)
            .iter()
            .any(|e| text(e, "RLEWATCH_SOURCE") == "after.bmp")
    };
    assert!(wait_until(LONG, after), "{:#?}", second.entries());
    stop(&mut d);
    assert!(second.wait_message("stopped: archived 2 file(s)"));
    assert_eq!(fs::read_to_string(dir.join("daemon.log")).unwrap(), "");
}

/// An entry larger than a datagram (here a reload refused for a 1 MB
/// value, which the message quotes): sent whole through a sealed memfd,
/// by the daemon and by `rlewatch reload`, neither blocked nor cut.
#[test]
fn an_entry_larger_than_a_datagram_arrives_whole() {
    if !is_root() {
        return skip_without_root("needs root for a mount namespace over /run");
    }
    let (t, socket) = folders();
    let dir = t.path();
    let journal = FakeJournal::bind(&socket);
    let mut d = start(dir, CONFIG);
    assert!(journal.wait_message(" started: "));
    let huge = "A".repeat(1_000_000);
    let broken = format!("[compress]\nconversion = \"{huge}\"\n");
    fs::write(dir.join("config.toml"), &broken).unwrap();
    sighup(&d);
    assert!(
        wait_until(LONG, || !journal.with_id(RELOAD_REFUSED).is_empty()),
        "{} entries",
        journal.entries().len()
    );
    let e = &journal.with_id(RELOAD_REFUSED)[0];
    assert!(text(e, "MESSAGE").contains(&huge));
    assert_eq!(text(e, "RLEWATCH_HOST"), "jhost");

    fs::write(dir.join("broken.toml"), &broken).unwrap();
    let mut cmd = bin();
    cmd.args(["reload", "--config", "broken.toml", "1"]);
    as_under_systemd(&mut cmd, dir);
    assert_eq!(cmd.status().unwrap().code(), Some(1));
    assert!(wait_until(LONG, || journal.with_id(RELOAD_REFUSED).len() == 2));
    let e = &journal.with_id(RELOAD_REFUSED)[1];
    assert!(text(e, "MESSAGE").contains(&huge));
    // The daemon still runs and logs.
    fs::copy(data("pal1.bmp"), dir.join("inbox/after.bmp")).unwrap();
    assert!(wait_until(LONG, || journal.with_id(ARCHIVED).len() == 1));
    stop(&mut d);
    assert_eq!(fs::read_to_string(dir.join("daemon.log")).unwrap(), "");
}
