//! Sequences larger than memory, for `rlewatch audit` (design §4.7): a
//! [`Spill`] keeps its items in memory up to a budget of bytes, then
//! writes them (sorted, when it sorts) as a run to a temporary file, and
//! gives them back in order, merging its runs when it sorts, concatenating
//! them when it keeps the order of arrival.
//!
//! The runs are unnamed temporary files ([`tempfile::tempfile`], in
//! `$TMPDIR` or `/tmp`): no other process can open them by name, and the
//! kernel frees them whenever the process ends, even killed, so nothing is
//! ever left behind. Written here rather than taken from a crate because
//! it needs exactly that, a comparator that is not the items' `Ord`
//! (paths by component, then ledger order) and a bounded number of open
//! runs; it is a few hundred lines.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// An item that goes to a run file and back.
pub(crate) trait Item: Sized {
    /// Appends its bytes to `out`.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads it back from what [`Item::put`] wrote.
    fn get(bytes: &mut &[u8]) -> io::Result<Self>;
    /// About what it takes in memory, its heap included.
    fn weight(&self) -> usize;
}

/// How much a [`Spill`] keeps in memory and how many runs it merges at
/// once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes of items kept in memory before a run is written.
    pub bytes: usize,
    /// Runs merged at once: with more, the runs so far are merged into
    /// one first, so that the open files and their buffers stay bounded.
    pub fan_in: usize,
}

impl Default for Budget {
    /// 16 MB of items; 64 runs of 16 KiB buffers (1 MB) merged at once.
    fn default() -> Budget {
        Budget {
            bytes: 16 << 20,
            fan_in: 64,
        }
    }
}

/// What a [`Spill::in_order`] keeps in memory at most.
const IN_ORDER_BYTES: usize = 1 << 20;

/// Reading buffer of each run while merging.
const RUN_BUFFER: usize = 16 << 10;

/// Items of `T`, in memory up to a budget, then in runs on disk.
pub(crate) struct Spill<T> {
    items: Vec<T>,
    weight: usize,
    budget: Budget,
    runs: Vec<File>,
    /// `None`: the order of arrival is kept.
    order: Option<fn(&T, &T) -> Ordering>,
    len: u64,
}

impl<T: Item> Spill<T> {
    /// Items given back sorted by `order` (a stable sort: equal items in
    /// the order of arrival).
    pub fn sorted(budget: Budget, order: fn(&T, &T) -> Ordering) -> Spill<T> {
        Spill {
            items: Vec::new(),
            weight: 0,
            budget,
            runs: Vec::new(),
            order: Some(order),
            len: 0,
        }
    }

