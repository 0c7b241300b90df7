//! Count tables whose memory does not grow with the number of keys: at
//! most a fixed number of keys are held in memory; when the table is full
//! it is written to a temporary file as a run sorted by key, and emptied.
//! [`SpillTable::drain`] merges the runs and what is still in memory
//! (a k-way merge by key), so each key comes out once with its counts
//! summed over every run: the totals are exact, whatever the input.
//!
//! The plan counts findings per decision fingerprint and per (Region,
//! decision) with these: a file whose every row has its own note has as
//! many keys as rows. [`Decisions`] keeps the text of the decisions those
//! keys stand for, bounded the same way, so that the plan can list the
//! largest groups' decisions after the merge.
//!
//! If the temporary file cannot be created or written, the table stops
//! spilling and grows in memory instead (the counts stay exact; only the
//! bound is lost, and a warning says so).

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Keys a table holds in memory before it spills: the most a hash table
/// of 65,536 buckets holds (7/8 of them), so that a full table does not
/// double its allocation.
pub(crate) const SPILL_CAP: usize = 57_344;

/// Bytes of decision text [`Decisions`] holds in memory before it writes
/// them out.
const TEXT_CAP: usize = 4 << 20;

/// Bytes read at once from each run while merging.
const READ_BLOCK: usize = 8 << 10;

/// A value a [`SpillTable`] counts: fixed-size, and summed with another
/// value of the same key.
pub(crate) trait Count: Copy {
    /// Bytes it takes in a run.
    const SIZE: usize;
    /// Appends its bytes.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads it back from its `SIZE` bytes.
    fn get(b: &[u8]) -> Self;
    /// Adds `other`, a count of the same key.
    fn absorb(&mut self, other: Self);
}

impl Count for u64 {
    const SIZE: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    }
    fn absorb(&mut self, other: Self) {
        *self += other;
    }
}

/// Reads `buf.len()` bytes of `file` from `pos`.
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    let mut f = file;
    f.seek(SeekFrom::Start(pos))?;
    f.read_exact(buf)
}

/// A temporary file, created when first needed; `None` once it failed.
struct Scratch {
    file: Option<File>,
    /// Bytes written so far.
    len: u64,
    /// Creating or writing it failed: stop spilling.
    failed: bool,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            file: None,
            len: 0,
            failed: false,
        }
    }

    /// Appends `bytes`; returns where they start.
    fn append(&mut self, bytes: &[u8], what: &str) -> io::Result<u64> {
        let r = (|| {
            if self.file.is_none() {
                self.file = Some(tempfile::tempfile()?);
            }
            let mut f = self.file.as_ref().expect("created above");
            f.seek(SeekFrom::Start(self.len))?;
            f.write_all(bytes)?;
            Ok(())
        })();
        match r {
            Ok(()) => {
                let at = self.len;
                self.len += bytes.len() as u64;
                Ok(at)
            }
            Err(e) => {
                if !self.failed {
                    tracing::warn!(
                        "cannot write the plan's {what} to a temporary file in {} ({e}): \
                         they are kept in memory instead, which grows with the number of \
                         distinct decisions",
                        std::env::temp_dir().display()
                    );
                }
                self.failed = true;
                // Whatever was written of `bytes` is never read: the file
                // is not written again.
                Err(e)
            }
        }
    }
}

/// Counts by key, at most `cap` keys in memory (see the module's doc).
pub(crate) struct SpillTable<V> {
    map: HashMap<u128, V>,
    cap: usize,
    scratch: Scratch,
    /// The runs written: (first byte, entries).
    runs: Vec<(u64, u64)>,
    /// What the counts are, for the warning if spilling fails.
    what: &'static str,
}

impl<V: Count> SpillTable<V> {
    /// An empty table holding at most `cap` (at least 1) keys in memory.
    pub(crate) fn new(cap: usize, what: &'static str) -> Self {
        SpillTable {
            map: HashMap::new(),
            cap: cap.max(1),
            scratch: Scratch::new(),
            runs: Vec::new(),
            what,
        }
    }

    /// The count of `key` in memory, if it is there.
    pub(crate) fn get_mut(&mut self, key: u128) -> Option<&mut V> {
        self.map.get_mut(&key)
    }

    /// Whether a new key needs a spill first.
    fn is_full(&self) -> bool {
        self.map.len() >= self.cap && !self.scratch.failed
    }

    /// Adds `v` to the count of `key`, spilling first if a new key does
    /// not fit.
    pub(crate) fn add(&mut self, key: u128, v: V) {
        if let Some(c) = self.map.get_mut(&key) {
            c.absorb(v);
            return;
        }
        if self.is_full() {
            self.spill();
        }
        self.map.insert(key, v);
    }

