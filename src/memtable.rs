//! The skiplist memtable and its size accounting.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::error::Result;
use crate::key::{encode_internal_key, SeqNo, ValueKind, TRAILER_LEN};

/// Bytes charged per entry on top of key and value: skiplist node (with the inline key head),
/// tower, allocation.
const ENTRY_OVERHEAD_BYTES: usize = 88;

/// One memtable entry: the encoded internal key and the value in a single allocation,
/// `[user key][trailer u64 LE][value]`, plus a copy of the user key's first 16 bytes and of
/// the trailer inline.
///
/// # Invariants
/// `Ord` is the internal-key order of the key part (user key ascending, trailer descending);
/// the value never takes part in comparisons. One allocation per entry instead of two keeps
/// inserts cheaper and the memtable smaller. `head` is the user key's first 16 bytes,
/// zero-padded, as two big-endian words, so comparing heads orders keys the way comparing
/// bytes does whenever the heads differ: a skiplist search then decides most steps without
/// following the pointer to the entry's bytes (a cache miss per step otherwise).
#[derive(Debug, Clone)]
pub struct MemKey {
    head: [u64; 2],
    trailer: u64,
    data: Box<[u8]>,
    ikey_len: u32,
}

/// Bytes of the user key held inline in [`MemKey`].
const HEAD_LEN: usize = 16;

fn key_head(user_key: &[u8]) -> [u64; 2] {
    let mut padded = [0u8; HEAD_LEN];
    let n = user_key.len().min(HEAD_LEN);
    padded[..n].copy_from_slice(&user_key[..n]);
    let (hi, lo) = padded.split_at(8);
    let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
    [word(hi), word(lo)]
}

impl MemKey {
    /// An entry for `user_key` at `seqno` holding `value`.
    pub fn new(user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) -> Self {
        let mut data = Vec::with_capacity(user_key.len() + TRAILER_LEN + value.len());
        encode_internal_key(&mut data, user_key, seqno, kind);
        data.extend_from_slice(value);
        Self::from_parts(data.into_boxed_slice(), user_key.len() + TRAILER_LEN)
    }

    /// A seek key (no value) from an encoded internal key.
    pub fn from_internal_key(ikey: &[u8]) -> Self {
        Self::from_parts(ikey.into(), ikey.len())
    }

    /// `data` starts with an encoded internal key of `ikey_len` bytes (at least the trailer;
    /// shorter input, which callers never pass, gets an empty user key and a zero trailer).
    fn from_parts(data: Box<[u8]>, ikey_len: usize) -> Self {
        let ikey_len = ikey_len.clamp(TRAILER_LEN.min(data.len()), data.len());
        let user_len = ikey_len.saturating_sub(TRAILER_LEN);
        let trailer_bytes = data.get(user_len..ikey_len).unwrap_or_default();
        let trailer = u64::from_le_bytes(trailer_bytes.try_into().unwrap_or_default());
        MemKey {
            head: key_head(&data[..user_len]),
            trailer,
            ikey_len: ikey_len as u32,
            data,
        }
    }

    /// The encoded internal key.
    pub fn internal_key(&self) -> &[u8] {
        &self.data[..self.ikey_len as usize]
    }

    /// The user key.
    pub fn user_key(&self) -> &[u8] {
        &self.data[..(self.ikey_len as usize).saturating_sub(TRAILER_LEN)]
    }

    /// The value (empty for a tombstone).
    pub fn value(&self) -> &[u8] {
        &self.data[self.ikey_len as usize..]
    }

    /// Put or delete.
    pub fn kind(&self) -> ValueKind {
        ValueKind::from_u8((self.trailer & 0xff) as u8).unwrap_or(ValueKind::Delete)
    }

    /// True when the user key is wholly inside `head`.
    fn short(&self) -> bool {
        self.ikey_len as usize <= HEAD_LEN + TRAILER_LEN
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_head = self.head.cmp(&other.head);
        if by_head.is_ne() {
            return by_head;
        }
        // Equal heads and equal lengths of at most 16 bytes mean equal user keys.
        let same_short = self.short() && self.ikey_len == other.ikey_len;
        let by_user_key = if same_short {
            std::cmp::Ordering::Equal
        } else {
            self.user_key().cmp(other.user_key())
        };
        by_user_key.then_with(|| other.trailer.cmp(&self.trailer))
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for MemKey {}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorted in-memory entries keyed by internal key.
///
/// # Concurrency
/// Inserts come from one thread at a time (the group-commit leader); reads and iterators run
/// concurrently with them without locks. Readers filter by sequence number, so an entry being
/// inserted is invisible until the leader publishes its sequence number.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<MemKey, ()>,
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
            .insert(MemKey::new(user_key, seqno, kind, value), ());
        self.size_bytes.fetch_add(charge, Ordering::Relaxed);
        self.seqno_max.fetch_max(seqno, Ordering::Relaxed);
    }

