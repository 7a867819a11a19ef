//! A FUSE filesystem, in memory, that can lose power (design §4.7, "Power
//! loss"): it keeps what processes see (the *current* layer) apart from
//! what a power cut would leave (the *durable* layer), as a strict POSIX
//! reading of fsync allows and as LazyFS models it.
//!
//! - `fsync`/`fdatasync` on a file makes its current data, size and
//!   attributes durable, but not the directory entries naming it.
//! - `fsyncdir` on a directory makes its current entry list (name ->
//!   inode) and its attributes durable.
//! - A create, mkdir, link, unlink or rename is therefore durable only once
//!   the directory (or both directories) it changed are fsynced.
//! - [`PowerFs::cut`] cuts the power: every directory gets back its durable
//!   entries, every file its durable contents (empty for a file never
//!   fsynced), and inodes no durable directory reaches from the root
//!   vanish; link counts are counted again.
//!
//! Inode numbers are never reused. Entries and attributes are given to the
//! kernel with a zero time to live and files are opened with direct I/O,
//! so nothing the kernel cached outlives a cut. No lock capability is
//! negotiated: the kernel emulates `flock` locally, which the daemon's
//! claims rely on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

const ROOT: u64 = 1;
const TTL: Duration = Duration::ZERO;

#[derive(Clone, Debug)]
enum Content {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, u64>),
}

/// One layer of an inode: its attributes and its contents.
#[derive(Clone, Debug)]
struct Node {
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    content: Content,
}

impl Node {
    fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir(_))
    }
    fn entries(&self) -> Option<&BTreeMap<OsString, u64>> {
        match &self.content {
            Content::Dir(e) => Some(e),
            Content::File(_) => None,
        }
    }
    fn entries_mut(&mut self) -> Option<&mut BTreeMap<OsString, u64>> {
        match &mut self.content {
            Content::Dir(e) => Some(e),
            Content::File(_) => None,
        }
    }
    fn data_mut(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.content {
            Content::File(d) => Some(d),
            Content::Dir(_) => None,
        }
    }
}

/// An inode: the current layer, the durable one, and the link count of
/// the current layer.
struct Inode {
    cur: Node,
    dur: Node,
    nlink: u32,
}

/// An open handle: a file (and whether it appends) or a directory listing
/// taken at opendir.
enum Handle {
    File { append: bool },
    Dir(Vec<(u64, FileType, OsString)>),
}

#[derive(Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Counters for the report.
    fsyncs: u64,
    fsyncdirs: u64,
}

/// The filesystem's shared state: the FUSE session and the test both hold
/// it (the test to cut the power).
#[derive(Clone, Default)]
pub struct PowerFs(Arc<Mutex<State>>);

fn now() -> SystemTime {
    SystemTime::now()
}

impl State {
    fn new() -> State {
        let t = now();
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let root = Node {
            perm: 0o755,
            uid,
            gid,
            atime: t,
            mtime: t,
            ctime: t,
            content: Content::Dir(BTreeMap::new()),
        };
        let mut s = State {
            next_ino: ROOT + 1,
            next_fh: 1,
            ..State::default()
        };
        s.inodes.insert(
            ROOT,
            Inode {
                dur: root.clone(),
                cur: root,
                nlink: 2,
            },
        );
        s
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let i = self.inodes.get(&ino)?;
        let n = &i.cur;
        let (kind, size) = match &n.content {
            Content::File(d) => (FileType::RegularFile, d.len() as u64),
            Content::Dir(e) => (FileType::Directory, e.len() as u64),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            crtime: n.ctime,
            kind,
            perm: n.perm,
            nlink: i.nlink,
            uid: n.uid,
            gid: n.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn dir(&self, ino: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        let i = self.inodes.get(&ino).ok_or(Errno::ENOENT)?;
        i.cur.entries().ok_or(Errno::ENOTDIR)
    }

    fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// Marks a directory's entry list changed.
    fn touch_dir(&mut self, ino: u64) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            let t = now();
            i.cur.mtime = t;
            i.cur.ctime = t;
        }
    }

