//! The skiplist memtable and its size accounting.

use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::ops::Bound;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::error::{Error, Result};
use crate::key::{self, trailer, SeqNo, ValueKind, TRAILER_LEN};
use crate::options::{Compression, KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// Bytes charged for an entry's skiplist node: a 40-byte `MemKey`, the height word and a
/// tower of one pointer per level (two on average), in the allocator's chunk: 64 bytes for
/// a tower of one, 80 for two or three, 96 for four or five, more above; 75 on average
/// (measured: 300,000 inserts grow the anonymous resident set by the charge within half a
/// byte an entry, values compressed or not).
const NODE_BYTES: usize = 75;

/// What the allocator takes for a `n`-byte allocation: glibc's chunk (the size and an 8-byte
/// header rounded up to 16, at least 32); nothing for 0 bytes. Charged for a value too large
/// for the arena's chunks, which gets an allocation of its own.
fn heap_bytes(n: usize) -> usize {
    match n {
        0 => 0,
        n => (n + 8).next_multiple_of(16).max(32),
    }
}

/// The arena's first chunk; each next one is twice as large, up to [`ARENA_CHUNK_MAX`], so a
/// small memtable reserves little and a large one few chunks.
const ARENA_CHUNK_MIN: usize = 4 << 10;
/// The arena's largest chunk. Data longer than a quarter of the current chunk gets an
/// allocation of its own instead, so the tail a chunk leaves unused stays small.
const ARENA_CHUNK_MAX: usize = 1 << 20;

/// The entries' data (long user keys and values, as stored), copied one after another into
/// large chunks and freed with the memtable, as RocksDB's memtable arena does. Against one
/// allocation per entry: no allocator header or rounding (12 bytes an entry less for a
/// db_bench value stored in 52 bytes), one `malloc` less per insert, and a flushed memtable
/// frees its data in a few dozen calls instead of one per entry, which also leaves glibc far
/// fewer small chunks to consolidate on a writer's next large allocation.
///
/// # Invariants
/// Every chunk is a leaked `Box<[MaybeUninit<u8>]>` (pointer and length in `chunks`), freed
/// only in `Drop`. Bytes are written once, under the lock, into a range no earlier call
/// handed out, and only read afterwards, through the `MemKey` that `copy_in`'s caller made;
/// no reference to a whole chunk is ever made.
#[derive(Debug, Default)]
struct Arena {
    state: parking_lot::Mutex<ArenaState>,
}

#[derive(Debug, Default)]
struct ArenaState {
    /// Every chunk, the current one (the last of the ordinary ones) included.
    chunks: Vec<NonNull<[MaybeUninit<u8>]>>,
    /// The current chunk: its start and its length (twice the one before, from
    /// [`ARENA_CHUNK_MIN`] up to [`ARENA_CHUNK_MAX`]), and the bytes handed out of it.
    current: Option<(NonNull<u8>, usize)>,
    used: usize,
}

// SAFETY: the chunks are heap allocations the arena owns (as a `Vec<Box<[u8]>>` would, which
// is `Send`); the pointers are only dereferenced as the type's invariants say.
unsafe impl Send for ArenaState {}

impl Arena {
    /// Copies `parts` one after another into the arena and returns where they start, and
    /// the bytes to charge for them: their length, or the allocator's chunk when they got an
    /// allocation of their own. Nothing for empty parts.
    fn copy_in(&self, parts: [&[u8]; 2]) -> (NonNull<u8>, usize) {
        let len = parts[0].len() + parts[1].len();
        if len == 0 {
            return (NonNull::dangling(), 0);
        }
        let mut st = self.state.lock();
        let used = st.used;
        let (start, charge) = match st.current {
            Some((base, cap)) if len <= cap - used => {
                st.used += len;
                // SAFETY: `used + len <= cap`, so the range lies inside the current chunk.
                (unsafe { base.add(used) }, len)
            }
            current => {
                let next =
                    current.map_or(ARENA_CHUNK_MIN, |(_, cap)| (cap * 2).min(ARENA_CHUNK_MAX));
                if len > next / 4 {
                    // Its own allocation, charged as the allocator's chunk; the current chunk
                    // stays current.
                    (st.new_chunk(len), heap_bytes(len))
                } else {
                    // The rest of the current chunk is abandoned (less than `len` bytes).
                    let base = st.new_chunk(next);
                    st.current = Some((base, next));
                    st.used = len;
                    (base, len)
                }
            }
        };
        let mut at = start.as_ptr();
        for part in parts {
            // SAFETY: `[start, start + len)` was reserved above, inside one chunk, and
            // never handed out before; the parts are the caller's own slices, so they do not
            // overlap it.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                at = at.add(part.len());
            }
        }
        (start, charge)
    }
}