    /// Newest version of `user_key` with sequence number at most `snapshot`.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(ValueKind, Vec<u8>)> {
        let seek = MemKey::new(user_key, snapshot, ValueKind::Put, &[]);
        let entry = self.map.lower_bound(Bound::Included(&seek))?;
        let found = entry.key();
        (found.user_key() == user_key).then(|| (found.kind(), found.value().to_vec()))
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

    /// Every entry in internal-key order: encoded internal key and value (for flush).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        self.map
            .iter()
            .try_for_each(|e| f(e.key().internal_key(), e.key().value()))
    }
}

/// The most entries an iterator copies out of the skiplist at a time. It starts with
/// [`REFILL_FIRST`] and doubles, so a seek that reads one entry copies few.
const REFILL: usize = 64;
/// Entries copied by an iterator's first refill.
const REFILL_FIRST: usize = 2;

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
    lower: Bound<MemKey>,
    upper: Bound<MemKey>,
    front: Cursor,
    back: Cursor,
}

struct Cursor {
    pos: Option<MemKey>,
    buf: VecDeque<Entry>,
    exhausted: bool,
    /// How many entries the next refill copies.
    step: usize,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            pos: None,
            buf: VecDeque::new(),
            exhausted: false,
            step: REFILL_FIRST,
        }
    }
}

impl MemtableIter {
    /// Iterates `mem` between `lower` and `upper`.
    pub fn new(mem: Arc<Memtable>, lower: Bound<MemKey>, upper: Bound<MemKey>) -> Self {
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
        let batch = &mut self.front.buf;
        let mut last = None;
        let step = self.front.step;
        self.front.step = (step * 2).min(REFILL);
        for e in range.take(step) {
            batch.push_back((e.key().internal_key().to_vec(), e.key().value().to_vec()));
            last = Some(e);
        }
        self.front.exhausted = batch.len() < step;
        self.front.pos = last.map(|e| e.key().clone());
    }

    fn refill_back(&mut self) {
        let upper = match self.back.pos.take() {
            Some(k) => Bound::Excluded(k),
            None => self.upper.clone(),
        };
        let range = self.mem.map.range((self.lower.clone(), upper));
        let batch = &mut self.back.buf;
        let mut last = None;
        let step = self.back.step;
        self.back.step = (step * 2).min(REFILL);
        for e in range.rev().take(step) {
            batch.push_back((e.key().internal_key().to_vec(), e.key().value().to_vec()));
            last = Some(e);
        }
        self.back.exhausted = batch.len() < step;
        self.back.pos = last.map(|e| e.key().clone());
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
        let lo = Bound::Included(MemKey::new(
            b"0010",
            crate::key::SEQNO_MAX,
            ValueKind::Put,
            b"",
        ));
        let hi = Bound::Excluded(MemKey::new(
            b"0250",
            crate::key::SEQNO_MAX,
            ValueKind::Put,
            b"",
        ));
        let fwd = user_keys(MemtableIter::new(m.clone(), lo.clone(), hi.clone()));
        let mut back = user_keys(MemtableIter::new(m, lo, hi).rev());
        back.reverse();
        assert_eq!(fwd.len(), 240);
        assert_eq!(fwd.first().map(|e| e.0.clone()), Some(b"0010".to_vec()));
        assert_eq!(fwd, back);
    }

    proptest::proptest! {
        #[test]
        fn memkey_order_is_the_internal_key_order(
            a in proptest::collection::vec(0u8..3, 0..20),
            b in proptest::collection::vec(0u8..3, 0..20),
            sa in 0u64..4,
            sb in 0u64..4,
        ) {
            let (ka, kb) = (
                MemKey::new(&a, sa, ValueKind::Put, b"x"),
                MemKey::new(&b, sb, ValueKind::Delete, b""),
            );
            let want = crate::key::compare_internal(ka.internal_key(), kb.internal_key());
            proptest::prop_assert_eq!(ka.cmp(&kb), want);
            proptest::prop_assert_eq!(ka == kb, want.is_eq());
        }
    }
}
