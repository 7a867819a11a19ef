//! The ledger's index (design §4.7, "The index"): beside each ledger day
//! file `ledger/HOST/DAY.jsonl`, a lookup table `index/HOST/DAY.idx` from
//! the hashes of a line's *terms* (its source path, file name, digests,
//! archive, done/ and failed/ paths) to the line's byte offset, so that
//! `rlewatch where` reads a handful of pages per day file instead of the
//! whole year of ledger.
//!
//! The ledger stays the only truth. The table says which file covers it
//! (inode, the length indexed, hashes of the first and last 4 KiB of that
//! length) and carries checksums (one over its header, one per bucket of
//! entries): a table that is missing, stale (the ledger was replaced or
//! rewritten) or damaged is not used, and its day file is scanned instead
//! — a slower answer, never a wrong one. Lines appended since it was built
//! are scanned. Every hit is confirmed by reading and parsing the ledger
//! line itself (a hash that collides only costs a read). Removing
//! `ARCHIVE/.rlewatch/index` is always safe.
//!
//! Written by hand: no crate offers an on-disk sorted table that can be
//! searched with a few positioned reads and checked piecewise, and the
//! format is about a hundred lines.
//!
//! ```text
//! magic "RLWIDX\0\1" | inode u64 | covered u64 | head xxh3 u64 | tail xxh3 u64
//! | entries u64 | bad lines u64 | bucket bits u32 | 0 u32
//! | bad lines × (line number u64, offset u64)
//! | fanout (2^bits + 1) × u32 (first entry of each bucket)
//! | sums 2^bits × u32 (xxh3 of each bucket's bytes, low 32 bits)
//! | header xxh3 u64 (of everything before it)
//! | entries × (key u64, offset u64), sorted by key, then offset
//! ```
//! All numbers little-endian. An entry's bucket is its key's top `bits`
//! bits.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::read::{LineError, parse_line};
use super::record::{Line, RemovedWhat};

const MAGIC: &[u8; 8] = b"RLWIDX\x00\x01";
/// The fixed part of the header, in bytes.
const FIXED: usize = 8 + 6 * 8 + 4 + 4;
/// How many bytes at each end of the covered length are hashed.
const ENDS: u64 = 4096;
/// About this many entries a bucket (one or two pages read per lookup).
const PER_BUCKET: u64 = 512;

/// What a line is found by. The same function gives the terms of a query
/// and of a line, so the index and a scan agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// A source's path relative to the inbox.
    Path,
    /// A source's file name (its last component).
    Name,
    /// A source or archive digest.
    Digest,
    /// An archive's path relative to the archive folder.
    Archive,
    /// A path relative to the done folder.
    Done,
    /// A path relative to the failed folder.
    Failed,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Path => b'p',
            Tag::Name => b'n',
            Tag::Digest => b'd',
            Tag::Archive => b'a',
            Tag::Done => b'o',
            Tag::Failed => b'f',
        }
    }
}

/// One term: a tag and its exact bytes (a path's bytes, a digest's eight
/// bytes).
pub type Term = (Tag, Vec<u8>);

/// The term of a path (exact bytes, names that are not UTF-8 included).
pub fn path_term(tag: Tag, p: &Path) -> Term {
    (tag, p.as_os_str().as_bytes().to_vec())
}

/// The term of a digest.
pub fn digest_term(d: u64) -> Term {
    (Tag::Digest, d.to_le_bytes().to_vec())
}

fn digest_of(hex: &str) -> Option<Term> {
    u64::from_str_radix(hex, 16).ok().map(digest_term)
}

/// The hash a term is stored under.
pub fn key(t: &Term) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&[t.0.byte()]);
    h.update(&t.1);
    h.digest()
}

