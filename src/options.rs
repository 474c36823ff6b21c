//! Options for opening a database, writing and reading, with their documented defaults.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{FileSystem, OsFileSystem};
use crate::segment::BlockCache;

/// The largest key alluvium accepts: 64 KiB. Empty keys are allowed.
pub const KEY_SIZE_MAX: usize = 64 * 1024;
/// The largest value alluvium accepts: 256 MiB.
pub const VALUE_SIZE_MAX: usize = 256 * 1024 * 1024;
/// The largest batch alluvium accepts, counted as the sum of key and value bytes: 512 MiB.
pub const BATCH_SIZE_MAX: usize = 512 * 1024 * 1024;
/// The most operations one batch may hold.
pub const BATCH_OPS_MAX: usize = 1 << 24;

/// How data blocks of segments are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    None,
    /// Snappy, kept only for blocks it shrinks by at least 1/8.
    #[default]
    Snappy,
}

/// What recovery does when a commit log file is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Drop an incomplete record at the end of a log file (a crash in the middle of an
    /// append, or a power loss cutting a log file a rotation sealed without syncing) and
    /// every later log file, and report them; so too a log file that ends cleanly but short
    /// (the next one does not start at the next sequence number). Anything else wrong is
    /// [`Error::Corruption`]. No synced write is ever dropped: a synced write syncs every
    /// older log file first.
    #[default]
    TolerateTornTail,
    /// Replay up to the first bad record of any log file, drop it and everything after it,
    /// and report exactly what was dropped. The database is consistent at that point in time.
    PointInTime,
}

/// Options for [`Db::open`](crate::Db::open), built with chained setters.
///
/// ```
/// use alluvium::{Options, Compression};
/// let opts = Options::default()
///     .memtable_size_bytes(8 << 20)
///     .compression(Compression::None);
/// assert_eq!(opts.block_size_bytes_value(), 4096);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) create_if_missing: bool,
    pub(crate) error_if_exists: bool,
    pub(crate) memtable_size_bytes: usize,
    pub(crate) block_size_bytes: usize,
    pub(crate) block_restart_interval: usize,
    pub(crate) compression: Compression,
    pub(crate) log_compression: Compression,
    pub(crate) memtable_compression: Compression,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) immutable_memtables_max: usize,
    /// `None`: an eighth of `memtable_size_bytes` (`flush_headroom_bytes_value`).
    pub(crate) flush_headroom_bytes: Option<usize>,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) compaction: CompactionOptions,
    pub(crate) feed_retention_bytes_min: u64,
    pub(crate) feed_retention_bytes_max: u64,
    pub(crate) feed_retention_age_max: std::time::Duration,
    pub(crate) file_system: Arc<dyn FileSystem>,
    pub(crate) block_cache_bytes: u64,
    pub(crate) block_cache: Option<Arc<BlockCache>>,
}

/// Where an injected compaction failure strikes (fault-injection tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompactionFailPoint {
    /// No failure.
    #[default]
    None,
    /// After the output segments are written and synced, before the version edit.
    AfterOutputs,
    /// After the version edit is durable, before the new version is installed.
    AfterManifest,
}

/// Leveled compaction settings, part of [`Options`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionOptions {
    pub(crate) enabled: bool,
    pub(crate) level_size_ratio: u64,
    pub(crate) level_base_size_bytes: u64,
    pub(crate) segment_size_bytes: u64,
    pub(crate) level0_trigger: usize,
    pub(crate) level0_slowdown: usize,
    pub(crate) level0_stop: usize,
    pub(crate) pending_slowdown_bytes: u64,
    pub(crate) pending_stop_bytes: u64,
    pub(crate) threads: usize,
    pub(crate) fail_point: CompactionFailPoint,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        CompactionOptions {
            enabled: true,
            level_size_ratio: 10,
            level_base_size_bytes: 256 << 20,
            segment_size_bytes: 64 << 20,
            level0_trigger: 4,
            level0_slowdown: 20,
            level0_stop: 36,
            pending_slowdown_bytes: 64 << 30,
            pending_stop_bytes: 256 << 30,
            threads: cores.clamp(1, 4),
            fail_point: CompactionFailPoint::None,
        }
    }
}

