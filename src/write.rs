//! The write path: group commit, memtable rotation, backpressure and the flush thread.
//!
//! A writer queues its batch; the first writer to find no leader becomes the leader, takes
//! every queued batch, gives them contiguous sequence numbers, appends them to the commit log
//! with one `write`, `fdatasync`s once if any of them asked for it, inserts them into the
//! memtable, and only then publishes the new visible sequence number. Followers sleep until
//! their batch is done.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::batch::WriteBatch;
use crate::commit_log::{now_us, record_header, LogWriter, RecordBody};
use crate::db::{Inner, SuperVersion};
use crate::error::{Error, Result};
use crate::frame::encode_frame_parts;
use crate::group_commit::{GroupCommit, Slot};
use crate::key::SeqNo;
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use parking_lot::Mutex;

/// Bytes of batches one leader commits at most (one oversized batch still goes alone).
const GROUP_SIZE_BYTES_MAX: usize = 4 << 20;

/// The commit-log side of the write path, owned by whoever holds `Inner::log`.
#[derive(Debug)]
pub(crate) struct LogState {
    pub writer: LogWriter,
    /// The last sequence number handed out.
    pub last_seqno: SeqNo,
    frames: Vec<u8>,
    /// The number of the log file a rotation switched memtables for but has not created
    /// yet ([`open_pending_log`]); nothing is appended while it is set.
    pending_log: Option<u64>,
}

impl LogState {
    pub fn new(writer: LogWriter, last_seqno: SeqNo) -> Self {
        LogState {
            writer,
            last_seqno,
            frames: Vec::new(),
            pending_log: None,
        }
    }
}

/// Log files a rotation sealed without syncing them, oldest first (`Inner::unsynced_logs`).
///
/// # Invariants
/// Every sealed log file not in here is durable. A write that asks for a sync, a close, a
/// new subscription, and a flush whose logs the feed keeps ([`feed_keeps_logs`]) sync
/// every file in here first (oldest first), so a log file after a torn or short one never
/// holds a synced write: recovery may end the log at the first file that is cut short
/// (`recovery::replay`) and lose nothing that was acknowledged as durable.
#[derive(Debug, Default)]
pub(crate) struct UnsyncedLogs(Mutex<Vec<LogWriter>>);

impl UnsyncedLogs {
    /// Adds a sealed log file, newer than every file already held.
    pub fn push(&self, sealed: LogWriter) {
        self.0.lock().push(sealed);
    }

    /// `fdatasync`s every held file, oldest first, and lets go of each once it is durable.
    pub fn sync_all(&self) -> Result<()> {
        let mut held = self.0.lock();
        while let Some(oldest) = held.first_mut() {
            oldest.sync()?;
            held.remove(0);
        }
        Ok(())
    }

    /// Lets go of log file `number` without syncing it (retention deleted it).
    pub fn forget(&self, number: u64) {
        self.0.lock().retain(|w| w.number() != number);
    }
}

/// Whether retention may keep flushed log files past their flush: some subscription exists
/// or the policy keeps a minimum of bytes. A flush then syncs them (else a power loss could
/// cut a file the feed still serves; it is deleted right after the flush otherwise).
pub(crate) fn feed_keeps_logs(inner: &Inner) -> bool {
    inner.opts.feed_retention_bytes_min > 0 || !inner.feed.subs.lock().is_empty()
}

/// A batch waiting in the group-commit queue.
pub(crate) struct PendingWrite {
    batch: WriteBatch,
    /// The batch's subscription acknowledgements, resolved to ids.
    acks: Vec<crate::commit_log::RecordAck>,
    /// The log record's body, encoded (and compressed) by the writer before it queues.
    body: RecordBody,
    sync: bool,
}

/// Writers waiting to be committed (see [`GroupCommit`]).
pub(crate) type WriteQueue = GroupCommit<PendingWrite, Result<SeqNo>>;

type Pending = Slot<PendingWrite, Result<SeqNo>>;