/// Everything `line` can be found by.
pub fn terms(line: &Line) -> Vec<Term> {
    let mut out = Vec::with_capacity(6);
    let source = |out: &mut Vec<Term>, p: &Path| {
        out.push(path_term(Tag::Path, p));
        if let Some(n) = p.file_name() {
            out.push(path_term(Tag::Name, Path::new(n)));
        }
    };
    match line {
        Line::Archived(e) => {
            source(&mut out, &e.source_path());
            out.extend(digest_of(&e.source_xxh3));
            out.extend(digest_of(&e.archive_xxh3));
            out.push(path_term(Tag::Archive, &e.archive_path()));
        }
        Line::Filed(e) => {
            source(&mut out, &e.source_path());
            out.extend(digest_of(&e.source_xxh3));
            out.push(path_term(Tag::Archive, &e.archive_path()));
            if let Some(p) = e.done_path() {
                out.push(path_term(Tag::Done, &p));
            }
        }
        Line::Quarantined(e) => {
            source(&mut out, &e.source_path());
            out.extend(e.source_xxh3.as_deref().and_then(digest_of));
            out.push(path_term(Tag::Failed, &e.failed_path()));
        }
        Line::Removed(e) => {
            let p = e.removed_path();
            let tag = match e.what {
                RemovedWhat::Done => Tag::Done,
                RemovedWhat::Failed => Tag::Failed,
            };
            out.push(path_term(tag, &p));
            if let Some(n) = p.file_name() {
                out.push(path_term(Tag::Name, Path::new(n)));
            }
            out.extend(e.source_xxh3.as_deref().and_then(digest_of));
        }
        Line::Retried(e) => {
            source(&mut out, &e.source_path());
            out.push(path_term(Tag::Failed, &e.failed_path()));
        }
    }
    out
}

/// The table of one ledger file, built in memory.
#[derive(Debug, Default)]
pub struct Built {
    /// (key, offset), sorted.
    entries: Vec<(u64, u64)>,
    /// Lines that could not be read: (line number, offset, why).
    pub bad: Vec<(usize, u64, String)>,
    /// The bytes indexed: up to the end of the last whole line.
    pub covered: u64,
    pub lines: usize,
}

/// What a caller sees of each whole line while a table is built: its
/// number, offset and the line or why it cannot be read.
pub type Visit<'a> = &'a mut dyn FnMut(usize, u64, &Result<Line, LineError>);

/// Reads `ledger` from byte `from` (a line's start; line numbers then
/// count from `first_line`) to the end of its last whole line, giving each
/// line to `visit` and collecting its terms.
pub fn build_from(ledger: &File, from: u64, first_line: usize, visit: Visit) -> io::Result<Built> {
    let mut reader = BufReader::with_capacity(
        1 << 20,
        Reader {
            file: ledger,
            at: from,
        },
    );
    let mut b = Built {
        covered: from,
        ..Built::default()
    };
    let mut line = Vec::with_capacity(1024);
    let mut number = first_line;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // The end, or a last line not whole yet (being written, or
            // torn by a crash): not covered.
            break;
        }
        number += 1;
        let offset = b.covered;
        b.covered += n as u64;
        let text = &line[..n - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        b.lines += 1;
        let parsed = parse_line(text);
        visit(number, offset, &parsed);
        match &parsed {
            Ok(l) => b.entries.extend(terms(l).iter().map(|t| (key(t), offset))),
            Err(why) => b.bad.push((number, offset, why.to_string())),
        }
    }
    b.entries.sort_unstable();
    b.entries.dedup();
    Ok(b)
}

/// A `Read` of a file from an offset by positioned reads.
struct Reader<'a> {
    file: &'a File,
    at: u64,
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The identity of the first `covered` bytes of `ledger`.
fn ends(ledger: &File, covered: u64) -> io::Result<(u64, u64)> {
    let head = read_exact_at(ledger, 0, covered.min(ENDS) as usize)?;
    let start = covered.saturating_sub(ENDS);
    let tail = read_exact_at(ledger, start, (covered - start) as usize)?;
    Ok((xxh3_64(&head), xxh3_64(&tail)))
}

fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

fn bits_for(count: u64) -> u32 {
    let mut bits = 0;
    while bits < 20 && (count >> bits) > PER_BUCKET {
        bits += 1;
    }
    bits
}

fn bucket(key: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (key >> (64 - bits)) as usize
    }
}

