//! The inbox watcher (design §4.2): a `notify` watcher whose callback, run on
//! notify's own thread, only filters by name and does a non-blocking send
//! onto the bounded channel. When the channel is full, or the kernel queue
//! overflowed, or the watcher reported an error, it raises the rescan flag
//! instead: the disk is the queue, so nothing is lost, only found later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::config::Backend;
use super::filter::Filter;

/// A path the watcher saw appear or finish being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: PathBuf,
    /// A folder was created: scan it (files may have landed before its
    /// watch existed).
    pub folder: bool,
}

/// Flags the callback raises for the coordinator.
#[derive(Debug, Default)]
pub struct Flags {
    pub rescan: AtomicBool,
    /// The inotify watch limit was hit; switch to polling.
    pub watch_limit: AtomicBool,
    /// Something the coordinator should log (last watcher error).
    pub error: std::sync::Mutex<Option<String>>,
}

/// Everything the callback needs; cheap to clone into notify's thread.
#[derive(Clone)]
pub struct Handler {
    pub tx: Sender<Seen>,
    /// Wakes the coordinator when a flag was raised (capacity 1; a full
    /// wake channel means a wake-up is already pending).
    pub wake: Sender<()>,
    pub flags: Arc<Flags>,
    pub filter: Arc<Filter>,
    /// Set for the poll backend, which reports files as modified.
    pub polling: bool,
}

impl Handler {
    fn raise(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }

    /// An error about a file or folder inside the inbox that was listed
    /// and then gone before the watcher looked at it: on shared storage
    /// another host claimed it, or its writer moved it away (design §4.8).
    /// Nothing is missed, so it needs neither a warning nor a rescan; an
    /// error about the inbox itself still does.
    fn vanished(&self, e: &notify::Error) -> bool {
        let inbox = self.filter.inbox();
        let state = crate::layout::InboxLayout::new(inbox).state().to_path_buf();
        let io = matches!(&e.kind, notify::ErrorKind::Io(_));
        let not_found = matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound);
        // The daemon's own folder (claims that hosts rename, heartbeats):
        // the poll backend walks it too, and on shared storage sees its
        // files come and go (ESTALE, EIO on sshfs); none of it is work.
        let own = |p: &std::path::Path| p.starts_with(&state);
        !e.paths.is_empty()
            && ((io && e.paths.iter().all(|p| own(p)))
                || (not_found && e.paths.iter().all(|p| p.starts_with(inbox) && p != inbox)))
    }

    /// The watcher callback. Never blocks.
    pub fn handle(&self, result: notify::Result<Event>) {
        let event = match result {
            Ok(e) => e,
            Err(e) if self.vanished(&e) => {
                tracing::debug!("watcher: {e}; gone before it was looked at");
                return;
            }
            Err(e) => {
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    self.flags.watch_limit.store(true, Ordering::SeqCst);
                }
                if let Ok(mut slot) = self.flags.error.lock() {
                    *slot = Some(e.to_string());
                }
                self.raise(&self.flags.rescan);
                return;
            }
        };
        if event.need_rescan() {
            self.raise(&self.flags.rescan);
        }
        // (path, is a folder, may be a folder)
        let (path, folder, maybe_folder) =
            match event.kind {
                EventKind::Create(CreateKind::Folder) => (event.paths.first(), true, true),
                EventKind::Create(CreateKind::File)
                | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    (event.paths.first(), false, false)
                }
                EventKind::Create(_) => (event.paths.first(), false, true),
                // A rename does not say what was renamed: folders come this way too.
                EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => {
                    (event.paths.first(), false, true)
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                    (event.paths.get(1), false, true)
                }
                // The poll backend reports new and changed files this way.
                EventKind::Modify(
                    ModifyKind::Data(_) | ModifyKind::Metadata(_) | ModifyKind::Any,
                ) if self.polling => (event.paths.first(), false, false),
                _ => return,
            };
        let Some(path) = path else { return };
        let wanted = if folder {
            self.filter.wants_dir(path)
        } else {
            // A name left alone goes on too, to be told once (design §4.2).
            self.filter.wants_file(path)
                || (maybe_folder && self.filter.wants_dir(path))
                || self.filter.ignored(path).is_some()
        };
        if !wanted {
            return;
        }
        match self.tx.try_send(Seen {
            path: path.clone(),
            folder,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.raise(&self.flags.rescan),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// A running watcher of either kind.
pub struct Watch {
    _watcher: Box<dyn Watcher + Send>,
    pub polling: bool,
    /// Native events on a local filesystem: writers on this host are all
    /// the writers there are, so observing them says when a file is
    /// complete (design §4.2). Never on a network filesystem, where other
    /// hosts write unseen, even with `backend = "native"`.
    pub observes_writers: bool,
    /// The watched inbox folder's (device, inode): a folder swapped in
    /// under its name is another folder, which this watch does not see.
    pub inbox_id: Option<(u64, u64)>,
}

/// A folder's (device, inode), if it is a folder.
pub fn folder_id(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// Why the inbox cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: {source}", .path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

/// True when `dir` is on a filesystem where inotify sees no remote writes.
pub fn is_network_fs(dir: &Path) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517b;
    const CIFS: i64 = 0xff53_4d42_u32 as i64;
    const SMB2: i64 = 0xfe53_4d42_u32 as i64;
    const FUSE: i64 = 0x6573_5546;
    const AFS: i64 = 0x5346_414f;
    const CEPH: i64 = 0x00c3_6400;
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills the zeroed struct for a valid path pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let magic = st.f_type as i64 & 0xffff_ffff;
    [NFS, SMB, CIFS, SMB2, FUSE, AFS, CEPH].contains(&magic)
}

/// notify's recursion mode for `watch.recursive`.
pub fn mode(recursive: bool) -> RecursiveMode {
    if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    }
}

/// Says that the inotify watch limit was reached while watching `inbox`,
/// with the fix, and that polling takes over.
pub fn log_watch_limit(inbox: &Path) {
    tracing::error!(
        "inotify watch limit reached while watching {}: raise fs.inotify.max_user_watches \
         (sysctl fs.inotify.max_user_watches=524288); falling back to polling",
        crate::display::shown(inbox)
    );
}

/// Starts watching the inbox with the configured backend. A native
/// watcher that hits the inotify watch limit falls back to polling, with
/// an error that says how to raise the limit.
pub fn start(
    backend: Backend,
    recursive: bool,
    poll_interval: Duration,
    handler: &Handler,
) -> Result<Watch, WatchError> {
    let inbox = handler.filter.inbox().to_path_buf();
    let mode = mode(recursive);
    let use_poll = match backend {
        Backend::Poll => true,
        Backend::Native => false,
        Backend::Auto => is_network_fs(&inbox),
    };
    if !use_poll {
        let h = handler.clone();
        let native = notify::RecommendedWatcher::new(move |r| h.handle(r), watch_config());
        let result = native.and_then(|mut w| w.watch(&inbox, mode).map(|()| w));
        match result {
            Ok(w) => {
                let network = is_network_fs(&inbox);
                if network {
                    tracing::warn!(
                        "{} is on a network filesystem: inotify does not see files other hosts \
                         write there, so they are found only by the periodic rescan \
                         (watch.rescan_secs); set watch.backend = \"auto\" or \"poll\"",
                        crate::display::shown(&inbox)
                    );
                }
                return Ok(Watch {
                    _watcher: Box::new(w),
                    polling: false,
                    observes_writers: !network,
                    inbox_id: folder_id(&inbox),
                });
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                log_watch_limit(&inbox);
            }
            Err(source) => {
                return Err(WatchError::Watch {
                    path: inbox,
                    source,
                });
            }
        }
    }
    start_poll(mode, poll_interval, handler)
}

/// The watchers' settings: a symlink to a folder is not followed (notify
/// follows them by default), so a link in the inbox cannot make the daemon
/// watch, or list, a tree outside it (design §4.3: nothing is opened
/// through a symlink).
fn watch_config() -> notify::Config {
    notify::Config::default().with_follow_symlinks(false)
}

/// Starts a polling watcher.
pub fn start_poll(
    mode: RecursiveMode,
    interval: Duration,
    handler: &Handler,
) -> Result<Watch, WatchError> {
    let inbox = handler.filter.inbox().to_path_buf();
    let mut h = handler.clone();
    h.polling = true;
    let config = watch_config().with_poll_interval(interval);
    let mut w = notify::PollWatcher::new(move |r| h.handle(r), config).map_err(|source| {
        WatchError::Watch {
            path: inbox.clone(),
            source,
        }
    })?;
    w.watch(&inbox, mode).map_err(|source| WatchError::Watch {
        path: inbox.clone(),
        source,
    })?;
    Ok(Watch {
        _watcher: Box::new(w),
        polling: true,
        observes_writers: false,
        inbox_id: folder_id(&inbox),
    })
}

#[cfg(test)]
mod tests;