impl ArenaState {
    fn new_chunk(&mut self, len: usize) -> NonNull<u8> {
        let chunk = NonNull::from(Box::leak(Box::<[u8]>::new_uninit_slice(len)));
        self.chunks.push(chunk);
        chunk.cast::<u8>()
    }
}

impl Drop for ArenaState {
    fn drop(&mut self) {
        for chunk in self.chunks.drain(..) {
            // SAFETY: each chunk is a `Box<[MaybeUninit<u8>]>` leaked by `new_chunk` and
            // freed only here, once. The memtable drops its skiplist (every `MemKey` pointing
            // here) before its arena.
            drop(unsafe { Box::from_raw(chunk.as_ptr()) });
        }
    }
}

/// Values shorter than this are stored as they are (snappy saves little on them).
const COMPRESS_VALUES_FROM: usize = 64;

thread_local! {
    /// Per thread: the snappy encoder and output buffer that compress memtable values.
    static ENCODER: std::cell::RefCell<(snap::raw::Encoder, Vec<u8>)> =
        std::cell::RefCell::new((snap::raw::Encoder::new(), Vec::new()));
}

/// One memtable entry: the user key's first 16 bytes and the trailer inline, and the entry's
/// data: the value, preceded by the whole user key when it is longer than 16 bytes. The
/// value is stored snappy-compressed when the memtable compresses values and that saves at
/// least 1/8 of it ([`COMPRESSED_FLAG`]). The data of an entry in a memtable lies in the
/// memtable's [`Arena`] ([`IN_ARENA_FLAG`]); any other entry (a seek key, a clone) owns an
/// allocation of its own.
///
/// # Invariants
/// `Ord` is the internal-key order (user key ascending, trailer descending); the value never
/// takes part in comparisons. `head` is the user key's first 16 bytes, zero-padded, so
/// comparing heads as two big-endian words orders keys the way comparing bytes does whenever
/// the heads differ: a skiplist search then decides most steps without following the pointer
/// to the entry's bytes (a cache miss per step otherwise). A key of at most 16 bytes lives
/// only in `head`, which saves copying it and 16 or more bytes per entry.
pub struct MemKey {
    head: [u8; HEAD_LEN],
    trailer: u64,
    /// The first byte of the entry's data, [`MemKey::data_len`] bytes: in the memtable's
    /// arena, or a boxed slice leaked by [`MemKey::from_parts`] and freed by `Drop`. A thin
    /// pointer, its length kept in `data_len_flags`, keeps the key at 40 bytes (a
    /// `Box<[u8]>` made it 48), and so the skiplist node of a tower of one in a 64-byte chunk
    /// instead of 80.
    data: NonNull<u8>,
    user_len: u32,
    /// The data's length, with [`COMPRESSED_FLAG`] and [`IN_ARENA_FLAG`].
    data_len_flags: u32,
}

/// In `MemKey::data_len_flags`: the value is stored snappy-compressed. Lengths stay far
/// below the flags (a key of at most 64 KiB and a value of at most 256 MiB).
const COMPRESSED_FLAG: u32 = 1 << 31;
/// In `MemKey::data_len_flags`: the data lies in a memtable's arena, which frees it; the
/// entry does not own it.
const IN_ARENA_FLAG: u32 = 1 << 30;
const FLAGS: u32 = COMPRESSED_FLAG | IN_ARENA_FLAG;
const _: () = assert!(KEY_SIZE_MAX + VALUE_SIZE_MAX < IN_ARENA_FLAG as usize);

