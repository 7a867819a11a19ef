//! Group commit of folder fsyncs (design §4.7, "Group commit"): a rename
//! between folders is durable once its destination folder and then its
//! source folder are fsynced, and a new or removed name once its folder
//! is. When several files are in flight, one fsync of a folder serves
//! every change made in it since the last: each change is registered in
//! the open *batch*, and whoever waits for it first while no flush is
//! under way closes the batch and fsyncs its folders (the leader); the
//! others wait for that flush and return without an fsync of their own. A
//! change alone is flushed at once by its own thread: nothing waits for a
//! batch to fill.
//!
//! The order that one file's moves need holds for a batch:
//! - every destination folder of a batch is fsynced before the source
//!   folder of the same move (a topological order of the batch's moves;
//!   a move that would close a cycle flushes the batch first);
//! - a move is registered *before* its rename, and a flush waits for the
//!   renames of its batch to be done before it fsyncs anything, so a
//!   flush never leaves out a rename it covers;
//! - while a flush is under way, no rename out of a folder it fsyncs may
//!   start: the flush could make the removal of that name durable
//!   without its new name, which belongs to the next batch.
//!
//! Every fsync of a folder the daemon makes while files are in flight
//! goes through here, so no fsync of a source folder slips between a
//! rename and the fsync of its destination. (The crates that offer group
//! commit — databases' write-ahead logs — do it for one log file, not
//! for folders with an order between them; hence this module.)

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A folder, by device and inode.
type DirId = (u64, u64);

/// How many flushed batches keep their fsync errors for late waiters.
const ERRORS_KEPT: u64 = 64;

#[derive(Default)]
struct State {
    /// The batch changes are registered in now; every batch below it is
    /// closed (flushing or flushed).
    open: u64,
    /// The newest batch whose flush is complete.
    done: u64,
    /// The open batch's folders (an open descriptor of each, in the order
    /// they were first registered), its moves (from, to) and how many of
    /// its registered changes are still being made.
    dirs: Vec<(DirId, File)>,
    moves: Vec<(DirId, DirId)>,
    in_flight: HashMap<u64, usize>,
    /// The folders of the flush under way, if any.
    flushing: Option<HashSet<DirId>>,
    /// Folders whose fsync failed, by batch: (batch, folder) → error.
    errors: HashMap<(u64, DirId), (io::ErrorKind, String)>,
}

/// The group commit of one process (of one test thread in unit tests, so
/// that each test's fsync journal sees its own fsyncs).
pub struct Group {
    state: Mutex<State>,
    changed: Condvar,
    /// Folder fsyncs made so far.
    fsyncs: std::sync::atomic::AtomicU64,
}

impl Group {
    fn new() -> Group {
        Group {
            state: Mutex::new(State {
                open: 1,
                ..State::default()
            }),
            changed: Condvar::new(),
            fsyncs: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(not(test))]
fn group() -> &'static Group {
    static GROUP: std::sync::OnceLock<Group> = std::sync::OnceLock::new();
    GROUP.get_or_init(Group::new)
}

#[cfg(test)]
fn group() -> &'static Group {
    thread_local! {
        static GROUP: &'static Group = Box::leak(Box::new(Group::new()));
    }
    GROUP.with(|g| *g)
}

fn id(dir: &File) -> io::Result<DirId> {
    let m = dir.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Adds `dir` to the open batch's folders (a descriptor of its own).
fn add_dir(s: &mut State, id: DirId, dir: &File) -> io::Result<()> {
    if !s.dirs.iter().any(|(d, _)| *d == id) {
        s.dirs.push((id, dir.try_clone()?));
    }
    Ok(())
}

/// Whether the open batch's moves lead from `start` to `goal`.
fn reaches(moves: &[(DirId, DirId)], start: DirId, goal: DirId) -> bool {
    let mut seen = HashSet::from([start]);
    let mut todo = vec![start];
    while let Some(d) = todo.pop() {
        if d == goal {
            return true;
        }
        for &(from, to) in moves {
            if from == d && seen.insert(to) {
                todo.push(to);
            }
        }
    }
    false
}

/// A change (a rename, link or unlink) registered and being made; its
/// batch is not flushed before it is [`Change::done`] or dropped.
#[must_use = "a registered change holds back its batch's flush until done"]
pub struct Change {
    group: &'static Group,
    batch: u64,
    dir: Option<DirId>,
    ended: bool,
}

impl Change {
    /// The change is made: it may be flushed now.
    pub fn done(mut self) -> Pending {
        self.end();
        Pending {
            group: self.group,
            batch: self.batch,
            dir: self.dir,
        }
    }

    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let group = self.group;
        let mut s = group.lock();
        if let Some(n) = s.in_flight.get_mut(&self.batch) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(&self.batch);
                group.changed.notify_all();
            }
        }
    }
}

