//! `Db`: open, write, read, iterate, snapshot, flush, close.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::files::DirLock;
use crate::key::{SeqNo, ValueKind};
use crate::manifest::{Version, VersionSet};
use crate::memtable::{Memtable, MemtableIter};
use crate::options::{Options, WriteOptions};
use crate::read::{
    lower_internal, prefix_successor, to_memtable_bound, upper_internal, DbIter, LevelIter,
};
use crate::recovery::RecoveryReport;
use crate::stats::{Counters, Stats};
use crate::write::{LogState, WriteQueue};

/// What readers load in one step: the memtables and the version of one moment.
///
/// # Invariants
/// Replaced (never mutated) under `Inner::sv_lock`. A reader loads the visible sequence number
/// *before* the super version, so every entry at or below that number is in `mem`, `imms` or
/// `version` of what it loads.
#[derive(Debug)]
pub(crate) struct SuperVersion {
    pub mem: Arc<Memtable>,
    /// Immutable memtables waiting for flush, oldest first.
    pub imms: Vec<Arc<Memtable>>,
    pub version: Arc<Version>,
}

/// Background-work state shared by writers and the flush thread.
#[derive(Debug, Default)]
pub(crate) struct BgState {
    /// The error that stopped background work or the write path; writes fail once it is set.
    pub error: Option<String>,
    pub shutdown: bool,
}

/// The shared state of an open database.
pub(crate) struct Inner {
    pub dir: PathBuf,
    /// The database id (`IDENTITY`).
    pub id: String,
    pub opts: Options,
    pub lock: Mutex<Option<DirLock>>,
    pub super_version: ArcSwap<SuperVersion>,
    pub sv_lock: Mutex<()>,
    pub visible_seqno: AtomicU64,
    pub queue: WriteQueue,
    pub log: Mutex<Option<LogState>>,
    /// Log files sealed at rotation but not yet synced (see its invariants).
    pub unsynced_logs: crate::write::UnsyncedLogs,
    pub versions: Mutex<VersionSet>,
    pub bg: Mutex<BgState>,
    pub bg_cv: Condvar,
    /// True while the flush thread works on a memtable, from taking it to the end of the log
    /// retention that follows; changed under `bg`, so waiters on `bg_cv` see it change.
    pub flushing: AtomicBool,
    pub snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    pub counters: Counters,
    pub recovery: RecoveryReport,
    pub closed: AtomicBool,
    pub flush_thread: Mutex<Option<JoinHandle<()>>>,
    pub compactor: crate::compaction::Compactor,
    pub feed: crate::feed::FeedState,
}

