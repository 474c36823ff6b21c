//! The compaction thread, its dedicated pool, manual compaction and waiting for idleness.

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;

use super::job::{self, JobContext, JobOutcome};
use super::{picker, Job};
use crate::db::{Inner, SuperVersion};
use crate::error::{Error, Result};
use crate::manifest::LEVELS;
use crate::memtable::Memtable;
use crate::options::{CompactionFailPoint, Options};

/// Compaction counters of one level (the level the outputs were written to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelCompactionStats {
    /// Compactions that wrote into this level (moves included).
    pub compactions: u64,
    /// Segments moved into this level without rewriting.
    pub moves: u64,
    /// Bytes of input segments read by compactions into this level.
    pub bytes_read: u64,
    /// The part of `bytes_read` that came from shallower levels.
    pub bytes_in: u64,
    /// Bytes of segments compactions wrote into this level.
    pub bytes_written: u64,
    /// Shadowed versions and tombstones those compactions dropped.
    pub entries_dropped: u64,
    /// Time spent in those compactions, in microseconds.
    pub time_us: u64,
}

#[derive(Default)]
struct LevelCounters {
    compactions: AtomicU64,
    moves: AtomicU64,
    bytes_read: AtomicU64,
    bytes_in: AtomicU64,
    bytes_written: AtomicU64,
    entries_dropped: AtomicU64,
    time_us: AtomicU64,
}

/// Compaction state of an open database.
///
/// # Concurrency
/// `job_lock` serialises jobs (background and manual); the picker runs under it, so a job's
/// inputs are always in the current version when it starts. Lock order: `job_lock` before
/// `versions` and `sv_lock`; the background thread takes `bg` only to wait for work.
pub(crate) struct Compactor {
    pool: rayon::ThreadPool,
    job_lock: Mutex<()>,
    cursors: Mutex<Vec<Vec<u8>>>,
    levels: Vec<LevelCounters>,
    /// Estimated bytes of pending compaction work, for backpressure.
    pub pending_bytes: AtomicU64,
    /// True while a job runs.
    pub running: std::sync::atomic::AtomicBool,
    pub thread: Mutex<Option<JoinHandle<()>>>,
}

impl Compactor {
    /// Builds the dedicated pool.
    pub fn new(opts: &Options) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.compaction.threads)
            .thread_name(|i| format!("alluvium-compact-{i}"))
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("cannot start the compaction pool: {e}"))
            })?;
        Ok(Compactor {
            pool,
            job_lock: Mutex::new(()),
            cursors: Mutex::new(vec![Vec::new(); LEVELS]),
            levels: (0..LEVELS).map(|_| LevelCounters::default()).collect(),
            pending_bytes: AtomicU64::new(0),
            running: std::sync::atomic::AtomicBool::new(false),
            thread: Mutex::new(None),
        })
    }

    /// Per-level counters.
    pub fn level_stats(&self) -> Vec<LevelCompactionStats> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.levels
            .iter()
            .map(|c| LevelCompactionStats {
                compactions: get(&c.compactions),
                moves: get(&c.moves),
                bytes_read: get(&c.bytes_read),
                bytes_in: get(&c.bytes_in),
                bytes_written: get(&c.bytes_written),
                entries_dropped: get(&c.entries_dropped),
                time_us: get(&c.time_us),
            })
            .collect()
    }
}

/// Swaps in a super version holding the version set's current version, without `retired`
/// among the immutable memtables.
///
/// Reads the current version under `sv_lock`, so a flush and a compaction finishing at the
/// same time can never install an older version over a newer one.
pub(crate) fn install_current_version(inner: &Inner, retired: Option<&Arc<Memtable>>) {
    let _guard = inner.sv_lock.lock();
    let version = inner.versions.lock().current();
    let pending = picker::pending_bytes(&version, &inner.opts.compaction);
    inner
        .compactor
        .pending_bytes
        .store(pending, Ordering::Relaxed);
    let sv = inner.super_version.load_full();
    let imms = sv
        .imms
        .iter()
        .filter(|m| retired.is_none_or(|r| !Arc::ptr_eq(m, r)))
        .cloned()
        .collect();
    inner.super_version.store(Arc::new(SuperVersion {
        mem: sv.mem.clone(),
        imms,
        version,
    }));
}

fn has_work(inner: &Inner) -> bool {
    let version = inner.super_version.load().version.clone();
    let cursors = inner.compactor.cursors.lock();
    picker::pick(&version, &inner.opts.compaction, &cursors).is_some()
}

/// The compaction thread: waits for work, runs one job at a time, until shutdown.
pub(crate) fn compaction_loop(inner: &Arc<Inner>) {
    let mut delay = std::time::Duration::from_millis(10);
    loop {
        {
            let mut bg = inner.bg.lock();
            loop {
                if bg.shutdown || bg.error.is_some() {
                    return;
                }
                if inner.opts.compaction.enabled && has_work(inner) {
                    break;
                }
                inner.bg_cv.wait(&mut bg);
            }
        }
        match run_picked(inner) {
            Ok(_) => {
                delay = std::time::Duration::from_millis(10);
                notify(inner);
            }
            Err(_) if inner.closed.load(Ordering::Acquire) => return,
            Err(e) if e.is_no_space() => {
                // The job removed its outputs; retry once space may be back.
                inner
                    .counters
                    .background_retries
                    .fetch_add(1, Ordering::Relaxed);
                if !crate::write::back_off(inner, &mut delay) {
                    return;
                }
            }
            Err(e) => {
                crate::write::set_bg_error(inner, format!("compaction failed: {e}"));
                return;
            }
        }
    }
}