/// Commits `batch` through the group-commit queue.
pub(crate) fn write(inner: &Inner, batch: WriteBatch, sync: bool) -> Result<SeqNo> {
    batch.validate()?;
    inner.check_open()?;
    if batch.is_empty() {
        return Ok(inner.visible_seqno.load(Ordering::Acquire));
    }
    let acks = crate::feed::resolve_acks(inner, &batch)?;
    let body = RecordBody::encode(&batch, &acks, inner.opts.log_compression);
    let item = PendingWrite {
        batch,
        acks,
        body,
        sync,
    };
    let weight = |w: &PendingWrite| w.batch.size_bytes();
    inner
        .queue
        .submit(item, weight, GROUP_SIZE_BYTES_MAX, |group| {
            lead(inner, group)
        })
}

fn lead(inner: &Inner, group: &[Arc<Pending>]) {
    let mut log = inner.log.lock();
    let outcome = match log.as_mut() {
        Some(log) => commit_group(inner, log, group),
        None => Err(Error::Closed("the database was closed".into())),
    };
    match outcome {
        Ok(firsts) => {
            for (w, first) in group.iter().zip(firsts) {
                w.complete(Ok(first));
            }
        }
        // A full disk before anything became durable is not sticky: the group fails, the
        // log file was cut back, and the next write may succeed once space is freed.
        Err(e) if e.is_no_space() => {
            for w in group {
                w.complete(Err(copy_error(&e)));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            if !matches!(e, Error::Closed(_)) {
                set_bg_error(inner, msg.clone());
            }
            for w in group {
                w.complete(Err(Error::Closed(format!("write failed: {msg}"))));
            }
        }
    }
}

fn commit_group(inner: &Inner, log: &mut LogState, group: &[Arc<Pending>]) -> Result<Vec<SeqNo>> {
    inner.check_no_error()?;
    make_room(inner, log)?;
    let now = now_us();
    let mut seqno = log.last_seqno;
    let mut firsts = Vec::with_capacity(group.len());
    log.frames.clear();
    for w in group {
        let header = record_header(seqno + 1, w.batch.len() as u32, now);
        encode_frame_parts(&mut log.frames, &[&header, w.body.as_bytes()]);
        // A batch of acknowledgements only takes no sequence number; it reports the last one.
        firsts.push(seqno + u64::from(!w.batch.ops().is_empty()));
        seqno += w.batch.len() as u64;
    }
    if let Err(e) = log.writer.append(&log.frames) {
        return Err(undo_append(inner, log, e));
    }
    if group.iter().any(|w| w.sync) {
        // After a failed fdatasync nothing is known about what reached the disk: never
        // retried, never reported as a full disk (it stops writes; see `lead`). Older log
        // files first: a synced write must never follow a log file a power loss can cut.
        inner.unsynced_logs.sync_all().map_err(|e| sticky(&e))?;
        log.writer.sync().map_err(|e| sticky(&e))?;
        inner.counters.log_syncs.fetch_add(1, Ordering::Relaxed);
    }
    let mem = inner.super_version.load().mem.clone();
    for (w, first) in group.iter().zip(&firsts) {
        insert_batch(&mem, *first, &w.batch);
    }
    apply_acks(inner, group, &firsts);
    log.last_seqno = seqno;
    inner.visible_seqno.store(seqno, Ordering::Release);
    inner.feed.notify();
    inner.counters.commit_groups.fetch_add(1, Ordering::Relaxed);
    inner
        .counters
        .batches
        .fetch_add(group.len() as u64, Ordering::Relaxed);
    let user_bytes: usize = group.iter().map(|w| w.batch.size_bytes()).sum();
    inner
        .counters
        .user_bytes
        .fetch_add(user_bytes as u64, Ordering::Relaxed);
    Ok(firsts)
}

/// Moves the positions of the subscriptions the group's batches acknowledge; each batch's
/// acknowledgements count as committed after its last sequence number.
fn apply_acks(inner: &Inner, group: &[Arc<Pending>], firsts: &[SeqNo]) {
    let with_acks = group.iter().zip(firsts).filter(|(w, _)| !w.acks.is_empty());
    for (w, first) in with_acks {
        let after = first + (w.batch.len() as u64).saturating_sub(1);
        inner.feed.subs.lock().apply_acks(after, &w.acks);
    }
}

/// After a failed append: cuts the log file back to its last complete record. If that works
/// a full disk stays a full disk (not sticky); otherwise the error becomes sticky.
fn undo_append(inner: &Inner, log: &mut LogState, e: Error) -> Error {
    match log.writer.rollback(&**inner.opts.file_system_value()) {
        Ok(()) if e.is_no_space() => e,
        _ => sticky(&e),
    }
}

/// The same error, never classified as a full disk.
fn sticky(e: &Error) -> Error {
    let source = std::io::Error::other(e.to_string());
    Error::Io {
        path: inner_path(e),
        source,
    }
}

fn inner_path(e: &Error) -> std::path::PathBuf {
    match e {
        Error::Io { path, .. } | Error::Corruption { path, .. } => path.clone(),
        _ => std::path::PathBuf::new(),
    }
}

/// A copy of an I/O error for every writer of a failed group.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Closed(other.to_string()),
    }
}