impl Drop for Change {
    fn drop(&mut self) {
        self.end();
    }
}

/// A change made, waiting to be durable.
#[must_use = "a change is durable only once waited for"]
pub struct Pending {
    group: &'static Group,
    batch: u64,
    /// The folder whose fsync error this waiter gets (moves log theirs).
    dir: Option<DirId>,
}

impl Pending {
    /// Returns once the change is durable: its batch flushed, by this
    /// thread or another. The fsync error of the folder it was registered
    /// for, if any.
    pub fn wait(self) -> io::Result<()> {
        self.group.flush_through(self.batch);
        let s = self.group.lock();
        match self.dir.and_then(|d| s.errors.get(&(self.batch, d))) {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }
}

impl Group {
    /// Registers a move of a name from the folder `from` to the folder `to`,
    /// before it is made (the rename, or link + unlink): the batch will fsync
    /// `to`, then `from`. Waits while a flush of `from` is under way, and
    /// flushes the open batch first when this move would close a cycle in it
    /// (a file back to a folder another left for this one).
    pub fn moving(&'static self, from: &File, to: &File) -> io::Result<Change> {
        let (from_id, to_id) = (id(from)?, id(to)?);
        if from_id == to_id {
            return self.changing(from);
        }
        let group = self;
        let mut s = group.lock();
        loop {
            if s.flushing.as_ref().is_some_and(|f| f.contains(&from_id)) {
                s = group.wait(s);
                continue;
            }
            if reaches(&s.moves, to_id, from_id) {
                let open = s.open;
                drop(s);
                group.flush_through(open);
                s = group.lock();
                continue;
            }
            break;
        }
        add_dir(&mut s, to_id, to)?;
        add_dir(&mut s, from_id, from)?;
        s.moves.push((from_id, to_id));
        Ok(self.register(&mut s, None))
    }

    /// Registers a change of the names in the folder `dir` (a new name, a
    /// rename within it, a removal, a folder made in it), before it is made.
    pub fn changing(&'static self, dir: &File) -> io::Result<Change> {
        let d = id(dir)?;
        let mut s = self.lock();
        add_dir(&mut s, d, dir)?;
        Ok(self.register(&mut s, Some(d)))
    }

    fn register(&'static self, s: &mut State, dir: Option<DirId>) -> Change {
        *s.in_flight.entry(s.open).or_default() += 1;
        Change {
            group: self,
            batch: s.open,
            dir,
            ended: false,
        }
    }

    /// Makes a change already made in `dir` durable: its fsync, shared with
    /// every other change waiting then.
    pub fn sync(&'static self, dir: &File) -> io::Result<()> {
        self.changing(dir)?.done().wait()
    }

    /// Makes a move of a name from `from` to `to` already made durable. Only
    /// for a move whose order does not matter any more: one registered before
    /// it was made whose fsyncs are to be made again, or one whose file is
    /// durable under another name in `to` already.
    pub fn sync_moved(&'static self, from: &File, to: &File) {
        if let Ok(c) = self.moving(from, to) {
            let _ = c.done().wait();
        }
    }