/// An open alluvium database.
///
/// `Db` is `Send + Sync` and cheap to clone: every clone is a handle to the same database.
/// The database closes when [`Db::close`] is called or the last handle drops.
///
/// ```
/// # fn main() -> alluvium::Result<()> {
/// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
/// use alluvium::{Db, Options};
/// let db = Db::open(dir.path(), Options::default())?;
/// let seqno = db.put(b"hello", b"world")?;
/// assert_eq!(db.get(b"hello")?, Some(b"world".to_vec()));
/// assert_eq!(db.latest_seqno(), seqno);
/// db.close()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Best effort: a failure here is reported by the next open's recovery.
        let _ = self.inner.close();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner().dir)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database in `path`, creating it if it does not exist (unless
    /// [`Options::create_if_missing`] is false) and recovering it otherwise.
    ///
    /// Recovery reads `CURRENT`, the manifest and every segment it names, then replays the
    /// commit log written after the last flush. See [`Db::recovery_report`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid options, [`Error::Locked`] when another `Db`
    /// has the directory open, [`Error::Corruption`] for damaged files.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let inner = crate::recovery::open(path.as_ref(), opts)?;
        // The handle exists first so that a failure below still closes what was opened.
        let db = Db {
            handle: Arc::new(Handle {
                inner: inner.clone(),
            }),
        };
        crate::compaction::install_current_version(&inner, None); // computes pending bytes
        let flush = spawn(&inner, "alluvium-flush", crate::write::flush_loop)?;
        *inner.flush_thread.lock() = Some(flush);
        let compact = spawn(
            &inner,
            "alluvium-compact",
            crate::compaction::compaction_loop,
        )?;
        *inner.compactor.thread.lock() = Some(compact);
        Ok(db)
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// Sets `key` to `value`; returns the write's sequence number. Not synced: see
    /// [`Db::write`] with [`WriteOptions::sync`].
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// let first = db.put(b"k", b"v1")?;
    /// let second = db.put(b"k", b"v2")?;
    /// assert_eq!(second, first + 1);
    /// assert_eq!(db.get(b"k")?, Some(b"v2".to_vec()));
    /// # Ok(()) }
    /// ```
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(batch, &WriteOptions::default())
    }

    /// Deletes `key`; returns the write's sequence number.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"k", b"v")?;
    /// db.delete(b"k")?;
    /// assert_eq!(db.get(b"k")?, None);
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(batch, &WriteOptions::default())
    }

    /// Applies `batch` atomically and returns the sequence number of its first operation
    /// (operation i has `first + i`). An empty batch writes nothing and returns
    /// [`Db::latest_seqno`].
    ///
    /// Concurrent writers are committed in groups: one append and at most one `fdatasync`
    /// serve the whole group, and each caller returns once its own batch is as durable as its
    /// options ask.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// use alluvium::{WriteBatch, WriteOptions};
    /// let mut batch = WriteBatch::new();
    /// batch.put(b"from", b"-10").put(b"to", b"+10");
    /// let first = db.write(batch, &WriteOptions { sync: true })?; // durable on return
    /// assert_eq!(db.latest_seqno(), first + 1);
    /// # Ok(()) }
    /// ```
    pub fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<SeqNo> {
        crate::write::write(self.inner(), batch, opts.sync)
    }

    /// The value of `key`, if any.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"k", b"v")?;
    /// assert_eq!(db.get(b"k")?, Some(b"v".to_vec()));
    /// assert_eq!(db.get(b"missing")?, None);
    /// # Ok(()) }
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner().get_at(key.as_ref(), self.latest_seqno())
    }

    /// Every key in `range` with its value, in key order; reverse with `.rev()`.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// for k in [b"a", b"b", b"c", b"d"] {
    ///     db.put(k, b"")?;
    /// }
    /// let keys: Vec<Vec<u8>> = db.range(&b"b"[..]..=&b"c"[..]).map(|e| e.map(|(k, _)| k)).collect::<alluvium::Result<_>>()?;
    /// assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
    /// let last = db.range::<&[u8], _>(..).next_back().transpose()?;
    /// assert_eq!(last.map(|(k, _)| k), Some(b"d".to_vec()));
    /// # Ok(()) }
    /// ```
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> DbIter {
        let seqno = self.latest_seqno();
        self.inner().iter_at(
            bound_ref(range.start_bound()),
            bound_ref(range.end_bound()),
            seqno,
        )
    }

    /// Every key starting with `prefix`, in key order.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"user:1", b"ada")?;
    /// db.put(b"user:2", b"grace")?;
    /// db.put(b"order:1", b"tea")?;
    /// assert_eq!(db.prefix(b"user:").count(), 2);
    /// # Ok(()) }
    /// ```
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        self.inner().prefix_at(prefix.as_ref(), self.latest_seqno())
    }

    /// Every key of the database.
    pub fn iter(&self) -> DbIter {
        self.range::<&[u8], _>(..)
    }

    /// A consistent read-only view at the current sequence number.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"k", b"old")?;
    /// let snapshot = db.snapshot();
    /// db.put(b"k", b"new")?;
    /// db.flush()?;
    /// assert_eq!(snapshot.get(b"k")?, Some(b"old".to_vec()));
    /// assert_eq!(db.get(b"k")?, Some(b"new".to_vec()));
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner().clone();
        let mut snaps = inner.snapshots.lock();
        // Loaded under the registry lock so that compaction, which reads the registry, never
        // misses a snapshot that is being taken.
        let seqno = inner.visible_seqno.load(Ordering::Acquire);
        *snaps.entry(seqno).or_insert(0) += 1;
        drop(snaps);
        Snapshot { inner, seqno }
    }

    /// The sequence number of the newest visible write (0 for an empty database).
    pub fn latest_seqno(&self) -> SeqNo {
        self.inner().visible_seqno.load(Ordering::Acquire)
    }

    /// Flushes the memtable to a level-0 segment now and waits for it (and for any memtable
    /// already waiting) to be durable in a segment.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"k", b"v")?;
    /// db.flush()?;
    /// assert_eq!(db.stats().levels[0].segments, 1);
    /// assert_eq!(db.stats().memtable_bytes, 0);
    /// # Ok(()) }
    /// ```
    pub fn flush(&self) -> Result<()> {
        crate::write::flush_now(self.inner())
    }

    /// Compacts every segment holding keys in `range` into the last level, after flushing
    /// the memtable: afterwards those keys live in non-overlapping segments of one level, and
    /// every version and tombstone that no live snapshot can see is gone.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// use alluvium::{Db, Options};
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.put(b"a", b"1")?;
    /// db.delete(b"a")?;
    /// db.compact_range::<&[u8], _>(..)?;
    /// assert_eq!(db.stats().levels.iter().map(|l| l.entries).sum::<u64>(), 0);
    /// # Ok(()) }
    /// ```
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.inner().check_open()?;
        let (lo, hi) = (bound_ref(range.start_bound()), bound_ref(range.end_bound()));
        crate::compaction::compact_range(self.inner(), lo, hi)
    }

    /// Waits until background work is idle: no memtable awaits flush and no compaction is
    /// due or running.
    pub fn wait_idle(&self) -> Result<()> {
        crate::compaction::wait_idle(self.inner())
    }

    /// Counters and the shape of the tree.
    ///
    /// ```
    /// # fn main() -> alluvium::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    /// # let db = alluvium::Db::open(dir.path(), alluvium::Options::default())?;
    /// db.put(b"k", b"v")?;
    /// let stats = db.stats();
    /// assert_eq!(stats.latest_seqno, 1);
    /// assert!(stats.memtable_bytes > 0);
    /// assert_eq!(stats.levels.len(), 7);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        crate::stats::collect(self.inner())
    }

    /// What the last open found and did: log files replayed, torn tails dropped.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner().recovery
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }

    /// The database id: 32 lowercase hex digits, random, written at the first open and never
    /// changed (`IDENTITY`, see [`identity`](crate::identity)). Systems outside the database
    /// name a change by this id and its sequence number.
    pub fn id(&self) -> &str {
        &self.inner().id
    }

    /// Shuts down cleanly: waits for in-flight writes, syncs the commit log, stops background
    /// work and releases the directory lock. Later calls on any handle fail with
    /// [`Error::Closed`]; calling `close` again is a no-op.
    pub fn close(&self) -> Result<()> {
        self.inner().close()
    }
}