    fn touch_ctime(&mut self, ino: u64) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.cur.ctime = now();
        }
    }

    /// Creates a file or folder `name` in `parent`, as `req`'s user.
    fn make(
        &mut self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        dir: bool,
    ) -> Result<u64, Errno> {
        if self.dir(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let t = now();
        let content = if dir {
            Content::Dir(BTreeMap::new())
        } else {
            Content::File(Vec::new())
        };
        let node = Node {
            perm: (mode & !umask & 0o7777) as u16,
            uid: req.uid(),
            gid: req.gid(),
            atime: t,
            mtime: t,
            ctime: t,
            content,
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        // The durable layer of a new inode: as created, empty (reachable
        // only once its folder is fsynced).
        self.inodes.insert(
            ino,
            Inode {
                dur: node.clone(),
                cur: node,
                nlink: if dir { 2 } else { 1 },
            },
        );
        self.inodes
            .get_mut(&parent)
            .and_then(|p| p.cur.entries_mut())
            .expect("checked above")
            .insert(name.to_os_string(), ino);
        if dir {
            self.inodes.get_mut(&parent).unwrap().nlink += 1;
        }
        self.touch_dir(parent);
        Ok(ino)
    }

    /// Removes the entry `name` from `parent` (the caller checked its kind).
    fn remove_entry(&mut self, parent: u64, name: &OsStr) -> Option<u64> {
        let ino = self
            .inodes
            .get_mut(&parent)?
            .cur
            .entries_mut()?
            .remove(name)?;
        let is_dir = self.inodes.get(&ino).is_some_and(|i| i.cur.is_dir());
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.nlink = if is_dir { 0 } else { i.nlink.saturating_sub(1) };
            i.cur.ctime = now();
        }
        if is_dir {
            let p = self.inodes.get_mut(&parent).unwrap();
            p.nlink = p.nlink.saturating_sub(1);
        }
        self.touch_dir(parent);
        Some(ino)
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return Err(Errno::EINVAL);
        }
        let ino = self.lookup(parent, name)?;
        self.dir(newparent)?;
        let src_dir = self.inodes[&ino].cur.is_dir();
        if src_dir && self.is_ancestor(ino, newparent) {
            return Err(Errno::EINVAL);
        }
        if let Ok(target) = self.lookup(newparent, newname) {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if target == ino {
                return Ok(()); // two names of one inode: nothing to do
            }
            let t = &self.inodes[&target].cur;
            match (src_dir, t.entries()) {
                (true, Some(e)) if !e.is_empty() => return Err(Errno::ENOTEMPTY),
                (true, None) => return Err(Errno::ENOTDIR),
                (false, Some(_)) => return Err(Errno::EISDIR),
                _ => {}
            }
            self.remove_entry(newparent, newname);
        }
        self.inodes
            .get_mut(&parent)
            .and_then(|p| p.cur.entries_mut())
            .unwrap()
            .remove(name);
        self.inodes
            .get_mut(&newparent)
            .and_then(|p| p.cur.entries_mut())
            .unwrap()
            .insert(newname.to_os_string(), ino);
        if src_dir && parent != newparent {
            self.inodes.get_mut(&parent).unwrap().nlink -= 1;
            self.inodes.get_mut(&newparent).unwrap().nlink += 1;
        }
        self.touch_dir(parent);
        self.touch_dir(newparent);
        self.touch_ctime(ino);
        Ok(())
    }

    /// True when `dir` is `ancestor` or below it.
    fn is_ancestor(&self, ancestor: u64, dir: u64) -> bool {
        if ancestor == dir {
            return true;
        }
        let mut todo = vec![ancestor];
        while let Some(d) = todo.pop() {
            for &c in self.inodes[&d]
                .cur
                .entries()
                .into_iter()
                .flatten()
                .map(|(_, c)| c)
            {
                if c == dir {
                    return true;
                }
                if self.inodes[&c].cur.is_dir() {
                    todo.push(c);
                }
            }
        }
        false
    }

    /// The power cut: current := durable, for what the durable folders
    /// reach from the root; everything else is gone.
    fn cut(&mut self) -> Cut {
        let mut reached = HashSet::from([ROOT]);
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut todo = vec![ROOT];
        while let Some(d) = todo.pop() {
            let entries: Vec<u64> = self.inodes[&d]
                .dur
                .entries()
                .into_iter()
                .flatten()
                .map(|(_, &c)| c)
                .collect();
            for c in entries {
                *links.entry(c).or_default() += 1;
                if reached.insert(c) && self.inodes[&c].dur.is_dir() {
                    todo.push(c);
                }
            }
        }
        let before = self.inodes.len();
        let mut reverted = 0;
        self.inodes.retain(|ino, _| reached.contains(ino));
        let subdirs: HashMap<u64, u32> = self
            .inodes
            .iter()
            .map(|(&ino, i)| {
                let n = i
                    .dur
                    .entries()
                    .into_iter()
                    .flatten()
                    .filter(|(_, c)| self.inodes[c].dur.is_dir())
                    .count();
                (ino, n as u32)
            })
            .collect();
        for (ino, i) in self.inodes.iter_mut() {
            if !same(&i.cur, &i.dur) {
                reverted += 1;
            }
            i.cur = i.dur.clone();
            i.nlink = if i.cur.is_dir() {
                2 + subdirs[ino]
            } else {
                links[ino]
            };
        }
        self.handles.clear();
        Cut {
            vanished: before - self.inodes.len(),
            reverted,
        }
    }
}