    /// Returns once batch `batch` is flushed, flushing it (and everything
    /// registered before) when no one else is.
    fn flush_through(&self, batch: u64) {
        let group = self;
        let mut s = group.lock();
        loop {
            if s.done >= batch {
                return;
            }
            if s.flushing.is_some() {
                // Another thread is flushing (this batch, or one before it).
                s = group.wait(s);
                continue;
            }
            // Batches are closed and flushed one at a time, in order: with no
            // flush under way and this one not done, it is the open one.
            break;
        }
        // Close the open batch, wait for its changes to be made, then flush.
        let b = s.open;
        s.open += 1;
        let dirs = std::mem::take(&mut s.dirs);
        let moves = std::mem::take(&mut s.moves);
        s.flushing = Some(dirs.iter().map(|(d, _)| *d).collect());
        while s.in_flight.get(&b).is_some_and(|n| *n > 0) {
            s = group.wait(s);
        }
        drop(s);
        let errors = fsync_in_order(&dirs, &moves);
        self.fsyncs
            .fetch_add(dirs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut s = group.lock();
        s.flushing = None;
        s.done = b;
        s.errors.retain(|(batch, _), _| *batch + ERRORS_KEPT > b);
        for (d, e) in errors {
            s.errors.insert((b, d), (e.kind(), e.to_string()));
        }
        group.changed.notify_all();
    }
}

/// [`Group::moving`] in this process's group commit.
pub fn moving(from: &File, to: &File) -> io::Result<Change> {
    group().moving(from, to)
}

/// [`Group::changing`] in this process's group commit.
pub fn changing(dir: &File) -> io::Result<Change> {
    group().changing(dir)
}

/// [`Group::sync`] in this process's group commit.
pub fn sync(dir: &File) -> io::Result<()> {
    group().sync(dir)
}

/// [`Group::sync_moved`] in this process's group commit.
pub fn sync_moved(from: &File, to: &File) {
    group().sync_moved(from, to)
}

/// Flushes every change registered so far in this process's group commit
/// (at the daemon's stop: nothing is left unflushed behind it). Not when a
/// change is still being made or a flush is under way (a worker the drain
/// gave up on, stuck in a rename on a hung share): the stop does not wait
/// for it.
pub fn flush() {
    let g = group();
    let open = {
        let s = g.lock();
        if s.flushing.is_some() || s.in_flight.get(&s.open).is_some_and(|n| *n > 0) {
            return;
        }
        s.open
    };
    g.flush_through(open);
}

/// Fsyncs `dirs`, every move's destination before its source; returns the
/// errors (each also logged).
fn fsync_in_order(dirs: &[(DirId, File)], moves: &[(DirId, DirId)]) -> Vec<(DirId, io::Error)> {
    let mut errors = Vec::new();
    for i in order(dirs, moves) {
        let (d, dir) = &dirs[i];
        match dir.sync_all() {
            Ok(()) => {
                #[cfg(test)]
                super::tests::synced(dir);
            }
            Err(e) => {
                tracing::warn!(
                    "fsync of a folder: {e}; a change in it may not survive a power cut"
                );
                errors.push((*d, e));
            }
        }
    }
    errors
}

/// The indices of `dirs` in an order where each move's destination comes
/// before its source (the batch's moves form no cycle: [`moving`] sees to
/// it); otherwise in the order of registration.
fn order(dirs: &[(DirId, File)], moves: &[(DirId, DirId)]) -> Vec<usize> {
    let index: HashMap<DirId, usize> = dirs.iter().enumerate().map(|(i, (d, _))| (*d, i)).collect();
    // A source waits for each of its moves' destinations.
    let mut waits = vec![0usize; dirs.len()];
    for (from, _) in moves {
        waits[index[from]] += 1;
    }
    let mut out = Vec::with_capacity(dirs.len());
    let mut ready: Vec<usize> = (0..dirs.len()).rev().filter(|&i| waits[i] == 0).collect();
    while let Some(i) = ready.pop() {
        out.push(i);
        for (from, to) in moves {
            if *to == dirs[i].0 {
                let f = index[from];
                waits[f] -= 1;
                if waits[f] == 0 {
                    ready.push(f);
                }
            }
        }
    }
    debug_assert_eq!(out.len(), dirs.len(), "a cycle in a batch's moves");
    // Whatever a cycle left out, still fsynced (never expected).
    for i in 0..dirs.len() {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::tests::{first, recording};
    use std::fs;
    use std::path::Path;
    use std::sync::atomic::Ordering;

    fn leaked() -> &'static Group {
        Box::leak(Box::new(Group::new()))
    }

    fn rename(from: &Path, to: &Path, name: &str) {
        fs::rename(from.join(name), to.join(name)).unwrap();
    }

    #[test]
    fn a_batch_fsyncs_each_moves_destination_before_its_source() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let [a, b, c] = ["a", "b", "c"].map(|n| root.join(n));
        for d in [&a, &b, &c] {
            fs::create_dir(d).unwrap();
        }
        fs::write(a.join("x"), b"x").unwrap();
        fs::write(b.join("y"), b"y").unwrap();
        let [fa, fb, fc] = [&a, &b, &c].map(|d| File::open(d).unwrap());
        let g = leaked();
        // Registered in the order a → b, then b → c: c must be fsynced
        // before b, and b before a, whatever the order of registration.
        let (_, journal) = recording(|| {
            let m1 = g.moving(&fa, &fb).unwrap();
            rename(&a, &b, "x");
            let p1 = m1.done();
            let m2 = g.moving(&fb, &fc).unwrap();
            rename(&b, &c, "y");
            let p2 = m2.done();
            p1.wait().unwrap();
            p2.wait().unwrap();
        });
        assert_eq!(journal.len(), 3, "one fsync of each folder: {journal:#?}");
        let at = |dir: &Path| first(&journal, "each folder", |s| s.path == dir);
        assert!(at(&c) < at(&b) && at(&b) < at(&a), "{journal:#?}");
        assert!(journal[at(&b)].dir_with(&b, "x") && journal[at(&b)].dir_without(&b, "y"));
    }

