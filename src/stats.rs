//! `stats()`: counters and the shape of the tree, as a plain struct.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::compaction::{picker, LevelCompactionStats};
use crate::db::Inner;
use crate::key::SeqNo;

/// Counters the write path and background work bump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commit_groups: AtomicU64,
    pub batches: AtomicU64,
    pub log_syncs: AtomicU64,
    pub write_stalls: AtomicU64,
    pub write_slowdowns: AtomicU64,
    pub write_stops: AtomicU64,
    pub user_bytes: AtomicU64,
    pub write_stall_us: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_us: AtomicU64,
    pub flushed_bytes: AtomicU64,
    pub background_retries: AtomicU64,
}

/// One level of the tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelStats {
    /// Number of segments.
    pub segments: usize,
    /// Sum of their file sizes.
    pub bytes: u64,
    /// Sum of their entries (versions, tombstones included).
    pub entries: u64,
    /// The level's target size (0 for level 0 and levels above the base level).
    pub target_bytes: u64,
    /// Compaction urgency: 1.0 or more means a compaction is due.
    pub score: f64,
    /// Compactions that wrote into this level.
    pub compaction: LevelCompactionStats,
    /// Bytes compactions wrote into this level per byte they took in from shallower levels
    /// (0 when nothing came in).
    pub write_amplification: f64,
}

/// A snapshot of the database's counters and shape.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Times a write group was delayed by 1 ms because compaction is behind.
    pub write_slowdowns: u64,
    /// Times writers were stopped until compaction caught up.
    pub write_stops: u64,
    /// Total time writers spent stalled, slowed down or stopped, in microseconds.
    pub write_stall_us: u64,
    /// Bytes of keys and values written by the user since open.
    pub user_bytes: u64,
    /// Bytes of segments written by flushes since open.
    pub flushed_bytes: u64,
    /// Bytes of segments written by compactions since open.
    pub compaction_bytes_written: u64,
    /// (flushed + compacted bytes) / user bytes since open: the write amplification of the
    /// tree, commit log excluded.
    pub write_amplification: f64,
    /// Flushes and compactions retried after a full disk.
    pub background_retries: u64,
    /// Estimated bytes compaction still has to rewrite.
    pub pending_compaction_bytes: u64,
    /// The level that level 0 compacts into.
    pub base_level: usize,
    /// Memtables flushed since open.
    pub flushes: u64,
    /// Time spent flushing, in microseconds.
    pub flush_us: u64,
    /// Live snapshots.
    pub snapshots: usize,
    /// Torn commit log tails dropped by the last recovery.
    pub torn_tails_dropped: usize,
    /// Change-feed subscriptions: position, lag, cut off or not; by name.
    pub subscriptions: Vec<crate::feed::SubscriptionStats>,
    /// The oldest sequence number the change feed can still hand out.
    pub feed_oldest_seqno: SeqNo,
    /// Flushed log files kept for the change feed (retention), and their bytes.
    pub feed_retained_log_files: usize,
    /// Bytes of those files.
    pub feed_retained_log_bytes: u64,
    /// Block cache lookups that found their block (the cache's count, shared with any other
    /// database using the same cache; 0 without a cache).
    pub block_cache_hits: u64,
    /// Block cache lookups that read the block from its file.
    pub block_cache_misses: u64,
    /// Bytes the block cache holds now.
    pub block_cache_bytes: u64,
}

pub(crate) fn collect(inner: &Inner) -> Stats {
    let retained = crate::feed::retained(inner);
    let sv = inner.super_version.load_full();
    let c = &inner.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let copts = &inner.opts.compaction;
    let targets = picker::level_targets(&sv.version, copts);
    let scores = picker::scores(&sv.version, &targets, copts);
    let compactions = inner.compactor.level_stats();
    let levels: Vec<LevelStats> = (0..sv.version.level_count())
        .map(|l| {
            let segs = sv.version.level(l);
            let compaction = compactions.get(l).cloned().unwrap_or_default();
            LevelStats {
                segments: segs.len(),
                bytes: segs.iter().map(|s| s.meta.size_bytes).sum(),
                entries: segs.iter().map(|s| s.meta.entry_count).sum(),
                target_bytes: targets.bytes[l],
                score: scores[l],
                write_amplification: ratio(compaction.bytes_written, compaction.bytes_in),
                compaction,
            }
        })
        .collect();
    let compaction_bytes_written: u64 = levels.iter().map(|l| l.compaction.bytes_written).sum();
    let (user_bytes, flushed_bytes) = (get(&c.user_bytes), get(&c.flushed_bytes));
    let cache = inner.opts.block_cache_value();
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
        write_slowdowns: get(&c.write_slowdowns),
        write_stops: get(&c.write_stops),
        write_stall_us: get(&c.write_stall_us),
        user_bytes,
        flushed_bytes,
        compaction_bytes_written,
        write_amplification: ratio(flushed_bytes + compaction_bytes_written, user_bytes),
        background_retries: get(&c.background_retries),
        pending_compaction_bytes: inner.compactor.pending_bytes.load(Ordering::Relaxed),
        base_level: targets.base_level,
        flushes: get(&c.flushes),
        flush_us: get(&c.flush_us),
        snapshots: inner.snapshots.lock().values().sum(),
        torn_tails_dropped: inner.recovery.dropped.len(),
        subscriptions: crate::feed::subscription_stats(inner),
        feed_oldest_seqno: inner.feed.logs.lock().oldest_seqno(),
        feed_retained_log_files: retained.1,
        feed_retained_log_bytes: retained.0,
        block_cache_hits: cache.map_or(0, |c| c.hits()),
        block_cache_misses: cache.map_or(0, |c| c.misses()),
        block_cache_bytes: cache.map_or(0, |c| c.used_bytes()),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