impl Default for Options {
    /// Defaults: create if missing, 64 MiB memtable, 4 KiB blocks, restart every 16 keys,
    /// snappy blocks, log records and memtable values, 10 bloom bits per key, 2 immutable memtables before
    /// writers wait, tolerate a torn tail, a 32 MiB block cache of its own.
    fn default() -> Self {
        Options {
            create_if_missing: true,
            error_if_exists: false,
            memtable_size_bytes: 64 << 20,
            block_size_bytes: 4096,
            block_restart_interval: 16,
            compression: Compression::Snappy,
            log_compression: Compression::Snappy,
            memtable_compression: Compression::Snappy,
            bloom_bits_per_key: 10,
            immutable_memtables_max: 2,
            flush_headroom_bytes: None,
            recovery_mode: RecoveryMode::TolerateTornTail,
            compaction: CompactionOptions::default(),
            feed_retention_bytes_min: 0,
            feed_retention_bytes_max: 1 << 30,
            feed_retention_age_max: std::time::Duration::from_secs(7 * 24 * 3600),
            file_system: Arc::new(OsFileSystem),
            block_cache_bytes: 32 << 20,
            block_cache: None,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $getter:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, v: $ty) -> Self {
            self.$name = v;
            self
        }

        #[doc = concat!("The configured `", stringify!($name), "`.")]
        pub fn $getter(&self) -> $ty {
            self.$name
        }
    };
}

impl Options {
    setter!(
        /// Create the directory when it does not exist (default `true`).
        create_if_missing, create_if_missing_value: bool
    );
    setter!(
        /// Fail with [`Error::InvalidArgument`] if a database already exists (default `false`).
        error_if_exists, error_if_exists_value: bool
    );
    setter!(
        /// Size at which the memtable becomes immutable and is flushed (default 64 MiB,
        /// at least 4 KiB).
        memtable_size_bytes, memtable_size_bytes_value: usize
    );
    setter!(
        /// Target uncompressed size of a segment data block (default 4 KiB, 256 B to 4 MiB).
        block_size_bytes, block_size_bytes_value: usize
    );
    setter!(
        /// Keys between restart points in a block (default 16, 1 to 1024).
        block_restart_interval, block_restart_interval_value: usize
    );
    setter!(
        /// Block compression (default snappy).
        compression, compression_value: Compression
    );
    setter!(
        /// Compression of commit log records (default snappy): a record's operations are
        /// stored compressed when they are at least 64 bytes and snappy saves 1/8 of them.
        /// Also what the change feed reads back, so it trades writer and reader CPU for log
        /// bytes on disk.
        log_compression, log_compression_value: Compression
    );
    setter!(
        /// Compression of values in the memtable (default snappy): a value of 64 bytes or
        /// more is kept compressed when snappy saves 1/8 of it, and decompressed when read
        /// from the memtable or flushed. A memtable then holds more entries in the same
        /// memory (about 127 bytes an entry instead of 175 for 16-byte keys and 100-byte
        /// values that compress to half), so it flushes less often, for about 0.1 µs of the
        /// writer's time a value.
        memtable_compression, memtable_compression_value: Compression
    );
    setter!(
        /// Bloom filter bits per key; 0 disables filters (default 10, at most 32).
        bloom_bits_per_key, bloom_bits_per_key_value: u32
    );
    setter!(
        /// Immutable memtables waiting for flush before writers wait (default 2, 1 to 64).
        immutable_memtables_max, immutable_memtables_max_value: usize
    );
    /// How much the next memtable may gather while a full one is being flushed before
    /// writers wait for that flush (default an eighth of `memtable_size_bytes`; at least 1;
    /// `usize::MAX` turns the wait off). A write that finds the active memtable holding this
    /// much while an immutable one awaits its flush waits until the flush ends (counted with
    /// the waits for a flush in [`Stats`](crate::Stats)). This bounds the memtables' memory
    /// at `memtable_size_bytes + flush_headroom_bytes` whatever the writers' speed, at the
    /// price of a pause, up to a flush's length, in each flush the writers outrun. Turned
    /// off, up to `immutable_memtables_max` full memtables wait for flush while the next one
    /// fills. In `alluvium bench` the default cut a sequential fill's peak memory by 10 MiB
    /// (from 1.05x RocksDB's to 0.95x) for 7% of its throughput: see BENCHMARKS.md.
    #[must_use]
    pub fn flush_headroom_bytes(mut self, v: usize) -> Self {
        self.flush_headroom_bytes = Some(v);
        self
    }

