//! The skiplist memtable and its size accounting.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::error::Result;
use crate::key::{InternalKey, SeqNo, ValueKind};

/// Bytes charged per entry on top of key and value: skiplist node, pointers, boxes.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Sorted in-memory entries keyed by internal key.
///
/// # Concurrency
/// Inserts come from one thread at a time (the group-commit leader); reads and iterators run
/// concurrently with them without locks. Readers filter by sequence number, so an entry being
/// inserted is invisible until the leader publishes its sequence number.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<InternalKey, Box<[u8]>>,
    size_bytes: AtomicUsize,
    seqno_max: AtomicU64,
    first_log_number: u64,
}

impl Memtable {
    /// An empty memtable whose entries are in log files numbered `first_log_number` and later.
    pub fn new(first_log_number: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            size_bytes: AtomicUsize::new(0),
            seqno_max: AtomicU64::new(0),
            first_log_number,
        }
    }

    /// Adds one entry.
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let charge = user_key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.map
            .insert(InternalKey::new(user_key, seqno, kind), value.into());
        self.size_bytes.fetch_add(charge, Ordering::Relaxed);
        self.seqno_max.fetch_max(seqno, Ordering::Relaxed);
    }

    /// Newest version of `user_key` with sequence number at most `snapshot`.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(ValueKind, Vec<u8>)> {
        let seek = InternalKey::new(user_key, snapshot, ValueKind::Put);
        let entry = self.map.lower_bound(Bound::Included(&seek))?;
        (*entry.key().user_key == *user_key).then(|| (entry.key().kind(), entry.value().to_vec()))
    }

    /// Approximate memory charged to this memtable.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Largest sequence number inserted (0 when empty).
    pub fn seqno_max(&self) -> SeqNo {
        self.seqno_max.load(Ordering::Relaxed)
    }

    /// The oldest log file holding entries of this memtable.
    pub fn first_log_number(&self) -> u64 {
        self.first_log_number
    }

    /// Every entry in internal-key order, encoded (for flush).
    pub fn for_each(&self, mut f: impl FnMut(&InternalKey, &[u8]) -> Result<()>) -> Result<()> {
        self.map.iter().try_for_each(|e| f(e.key(), e.value()))
    }
}

/// How many entries an iterator copies out of the skiplist at a time.
const REFILL: usize = 64;

type Entry = (Vec<u8>, Vec<u8>);

/// A double-ended iterator over a memtable between two internal-key bounds, yielding encoded
/// internal keys and values.
///
/// Owns an `Arc` of the memtable and re-seeks after every [`REFILL`] entries, so it never
/// borrows the skiplist across calls.
///
/// # Invariants
/// The front and the back walk independently over the whole bounded range; they do not stop
/// when they meet (the merging iterator above handles that).
pub struct MemtableIter {
    mem: Arc<Memtable>,
    lower: Bound<InternalKey>,
    upper: Bound<InternalKey>,
    front: Cursor,
    back: Cursor,
}

#[derive(Default)]
struct Cursor {
    pos: Option<InternalKey>,
    buf: VecDeque<Entry>,
    exhausted: bool,
}

impl MemtableIter {
    /// Iterates `mem` between `lower` and `upper`.
    pub fn new(mem: Arc<Memtable>, lower: Bound<InternalKey>, upper: Bound<InternalKey>) -> Self {
        let (front, back) = (Cursor::default(), Cursor::default());
        MemtableIter {
            mem,
            lower,
            upper,
            front,
            back,
        }
    }

    fn refill_front(&mut self) {
        let lower = match self.front.pos.take() {
            Some(k) => Bound::Excluded(k),
            None => self.lower.clone(),
        };
        let range = self.mem.map.range((lower, self.upper.clone()));
        let batch: Vec<_> = range
            .take(REFILL)
            .map(|e| (e.key().clone(), e.value().to_vec()))
            .collect();
        self.front.exhausted = batch.len() < REFILL;
        self.front.pos = batch.last().map(|(k, _)| k.clone());
        self.front
            .buf
            .extend(batch.into_iter().map(|(k, v)| (k.encode(), v)));
    }

    fn refill_back(&mut self) {
        let upper = match self.back.pos.take() {
            Some(k) => Bound::Excluded(k),
            None => self.upper.clone(),
        };
        let range = self.mem.map.range((self.lower.clone(), upper));
        let batch: Vec<_> = range
            .rev()
            .take(REFILL)
            .map(|e| (e.key().clone(), e.value().to_vec()))
            .collect();
        self.back.exhausted = batch.len() < REFILL;
        self.back.pos = batch.last().map(|(k, _)| k.clone());
        self.back
            .buf
            .extend(batch.into_iter().map(|(k, v)| (k.encode(), v)));
    }
}

impl Iterator for MemtableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.buf.is_empty() && !self.front.exhausted {
            self.refill_front();
        }
        self.front.buf.pop_front().map(Ok)
    }
}

impl DoubleEndedIterator for MemtableIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.buf.is_empty() && !self.back.exhausted {
            self.refill_back();
        }
        self.back.buf.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::parse_internal_key;

    fn user_keys(it: impl Iterator<Item = Result<Entry>>) -> Vec<(Vec<u8>, SeqNo)> {
        it.map(|e| e.map(|(k, _)| parse_internal_key(&k).map(|p| (p.user_key.to_vec(), p.seqno))))
            .filter_map(|r| r.ok().flatten())
            .collect()
    }

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_snapshot() {
        let m = Memtable::new(1);
        m.insert(b"a", 1, ValueKind::Put, b"one");
        m.insert(b"a", 3, ValueKind::Delete, b"");
        m.insert(b"b", 2, ValueKind::Put, b"two");
        assert_eq!(m.get(b"a", 2), Some((ValueKind::Put, b"one".to_vec())));
        assert_eq!(m.get(b"a", 3).map(|e| e.0), Some(ValueKind::Delete));
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"c", 9), None);
        assert_eq!(m.seqno_max(), 3);
    }

    #[test]
    fn iterators_walk_both_ways_across_refills() {
        let m = Arc::new(Memtable::new(1));
        for i in 0..300u64 {
            m.insert(format!("{i:04}").as_bytes(), i + 1, ValueKind::Put, b"v");
        }
        let lo = Bound::Included(InternalKey::new(
            b"0010",
            crate::key::SEQNO_MAX,
            ValueKind::Put,
        ));
        let hi = Bound::Excluded(InternalKey::new(
            b"0250",
            crate::key::SEQNO_MAX,
            ValueKind::Put,
        ));
        let fwd = user_keys(MemtableIter::new(m.clone(), lo.clone(), hi.clone()));
        let mut back = user_keys(MemtableIter::new(m, lo, hi).rev());
        back.reverse();
        assert_eq!(fwd.len(), 240);
        assert_eq!(fwd.first().map(|e| e.0.clone()), Some(b"0010".to_vec()));
        assert_eq!(fwd, back);
    }
}