impl Built {
    /// The table as written to disk, for the ledger file `ledger`.
    pub fn to_bytes(&self, ledger: &File) -> io::Result<Vec<u8>> {
        let ino = ledger.metadata()?.ino();
        let (head, tail) = ends(ledger, self.covered)?;
        let count = self.entries.len() as u64;
        let bits = bits_for(count);
        let buckets = 1usize << bits;
        let mut fanout = vec![0u32; buckets + 1];
        for &(k, _) in &self.entries {
            fanout[bucket(k, bits) + 1] += 1;
        }
        for i in 0..buckets {
            fanout[i + 1] += fanout[i];
        }
        let mut body = Vec::with_capacity(self.entries.len() * 16);
        for &(k, o) in &self.entries {
            body.extend_from_slice(&k.to_le_bytes());
            body.extend_from_slice(&o.to_le_bytes());
        }
        let sums: Vec<u32> = (0..buckets)
            .map(|b| xxh3_64(&body[fanout[b] as usize * 16..fanout[b + 1] as usize * 16]) as u32)
            .collect();
        let mut out = Vec::with_capacity(FIXED + body.len() + buckets * 8 + 64);
        out.extend_from_slice(MAGIC);
        for v in [ino, self.covered, head, tail, count, self.bad.len() as u64] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for &(n, o, _) in &self.bad {
            out.extend_from_slice(&(n as u64).to_le_bytes());
            out.extend_from_slice(&o.to_le_bytes());
        }
        for v in fanout.iter().chain(&sums) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The offsets of the lines with a term of key `k`.
    pub fn lookup(&self, k: u64) -> impl Iterator<Item = u64> + '_ {
        let start = self.entries.partition_point(|&(e, _)| e < k);
        self.entries[start..]
            .iter()
            .take_while(move |&&(e, _)| e == k)
            .map(|&(_, o)| o)
    }
}

/// Why a table on disk is not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("no index")]
    Missing,
    #[error("the index is damaged ({0})")]
    Damaged(&'static str),
    #[error("the index is of another ledger file, or of its earlier content")]
    Stale,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A table on disk, checked against its ledger file.
#[derive(Debug)]
pub struct Index {
    file: File,
    /// The ledger bytes it covers.
    pub covered: u64,
    /// Lines that could not be read: (line number, offset).
    pub bad: Vec<(usize, u64)>,
    bits: u32,
    fanout: Vec<u32>,
    sums: Vec<u32>,
    /// Where the entries start.
    body: u64,
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("BUG: 8 bytes"))
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("BUG: 4 bytes"))
}

impl Index {
    /// Opens the table `path` of the ledger file `ledger` (open), checking
    /// its header's checksum and that it covers this file's content.
    pub fn open(path: &Path, ledger: &File) -> Result<Index, Unusable> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Missing),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        let short = Unusable::Damaged("too short");
        if len < FIXED as u64 {
            return Err(short);
        }
        let fixed = read_exact_at(&file, 0, FIXED)?;
        if &fixed[..8] != MAGIC {
            return Err(Unusable::Damaged("not an index of this version"));
        }
        let [ino, covered, head, tail, count, bad] =
            [8, 16, 24, 32, 40, 48].map(|i| u64_at(&fixed, i));
        let bits = u32_at(&fixed, 56);
        if bits > 20 || bad > len / 16 || count > len / 16 {
            return Err(Unusable::Damaged("impossible sizes"));
        }
        let buckets = 1usize << bits;
        let rest = bad as usize * 16 + (2 * buckets + 1) * 4 + 8;
        if (FIXED + rest) as u64 + count * 16 != len {
            return Err(short);
        }
        let more = read_exact_at(&file, FIXED as u64, rest)?;
        let mut header = fixed;
        header.extend_from_slice(&more);
        let sum_at = header.len() - 8;
        if xxh3_64(&header[..sum_at]) != u64_at(&header, sum_at) {
            return Err(Unusable::Damaged("header checksum"));
        }
        let meta = ledger.metadata()?;
        if meta.ino() != ino || meta.len() < covered || ends(ledger, covered)? != (head, tail) {
            return Err(Unusable::Stale);
        }
        let mut at = FIXED;
        let mut bad_lines = Vec::with_capacity(bad as usize);
        for _ in 0..bad {
            bad_lines.push((u64_at(&header, at) as usize, u64_at(&header, at + 8)));
            at += 16;
        }
        let fanout: Vec<u32> = (0..=buckets).map(|i| u32_at(&header, at + i * 4)).collect();
        at += (buckets + 1) * 4;
        let sums: Vec<u32> = (0..buckets).map(|i| u32_at(&header, at + i * 4)).collect();
        if fanout.windows(2).any(|w| w[0] > w[1]) || u64::from(fanout[buckets]) != count {
            return Err(Unusable::Damaged("bucket table"));
        }
        Ok(Index {
            file,
            covered,
            bad: bad_lines,
            bits,
            fanout,
            sums,
            body: header.len() as u64,
        })
    }

    /// The offsets of the lines with a term of key `k`; an error when the
    /// bucket holding it is damaged.
    pub fn lookup(&self, k: u64) -> Result<Vec<u64>, Unusable> {
        let b = bucket(k, self.bits);
        let (from, to) = (self.fanout[b] as u64, self.fanout[b + 1] as u64);
        let bytes = read_exact_at(
            &self.file,
            self.body + from * 16,
            ((to - from) * 16) as usize,
        )?;
        if xxh3_64(&bytes) as u32 != self.sums[b] {
            return Err(Unusable::Damaged("bucket checksum"));
        }
        Ok(bytes
            .chunks_exact(16)
            .filter(|e| u64_at(e, 0) == k)
            .map(|e| u64_at(e, 8))
            .collect())
    }
}