    /// The configured `flush_headroom_bytes`, or its default, an eighth of
    /// `memtable_size_bytes`.
    pub fn flush_headroom_bytes_value(&self) -> usize {
        self.flush_headroom_bytes
            .unwrap_or(self.memtable_size_bytes / 8)
    }
    setter!(
        /// What recovery does with a damaged commit log (default tolerate a torn tail).
        recovery_mode, recovery_mode_value: RecoveryMode
    );
    setter!(
        /// Flushed log bytes kept for the change feed even when no subscription needs them, so
        /// that cursors and followers can start a little in the past (default 0: flushed log
        /// files nobody subscribes to are deleted right after the flush).
        feed_retention_bytes_min, feed_retention_bytes_min_value: u64
    );
    setter!(
        /// The most flushed log bytes kept for subscriptions (default 1 GiB). Past it the
        /// oldest flushed log files are deleted even if a subscription has not read them, and
        /// that subscription is cut off ([`Error::FeedTruncated`]), so a stalled consumer
        /// cannot fill the disk.
        feed_retention_bytes_max, feed_retention_bytes_max_value: u64
    );
    setter!(
        /// The longest a flushed log file is kept after its last write, whoever needs it
        /// (default 7 days). Checked at every flush and at open.
        feed_retention_age_max, feed_retention_age_max_value: std::time::Duration
    );

    /// Turns background compaction on or off (default on). With it off, level 0 grows
    /// without bound and only [`Db::compact_range`](crate::Db::compact_range) compacts.
    #[must_use]
    pub fn compaction_enabled(mut self, v: bool) -> Self {
        self.compaction.enabled = v;
        self
    }

    /// Each level's target size is this many times the one above (default 10, 2 to 100).
    #[must_use]
    pub fn level_size_ratio(mut self, v: u64) -> Self {
        self.compaction.level_size_ratio = v;
        self
    }

    /// Target size of the first non-empty level below level 0 (default 256 MiB). Level targets
    /// are derived from the size of the last level, as RocksDB's dynamic level bytes do, so
    /// the last level holds about 90% of the data.
    #[must_use]
    pub fn level_base_size_bytes(mut self, v: u64) -> Self {
        self.compaction.level_base_size_bytes = v;
        self
    }

    /// Size at which compaction starts a new output segment (default 64 MiB, at least 4 KiB).
    #[must_use]
    pub fn segment_size_bytes(mut self, v: u64) -> Self {
        self.compaction.segment_size_bytes = v;
        self
    }

    /// Level-0 segment counts that start compaction, slow writers down (1 ms a group) and
    /// stop writers until compaction catches up (defaults 4, 20, 36; increasing).
    #[must_use]
    pub fn level0_triggers(mut self, compact: usize, slowdown: usize, stop: usize) -> Self {
        let c = &mut self.compaction;
        (c.level0_trigger, c.level0_slowdown, c.level0_stop) = (compact, slowdown, stop);
        self
    }

    /// Estimated bytes of pending compaction work at which writers slow down and stop
    /// (defaults 64 GiB and 256 GiB).
    #[must_use]
    pub fn pending_compaction_limits(mut self, slowdown_bytes: u64, stop_bytes: u64) -> Self {
        self.compaction.pending_slowdown_bytes = slowdown_bytes;
        self.compaction.pending_stop_bytes = stop_bytes;
        self
    }

    /// Threads of the dedicated compaction pool, which runs the subcompactions of a job in
    /// parallel (default: the machine's cores, at most 4; 1 to 64).
    #[must_use]
    pub fn compaction_threads(mut self, v: usize) -> Self {
        self.compaction.threads = v;
        self
    }

    /// The compaction settings.
    pub fn compaction_value(&self) -> &CompactionOptions {
        &self.compaction
    }

    /// Makes every compaction fail at `point` (fault-injection tests only).
    #[doc(hidden)]
    #[must_use]
    pub fn compaction_fail_point(mut self, point: CompactionFailPoint) -> Self {
        self.compaction.fail_point = point;
        self
    }