    /// Items given back in the order they came. Nothing is gained by
    /// keeping many of them in memory: at most [`IN_ORDER_BYTES`].
    pub fn in_order(budget: Budget) -> Spill<T> {
        let budget = Budget {
            bytes: budget.bytes.min(IN_ORDER_BYTES),
            ..budget
        };
        Spill {
            order: None,
            ..Spill::sorted(budget, |_, _| Ordering::Equal)
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn push(&mut self, item: T) -> io::Result<()> {
        self.weight += item.weight() + std::mem::size_of::<T>();
        self.items.push(item);
        self.len += 1;
        if self.weight >= self.budget.bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the items in memory as a run.
    fn spill(&mut self) -> io::Result<()> {
        if let Some(order) = self.order {
            self.items.sort_by(order);
        }
        // Kept in order, the items go on at the end of the one run.
        let file = match self.runs.pop() {
            Some(mut f) if self.order.is_none() => {
                f.seek(SeekFrom::End(0))?;
                f
            }
            Some(f) => {
                self.runs.push(f);
                tempfile::tempfile()?
            }
            None => tempfile::tempfile()?,
        };
        let mut w = BufWriter::with_capacity(1 << 16, file);
        let mut buf = Vec::new();
        for item in self.items.drain(..) {
            write_item(&mut w, &mut buf, &item)?;
        }
        // The vector keeps its capacity for the next run.
        self.weight = 0;
        self.runs.push(finish_run(w)?);
        if self.order.is_some() && self.runs.len() >= self.budget.fan_in.max(2) {
            let runs = std::mem::take(&mut self.runs);
            let mut merged = Merge::new(runs, self.order)?;
            let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
            while let Some(item) = merged.next()? {
                write_item(&mut w, &mut buf, &item)?;
            }
            self.runs.push(finish_run(w)?);
        }
        Ok(())
    }

    /// Every item, in order.
    pub fn finish(mut self) -> io::Result<Merge<T>> {
        if self.runs.is_empty() {
            if let Some(order) = self.order {
                self.items.sort_by(order);
            }
            return Ok(Merge(Source::Memory(self.items.into_iter())));
        }
        if !self.items.is_empty() {
            self.spill()?;
        }
        Merge::new(self.runs, self.order)
    }
}

fn write_item<T: Item>(w: &mut impl Write, buf: &mut Vec<u8>, item: &T) -> io::Result<()> {
    buf.clear();
    item.put(buf);
    w.write_all(&(buf.len() as u32).to_le_bytes())?;
    w.write_all(buf)
}

fn finish_run(w: BufWriter<File>) -> io::Result<File> {
    let mut file = w.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// One run being read back.
struct Run {
    reader: BufReader<File>,
    buf: Vec<u8>,
}

impl Run {
    fn next<T: Item>(&mut self) -> io::Result<Option<T>> {
        let mut len = [0u8; 4];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        self.buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.reader.read_exact(&mut self.buf)?;
        let mut bytes = &self.buf[..];
        T::get(&mut bytes).map(Some)
    }
}

/// The head of a run in the merge's heap.
struct Head<T> {
    item: T,
    run: usize,
    order: fn(&T, &T) -> Ordering,
}

impl<T> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Head<T> {}
impl<T> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Head<T> {
    /// Reversed (the heap gives its greatest first); equal items by run,
    /// earlier runs first, which keeps the sort stable.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.order)(&other.item, &self.item).then(other.run.cmp(&self.run))
    }
}

/// A [`Spill`]'s items read back in order.
pub(crate) struct Merge<T>(Source<T>);

enum Source<T> {
    Memory(std::vec::IntoIter<T>),
    /// Runs read one after the other.
    Chain(std::collections::VecDeque<Run>),
    Heap {
        runs: Vec<Run>,
        heap: BinaryHeap<Head<T>>,
    },
}

impl<T: Item> Merge<T> {
    fn new(files: Vec<File>, order: Option<fn(&T, &T) -> Ordering>) -> io::Result<Merge<T>> {
        let mut runs: Vec<Run> = files
            .into_iter()
            .map(|f| Run {
                reader: BufReader::with_capacity(RUN_BUFFER, f),
                buf: Vec::new(),
            })
            .collect();
        let Some(order) = order else {
            return Ok(Merge(Source::Chain(runs.into())));
        };
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (run, r) in runs.iter_mut().enumerate() {
            if let Some(item) = r.next()? {
                heap.push(Head { item, run, order });
            }
        }
        Ok(Merge(Source::Heap { runs, heap }))
    }

    /// The next item, `None` at the end.
    #[allow(clippy::should_implement_trait)] // Fallible: io::Result<Option<T>>.
    pub fn next(&mut self) -> io::Result<Option<T>> {
        match &mut self.0 {
            Source::Memory(items) => Ok(items.next()),
            Source::Chain(runs) => {
                while let Some(run) = runs.front_mut() {
                    if let Some(item) = run.next()? {
                        return Ok(Some(item));
                    }
                    runs.pop_front();
                }
                Ok(None)
            }
            Source::Heap { runs, heap } => {
                let Some(mut head) = heap.pop() else {
                    return Ok(None);
                };
                match runs[head.run].next()? {
                    Some(next) => {
                        let item = std::mem::replace(&mut head.item, next);
                        heap.push(head);
                        Ok(Some(item))
                    }
                    None => Ok(Some(head.item)),
                }
            }
        }
    }
}

/// A [`Merge`] with its next item looked at.
pub(crate) struct Peek<T> {
    merge: Merge<T>,
    head: Option<T>,
}

impl<T: Item> Peek<T> {
    pub fn new(mut merge: Merge<T>) -> io::Result<Peek<T>> {
        let head = merge.next()?;
        Ok(Peek { merge, head })
    }

    pub fn peek(&self) -> Option<&T> {
        self.head.as_ref()
    }

    pub fn pop(&mut self) -> io::Result<Option<T>> {
        let next = self.merge.next()?;
        Ok(std::mem::replace(&mut self.head, next))
    }
}

/// Little-endian integers and length-prefixed bytes, for [`Item`]s.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn corrupt_run() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a temporary run file is damaged",
    )
}

pub(crate) fn get_u64(bytes: &mut &[u8]) -> io::Result<u64> {
    let (head, rest) = bytes.split_at_checked(8).ok_or_else(corrupt_run)?;
    *bytes = rest;
    Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
}

pub(crate) fn get_bytes<'a>(bytes: &mut &'a [u8]) -> io::Result<&'a [u8]> {
    let len = usize::try_from(get_u64(bytes)?).map_err(|_| corrupt_run())?;
    let (head, rest) = bytes.split_at_checked(len).ok_or_else(corrupt_run)?;
    *bytes = rest;
    Ok(head)
}