    /// Writes what is in memory as a sorted run and empties the table. On
    /// failure, keeps it in memory (and stops spilling).
    fn spill(&mut self) {
        if self.map.is_empty() || self.scratch.failed {
            return;
        }
        let mut entries: Vec<(u128, V)> = self.map.iter().map(|(k, v)| (*k, *v)).collect();
        entries.sort_unstable_by_key(|e| e.0);
        let mut bytes = Vec::with_capacity(entries.len() * (16 + V::SIZE));
        for (k, v) in &entries {
            bytes.extend_from_slice(&k.to_le_bytes());
            v.put(&mut bytes);
        }
        drop(entries);
        if let Ok(at) = self.scratch.append(&bytes, self.what) {
            self.runs.push((at, self.map.len() as u64));
            self.map.clear();
        }
    }

    /// Runs written so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Calls `f` once per key, with its counts summed over every run and
    /// what is in memory, in no particular order when nothing was spilled
    /// and in key order otherwise.
    pub(crate) fn drain(self, mut f: impl FnMut(u128, V)) -> io::Result<()> {
        if self.runs.is_empty() {
            for (k, v) in self.map {
                f(k, v);
            }
            return Ok(());
        }
        let file = self.scratch.file.as_ref().expect("runs were written");
        let mut memory: Vec<(u128, V)> = self.map.into_iter().collect();
        memory.sort_unstable_by_key(|e| e.0);
        let mut sources: Vec<Source<'_, V>> = self
            .runs
            .iter()
            .map(|&(at, n)| Source::Run(RunReader::new(file, at, n)))
            .collect();
        sources.push(Source::Memory(memory.into_iter()));
        // The next entry of each source, and a heap of their keys.
        let mut heads: Vec<Option<(u128, V)>> = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            let head = s.next()?;
            if let Some((k, _)) = head {
                heap.push(std::cmp::Reverse((k, i)));
            }
            heads.push(head);
        }
        let mut current: Option<(u128, V)> = None;
        while let Some(std::cmp::Reverse((k, i))) = heap.pop() {
            let (_, v) = heads[i].take().expect("a head for each key in the heap");
            match &mut current {
                Some((ck, cv)) if *ck == k => cv.absorb(v),
                _ => {
                    if let Some((ck, cv)) = current.take() {
                        f(ck, cv);
                    }
                    current = Some((k, v));
                }
            }
            let next = sources[i].next()?;
            if let Some((nk, _)) = next {
                heap.push(std::cmp::Reverse((nk, i)));
            }
            heads[i] = next;
        }
        if let Some((ck, cv)) = current {
            f(ck, cv);
        }
        Ok(())
    }
}

/// Where a merge takes entries from.
enum Source<'f, V> {
    Run(RunReader<'f>),
    Memory(std::vec::IntoIter<(u128, V)>),
}

impl<V: Count> Source<'_, V> {
    fn next(&mut self) -> io::Result<Option<(u128, V)>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::Run(r) => r.next::<V>(),
        }
    }
}

/// Reads one run, a block at a time.
struct RunReader<'f> {
    file: &'f File,
    /// Next byte of the file to read.
    pos: u64,
    /// Entries not yet returned.
    left: u64,
    buf: Vec<u8>,
    at: usize,
}

impl<'f> RunReader<'f> {
    fn new(file: &'f File, pos: u64, entries: u64) -> Self {
        RunReader {
            file,
            pos,
            left: entries,
            buf: Vec::new(),
            at: 0,
        }
    }

    fn next<V: Count>(&mut self) -> io::Result<Option<(u128, V)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let size = 16 + V::SIZE;
        if self.at + size > self.buf.len() {
            let per_block = (READ_BLOCK / size).max(1) as u64;
            let n = (self.left.min(per_block) as usize) * size;
            self.buf.resize(n, 0);
            read_at(self.file, &mut self.buf, self.pos)?;
            self.pos += n as u64;
            self.at = 0;
        }
        let b = &self.buf[self.at..self.at + size];
        let k = u128::from_le_bytes(b[..16].try_into().expect("16 bytes"));
        let v = V::get(&b[16..]);
        self.at += size;
        self.left -= 1;
        Ok(Some((k, v)))
    }
}

/// The text of decisions, by a position that stays valid: in memory up to
/// [`TEXT_CAP`] bytes, then written to a temporary file.
pub(crate) struct Decisions {
    memory: Vec<u8>,
    scratch: Scratch,
}

impl Decisions {
    pub(crate) fn new() -> Self {
        Decisions {
            memory: Vec::new(),
            scratch: Scratch::new(),
        }
    }

    /// Whether it should be written out.
    pub(crate) fn is_full(&self) -> bool {
        self.memory.len() >= TEXT_CAP && !self.scratch.failed
    }

