//! The skiplist memtable and its size accounting.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::error::Result;
use crate::key::{self, trailer, SeqNo, ValueKind, TRAILER_LEN};

/// Bytes charged per entry on top of key and value: the skiplist node (a 48-byte `MemKey`,
/// the height word, on average two tower pointers) and allocation headers and rounding. For
/// 16-byte keys and 100-byte values that is 196 bytes against 192 allocated.
const ENTRY_OVERHEAD_BYTES: usize = 80;

/// One memtable entry: the user key's first 16 bytes and the trailer inline, and one
/// allocation holding the value, preceded by the whole user key when it is longer than 16
/// bytes.
///
/// # Invariants
/// `Ord` is the internal-key order (user key ascending, trailer descending); the value never
/// takes part in comparisons. `head` is the user key's first 16 bytes, zero-padded, so
/// comparing heads as two big-endian words orders keys the way comparing bytes does whenever
/// the heads differ: a skiplist search then decides most steps without following the pointer
/// to the entry's bytes (a cache miss per step otherwise). A key of at most 16 bytes lives
/// only in `head`, which saves copying it and 16 or more bytes per entry.
#[derive(Debug, Clone)]
pub struct MemKey {
    head: [u8; HEAD_LEN],
    trailer: u64,
    user_len: u32,
    data: Box<[u8]>,
}

/// Bytes of the user key held inline in [`MemKey`].
const HEAD_LEN: usize = 16;

impl MemKey {
    /// An entry for `user_key` at `seqno` holding `value`.
    pub fn new(user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) -> Self {
        Self::with_trailer(user_key, trailer(seqno, kind), value)
    }

    /// A seek key (no value) from an encoded internal key (one too short to hold a trailer,
    /// which callers never pass, counts as a user key with a zero trailer).
    pub fn from_internal_key(ikey: &[u8]) -> Self {
        Self::with_trailer(key::user_key(ikey), key::trailer_of(ikey), &[])
    }

    fn with_trailer(user_key: &[u8], trailer: u64, value: &[u8]) -> Self {
        let mut head = [0u8; HEAD_LEN];
        let n = user_key.len().min(HEAD_LEN);
        head[..n].copy_from_slice(&user_key[..n]);
        let data = if user_key.len() <= HEAD_LEN {
            value.into()
        } else {
            [user_key, value].concat().into_boxed_slice()
        };
        MemKey {
            head,
            trailer,
            user_len: user_key.len() as u32,
            data,
        }
    }

    /// Appends the encoded internal key to `out`.
    pub fn internal_key_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.user_key());
        out.extend_from_slice(&self.trailer.to_le_bytes());
    }

    /// The encoded internal key.
    pub fn to_internal_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user_len as usize + TRAILER_LEN);
        self.internal_key_to(&mut out);
        out
    }

    /// The user key.
    pub fn user_key(&self) -> &[u8] {
        match self.short() {
            true => &self.head[..self.user_len as usize],
            false => &self.data[..self.user_len as usize],
        }
    }

    /// The value (empty for a tombstone).
    pub fn value(&self) -> &[u8] {
        match self.short() {
            true => &self.data,
            false => &self.data[self.user_len as usize..],
        }
    }

    /// Put or delete.
    pub fn kind(&self) -> ValueKind {
        ValueKind::from_u8((self.trailer & 0xff) as u8).unwrap_or(ValueKind::Delete)
    }

    /// True when the user key is wholly inside `head`.
    fn short(&self) -> bool {
        self.user_len as usize <= HEAD_LEN
    }

    fn head_words(&self) -> (u64, u64) {
        let (hi, lo) = self.head.split_at(8);
        let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        (word(hi), word(lo))
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_head = self.head_words().cmp(&other.head_words());
        if by_head.is_ne() {
            return by_head;
        }
        // Equal heads and equal lengths of at most 16 bytes mean equal user keys.
        let same_short = self.short() && self.user_len == other.user_len;
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
        let mut ikey = Vec::new();
        self.map.iter().try_for_each(|e| {
            ikey.clear();
            e.key().internal_key_to(&mut ikey);
            f(&ikey, e.key().value())
        })
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
            batch.push_back((e.key().to_internal_key(), e.key().value().to_vec()));
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
            batch.push_back((e.key().to_internal_key(), e.key().value().to_vec()));
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
            a in proptest::collection::vec(0u8..3, 0..40),
            b in proptest::collection::vec(0u8..3, 0..40),
            sa in 0u64..4,
            sb in 0u64..4,
        ) {
            let (ka, kb) = (
                MemKey::new(&a, sa, ValueKind::Put, b"x"),
                MemKey::new(&b, sb, ValueKind::Delete, b""),
            );
            let want = crate::key::compare_internal(&ka.to_internal_key(), &kb.to_internal_key());
            proptest::prop_assert_eq!(ka.cmp(&kb), want);
            proptest::prop_assert_eq!(ka == kb, want.is_eq());
            proptest::prop_assert_eq!((ka.user_key(), ka.value()), (&a[..], &b"x"[..]));
            let back = MemKey::from_internal_key(&kb.to_internal_key());
            proptest::prop_assert_eq!((back.user_key(), back.kind()), (&b[..], ValueKind::Delete));
            proptest::prop_assert_eq!(back.cmp(&kb), std::cmp::Ordering::Equal);
        }
    }
}