/// Whether two layers hold the same contents (attributes aside).
fn same(a: &Node, b: &Node) -> bool {
    match (&a.content, &b.content) {
        (Content::File(x), Content::File(y)) => x == y,
        (Content::Dir(x), Content::Dir(y)) => x == y,
        _ => false,
    }
}

/// What a power cut undid.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    /// Inodes no durable folder reached any more.
    pub vanished: usize,
    /// Inodes whose contents went back to an older state.
    pub reverted: usize,
}

impl PowerFs {
    pub fn new() -> PowerFs {
        PowerFs(Arc::new(Mutex::new(State::new())))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts the power: only what was made durable stays.
    pub fn cut(&self) -> Cut {
        self.lock().cut()
    }

    /// (fsync, fsyncdir) requests served so far.
    pub fn syncs(&self) -> (u64, u64) {
        let s = self.lock();
        (s.fsyncs, s.fsyncdirs)
    }

    /// Mounts it at `at` (needs root and /dev/fuse); unmounted when the
    /// returned [`Mounted`] is dropped, a panic included.
    pub fn mount(&self, at: &Path) -> std::io::Result<Mounted> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("powerfs".into()),
            MountOption::DefaultPermissions,
            MountOption::RW,
        ];
        config.acl = fuser::SessionACL::All;
        let session = fuser::spawn_mount(Fs(self.clone()), at, &config)?;
        Ok(Mounted {
            session: Some(session),
            at: at.to_path_buf(),
        })
    }
}