// SAFETY: the bytes `data` points to are never written after the entry is made (only read
// through `&self`). An entry owns them, as the `Box<[u8]>` it was made from did (nothing else
// holds the pointer; freed in `Drop`, which has `&mut self`), or they lie in the arena of
// the memtable whose skiplist holds the entry, which is `Send` and `Sync` and frees them only
// after the skiplist and so the entry are gone. So a `MemKey` may be `Send` and `Sync`.
unsafe impl Send for MemKey {}
// SAFETY: as for `Send` above: shared access only ever reads the bytes.
unsafe impl Sync for MemKey {}

impl Drop for MemKey {
    fn drop(&mut self) {
        if self.data_len_flags & IN_ARENA_FLAG != 0 {
            return; // the arena frees it
        }
        let slice = std::ptr::slice_from_raw_parts_mut(self.data.as_ptr(), self.data_len());
        // SAFETY: an entry not in an arena holds the pointer and length of the boxed slice
        // that `from_parts` leaked (the length is never changed afterwards), and this is the
        // only place that frees it, once.
        drop(unsafe { Box::from_raw(slice) });
    }
}

impl Clone for MemKey {
    /// A copy that owns its data, wherever this entry's lies.
    fn clone(&self) -> Self {
        let mut k = MemKey::from_parts(self.head, self.trailer, self.user_len, self.data().into());
        k.data_len_flags |= self.data_len_flags & COMPRESSED_FLAG;
        k
    }
}

impl std::fmt::Debug for MemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemKey")
            .field("user_key", &self.user_key())
            .field("trailer", &self.trailer)
            .field("compressed", &self.is_compressed())
            .field("stored_value_len", &self.stored_value().len())
            .finish()
    }
}

/// Bytes of the user key held inline in [`MemKey`].
const HEAD_LEN: usize = 16;

/// A user key's first [`HEAD_LEN`] bytes, zero-padded: [`MemKey::head`].
fn head_of(user_key: &[u8]) -> [u8; HEAD_LEN] {
    let mut head = [0u8; HEAD_LEN];
    let n = user_key.len().min(HEAD_LEN);
    head[..n].copy_from_slice(&user_key[..n]);
    head
}

