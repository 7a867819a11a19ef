//! Where rlewatch keeps its own state (design §4.5, §4.7, §4.8): every
//! path under `INBOX/.rlewatch/` and `ARCHIVE/.rlewatch/` is built here and
//! nowhere else, as cargo's `Layout` holds the paths of all its output
//! locations. This module only names paths: it creates, opens and checks
//! nothing (that is for [`crate::claim`], [`crate::ledger`] and the
//! daemon).
//!
//! ```text
//! INBOX/
//!   .rlewatch/                 InboxLayout::state()  (mode 0700, never work)
//!     HOST.lock                InboxLayout::lock(host): one daemon per inbox and host
//!     claims/                  InboxLayout::claims_root()
//!       HOST/                  InboxLayout::claims(host): that host's claimed files,
//!         SUBDIR/FILE.bmp        below their inbox subfolder path
//!     hosts/                   InboxLayout::hosts()
//!       HOST                   InboxLayout::heartbeat(host): that host's heartbeat
//!     status-ack               InboxLayout::status_ack(): `rlewatch status --ack`'s time
//!     history/                 InboxLayout::history(): earlier failures of files
//!       SUBDIR/FILE.bmp.error.txt  put back by `rlewatch retry`, by inbox path
//!     retry-now                InboxLayout::retry_request(): `rlewatch retry --now`
//! ARCHIVE/
//!   .rlewatch/                 ArchiveLayout::state()  (never archive output)
//!     ledger/                  ArchiveLayout::ledger()
//!       HOST/                  ArchiveLayout::ledger_of(host)
//!         YYYY-MM-DD.jsonl       one file per UTC day (crate::ledger)
//!     index/                   ArchiveLayout::index(): rebuildable, never the truth
//!       HOST/                  ArchiveLayout::index_of(host)
//!         YYYY-MM-DD.idx         the lookup table of that day's ledger file
//! ```
//!
//! A new path under either folder gets an accessor here, and a line in
//! the tree above.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The folder, inside the inbox and inside the archive, that holds
/// rlewatch's own state; hidden, so never work.
const STATE_DIR: &str = ".rlewatch";

/// True for the name of rlewatch's own folder (as a direct child of the
/// inbox or archive folder it is never work nor output).
pub fn is_state_dir(name: &OsStr) -> bool {
    name == STATE_DIR
}

/// The paths of rlewatch's state inside one inbox folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxLayout {
    state: PathBuf,
}

impl InboxLayout {
    /// The layout of the inbox folder `inbox`.
    pub fn new(inbox: &Path) -> InboxLayout {
        InboxLayout {
            state: inbox.join(STATE_DIR),
        }
    }

    /// `INBOX/.rlewatch`.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// `INBOX/.rlewatch/HOST.lock`: the lock file of the daemon of `host`.
    pub fn lock(&self, host: &str) -> PathBuf {
        self.state.join(format!("{host}.lock"))
    }

    /// `INBOX/.rlewatch/claims`: every host's claim folder.
    pub fn claims_root(&self) -> PathBuf {
        self.state.join("claims")
    }

    /// `INBOX/.rlewatch/claims/HOST`: the claim folder of `host`.
    pub fn claims(&self, host: &str) -> PathBuf {
        self.claims_root().join(host)
    }

    /// `INBOX/.rlewatch/hosts`: every host's heartbeat.
    pub fn hosts(&self) -> PathBuf {
        self.state.join("hosts")
    }

    /// `INBOX/.rlewatch/hosts/HOST`: the heartbeat file of `host`.
    pub fn heartbeat(&self, host: &str) -> PathBuf {
        self.hosts().join(host)
    }

    /// `INBOX/.rlewatch/status-ack`: when `rlewatch status --ack` last
    /// marked the failed folder's files as seen.
    pub fn status_ack(&self) -> PathBuf {
        self.state.join("status-ack")
    }

    /// `INBOX/.rlewatch/history`: the error notes of files `rlewatch
    /// retry` put back into the inbox, below their inbox path, until they
    /// are archived or fail again (design §4.4, "Retrying failures").
    pub fn history(&self) -> PathBuf {
        self.state.join("history")
    }

    /// `INBOX/.rlewatch/retry-now`: touched by `rlewatch retry --now`;
    /// every daemon of the inbox, on any host, retries its files in
    /// backoff at once when it sees its mtime change.
    pub fn retry_request(&self) -> PathBuf {
        self.state.join("retry-now")
    }
}

/// The paths of rlewatch's state inside one archive folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLayout {
    state: PathBuf,
}

impl ArchiveLayout {
    /// The layout of the archive folder `archive`.
    pub fn new(archive: &Path) -> ArchiveLayout {
        ArchiveLayout {
            state: archive.join(STATE_DIR),
        }
    }

    /// `ARCHIVE/.rlewatch`.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// `ARCHIVE/.rlewatch/ledger`: every host's ledger.
    pub fn ledger(&self) -> PathBuf {
        self.state.join("ledger")
    }

    /// `ARCHIVE/.rlewatch/ledger/HOST`: the ledger files `host` appends to.
    pub fn ledger_of(&self, host: &str) -> PathBuf {
        self.ledger().join(host)
    }

    /// `ARCHIVE/.rlewatch/index`: the ledger's lookup tables (design
    /// §4.7, "The index"); removing it only makes `where` slower.
    pub fn index(&self) -> PathBuf {
        self.state.join("index")
    }

    /// `ARCHIVE/.rlewatch/index/HOST`: the tables of `host`'s ledger files.
    pub fn index_of(&self, host: &str) -> PathBuf {
        self.index().join(host)
    }

    /// `ARCHIVE/.rlewatch/index/HOST/DAY.idx`: the table of the ledger
    /// file `ledger/HOST/DAY.jsonl`.
    pub fn index_file(&self, host: &str, day: &str) -> PathBuf {
        self.index_of(host).join(format!("{day}.idx"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_below_the_state_folder() {
        let inbox = InboxLayout::new(Path::new("/in"));
        assert_eq!(inbox.state(), Path::new("/in/.rlewatch"));
        assert_eq!(inbox.lock("h"), Path::new("/in/.rlewatch/h.lock"));
        assert_eq!(inbox.claims_root(), Path::new("/in/.rlewatch/claims"));
        assert_eq!(inbox.claims("h"), Path::new("/in/.rlewatch/claims/h"));
        assert_eq!(inbox.hosts(), Path::new("/in/.rlewatch/hosts"));
        assert_eq!(inbox.heartbeat("h"), Path::new("/in/.rlewatch/hosts/h"));
        assert_eq!(inbox.status_ack(), Path::new("/in/.rlewatch/status-ack"));
        assert_eq!(inbox.history(), Path::new("/in/.rlewatch/history"));
        assert_eq!(inbox.retry_request(), Path::new("/in/.rlewatch/retry-now"));
        let archive = ArchiveLayout::new(Path::new("/ar"));
        assert_eq!(archive.state(), Path::new("/ar/.rlewatch"));
        assert_eq!(archive.ledger(), Path::new("/ar/.rlewatch/ledger"));
        assert_eq!(archive.ledger_of("h"), Path::new("/ar/.rlewatch/ledger/h"));
        assert_eq!(archive.index(), Path::new("/ar/.rlewatch/index"));
        assert_eq!(
            archive.index_file("h", "2026-01-02"),
            Path::new("/ar/.rlewatch/index/h/2026-01-02.idx")
        );
        assert!(is_state_dir(OsStr::new(".rlewatch")));
        assert!(!is_state_dir(OsStr::new("rlewatch")));
    }
}