    #[test]
    fn a_move_back_flushes_the_batch_first() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let [a, b] = ["a", "b"].map(|n| root.join(n));
        for d in [&a, &b] {
            fs::create_dir(d).unwrap();
        }
        fs::write(a.join("x"), b"x").unwrap();
        fs::write(b.join("y"), b"y").unwrap();
        let [fa, fb] = [&a, &b].map(|d| File::open(d).unwrap());
        let g = leaked();
        let (_, journal) = recording(|| {
            let m1 = g.moving(&fa, &fb).unwrap();
            rename(&a, &b, "x");
            let p1 = m1.done();
            // b → a would close a cycle with a → b: in one batch no order
            // of their fsyncs keeps both files durable somewhere. The first
            // batch is flushed before this one is registered.
            let m2 = g.moving(&fb, &fa).unwrap();
            assert_eq!(
                g.fsyncs.load(Ordering::Relaxed),
                2,
                "the first batch flushed"
            );
            rename(&b, &a, "y");
            let p2 = m2.done();
            p1.wait().unwrap();
            p2.wait().unwrap();
        });
        // b (with x) then a (without x); then a (with y) then b (without y).
        assert_eq!(journal.len(), 4, "{journal:#?}");
        assert!(journal[0].dir_with(&b, "x") && journal[1].dir_without(&a, "x"));
        assert!(journal[2].dir_with(&a, "y") && journal[3].dir_without(&b, "y"));
    }

    #[test]
    fn changes_waiting_together_share_one_fsync() {
        let t = tempfile::tempdir().unwrap();
        let dir = File::open(t.path()).unwrap();
        let g = leaked();
        // One change still being made holds the batch open: every waiter
        // registered meanwhile is covered by the one flush that follows.
        let holding = g.changing(&dir).unwrap();
        let pending: Vec<Pending> = (0..8)
            .map(|i| {
                let c = g.changing(&dir).unwrap();
                fs::write(t.path().join(format!("f{i}")), b"").unwrap();
                c.done()
            })
            .collect();
        std::thread::scope(|s| {
            let waiters: Vec<_> = pending.into_iter().map(|p| s.spawn(|| p.wait())).collect();
            // The waiters cannot be done before the change they wait behind.
            assert_eq!(g.fsyncs.load(Ordering::Relaxed), 0);
            holding.done().wait().unwrap();
            for w in waiters {
                w.join().unwrap().unwrap();
            }
        });
        assert_eq!(
            g.fsyncs.load(Ordering::Relaxed),
            1,
            "nine changes of one folder, one fsync"
        );
        // A change alone afterwards is flushed at once by its own thread.
        g.sync(&dir).unwrap();
        assert_eq!(g.fsyncs.load(Ordering::Relaxed), 2);
    }
}