/// Inserts every operation of `batch`, the i-th at sequence number `first + i`.
pub(crate) fn insert_batch(mem: &Memtable, first: SeqNo, batch: &WriteBatch) {
    for (i, op) in batch.ops().iter().enumerate() {
        mem.insert(op.key(), first + i as u64, op.kind(), op.value());
    }
}

/// Rotates a full memtable; waits while too many immutable memtables await flush, or while
/// one does and the active memtable holds `flush_headroom_bytes`.
fn make_room(inner: &Inner, log: &mut LogState) -> Result<()> {
    throttle(inner)?;
    open_pending_log(inner, log)?;
    let headroom = inner.opts.flush_headroom_bytes_value();
    loop {
        let sv = inner.super_version.load();
        let size = sv.mem.size_bytes();
        if size < inner.opts.memtable_size_bytes {
            if size < headroom || sv.imms.is_empty() {
                return Ok(());
            }
            // The writers outrun the flush: bound the memtables' memory (flush_headroom_bytes).
            let waiting = sv.imms.len();
            drop(sv);
            wait_for_flush(inner, waiting)?;
            continue;
        }
        if sv.imms.len() < inner.opts.immutable_memtables_max {
            return rotate(inner, log);
        }
        let waiting = sv.imms.len();
        drop(sv);
        wait_for_flush(inner, waiting)?;
    }
}

/// Slows writers down, then stops them, while compaction is behind (level-0 segment count or
/// estimated pending compaction bytes past the configured limits). Stops lift as compaction
/// catches up; with compaction disabled nothing would lift them, so nothing throttles.
fn throttle(inner: &Inner) -> Result<()> {
    let c = &inner.opts.compaction;
    if !c.enabled {
        return Ok(());
    }
    let (level0, pending) = compaction_debt(inner);
    if level0 >= c.level0_stop || pending >= c.pending_stop_bytes {
        return wait_for_compaction(inner);
    }
    if level0 >= c.level0_slowdown || pending >= c.pending_slowdown_bytes {
        let started = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(1));
        count_stall(inner, &inner.counters.write_slowdowns, started);
    }
    Ok(())
}

/// Counts one stall of the kind `counter` counts, and the time it took since `started`.
fn count_stall(inner: &Inner, counter: &std::sync::atomic::AtomicU64, started: Instant) {
    counter.fetch_add(1, Ordering::Relaxed);
    let us = started.elapsed().as_micros() as u64;
    inner
        .counters
        .write_stall_us
        .fetch_add(us, Ordering::Relaxed);
}

fn compaction_debt(inner: &Inner) -> (usize, u64) {
    let level0 = inner.super_version.load().version.level(0).len();
    (
        level0,
        inner.compactor.pending_bytes.load(Ordering::Relaxed),
    )
}