impl Item for PathBuf {
    fn put(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_os_str().as_bytes());
    }
    fn get(bytes: &mut &[u8]) -> io::Result<PathBuf> {
        Ok(PathBuf::from(std::ffi::OsString::from_vec(
            get_bytes(bytes)?.to_vec(),
        )))
    }
    fn weight(&self) -> usize {
        self.as_os_str().len()
    }
}

impl Item for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn get(bytes: &mut &[u8]) -> io::Result<String> {
        String::from_utf8(get_bytes(bytes)?.to_vec()).map_err(|_| corrupt_run())
    }
    fn weight(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<T: Item>(s: Spill<T>) -> Vec<T> {
        let mut m = s.finish().unwrap();
        let mut out = Vec::new();
        while let Some(x) = m.next().unwrap() {
            out.push(x);
        }
        out
    }

    /// Pseudo-random strings, sorted by an independent `sort` of the same.
    fn strings(n: usize) -> Vec<String> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:x}", x % 5000)
            })
            .collect()
    }

    #[test]
    fn sorted_runs_merge_to_what_a_sort_in_memory_gives_at_every_budget() {
        let input = strings(3000);
        let mut expected = input.clone();
        expected.sort();
        for (bytes, fan_in) in [(1 << 30, 64), (1, 2), (100, 3), (4000, 64), (1000, 5)] {
            let mut s = Spill::sorted(Budget { bytes, fan_in }, |a: &String, b| a.cmp(b));
            for x in &input {
                s.push(x.clone()).unwrap();
            }
            assert_eq!(all(s), expected, "budget {bytes}, fan-in {fan_in}");
        }
    }

    #[test]
    fn the_order_of_arrival_is_kept_across_runs_and_the_sort_is_stable() {
        let input = strings(2000);
        for bytes in [1, 500, 1 << 30] {
            let budget = Budget { bytes, fan_in: 3 };
            let mut s = Spill::in_order(budget);
            for x in &input {
                s.push(x.clone()).unwrap();
            }
            assert_eq!(s.len(), 2000);
            assert_eq!(all(s), input);
            // Sorted by the first character only: ties keep their order.
            let mut s = Spill::sorted(budget, |a: &String, b| {
                a.as_bytes()[0].cmp(&b.as_bytes()[0])
            });
            for x in &input {
                s.push(x.clone()).unwrap();
            }
            let mut expected = input.clone();
            expected.sort_by_key(|a| a.as_bytes()[0]);
            assert_eq!(all(s), expected, "budget {bytes}");
        }
    }
}