/// The part of an entry's data that holds its user key: the whole key when it is longer
/// than [`HEAD_LEN`], nothing when `head` holds it all.
fn spilled_key(user_key: &[u8]) -> &[u8] {
    if user_key.len() > HEAD_LEN {
        user_key
    } else {
        &[]
    }
}

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
        let data = [spilled_key(user_key), value].concat().into_boxed_slice();
        MemKey::from_parts(head_of(user_key), trailer, user_key.len() as u32, data)
    }

    /// Takes ownership of `data` (see the `data` field).
    fn from_parts(head: [u8; HEAD_LEN], trailer: u64, user_len: u32, data: Box<[u8]>) -> Self {
        let data_len_flags = data.len() as u32;
        MemKey {
            head,
            trailer,
            data: NonNull::from(Box::leak(data)).cast::<u8>(),
            user_len,
            data_len_flags,
        }
    }

    /// An entry whose data (`data_len` bytes, the long user key then the value as stored)
    /// `arena` holds at `data`. Only for an entry that goes into the skiplist of the memtable
    /// that owns `arena` (see the `Send` impl).
    fn in_arena(user_key: &[u8], trailer: u64, data: NonNull<u8>, data_len: usize) -> Self {
        MemKey {
            head: head_of(user_key),
            trailer,
            data,
            user_len: user_key.len() as u32,
            data_len_flags: data_len as u32 | IN_ARENA_FLAG,
        }
    }

    /// Bytes of data: the user key when longer than 16 bytes, then the value as stored.
    fn data_len(&self) -> usize {
        (self.data_len_flags & !FLAGS) as usize
    }

    fn data(&self) -> &[u8] {
        if self.data_len() == 0 {
            return &[];
        }
        // SAFETY: `data` points to `data_len()` bytes written before the entry was made and
        // never written again: the boxed slice `from_parts` leaked, freed only by `Drop`
        // (which needs `&mut self`), or a range of the arena of the memtable whose skiplist
        // holds this entry, freed only after the skiplist. Either outlives this borrow.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.data_len()) }
    }

    /// Asks the processor to bring the first cache line of the entry's data in (a hint: no
    /// effect on results, nothing on other targets).
    fn prefetch_data(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint and never faults, whatever the address; `data`
        // points into the live allocation anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.data.as_ptr().cast::<i8>());
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
            false => &self.data()[..self.user_len as usize],
        }
    }

    /// The value as stored: compressed when [`MemKey::is_compressed`].
    fn stored_value(&self) -> &[u8] {
        match self.short() {
            true => self.data(),
            false => &self.data()[self.user_len as usize..],
        }
    }

    /// Whether the value is stored snappy-compressed.
    pub fn is_compressed(&self) -> bool {
        self.data_len_flags & COMPRESSED_FLAG != 0
    }

    /// Writes the value (empty for a tombstone) into `out`, replacing its contents.
    pub fn value_to(&self, out: &mut Vec<u8>) -> Result<()> {
        if !self.is_compressed() {
            out.clear();
            out.extend_from_slice(self.stored_value());
            return Ok(());
        }
        // Compressed by `Memtable::insert` in this process: a failure here is a bug or memory
        // damage, reported rather than handed out as a wrong value.
        crate::coding::snappy_decompress(self.stored_value(), out, VALUE_SIZE_MAX, "value")
            .map_err(|detail| Error::corruption(std::path::Path::new("<memtable>"), 0, detail))
    }

    /// The value, copied out (decompressed if stored compressed).
    pub fn value(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.value_to(&mut out)?;
        Ok(out)
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
    /// Declared before `arena`, so dropped first: its entries point into the arena.
    map: SkipMap<MemKey, ()>,
    arena: Arena,
    size_bytes: AtomicUsize,
    /// User keys with at least one entry (see [`Memtable::distinct_keys`]).
    distinct_keys: AtomicUsize,
    seqno_max: AtomicU64,
    first_log_number: u64,
    compress_values: bool,
}

impl Memtable {
    /// An empty memtable whose entries are in log files numbered `first_log_number` and later.
    /// Values are stored as they are.
    pub fn new(first_log_number: u64) -> Self {
        Memtable::with_compression(first_log_number, Compression::None)
    }

    /// An empty memtable that stores values of 64 bytes or more compressed with
    /// `compression` when that saves at least 1/8 of them.
    pub fn with_compression(first_log_number: u64, compression: Compression) -> Self {
        Memtable {
            map: SkipMap::new(),
            arena: Arena::default(),
            size_bytes: AtomicUsize::new(0),
            distinct_keys: AtomicUsize::new(0),
            seqno_max: AtomicU64::new(0),
            first_log_number,
            compress_values: compression == Compression::Snappy,
        }
    }