fn wait_for_compaction(inner: &Inner) -> Result<()> {
    let c = &inner.opts.compaction;
    let started = Instant::now();
    wait_bg(inner, None, || {
        let (level0, pending) = compaction_debt(inner);
        level0 < c.level0_stop && pending < c.pending_stop_bytes
    })?;
    count_stall(inner, &inner.counters.write_stops, started);
    Ok(())
}

/// Sleeps until fewer than `waiting` immutable memtables are left (or background work fails).
/// `waiting` is the count the caller saw when it decided to wait: counting again here would
/// miss a flush that ended in between, and then wait for one more that may never come (none
/// when that flush retired the last immutable memtable).
fn wait_for_flush(inner: &Inner, waiting: usize) -> Result<()> {
    let started = Instant::now();
    let waited = wait_bg(inner, None, || {
        inner.super_version.load().imms.len() < waiting
    });
    count_stall(inner, &inner.counters.write_stalls, started);
    waited
}

/// Waits on `bg_cv` until `done()` holds, checked under the `bg` lock (so no change that
/// notifies is missed); fails once background work failed or the database closes. With a
/// `poll` interval it also rechecks that often, for conditions no notification covers.
pub(crate) fn wait_bg(
    inner: &Inner,
    poll: Option<std::time::Duration>,
    done: impl Fn() -> bool,
) -> Result<()> {
    let mut bg = inner.bg.lock();
    loop {
        if let Some(e) = &bg.error {
            return Err(Error::Closed(format!("background work failed: {e}")));
        }
        if bg.shutdown {
            return Err(Error::Closed("the database was closed".into()));
        }
        if done() {
            return Ok(());
        }
        match poll {
            Some(every) => drop(inner.bg_cv.wait_for(&mut bg, every)),
            None => inner.bg_cv.wait(&mut bg),
        }
    }
}

/// Makes the memtable immutable and starts a new memtable and a new log file.
///
/// The memtables switch first, so the flush thread starts on the full one while this thread
/// seals the old log file and creates the new one (two small syncs: the new file's header
/// and the directory). Appends wait until the new file exists ([`open_pending_log`]).
fn rotate(inner: &Inner, log: &mut LogState) -> Result<()> {
    open_pending_log(inner, log)?;
    let number = inner.versions.lock().new_file_number();
    let _guard = inner.sv_lock.lock();
    let sv = inner.super_version.load_full();
    let mut imms = sv.imms.clone();
    imms.push(sv.mem.clone());
    let mem = Arc::new(Memtable::with_compression(
        number,
        inner.opts.memtable_compression,
    ));
    inner.super_version.store(Arc::new(SuperVersion {
        mem,
        imms,
        version: sv.version.clone(),
    }));
    drop(_guard);
    log.pending_log = Some(number);
    notify_bg(inner);
    open_pending_log(inner, log)
}

/// Finishes the log file and creates the one a rotation numbered, if that is still to do
/// (a full disk can fail it; every later write tries again before appending a byte).
///
/// The entries of the new memtable must be in the new file only: a flush of the old
/// memtable names the new file as the first log to replay, and retention may then delete
/// the old one.
fn open_pending_log(inner: &Inner, log: &mut LogState) -> Result<()> {
    let Some(number) = log.pending_log else {
        return Ok(());
    };
    // The old file is complete: cut it to its exact length, but leave it unsynced (its pages
    // usually never reach the disk: the flush makes it redundant and retention deletes it
    // first). It joins `unsynced_logs` before anything is appended to the new file, so a
    // synced write there syncs it first. Sealing twice (after a failed creation) changes
    // nothing.
    let fs = &**inner.opts.file_system_value();
    log.writer
        .seal(fs, log.last_seqno + 1)
        .map_err(|e| sticky(&e))?;
    let created = LogWriter::create(fs, &inner.dir, number)?;
    let sealed = std::mem::replace(&mut log.writer, created);
    inner.unsynced_logs.push(sealed);
    inner.feed.logs.lock().push(number, log.last_seqno + 1);
    log.pending_log = None;
    notify_bg(inner); // a flush may wait for this file (`flush_one`)
    Ok(())
}