    /// Keeps `text`; returns its position.
    pub(crate) fn keep(&mut self, text: &str) -> u64 {
        let at = self.scratch.len + self.memory.len() as u64;
        self.memory
            .extend_from_slice(&(text.len() as u64).to_le_bytes());
        self.memory.extend_from_slice(text.as_bytes());
        at
    }

    /// Writes what is in memory to the file (positions stay valid). Returns
    /// whether it did; on failure it stays in memory.
    pub(crate) fn flush(&mut self) -> bool {
        if self.memory.is_empty() {
            return true;
        }
        if self.scratch.failed {
            return false;
        }
        match self.scratch.append(&self.memory, "decisions") {
            Ok(_) => {
                self.memory.clear();
                if self.memory.capacity() > TEXT_CAP * 2 {
                    self.memory.shrink_to(TEXT_CAP);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// The text kept at `at`.
    pub(crate) fn text(&self, at: u64) -> io::Result<String> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidData, "bad decision position");
        let bytes = if at >= self.scratch.len {
            let i = (at - self.scratch.len) as usize;
            let len_bytes = self.memory.get(i..i + 8).ok_or_else(invalid)?;
            let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
            self.memory
                .get(i + 8..i + 8 + len)
                .ok_or_else(invalid)?
                .to_vec()
        } else {
            let file = self.scratch.file.as_ref().ok_or_else(invalid)?;
            let mut len = [0u8; 8];
            read_at(file, &mut len, at)?;
            let mut bytes = vec![0u8; u64::from_le_bytes(len) as usize];
            read_at(file, &mut bytes, at + 8)?;
            bytes
        };
        String::from_utf8(bytes).map_err(|_| invalid())
    }
}

/// Findings of one decision group: sent, not sent, the first row that had
/// it (the plan lists ties in first-seen order) and where its text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupCount {
    pub(crate) sent: u64,
    pub(crate) unchanged: u64,
    pub(crate) first: u64,
    pub(crate) text: u64,
}

impl Count for GroupCount {
    const SIZE: usize = 32;
    fn put(&self, out: &mut Vec<u8>) {
        for v in [self.sent, self.unchanged, self.first, self.text] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn get(b: &[u8]) -> Self {
        let n = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        GroupCount {
            sent: n(0),
            unchanged: n(1),
            first: n(2),
            text: n(3),
        }
    }
    fn absorb(&mut self, other: Self) {
        self.sent += other.sent;
        self.unchanged += other.unchanged;
        if other.first < self.first {
            self.first = other.first;
            self.text = other.text;
        }
    }
}

/// Decision groups: counts by fingerprint, and each group's decision text.
pub(crate) struct Groups {
    table: SpillTable<GroupCount>,
    decisions: Decisions,
    /// Rows counted (a group's `first` is the row count when it was first seen).
    rows: u64,
}

/// What [`Groups::finish`] finds.
pub(crate) struct Listed {
    /// Distinct groups.
    pub(crate) groups: u64,
    /// The largest `keep` groups, largest first, ties in first-seen order:
    /// (decision text, sent, unchanged).
    pub(crate) largest: Vec<(String, u64, u64)>,
}

impl Groups {
    pub(crate) fn new(cap: usize) -> Self {
        Groups {
            table: SpillTable::new(cap, "decision groups"),
            decisions: Decisions::new(),
            rows: 0,
        }
    }

    /// Counts a finding of the group `fingerprint`; `text` gives its
    /// decision's text, asked for only when the group is not in memory.
    pub(crate) fn count(&mut self, fingerprint: u64, sent: bool, text: impl FnOnce() -> String) {
        let (s, u) = if sent { (1, 0) } else { (0, 1) };
        self.rows += 1;
        let key = u128::from(fingerprint);
        if let Some(g) = self.table.get_mut(key) {
            g.sent += s;
            g.unchanged += u;
            return;
        }
        // Positions stay valid when the text is written out: the two
        // spill on their own.
        if self.decisions.is_full() {
            self.decisions.flush();
        }
        let at = self.decisions.keep(&text());
        self.table.add(
            key,
            GroupCount {
                sent: s,
                unchanged: u,
                first: self.rows,
                text: at,
            },
        );
    }