    /// Adds one entry.
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let (entry, data_charge) = self.entry(user_key, trailer(seqno, kind), value);
        let charge = NODE_BYTES + data_charge;
        let inserted = self.map.insert(entry, ());
        // A key's versions lie newest first, and inserts come in sequence-number order: an
        // entry whose successor has its user key is not the key's first version here. The
        // successor was just compared by the insert's search, so it is in cache.
        let older = inserted.next();
        if older.is_none_or(|o| o.key().user_key() != inserted.key().user_key()) {
            self.distinct_keys.fetch_add(1, Ordering::Relaxed);
        }
        self.size_bytes.fetch_add(charge, Ordering::Relaxed);
        self.seqno_max.fetch_max(seqno, Ordering::Relaxed);
    }

    /// The entry for one operation, its data in the arena, with its value compressed when
    /// that pays; and the bytes its data is charged.
    fn entry(&self, user_key: &[u8], trailer: u64, value: &[u8]) -> (MemKey, usize) {
        if self.compress_values && value.len() >= COMPRESS_VALUES_FROM {
            let squeezed = ENCODER.with(|cell| {
                let (encoder, out) = &mut *cell.borrow_mut();
                let squeezed = crate::coding::snappy_if_smaller(encoder, value, out, 0)
                    .map(|n| self.arena_entry(user_key, trailer, &out[..n], COMPRESSED_FLAG));
                // Whether or not it paid: one huge value must not pin its size in the buffer.
                crate::coding::release_if_large(out);
                squeezed
            });
            if let Some(done) = squeezed {
                return done;
            }
        }
        self.arena_entry(user_key, trailer, value, 0)
    }

    /// An entry whose data (the spilled key, then `stored`) is copied into the arena, with
    /// `flags` added to its length; and the bytes charged for the data.
    fn arena_entry(
        &self,
        user_key: &[u8],
        trailer: u64,
        stored: &[u8],
        flags: u32,
    ) -> (MemKey, usize) {
        let spilled = spilled_key(user_key);
        let (at, charge) = self.arena.copy_in([spilled, stored]);
        let mut entry = MemKey::in_arena(user_key, trailer, at, spilled.len() + stored.len());
        entry.data_len_flags |= flags;
        (entry, charge)
    }

    /// Newest version of `user_key` with sequence number at most `snapshot`.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(ValueKind, Vec<u8>)>> {
        let seek = MemKey::new(user_key, snapshot, ValueKind::Put, &[]);
        let Some(entry) = self.map.lower_bound(Bound::Included(&seek)) else {
            return Ok(None);
        };
        let found = entry.key();
        if found.user_key() != user_key {
            return Ok(None);
        }
        Ok(Some((found.kind(), found.value()?)))
    }

    /// Approximate memory charged to this memtable.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Distinct user keys: what a flush sizes the segment's filter by. Exact when every
    /// key's versions are inserted in sequence-number order, as writes and recovery do;
    /// otherwise a little high, which only makes the filter larger.
    pub fn distinct_keys(&self) -> usize {
        self.distinct_keys.load(Ordering::Relaxed)
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
    ///
    /// One entry ahead of the one handed to `f`, its stored bytes are prefetched: after
    /// random inserts the walk visits entries in an order unrelated to where they lie in
    /// memory, and the miss on an entry's data then overlaps the miss on the next node
    /// instead of following it.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        let (mut ikey, mut value) = (Vec::new(), Vec::new());
        let mut entries = self.map.iter();
        let mut current = entries.next();
        while let Some(e) = current {
            let next = entries.next();
            if let Some(n) = &next {
                n.key().prefetch_data();
            }
            ikey.clear();
            e.key().internal_key_to(&mut ikey);
            e.key().value_to(&mut value)?;
            f(&ikey, &value)?;
            current = next;
        }
        Ok(())
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

    fn refill_front(&mut self) -> Result<()> {
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
            batch.push_back((e.key().to_internal_key(), e.key().value()?));
            last = Some(e);
        }
        self.front.exhausted = batch.len() < step;
        self.front.pos = last.map(|e| e.key().clone());
        Ok(())
    }

    fn refill_back(&mut self) -> Result<()> {
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
            batch.push_back((e.key().to_internal_key(), e.key().value()?));
            last = Some(e);
        }
        self.back.exhausted = batch.len() < step;
        self.back.pos = last.map(|e| e.key().clone());
        Ok(())
    }
}

impl Iterator for MemtableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.buf.is_empty() && !self.front.exhausted {
            if let Err(e) = self.refill_front() {
                self.front.exhausted = true;
                return Some(Err(e));
            }
        }
        self.front.buf.pop_front().map(Ok)
    }
}