/// Flushes the memtable now and waits until nothing older than this call is unflushed.
pub(crate) fn flush_now(inner: &Inner) -> Result<()> {
    inner.check_open()?;
    {
        let mut guard = inner.log.lock();
        let log = guard
            .as_mut()
            .ok_or_else(|| Error::Closed("the database was closed".into()))?;
        if !inner.super_version.load().mem.is_empty() {
            rotate(inner, log)?;
        }
    }
    // Until the flush thread is done, retention may still have to delete the flushed files.
    wait_bg(inner, None, || {
        inner.super_version.load().imms.is_empty() && !inner.flushing.load(Ordering::Acquire)
    })
}

pub(crate) fn set_bg_error(inner: &Inner, msg: String) {
    inner.bg.lock().error.get_or_insert(msg);
    inner.bg_cv.notify_all();
}

/// Wakes every waiter on `bg_cv` after a super-version change.
///
/// Waiters check their condition while holding `bg`; taking it here before notifying means a
/// waiter is either still before its check (and sees the change) or already waiting (and is
/// woken), so no wakeup is lost.
fn notify_bg(inner: &Inner) {
    let _bg = inner.bg.lock();
    inner.bg_cv.notify_all();
}

/// Waits for the in-flight leader, syncs the commit log and closes it.
pub(crate) fn close_log(inner: &Inner) -> Result<()> {
    let mut guard = inner.log.lock();
    match guard.take() {
        Some(mut log) => {
            inner.unsynced_logs.sync_all()?;
            log.writer
                .finish(&**inner.opts.file_system_value(), log.last_seqno + 1)
        }
        None => Ok(()),
    }
}

