//! The block cache: decompressed, checked data blocks kept in memory between reads.
//!
//! A read of a data block costs a `pread` copy from the page cache, a CRC-32 over the stored
//! bytes, snappy decompression and a check of the restart array: about half of a random
//! seek's time (BENCHMARKS.md, "Block cache"). The cache keeps the result, bounded in bytes,
//! so a block read again is a hash lookup and an `Arc` clone.
//!
//! Entries are keyed by a number unique to each opened segment in this process (see
//! [`next_file_key`]) and the block's offset, so one cache can serve several databases and a
//! file's blocks never answer for another file's. Eviction is `quick_cache`'s S3-FIFO
//! (a block read once goes through a small probationary queue and is dropped from there
//! unless read again, so a scan does not flush the blocks that are read often). A segment
//! removes its blocks when it is dropped (after a compaction made it obsolete, or at close).
//!
//! Point lookups and user iterators fill the cache; compaction reads use blocks already
//! there but never add any (each block a compaction reads is read once).
//!
//! # Admission
//! A block enters the cache on its second miss within a while, not its first: a small bit
//! set (the doorkeeper, as in TinyLFU) remembers the blocks missed once since it was last
//! cleared, and is cleared after as many first misses as the cache holds blocks. Under
//! uniformly random reads over more data than the cache holds, which blocks are cached does
//! not change how often it hits, but inserting (an `Arc`, the cache's bookkeeping, an
//! eviction and a free of a cold block) on every miss made such reads about 10% slower than
//! no cache at all; with the doorkeeper most misses cost one bit test. A block read twice
//! in quick succession (a hot set, a scan going back and forth) is cached on the second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::Layout;

/// Bytes charged per cached block on top of its contents: the `Arc` and `Vec` headers, the
/// key and the cache's own slot, rounded up.
const ENTRY_OVERHEAD: u64 = 96;

/// A data block as readers use it: uncompressed, checksum verified, restart array checked.
#[derive(Debug)]
pub(crate) struct DecodedBlock {
    pub bytes: Vec<u8>,
    pub layout: Layout,
}

/// Which segment opening and which block: `(file key, block offset)`.
type Key = (u64, u64);

#[derive(Clone)]
struct ByBytes;

impl Weighter<Key, Arc<DecodedBlock>> for ByBytes {
    fn weight(&self, _: &Key, block: &Arc<DecodedBlock>) -> u64 {
        block.bytes.capacity() as u64 + ENTRY_OVERHEAD
    }
}

/// A cache of decompressed data blocks, bounded in bytes, safe to share between threads and
/// between databases ([`Options::block_cache`](crate::Options::block_cache)).
///
/// ```
/// use std::sync::Arc;
/// use alluvium::{BlockCache, Options};
/// let cache = Arc::new(BlockCache::new(64 << 20));
/// let a = Options::default().block_cache(Some(cache.clone()));
/// let b = Options::default().block_cache(Some(cache.clone()));
/// assert_eq!(cache.capacity_bytes(), 64 << 20);
/// # let _ = (a, b);
/// ```
pub struct BlockCache {
    blocks: Cache<Key, Arc<DecodedBlock>, ByBytes>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Bits of the blocks missed once since the last clearing (see "Admission").
    doorkeeper: Box<[AtomicU64]>,
    /// First misses recorded since the last clearing.
    first_misses: AtomicU64,
    /// How many first misses clear the doorkeeper: the number of blocks the cache holds.
    first_misses_max: u64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity)
            .field("used_bytes", &self.used_bytes())
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most about `capacity_bytes` of blocks (their uncompressed size
    /// plus a small fixed charge each). A block larger than a shard's share of the capacity
    /// is not kept.
    pub fn new(capacity_bytes: u64) -> BlockCache {
        // The estimate only sizes the cache's tables; 4 KiB is the default block size.
        let blocks = (capacity_bytes / 4096).clamp(16, 1 << 30);
        // Four bits a block: under a quarter of them set when cleared, so at most about one
        // first miss in five is taken for a second one.
        let words = (blocks * 4).div_ceil(64).next_power_of_two() as usize;
        BlockCache {
            blocks: Cache::with_weighter(blocks as usize, capacity_bytes.max(1), ByBytes),
            capacity: capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            doorkeeper: (0..words).map(|_| AtomicU64::new(0)).collect(),
            first_misses: AtomicU64::new(0),
            first_misses_max: blocks,
        }
    }

    /// The configured bound.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    /// Bytes charged to the blocks held now.
    pub fn used_bytes(&self) -> u64 {
        self.blocks.weight()
    }

    /// Lookups that found their block.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that did not (the block was then read from the file).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    pub(crate) fn get(&self, file: u64, offset: u64) -> Option<Arc<DecodedBlock>> {
        let found = self.blocks.get(&(file, offset));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Offers a block read after a miss: cached if it was missed once already since the
    /// doorkeeper was last cleared, else only remembered.
    pub(crate) fn insert(&self, file: u64, offset: u64, block: Arc<DecodedBlock>) {
        if self.admit(file, offset) {
            self.blocks.insert((file, offset), block);
        }
    }

    /// Sets the doorkeeper's bit for the block; true if it was set already.
    fn admit(&self, file: u64, offset: u64) -> bool {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&file.to_le_bytes());
        key[8..].copy_from_slice(&offset.to_le_bytes());
        let hash = xxhash_rust::xxh3::xxh3_64(&key);
        let bits = self.doorkeeper.len() as u64 * 64;
        let bit = hash % bits;
        let mask = 1u64 << (bit % 64);
        let Some(word) = self.doorkeeper.get((bit / 64) as usize) else {
            return true;
        };
        if word.fetch_or(mask, Ordering::Relaxed) & mask != 0 {
            return true;
        }
        if self.first_misses.fetch_add(1, Ordering::Relaxed) + 1 >= self.first_misses_max {
            // Racing first misses may be forgotten with the rest: they only wait one more.
            self.first_misses.store(0, Ordering::Relaxed);
            for w in self.doorkeeper.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        false
    }

    pub(crate) fn remove(&self, file: u64, offset: u64) {
        self.blocks.remove(&(file, offset));
    }
}

/// A number no other segment opened by this process has: the first half of the cache keys
/// of one opened segment.
pub(crate) fn next_file_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