impl DoubleEndedIterator for MemtableIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.buf.is_empty() && !self.back.exhausted {
            if let Err(e) = self.refill_back() {
                self.back.exhausted = true;
                return Some(Err(e));
            }
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
    fn the_arena_hands_out_disjoint_ranges_and_charges_what_it_reserves() {
        let arena = Arena::default();
        let sizes = (0..5000usize).map(|i| match i % 7 {
            0 => 0,
            1 => 1,
            2 => 1500,      // past a quarter of the first chunks
            3 => 300 << 10, // past a quarter of the largest chunk
            _ => i % 200,
        });
        let (mut handed, mut in_chunks, mut own, mut own_bytes) = (Vec::new(), 0, 0, 0);
        for (i, len) in sizes.enumerate() {
            let bytes: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            let (head, tail) = bytes.split_at(len / 3);
            let (at, charge) = arena.copy_in([head, tail]);
            if charge == len {
                in_chunks += len; // whatever its size, when it fits the current chunk's rest
            } else {
                assert_eq!(charge, heap_bytes(len), "entry {i}");
                assert!(
                    len > ARENA_CHUNK_MIN / 4,
                    "entry {i}: {len} bytes on their own"
                );
                own += 1;
                own_bytes += len;
            }
            handed.push((at, bytes));
        }
        // Every range still holds its bytes after all the later copies.
        for (i, (at, bytes)) in handed.iter().enumerate() {
            // SAFETY: `at` starts the `bytes.len()` bytes `copy_in` wrote; the arena is alive.
            let stored = unsafe { std::slice::from_raw_parts(at.as_ptr(), bytes.len()) };
            assert_eq!(stored, bytes.as_slice(), "entry {i}");
        }
        let st = arena.state.lock();
        assert!(own > 100, "{own} allocations of their own");
        // The ordinary chunks hold the in-chunk bytes; what they leave unused (abandoned
        // tails, the current chunk's rest) is at most about as much again, plus one chunk.
        let ordinary: usize = st.chunks.iter().map(|c| c.len()).sum::<usize>() - own_bytes;
        assert!(
            in_chunks <= ordinary && ordinary <= 2 * in_chunks + ARENA_CHUNK_MAX,
            "{in_chunks} bytes in {ordinary} bytes of chunks"
        );
    }

    #[test]
    fn distinct_keys_counts_each_user_key_once_whatever_its_versions() {
        let m = Memtable::with_compression(1, Compression::Snappy);
        let long = |i: u32| format!("a key longer than sixteen bytes {i:04}");
        let mut seqno = 0;
        for round in 0..3u32 {
            for i in 0..200u32 {
                // Short keys, long keys, and keys that share their first 16 bytes.
                for key in [format!("k{i:03}"), long(i)] {
                    seqno += 1;
                    let kind = if (i + round) % 5 == 0 {
                        ValueKind::Delete
                    } else {
                        ValueKind::Put
                    };
                    m.insert(key.as_bytes(), seqno, kind, &[b'v'; 100]);
                }
            }
            assert_eq!(m.distinct_keys(), 400, "after round {round}");
        }
        assert_eq!(m.len(), 1200);
        m.insert(b"k", seqno + 1, ValueKind::Put, b"");
        assert_eq!(m.distinct_keys(), 401);
    }

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_snapshot() {
        let m = Memtable::new(1);
        m.insert(b"a", 1, ValueKind::Put, b"one");
        m.insert(b"a", 3, ValueKind::Delete, b"");
        m.insert(b"b", 2, ValueKind::Put, b"two");
        let get = |k: &[u8], s| m.get(k, s).expect("decodes");
        assert_eq!(get(b"a", 2), Some((ValueKind::Put, b"one".to_vec())));
        assert_eq!(get(b"a", 3).map(|e| e.0), Some(ValueKind::Delete));
        assert_eq!(get(b"a", 0), None);
        assert_eq!(get(b"c", 9), None);
        assert_eq!(m.seqno_max(), 3);
    }

    /// A value that snappy halves (as db_bench's are), one it cannot shrink, and short ones.
    fn values() -> Vec<Vec<u8>> {
        let half: Vec<u8> = (0..50u8).chain(0..50u8).collect();
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        vec![
            half,
            noise,
            b"short".to_vec(),
            Vec::new(),
            vec![b'z'; 63],
            vec![b'z'; 64],
        ]
    }