fn notify(inner: &Inner) {
    let _bg = inner.bg.lock();
    inner.bg_cv.notify_all();
}

/// Picks under the job lock and runs the job; `Ok(false)` when there was nothing to do.
fn run_picked(inner: &Inner) -> Result<bool> {
    let _job = inner.compactor.job_lock.lock();
    let _running = Running::new(inner);
    let version = inner.versions.lock().current();
    let picked = picker::pick(
        &version,
        &inner.opts.compaction,
        &inner.compactor.cursors.lock(),
    );
    match picked {
        Some(job) => run_job(inner, &job).map(|()| true),
        None => Ok(false),
    }
}

/// Marks a compaction as running from before it picks until after everything it held (the
/// version it read, its input segments, whose last drop deletes obsolete files) is dropped:
/// declared first, it is dropped last, so [`wait_idle`] never returns while inputs linger.
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.compactor.running.store(true, Ordering::Release);
        Running(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.compactor.running.store(false, Ordering::Release);
    }
}

/// Runs `job` and installs its result. The caller holds the job lock.
fn run_job(inner: &Inner, job: &Job) -> Result<()> {
    let started = Instant::now();
    let outcome = execute(inner, job)?;
    record(inner, job, &outcome, started);
    Ok(())
}

fn execute(inner: &Inner, job: &Job) -> Result<JobOutcome> {
    let version = inner.versions.lock().current();
    let snapshots = inner.live_snapshots();
    let next_file_number = || inner.versions.lock().new_file_number();
    let ctx = JobContext {
        dir: &inner.dir,
        opts: &inner.opts,
        version: &version,
        snapshots,
        next_file_number: &next_file_number,
        shutdown: &inner.closed,
        pool: &inner.compactor.pool,
    };
    let outcome = job::run(job, &ctx)?;
    fail_at(inner, CompactionFailPoint::AfterOutputs)?;
    let applied = inner
        .versions
        .lock()
        .log_and_apply(outcome.edit.clone(), &outcome.opened);
    if let Err(e) = applied {
        // Only a full disk means the edit was cut off for sure: then the outputs were never
        // named and go (a retry writes others). After any other failure the edit may have
        // reached the manifest, so they stay. A move's "output" is its live input: it stays.
        if e.is_no_space() && !job.is_trivial_move() {
            outcome.opened.iter().for_each(|s| s.mark_obsolete());
        }
        return Err(e);
    }
    fail_at(inner, CompactionFailPoint::AfterManifest)?;
    install_current_version(inner, None);
    Ok(outcome)
}

fn fail_at(inner: &Inner, point: CompactionFailPoint) -> Result<()> {
    if inner.opts.compaction.fail_point == point {
        return Err(Error::Closed(format!(
            "injected compaction failure at {point:?}"
        )));
    }
    Ok(())
}

fn record(inner: &Inner, job: &Job, outcome: &JobOutcome, started: Instant) {
    let c = &inner.compactor.levels[job.output_level];
    c.compactions.fetch_add(1, Ordering::Relaxed);
    c.moves
        .fetch_add(u64::from(job.is_trivial_move()), Ordering::Relaxed);
    c.bytes_read
        .fetch_add(outcome.bytes_read, Ordering::Relaxed);
    let shallower = job.inputs.iter().filter(|(l, _)| *l != job.output_level);
    let bytes_in: u64 = shallower.map(|(_, s)| s.meta.size_bytes).sum();
    c.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
    c.bytes_written
        .fetch_add(outcome.bytes_written, Ordering::Relaxed);
    c.entries_dropped
        .fetch_add(outcome.dropped, Ordering::Relaxed);
    c.time_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    let level = job.level();
    let picked = job.inputs.iter().filter(|(l, _)| *l == level);
    let largest = picked
        .map(|(_, s)| s.largest_user_key())
        .max()
        .unwrap_or_default()
        .to_vec();
    if let Some(cursor) = inner.compactor.cursors.lock().get_mut(level) {
        *cursor = largest;
    }
}

/// Compacts every segment holding keys in `[lower, upper]` into the last level, after
/// flushing the memtable, dropping every version and tombstone no snapshot needs.
pub(crate) fn compact_range(inner: &Inner, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<()> {
    crate::write::flush_now(inner)?;
    let _job = inner.compactor.job_lock.lock();
    let _running = Running::new(inner);
    let version = inner.versions.lock().current();
    let lo = match lower {
        Bound::Included(k) | Bound::Excluded(k) => k.to_vec(),
        Bound::Unbounded => Vec::new(),
    };
    let hi = match upper {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.to_vec()),
        Bound::Unbounded => version.all().map(|s| s.largest_user_key().to_vec()).max(),
    };
    let Some(hi) = hi else { return Ok(()) };
    match picker::manual_job(&version, &lo, &hi) {
        Some(job) => run_job(inner, &job),
        None => Ok(()),
    }?;
    notify(inner);
    Ok(())
}

/// Waits until no memtable awaits flush and no compaction is due or running.
pub(crate) fn wait_idle(inner: &Inner) -> Result<()> {
    let idle = || {
        let busy = !inner.super_version.load().imms.is_empty()
            || inner.flushing.load(Ordering::Acquire)
            || inner.compactor.running.load(Ordering::Acquire)
            || (inner.opts.compaction.enabled && has_work(inner));
        !busy
    };
    // `running` changes without a notification of its own: poll it.
    crate::write::wait_bg(inner, Some(std::time::Duration::from_millis(50)), idle)
}