/// The flush thread: turns immutable memtables into level-0 segments, oldest first.
pub(crate) fn flush_loop(inner: &Arc<Inner>) {
    let mut delay = BACKOFF_MIN;
    loop {
        let Some(mem) = next_to_flush(inner) else {
            return;
        };
        let started = Instant::now();
        let outcome = flush_one(inner, mem);
        if outcome.is_ok() {
            inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
            inner
                .counters
                .flush_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        inner.flushing.store(false, Ordering::Release);
        notify_bg(inner);
        match outcome {
            Ok(()) => {}
            Err(e) if e.is_no_space() => {
                // Not sticky: writers stall on the full memtables until space is back.
                inner
                    .counters
                    .background_retries
                    .fetch_add(1, Ordering::Relaxed);
                if !back_off(inner, &mut delay) {
                    return;
                }
                continue;
            }
            Err(e) => {
                set_bg_error(inner, format!("flush failed: {e}"));
                return;
            }
        }
        delay = BACKOFF_MIN;
    }
}

/// How long a flush waits for the log file its rotation is creating before it leaves log
/// retention to the next flush, and how often it looks.
const PENDING_LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const PENDING_LOG_POLL: std::time::Duration = std::time::Duration::from_millis(10);

const BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(10);
const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Sleeps `delay` (doubling it up to a second) before background work retries after a full
/// disk; false when the database closed meanwhile.
pub(crate) fn back_off(inner: &Inner, delay: &mut std::time::Duration) -> bool {
    let mut bg = inner.bg.lock();
    if !bg.shutdown {
        inner.bg_cv.wait_for(&mut bg, *delay);
    }
    *delay = (*delay * 2).min(BACKOFF_MAX);
    !bg.shutdown && bg.error.is_none()
}

fn next_to_flush(inner: &Inner) -> Option<Arc<Memtable>> {
    let mut bg = inner.bg.lock();
    loop {
        if bg.shutdown || bg.error.is_some() {
            return None;
        }
        if let Some(mem) = inner.super_version.load().imms.first() {
            inner.flushing.store(true, Ordering::Release);
            return Some(mem.clone());
        }
        inner.bg_cv.wait(&mut bg);
    }
}

/// Flushes `mem` (the oldest immutable memtable) to a level-0 segment, retires it, and then
/// applies log retention. `mem` is taken by value so that its memory is freed as soon as the
/// segment replaces it, before the slower file deletions of retention: a writer filling the
/// next memtable meanwhile reuses that memory instead of growing the heap.
fn flush_one(inner: &Inner, mem: Arc<Memtable>) -> Result<()> {
    let mut edit = VersionEdit::default();
    let mut opened = Vec::new();
    if !mem.is_empty() {
        let id = inner.versions.lock().new_file_number();
        let snapshots = inner.live_snapshots();
        let (added, live) =
            crate::flush::write_segment(&inner.dir, id, &mem, snapshots, &inner.opts)?;
        let bytes = added.meta.size_bytes;
        inner
            .counters
            .flushed_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        edit.added.push(added);
        opened.push(live);
    }
    let next_log = next_log_number(inner, &mem);
    edit.log_number = Some(next_log);
    if feed_keeps_logs(inner) {
        // Once the edit names `next_log` recovery no longer reads the flushed files, and a
        // power loss cutting one would leave a hole in the feed (UnsyncedLogs).
        inner.unsynced_logs.sync_all()?;
    }
    {
        let mut vs = inner.versions.lock();
        let last_seqno = vs.state().last_seqno.max(mem.seqno_max());
        edit.last_seqno = Some(last_seqno);
        // Positions acknowledged by the flushed batches become durable with their data.
        edit.subscriptions = inner.feed.subs.lock().take_flushed(last_seqno);
        if let Err(e) = vs.log_and_apply(edit, &opened) {
            // Only a full disk means the edit was cut off for sure: then the segment was never
            // named and goes (a retry writes another). After any other failure the edit may
            // have reached the manifest, so the file stays (an orphan at worst, removed at
            // the next open).
            if e.is_no_space() {
                opened.iter().for_each(|s| s.mark_obsolete());
            }
            return Err(e);
        }
    }
    crate::compaction::install_current_version(inner, Some(&mem));
    drop(mem);
    // The flush can end before the rotation that handed it the memtable has created the
    // next log file (it syncs the new file and the directory), and retention keeps the newest
    // file: wait for the new one (the rotation notifies), so the old one can go now. Never
    // by taking the log lock: a writer may hold it while it waits for this flush. A creation
    // that keeps failing (a full disk) leaves retention to the next flush after a second.
    let newest = || inner.feed.logs.lock().files().last().map(|f| f.number);
    let deadline = Instant::now() + PENDING_LOG_WAIT;
    let waited = wait_bg(inner, Some(PENDING_LOG_POLL), || {
        newest() >= Some(next_log) || Instant::now() >= deadline
    });
    if waited.is_err() || newest() < Some(next_log) {
        return Ok(());
    }
    inner
        .feed
        .flushed_log_number
        .store(next_log, Ordering::Release);
    crate::feed::apply_retention(inner)
}

/// The first log file of the memtable after `mem`: everything before it is now in segments.
fn next_log_number(inner: &Inner, mem: &Arc<Memtable>) -> u64 {
    let sv = inner.super_version.load();
    let at = sv.imms.iter().position(|m| Arc::ptr_eq(m, mem));
    let next = at.and_then(|i| sv.imms.get(i + 1)).unwrap_or(&sv.mem);
    next.first_log_number()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A writer decides to wait on the super version it loaded; the flush it waits for may
    /// end before the wait starts. The wait must count from what the writer saw: counting
    /// again would find no immutable memtable left and wait for a flush that never comes
    /// (the hang `writers_wait_for_compaction_and_then_resume` ran into once).
    #[test]
    fn a_wait_for_a_flush_that_already_ended_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path(), crate::Options::default()).unwrap();
        let inner = db.inner().clone();
        assert!(inner.super_version.load().imms.is_empty());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(wait_for_flush(&inner, 1).is_ok()));
        let returned = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(
            returned,
            Ok(true),
            "the writer saw one immutable memtable, now none"
        );
    }
}