    #[test]
    fn compressed_values_read_back_exactly_through_every_path() {
        for compression in [Compression::None, Compression::Snappy] {
            let m = Arc::new(Memtable::with_compression(1, compression));
            let vals = values();
            for i in 0..600u64 {
                let key = format!("key{i:04}{}", "k".repeat((i % 3) as usize * 10));
                m.insert(
                    key.as_bytes(),
                    i + 1,
                    ValueKind::Put,
                    &vals[i as usize % vals.len()],
                );
            }
            for i in 0..600u64 {
                let key = format!("key{i:04}{}", "k".repeat((i % 3) as usize * 10));
                let got = m.get(key.as_bytes(), crate::key::SEQNO_MAX).unwrap();
                assert_eq!(
                    got,
                    Some((ValueKind::Put, vals[i as usize % vals.len()].clone()))
                );
            }
            let mut flushed = Vec::new();
            m.for_each(|k, v| {
                flushed.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
            let all = || MemtableIter::new(m.clone(), Bound::Unbounded, Bound::Unbounded);
            let forward: Vec<Entry> = all().map(|e| e.unwrap()).collect();
            let mut backward: Vec<Entry> = all().rev().map(|e| e.unwrap()).collect();
            backward.reverse();
            assert_eq!(flushed.len(), 600);
            assert_eq!(forward, flushed);
            assert_eq!(backward, flushed);
            for (k, v) in &flushed {
                let i: usize = std::str::from_utf8(&k[3..7]).unwrap().parse().unwrap();
                assert_eq!(v, &vals[i % vals.len()], "{compression:?} key {i}");
            }
        }
    }

    #[test]
    fn only_values_snappy_shrinks_are_stored_compressed_and_charged_as_such() {
        let plain = Memtable::with_compression(1, Compression::None);
        let squeezed = Memtable::with_compression(1, Compression::Snappy);
        let vals = values();
        for (i, v) in vals.iter().enumerate() {
            for m in [&plain, &squeezed] {
                m.insert(format!("{i}").as_bytes(), 1, ValueKind::Put, v);
            }
        }
        let stored: Vec<bool> = squeezed
            .map
            .iter()
            .map(|e| e.key().is_compressed())
            .collect();
        // Keys "0".."5" in order: the halvable value only; noise, short and 63 bytes stay raw,
        // 64 repeated bytes compress.
        assert_eq!(stored, vec![true, false, false, false, false, true]);
        assert!(plain.map.iter().all(|e| !e.key().is_compressed()));
        let saved = plain.size_bytes() - squeezed.size_bytes();
        assert!(
            saved > 40 + 40,
            "compression saved only {saved} bytes of charge"
        );
    }

    #[test]
    fn a_cloned_entry_owns_its_own_copy_of_key_value_and_flag() {
        let long_key = [b'k'; 40];
        let value = [b'x'; 200];
        let m = Memtable::with_compression(1, Compression::Snappy);
        m.insert(&long_key, 7, ValueKind::Put, &value);
        m.insert(b"short", 8, ValueKind::Delete, b"");
        let clones: Vec<MemKey> = m.map.iter().map(|e| e.key().clone()).collect();
        drop(m); // the clones must not point into the dropped entries
        assert_eq!(clones[0].user_key(), &long_key);
        assert!(clones[0].is_compressed());
        assert_eq!(clones[0].value().unwrap(), value);
        assert_eq!(clones[1].user_key(), b"short");
        assert!(!clones[1].is_compressed());
        assert_eq!(clones[1].kind(), ValueKind::Delete);
        assert!(clones[1].value().unwrap().is_empty());
        let moved = std::thread::spawn(move || clones[0].value().unwrap())
            .join()
            .unwrap();
        assert_eq!(moved, value);
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
            proptest::prop_assert_eq!(ka.user_key(), &a[..]);
            proptest::prop_assert_eq!(ka.value().expect("raw"), b"x".to_vec());
            let back = MemKey::from_internal_key(&kb.to_internal_key());
            proptest::prop_assert_eq!((back.user_key(), back.kind()), (&b[..], ValueKind::Delete));
            proptest::prop_assert_eq!(back.cmp(&kb), std::cmp::Ordering::Equal);
        }
    }
}