/// A mounted [`PowerFs`]; unmounts on drop.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    at: PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.at
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take()
            && let Err(e) = s.umount_and_join()
        {
            // Busy (a failing test's threads still in it): lazily, so the
            // mount does not outlive the test.
            let c = std::ffi::CString::new(self.at.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                eprintln!(
                    "unmounting {}: {e}; lazily: {}",
                    self.at.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// The FUSE side.
struct Fs(PowerFs);

impl Fs {
    fn s(&self) -> MutexGuard<'_, State> {
        self.0.lock()
    }
}

fn entry(reply: ReplyEntry, s: &State, ino: u64) {
    match s.attr(ino) {
        Some(a) => reply.entry(&TTL, &a, Generation(0)),
        None => reply.error(Errno::ENOENT),
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => now(),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let s = self.s();
        match s.lookup(parent.0, name) {
            Ok(ino) => entry(reply, &s, ino),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.s().attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.s();
        let Some(i) = s.inodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let n = &mut i.cur;
        if let Some(size) = size {
            let Some(d) = n.data_mut() else {
                return reply.error(Errno::EISDIR);
            };
            d.resize(size as usize, 0);
            n.mtime = now();
        }
        if let Some(m) = mode {
            n.perm = (m & 0o7777) as u16;
        }
        if let Some(u) = uid {
            n.uid = u;
        }
        if let Some(g) = gid {
            n.gid = g;
        }
        if let Some(t) = atime {
            n.atime = time(t);
        }
        if let Some(t) = mtime {
            n.mtime = time(t);
        }
        n.ctime = now();
        let a = s.attr(ino.0).unwrap();
        reply.attr(&TTL, &a)
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let mut s = self.s();
        match s.make(req, parent.0, name, mode, umask, false) {
            Ok(ino) => entry(reply, &s, ino),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = self.s();
        match s.make(req, parent.0, name, mode, umask, true) {
            Ok(ino) => entry(reply, &s, ino),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.s();
        match s.lookup(parent.0, name) {
            Ok(ino) if s.inodes[&ino].cur.is_dir() => reply.error(Errno::EISDIR),
            Ok(_) => {
                s.remove_entry(parent.0, name);
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.s();
        match s.lookup(parent.0, name) {
            Ok(ino) => match s.inodes[&ino].cur.entries() {
                None => reply.error(Errno::ENOTDIR),
                Some(e) if !e.is_empty() => reply.error(Errno::ENOTEMPTY),
                Some(_) => {
                    s.remove_entry(parent.0, name);
                    reply.ok()
                }
            },
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.s().rename(parent.0, name, newparent.0, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut s = self.s();
        let r = (|| {
            if s.inodes.get(&ino.0).ok_or(Errno::ENOENT)?.cur.is_dir() {
                return Err(Errno::EPERM);
            }
            if s.dir(newparent.0)?.contains_key(newname) {
                return Err(Errno::EEXIST);
            }
            s.inodes
                .get_mut(&newparent.0)
                .and_then(|p| p.cur.entries_mut())
                .unwrap()
                .insert(newname.to_os_string(), ino.0);
            s.inodes.get_mut(&ino.0).unwrap().nlink += 1;
            s.touch_ctime(ino.0);
            s.touch_dir(newparent.0);
            Ok(())
        })();
        match r {
            Ok(()) => entry(reply, &s, ino.0),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.s();
        match s.inodes.get(&ino.0) {
            None => return reply.error(Errno::ENOENT),
            Some(i) if i.cur.is_dir() && flags.0 & libc::O_ACCMODE != libc::O_RDONLY => {
                return reply.error(Errno::EISDIR);
            }
            Some(_) => {}
        }
        let fh = s.next_fh;
        s.next_fh += 1;
        s.handles.insert(
            fh,
            Handle::File {
                append: flags.0 & libc::O_APPEND != 0,
            },
        );
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.s();
        match s.make(req, parent.0, name, mode, umask, false) {
            Ok(ino) => {
                let fh = s.next_fh;
                s.next_fh += 1;
                s.handles.insert(
                    fh,
                    Handle::File {
                        append: flags & libc::O_APPEND != 0,
                    },
                );
                let a = s.attr(ino).unwrap();
                reply.created(
                    &TTL,
                    &a,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_DIRECT_IO,
                )
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = self.s();
        match s.inodes.get(&ino.0).map(|i| &i.cur.content) {
            Some(Content::File(d)) => {
                let start = (offset as usize).min(d.len());
                let end = (start + size as usize).min(d.len());
                reply.data(&d[start..end])
            }
            Some(Content::Dir(_)) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut s = self.s();
        let append = flags.0 & libc::O_APPEND != 0
            || matches!(s.handles.get(&fh.0), Some(Handle::File { append: true }));
        let Some(i) = s.inodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(d) = i.cur.data_mut() else {
            return reply.error(Errno::EISDIR);
        };
        let at = if append { d.len() } else { offset as usize };
        if d.len() < at + data.len() {
            d.resize(at + data.len(), 0);
        }
        d[at..at + data.len()].copy_from_slice(data);
        let t = now();
        i.cur.mtime = t;
        i.cur.ctime = t;
        reply.written(data.len() as u32)
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.s().handles.remove(&fh.0);
        reply.ok()
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = self.s();
        s.fsyncs += 1;
        match s.inodes.get_mut(&ino.0) {
            Some(i) if !i.cur.is_dir() => {
                // Data, size and attributes; not the names (§4.7).
                i.dur = i.cur.clone();
                reply.ok()
            }
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.s();
        let Ok(entries) = s.dir(ino.0) else {
            return reply.error(Errno::ENOTDIR);
        };
        let mut list = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (ino.0, FileType::Directory, OsString::from("..")),
        ];
        for (name, &c) in entries {
            let kind = if s.inodes[&c].cur.is_dir() {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            list.push((c, kind, name.clone()));
        }
        let fh = s.next_fh;
        s.next_fh += 1;
        s.handles.insert(fh, Handle::Dir(list));
        reply.opened(FileHandle(fh), FopenFlags::empty())
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let s = self.s();
        let Some(Handle::Dir(list)) = s.handles.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok()
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.s().handles.remove(&fh.0);
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = self.s();
        s.fsyncdirs += 1;
        match s.inodes.get_mut(&ino.0) {
            Some(i) if i.cur.is_dir() => {
                // The entry list (name -> inode) and the folder's own
                // attributes; the entries' data is each file's own fsync.
                i.dur = i.cur.clone();
                reply.ok()
            }
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(1 << 20, 1 << 19, 1 << 19, 1 << 20, 1 << 19, 4096, 255, 4096)
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        if self.s().inodes.contains_key(&ino.0) {
            reply.ok()
        } else {
            reply.error(Errno::ENOENT)
        }
    }
}