    /// Every group's counts merged; the `keep` largest with their text.
    pub(crate) fn finish(self, keep: usize) -> io::Result<Listed> {
        // The worst candidate on top: fewest findings, then the latest seen.
        let mut top: BinaryHeap<(std::cmp::Reverse<u64>, u64, u64, u64, u64)> =
            BinaryHeap::with_capacity(keep + 1);
        let mut groups = 0u64;
        let decisions = self.decisions;
        self.table.drain(|_, g| {
            groups += 1;
            if keep == 0 {
                return;
            }
            top.push((
                std::cmp::Reverse(g.sent + g.unchanged),
                g.first,
                g.text,
                g.sent,
                g.unchanged,
            ));
            if top.len() > keep {
                top.pop();
            }
        })?;
        let largest = top
            .into_sorted_vec()
            .into_iter()
            .map(|(_, _, at, sent, unchanged)| Ok((decisions.text(at)?, sent, unchanged)))
            .collect::<io::Result<_>>()?;
        Ok(Listed { groups, largest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn a_tiny_table_counts_what_an_unbounded_one_does() {
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let cap = rng.random_range(1..8);
            let keys = rng.random_range(1..200u128);
            let mut table = SpillTable::<u64>::new(cap, "test counts");
            let mut want: HashMap<u128, u64> = HashMap::new();
            for _ in 0..rng.random_range(0..3000) {
                // Keys spread over the whole range, so that order by key
                // is not order of arrival.
                let k = rng
                    .random_range(0..keys)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                let n = rng.random_range(1..5u64);
                table.add(k, n);
                *want.entry(k).or_default() += n;
            }
            let spilled = table.runs() > 0;
            let mut got: Vec<(u128, u64)> = Vec::new();
            table.drain(|k, v| got.push((k, v))).unwrap();
            if spilled {
                assert!(
                    got.windows(2).all(|w| w[0].0 < w[1].0),
                    "seed {seed}: merged in key order, each key once"
                );
            }
            got.sort_unstable();
            let mut want: Vec<(u128, u64)> = want.into_iter().collect();
            want.sort_unstable();
            assert_eq!(got, want, "seed {seed}, cap {cap}");
        }
    }

    #[test]
    fn a_key_split_over_every_run_is_summed() {
        // Cap 2: every third key spills, and key 7 is in every run.
        let mut table = SpillTable::<u64>::new(2, "test counts");
        for i in 0..100u128 {
            table.add(7, 1);
            table.add(1000 + i, 2);
        }
        assert!(table.runs() >= 50, "{} runs", table.runs());
        let mut got = HashMap::new();
        table
            .drain(|k, v| assert!(got.insert(k, v).is_none()))
            .unwrap();
        assert_eq!(got.len(), 101);
        assert_eq!(got[&7], 100);
        assert!((0..100).all(|i| got[&(1000 + i)] == 2));
    }

    #[test]
    fn groups_list_the_largest_with_their_first_text_whatever_the_cap() {
        // Random groups counted with caps from 1 to unbounded: the same
        // totals and the same largest groups (ties in first-seen order).
        for seed in 0..10u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let events: Vec<(u64, bool)> = (0..rng.random_range(1..2000))
                .map(|_| {
                    // Skewed, so that some groups are large and ties are many.
                    let spread = rng.random_range(1..300u64);
                    let g = rng.random_range(0..spread);
                    (g, rng.random_bool(0.8))
                })
                .collect();
            let listed = |cap: usize| {
                let mut groups = Groups::new(cap);
                for &(g, sent) in &events {
                    groups.count(g.wrapping_mul(0x2545_f491_4f6c_dd1d), sent, || {
                        format!("decision {g}")
                    });
                }
                groups.finish(7).unwrap()
            };
            // What it should be, from scratch.
            let mut by: HashMap<u64, (u64, u64, usize)> = HashMap::new();
            for (i, &(g, sent)) in events.iter().enumerate() {
                let e = by.entry(g).or_insert((0, 0, i));
                if sent { e.0 += 1 } else { e.1 += 1 }
            }
            let mut want: Vec<(u64, (u64, u64, usize))> = by.into_iter().collect();
            want.sort_by_key(|(_, (s, u, first))| (std::cmp::Reverse(s + u), *first));
            let want: Vec<(String, u64, u64)> = want
                .iter()
                .take(7)
                .map(|(g, (s, u, _))| (format!("decision {g}"), *s, *u))
                .collect();
            for cap in [1, 2, 3, 16, usize::MAX] {
                let got = listed(cap);
                assert_eq!(got.largest, want, "seed {seed}, cap {cap}");
                assert_eq!(
                    got.groups,
                    events
                        .iter()
                        .map(|e| e.0)
                        .collect::<std::collections::HashSet<_>>()
                        .len() as u64
                );
            }
        }
    }

    #[test]
    fn decision_text_is_found_in_memory_and_on_disk() {
        let mut d = Decisions::new();
        let a = d.keep("{\"a\":1}");
        assert!(d.flush());
        let b = d.keep("{\"b\":\"é\"}");
        assert_eq!(d.text(a).unwrap(), "{\"a\":1}");
        assert_eq!(d.text(b).unwrap(), "{\"b\":\"é\"}");
        assert!(d.flush());
        assert_eq!(d.text(b).unwrap(), "{\"b\":\"é\"}");
    }
}