fn spawn(inner: &Arc<Inner>, name: &str, work: fn(&Arc<Inner>)) -> Result<JoinHandle<()>> {
    let worker = inner.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(&worker))
        .map_err(|e| Error::io(&inner.dir, e))
}

fn bound_ref<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Inner {
    /// The sequence numbers of the live snapshots, ascending: what flush and compaction must
    /// keep a version for.
    pub(crate) fn live_snapshots(&self) -> Vec<SeqNo> {
        self.snapshots.lock().keys().copied().collect()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the database was closed".into()));
        }
        self.check_no_error()
    }

    /// Fails once background work or the write path recorded an error.
    pub(crate) fn check_no_error(&self) -> Result<()> {
        match &self.bg.lock().error {
            Some(e) => Err(Error::Closed(format!("writes stopped after an error: {e}"))),
            None => Ok(()),
        }
    }

    pub(crate) fn get_at(&self, key: &[u8], seqno: SeqNo) -> Result<Option<Vec<u8>>> {
        let sv = self.super_version.load_full();
        let mems = std::iter::once(&sv.mem).chain(sv.imms.iter().rev());
        for mem in mems {
            if let Some((kind, value)) = mem.get(key, seqno)? {
                return Ok((kind == ValueKind::Put).then_some(value));
            }
        }
        let version = &sv.version;
        let level0 = version.level(0).iter().rev();
        let deeper = (1..version.level_count()).filter_map(|l| find_in_level(version, l, key));
        for seg in level0.chain(deeper) {
            if let Some((_, kind, value)) = seg.segment.get(key, seqno)? {
                return Ok((kind == ValueKind::Put).then_some(value));
            }
        }
        Ok(None)
    }

    pub(crate) fn iter_at(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, seqno: SeqNo) -> DbIter {
        let sv = self.super_version.load_full();
        let (lo, hi) = (lower_internal(lower), upper_internal(upper));
        let (mlo, mhi) = (to_memtable_bound(&lo), to_memtable_bound(&hi));
        let mut sources: Vec<crate::read::Source> = Vec::new();
        for mem in std::iter::once(&sv.mem).chain(sv.imms.iter()) {
            sources.push(Box::new(MemtableIter::new(
                mem.clone(),
                mlo.clone(),
                mhi.clone(),
            )));
        }
        for seg in sv.version.level(0) {
            if overlaps(&seg.meta, lower, upper) {
                sources.push(Box::new(seg.segment.range(lo.clone(), hi.clone())));
            }
        }
        for level in 1..sv.version.level_count() {
            let segs: Vec<_> = sv
                .version
                .level(level)
                .iter()
                .filter(|s| overlaps(&s.meta, lower, upper))
                .cloned()
                .collect();
            if !segs.is_empty() {
                sources.push(Box::new(LevelIter::new(segs, lo.clone(), hi.clone())));
            }
        }
        DbIter::new(sources, seqno, Box::new(sv))
    }

    pub(crate) fn prefix_at(&self, prefix: &[u8], seqno: SeqNo) -> DbIter {
        let end = prefix_successor(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.iter_at(Bound::Included(prefix), upper, seqno)
    }

    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let synced = crate::write::close_log(self);
        self.feed.notify(); // waiting cursors see `closed` and return
        self.bg.lock().shutdown = true;
        self.bg_cv.notify_all();
        let threads = [
            self.flush_thread.lock().take(),
            self.compactor.thread.lock().take(),
        ];
        for t in threads.into_iter().flatten() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        *self.lock.lock() = None;
        synced
    }
}