/// Reads the whole line starting at `offset` of `file` (without its
/// newline): `None` when `offset` is not the start of a whole line.
pub fn read_line_from(file: &File, offset: u64) -> io::Result<Option<Vec<u8>>> {
    if offset > 0 {
        let mut b = [0u8];
        if file.read_at(&mut b, offset - 1)? != 1 || b[0] != b'\n' {
            return Ok(None);
        }
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut at = offset;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&buf[..i]);
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
}

/// Writes `bytes` as the table `path`: to a temporary name in its folder,
/// then renamed, so a reader never sees half a table (not fsynced: it can
/// always be rebuilt, and a torn one fails its checksums).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    // Modes as the ledger's own (design §4.7).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    let mut t = tempfile::Builder::new()
        .prefix(".idx-")
        .permissions(std::fs::Permissions::from_mode(0o640))
        .tempfile_in(dir)?;
    t.write_all(bytes)?;
    t.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Record, VERSION, hex};
    use std::io::Write;

    fn entry(n: u64) -> Record {
        Record {
            v: VERSION,
            time: "2026-11-26T10:00:00Z".into(),
            host: "h".into(),
            source: format!("d{}/page-{n}.bmp", n % 7),
            source_raw: None,
            source_size: 10,
            source_xxh3: hex(n * 3 + 1),
            archive: format!("d{}/page-{n}.rle", n % 7),
            archive_raw: None,
            archive_size: 5,
            archive_xxh3: hex(n * 3 + 2),
            width: 1,
            height: 1,
            conversion: "dither".into(),
            lossless: true,
            format: "bmp".into(),
        }
    }

    /// A ledger file of `n` entries (and one bad line, line 3), its table.
    fn ledger_of(dir: &Path, n: u64) -> (std::path::PathBuf, Vec<u64>) {
        let path = dir.join("2026-11-26.jsonl");
        let mut f = File::create(&path).unwrap();
        let mut offsets = Vec::new();
        let mut at = 0u64;
        for i in 0..n {
            if i == 2 {
                let bad = b"{\"v\":3,\"oops\n";
                f.write_all(bad).unwrap();
                at += bad.len() as u64;
            }
            let mut line = serde_json::to_vec(&entry(i)).unwrap();
            line.push(b'\n');
            f.write_all(&line).unwrap();
            offsets.push(at);
            at += line.len() as u64;
        }
        (path, offsets)
    }

    fn build(path: &Path) -> Built {
        build_from(&File::open(path).unwrap(), 0, 0, &mut |_, _, _| {}).unwrap()
    }

    #[test]
    fn every_term_of_every_line_finds_that_line_through_the_table_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Enough entries for several buckets.
        let (path, offsets) = ledger_of(dir.path(), 3000);
        let built = build(&path);
        assert_eq!(built.bad.len(), 1);
        assert_eq!((built.bad[0].0, built.bad[0].1), (3, offsets[2] - 13));
        let idx = dir.path().join("i/2026-11-26.idx");
        let ledger = File::open(&path).unwrap();
        write(&idx, &built.to_bytes(&ledger).unwrap()).unwrap();
        let index = Index::open(&idx, &ledger).unwrap();
        assert!(index.bits > 0);
        assert_eq!(index.bad, vec![(3, offsets[2] - 13)]);
        for (i, &o) in offsets.iter().enumerate() {
            let e = entry(i as u64);
            let name = format!("page-{i}.bmp");
            for t in [
                path_term(Tag::Path, Path::new(&e.source)),
                path_term(Tag::Name, Path::new(&name)),
                digest_term(i as u64 * 3 + 1),
                digest_term(i as u64 * 3 + 2),
                path_term(Tag::Archive, Path::new(&e.archive)),
            ] {
                assert_eq!(index.lookup(key(&t)).unwrap(), vec![o], "{i} {t:?}");
                assert_eq!(built.lookup(key(&t)).collect::<Vec<_>>(), vec![o]);
            }
            let line = read_line_from(&ledger, o).unwrap().unwrap();
            assert_eq!(parse_line(&line).unwrap(), Line::Archived(e));
        }
        // Not a term of any line; not a line's start.
        assert!(index.lookup(key(&digest_term(0))).unwrap().is_empty());
        assert_eq!(read_line_from(&ledger, offsets[5] + 1).unwrap(), None);
    }

    #[test]
    fn a_missing_stale_or_damaged_table_is_refused_and_a_grown_ledger_is_covered_up_to_where_it_was()
     {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = ledger_of(dir.path(), 50);
        let idx = dir.path().join("2026-11-26.idx");
        let ledger = File::open(&path).unwrap();
        assert!(matches!(Index::open(&idx, &ledger), Err(Unusable::Missing)));
        let bytes = build(&path).to_bytes(&ledger).unwrap();
        write(&idx, &bytes).unwrap();
        let covered = Index::open(&idx, &ledger).unwrap().covered;
        // Grown: still used, for the length it covers.
        let mut more = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        more.write_all(b"{\"v\":3}\n").unwrap();
        assert_eq!(Index::open(&idx, &ledger).unwrap().covered, covered);
        // Every single flipped byte of the header is noticed; a flipped
        // byte among the entries fails its bucket's lookup.
        let header = bytes.len() - build(&path).entries.len() * 16;
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            write(&idx, &bad).unwrap();
            match Index::open(&idx, &ledger) {
                Err(Unusable::Damaged(_) | Unusable::Stale) => assert!(i < header, "{i}"),
                Ok(index) => {
                    assert!(i >= header, "{i}");
                    let entry = (i - header) / 16;
                    let k = u64_at(&bytes, header + entry * 16);
                    assert!(matches!(index.lookup(k), Err(Unusable::Damaged(_))), "{i}");
                }
                Err(e) => panic!("{i}: {e}"),
            }
        }
        // Truncated.
        write(&idx, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            Index::open(&idx, &ledger),
            Err(Unusable::Damaged(_))
        ));
        // The ledger rewritten (same length, other content at its end),
        // or replaced by another file.
        write(&idx, &bytes).unwrap();
        let mut text = std::fs::read(&path).unwrap();
        let at = covered as usize - 10;
        text[at] = if text[at] == b'1' { b'2' } else { b'1' };
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(Index::open(&idx, &ledger), Err(Unusable::Stale)));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &text).unwrap();
        let other = File::open(&path).unwrap();
        assert!(matches!(Index::open(&idx, &other), Err(Unusable::Stale)));
    }

    #[test]
    fn a_last_line_not_whole_is_not_covered() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = ledger_of(dir.path(), 3);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"v\":3,\"time\"").unwrap();
        let b = build(&path);
        assert_eq!(b.covered, whole);
        assert_eq!(b.lines, 4);
    }
}