    /// The size of the block cache the database creates for itself when no shared one is
    /// given with [`Options::block_cache`] (default 32 MiB, as RocksDB's and fjall's; 0: no
    /// cache, every data block read comes from the file). It holds decompressed data blocks
    /// that point lookups and iterators read.
    #[must_use]
    pub fn block_cache_bytes(mut self, v: u64) -> Self {
        self.block_cache_bytes = v;
        self
    }

    /// The configured `block_cache_bytes`.
    pub fn block_cache_bytes_value(&self) -> u64 {
        self.block_cache_bytes
    }

    /// A block cache to use instead of one of the database's own (default none): one cache
    /// can serve several databases, bounding their memory together.
    #[must_use]
    pub fn block_cache(mut self, cache: Option<Arc<BlockCache>>) -> Self {
        self.block_cache = cache;
        self
    }

    /// The shared block cache given with [`Options::block_cache`], if any.
    pub fn block_cache_value(&self) -> Option<&Arc<BlockCache>> {
        self.block_cache.as_ref()
    }

    /// The cache segments read through: the shared one, else a new one of
    /// `block_cache_bytes` (none when that is 0). Called once when a database opens.
    pub(crate) fn with_resolved_block_cache(mut self) -> Options {
        if self.block_cache.is_none() && self.block_cache_bytes > 0 {
            self.block_cache = Some(Arc::new(BlockCache::new(self.block_cache_bytes)));
        }
        self
    }

    /// The layer every file change goes through (default: the operating system). Tests pass
    /// a [`FaultInjectingFs`](crate::fs::FaultInjectingFs) here to inject failing syncs, a
    /// full disk, crashes and power loss.
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.file_system = fs;
        self
    }

    /// The file layer.
    pub fn file_system_value(&self) -> &Arc<dyn FileSystem> {
        &self.file_system
    }

    /// Checks every option; called by `Db::open`.
    pub fn validate(&self) -> Result<()> {
        check(
            self.memtable_size_bytes >= 4096,
            "memtable_size_bytes must be at least 4096",
        )?;
        check(
            (256..=4 << 20).contains(&self.block_size_bytes),
            "block_size_bytes must be between 256 and 4194304",
        )?;
        check(
            (1..=1024).contains(&self.block_restart_interval),
            "block_restart_interval must be between 1 and 1024",
        )?;
        check(
            self.bloom_bits_per_key <= 32,
            "bloom_bits_per_key must be at most 32",
        )?;
        check(
            (1..=64).contains(&self.immutable_memtables_max),
            "immutable_memtables_max must be between 1 and 64",
        )?;
        check(
            self.flush_headroom_bytes != Some(0),
            "flush_headroom_bytes must be at least 1",
        )?;
        check(
            self.feed_retention_bytes_min <= self.feed_retention_bytes_max,
            "feed_retention_bytes_min must not exceed feed_retention_bytes_max",
        )?;
        self.compaction.validate()
    }
}

impl CompactionOptions {
    fn validate(&self) -> Result<()> {
        check(
            (2..=100).contains(&self.level_size_ratio),
            "level_size_ratio must be between 2 and 100",
        )?;
        check(
            self.level_base_size_bytes >= 4096,
            "level_base_size_bytes must be at least 4096",
        )?;
        check(
            self.segment_size_bytes >= 4096,
            "segment_size_bytes must be at least 4096",
        )?;
        check(
            1 <= self.level0_trigger
                && self.level0_trigger < self.level0_slowdown
                && self.level0_slowdown < self.level0_stop,
            "level-0 triggers must satisfy 1 <= compact < slowdown < stop",
        )?;
        check(
            self.pending_slowdown_bytes < self.pending_stop_bytes,
            "the pending compaction slowdown limit must be below the stop limit",
        )?;
        check(
            (1..=64).contains(&self.threads),
            "compaction_threads must be between 1 and 64",
        )
    }
}

fn check(ok: bool, msg: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(msg.to_string()))
    }
}

/// Options for one write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// When true the write returns only after the commit log is `fdatasync`ed, so it survives
    /// a power failure. When false it survives a process crash but not an OS crash. Default
    /// `false`.
    pub sync: bool,
}

impl WriteOptions {
    /// Options with `sync` set.
    pub fn synced() -> Self {
        WriteOptions { sync: true }
    }
}
