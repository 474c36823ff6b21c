//! `stats()`: counters and the shape of the tree, as a plain struct.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::Inner;
use crate::key::SeqNo;

/// Counters the write path and background work bump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commit_groups: AtomicU64,
    pub batches: AtomicU64,
    pub log_syncs: AtomicU64,
    pub write_stalls: AtomicU64,
    pub write_stall_us: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_us: AtomicU64,
}

/// One level of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Number of segments.
    pub segments: usize,
    /// Sum of their file sizes.
    pub bytes: u64,
    /// Sum of their entries (versions, tombstones included).
    pub entries: u64,
}

/// A snapshot of the database's counters and shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Newest visible sequence number.
    pub latest_seqno: SeqNo,
    /// Bytes charged to the active memtable.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Bytes charged to them.
    pub immutable_memtable_bytes: u64,
    /// Per level, from level 0.
    pub levels: Vec<LevelStats>,
    /// Commit groups written (each one append, at most one sync).
    pub commit_groups: u64,
    /// Batches committed.
    pub batches: u64,
    /// `fdatasync` calls on the commit log.
    pub log_syncs: u64,
    /// Times a writer waited for a flush because too many immutable memtables were pending.
    pub write_stalls: u64,
    /// Total time writers spent waiting that way, in microseconds.
    pub write_stall_us: u64,
    /// Memtables flushed since open.
    pub flushes: u64,
    /// Time spent flushing, in microseconds.
    pub flush_us: u64,
    /// Live snapshots.
    pub snapshots: usize,
    /// Torn commit log tails dropped by the last recovery.
    pub torn_tails_dropped: usize,
}

pub(crate) fn collect(inner: &Inner) -> Stats {
    let sv = inner.super_version.load_full();
    let c = &inner.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let levels = (0..sv.version.level_count())
        .map(|l| {
            let segs = sv.version.level(l);
            LevelStats {
                segments: segs.len(),
                bytes: segs.iter().map(|s| s.meta.size_bytes).sum(),
                entries: segs.iter().map(|s| s.meta.entry_count).sum(),
            }
        })
        .collect();
    Stats {
        latest_seqno: inner.visible_seqno.load(Ordering::Acquire),
        memtable_bytes: sv.mem.size_bytes() as u64,
        immutable_memtables: sv.imms.len(),
        immutable_memtable_bytes: sv.imms.iter().map(|m| m.size_bytes() as u64).sum(),
        levels,
        commit_groups: get(&c.commit_groups),
        batches: get(&c.batches),
        log_syncs: get(&c.log_syncs),
        write_stalls: get(&c.write_stalls),
        write_stall_us: get(&c.write_stall_us),
        flushes: get(&c.flushes),
        flush_us: get(&c.flush_us),
        snapshots: inner.snapshots.lock().values().sum(),
        torn_tails_dropped: inner.recovery.dropped.len(),
    }
}