fn find_in_level<'a>(
    v: &'a Version,
    level: usize,
    key: &[u8],
) -> Option<&'a Arc<crate::manifest::LiveSegment>> {
    let segs = v.level(level);
    let i = segs.partition_point(|s| crate::key::user_key(&s.meta.largest) < key);
    segs.get(i)
        .filter(|s| crate::key::user_key(&s.meta.smallest) <= key)
}

fn overlaps(meta: &crate::segment::SegmentMeta, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let (small, large) = (
        crate::key::user_key(&meta.smallest),
        crate::key::user_key(&meta.largest),
    );
    let above_lower = match lower {
        Bound::Included(k) => large >= k,
        Bound::Excluded(k) => large > k,
        Bound::Unbounded => true,
    };
    let below_upper = match upper {
        Bound::Included(k) => small <= k,
        Bound::Excluded(k) => small < k,
        Bound::Unbounded => true,
    };
    above_lower && below_upper
}

/// A consistent read-only view of the database at one sequence number.
///
/// Reads through a snapshot see every write up to [`Snapshot::seqno`] and none after, for as
/// long as the snapshot lives, while writes and flushes go on. Compaction keeps the versions a
/// live snapshot can see.
pub struct Snapshot {
    inner: Arc<Inner>,
    seqno: SeqNo,
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn seqno(&self) -> SeqNo {
        self.seqno
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.get_at(key.as_ref(), self.seqno)
    }

    /// Keys in `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> DbIter {
        self.inner.iter_at(
            bound_ref(range.start_bound()),
            bound_ref(range.end_bound()),
            self.seqno,
        )
    }

    /// Keys starting with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        self.inner.prefix_at(prefix.as_ref(), self.seqno)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snaps = self.inner.snapshots.lock();
        if let Some(n) = snaps.get_mut(&self.seqno) {
            *n -= 1;
            if *n == 0 {
                snaps.remove(&self.seqno);
            }
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("seqno", &self.seqno)
            .finish()
    }
}
