//! Opening a database: `CURRENT` -> manifest -> segments -> commit log replay.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};

use crate::commit_log::{LogFile, LogWriter, TailState, LOG_HEADER_LEN};
use crate::db::{BgState, Inner, SuperVersion};
use crate::error::{Error, IoContext, Result};
use crate::feed::{FeedState, LogIndex, SubscriptionTable};
use crate::files::{self, DirLock, FileKind};
use crate::fs::FileSystem;
use crate::key::SeqNo;
use crate::manifest::{read_current, read_manifest, ManifestState, VersionSet};
use crate::memtable::Memtable;
use crate::options::{Options, RecoveryMode};
use crate::write::{insert_batch, LogState};

/// Bytes of a commit log that recovery did not replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTail {
    /// The log file.
    pub path: PathBuf,
    /// Offset of the first byte not replayed.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    /// Why they were dropped.
    pub reason: String,
}

/// What the last open found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Log files read.
    pub logs_replayed: usize,
    /// Records (batches) replayed into the memtable.
    pub records_replayed: u64,
    /// The newest sequence number after recovery.
    pub last_seqno: SeqNo,
    /// What was dropped: with the default recovery mode, a torn tail of one log file (or a
    /// log file that ends short) and the log files after it; with
    /// [`RecoveryMode::PointInTime`], everything from the first bad record on.
    pub dropped: Vec<DroppedTail>,
    /// Log files removed whole because they followed the point of recovery.
    pub removed_logs: Vec<PathBuf>,
}

/// Opens or creates the database in `dir`.
pub(crate) fn open(dir: &Path, opts: Options) -> Result<Arc<Inner>> {
    opts.validate()?;
    let opts = opts.with_resolved_block_cache();
    prepare_dir(dir, &opts)?;
    let lock = DirLock::acquire(dir)?;
    let id = crate::identity::load_or_create(&**opts.file_system_value(), dir)?;
    let listing = files::list(dir)?;
    let mut state = load_state(dir, &opts, &listing)?;
    let newest = listing.iter().filter_map(file_number).max().unwrap_or(0);
    state.next_file_number = state.next_file_number.max(newest + 1).max(1);
    let fs = opts.file_system_value().clone();
    let mut versions = VersionSet::open(fs.clone(), dir, state, opts.block_cache_value())?;
    remove_orphans(dir, &versions, &listing)?;
    let logs: Vec<u64> = listing
        .iter()
        .filter_map(|k| match k {
            FileKind::Log(n) if *n >= versions.state().log_number => Some(*n),
            _ => None,
        })
        .collect();
    let log_number = versions.new_file_number();
    let first_log = logs.first().copied().unwrap_or(log_number);
    let mem = Memtable::with_compression(first_log, opts.memtable_compression_value());
    let mut subs = SubscriptionTable::from_manifest(&versions.state().subscriptions);
    let report = replay(
        (&*fs, dir),
        &logs,
        (&mem, &mut subs),
        versions.state().last_seqno,
        opts.recovery_mode_value(),
    )?;
    let index = LogIndex::build(dir, log_number, report.last_seqno + 1)?;
    let feed = FeedState::new(index, subs, versions.state().log_number);
    let writer = LogWriter::create(&*fs, dir, log_number)?;
    let version = versions.current();
    let sv = SuperVersion {
        mem: Arc::new(mem),
        imms: Vec::new(),
        version,
    };
    let compactor = crate::compaction::Compactor::new(&opts)?;
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        id,
        opts,
        lock: Mutex::new(Some(lock)),
        super_version: ArcSwap::from_pointee(sv),
        sv_lock: Mutex::new(()),
        visible_seqno: AtomicU64::new(report.last_seqno),
        queue: Default::default(),
        log: Mutex::new(Some(LogState::new(writer, report.last_seqno))),
        unsynced_logs: Default::default(),
        versions: Mutex::new(versions),
        bg: Mutex::new(BgState::default()),
        bg_cv: Condvar::new(),
        flushing: std::sync::atomic::AtomicBool::new(false),
        snapshots: Mutex::default(),
        counters: Default::default(),
        recovery: report,
        closed: AtomicBool::new(false),
        flush_thread: Mutex::new(None),
        compactor,
        feed,
    });
    crate::feed::apply_retention(&inner)?;
    Ok(inner)
}

fn prepare_dir(dir: &Path, opts: &Options) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    if !opts.create_if_missing_value() {
        return Err(Error::InvalidArgument(format!(
            "{} does not exist and create_if_missing is false",
            dir.display()
        )));
    }
    let fs = opts.file_system_value();
    fs.create_dir_all(dir).at(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => files::sync_dir(&**fs, parent),
        _ => Ok(()),
    }
}

fn load_state(dir: &Path, opts: &Options, listing: &[FileKind]) -> Result<ManifestState> {
    if listing.contains(&FileKind::Current) {
        if opts.error_if_exists_value() {
            return Err(Error::InvalidArgument(format!(
                "a database already exists in {}",
                dir.display()
            )));
        }
        return Ok(read_manifest(&read_current(dir)?)?.0);
    }
    // The first open writes its manifest and CURRENT before any log file or segment, so a
    // manifest without CURRENT and without them is a creation a crash interrupted: start
    // afresh (the stale manifest is removed as an orphan). A log file or segment without
    // CURRENT is a database that lost its CURRENT.
    let stranded = listing
        .iter()
        .find(|k| matches!(k, FileKind::Log(_) | FileKind::Segment(_)));
    match stranded {
        Some(_) => Err(Error::corruption(
            dir.join(files::CURRENT),
            0,
            "CURRENT is missing but the directory holds alluvium files",
        )),
        None => Ok(ManifestState {
            next_file_number: 1,
            ..ManifestState::default()
        }),
    }
}

fn file_number(kind: &FileKind) -> Option<u64> {
    match kind {
        FileKind::Log(n) | FileKind::Segment(n) | FileKind::Manifest(n) | FileKind::Temp(n) => {
            Some(*n)
        }
        FileKind::Current | FileKind::Lock => None,
    }
}

/// Removes what a crash can leave behind: segments no manifest names (a flush that did not
/// finish), temporary files and manifests other than the one just written. Log files older
/// than the flushed point stay: change-feed retention decides about them once the database is
/// open (`feed::apply_retention`).
fn remove_orphans(dir: &Path, versions: &VersionSet, listing: &[FileKind]) -> Result<()> {
    let fs = &**versions.file_system();
    let state = versions.state();
    let stale_manifest = |n: u64| files::manifest_path(dir, n) != versions.manifest_path();
    let live = |id: u64| state.levels.iter().flatten().any(|s| s.id == id);
    for kind in listing {
        let path = match *kind {
            FileKind::Segment(n) if !live(n) => files::segment_path(dir, n),
            FileKind::Temp(n) => files::temp_path(dir, n),
            FileKind::Manifest(n) if stale_manifest(n) => files::manifest_path(dir, n),
            _ => continue,
        };
        files::remove_if_exists(fs, &path)?;
    }
    Ok(())
}

/// Replays log files `logs` (ascending) into `mem`, skipping what segments already hold.
///
/// The log ends at the first file that was cut short: a torn tail (judged by `mode`), or a
/// clean end without the seal marker a rotation appends (`FORMAT.md`, "Seal marker")
/// followed by a file whose first record is not the next sequence number. Either is a file a
/// rotation sealed without syncing, cut by a power loss; no synced write can follow one
/// (`write::UnsyncedLogs`), so the later files are removed, and reported. A gap after a
/// sealed file is a missing log file: corruption.
fn replay(
    (fs, dir): (&dyn FileSystem, &Path),
    logs: &[u64],
    (mem, subs): (&Memtable, &mut SubscriptionTable),
    flushed: SeqNo,
    mode: RecoveryMode,
) -> Result<RecoveryReport> {
    let mut report = RecoveryReport {
        last_seqno: flushed,
        ..RecoveryReport::default()
    };
    let mut after_unsealed = false;
    for (i, &n) in logs.iter().enumerate() {
        let path = files::log_path(dir, n);
        let is_last = i + 1 == logs.len();
        let end = replay_file(&path, (mem, &mut *subs), &mut report, after_unsealed)?;
        report.logs_replayed += 1;
        let tail = match end {
            FileEnd::Read { tail, sealed } => {
                after_unsealed = !sealed;
                tail
            }
            FileEnd::StartsAfterGap { expected, found } => {
                let reason = format!(
                    "starts at sequence number {found} but the log file before it ends at {} \
                     without its seal marker: that file was cut short (sealed at a rotation, \
                     not synced, and a power loss came first), and nothing after the cut was \
                     synced",
                    expected - 1
                );
                remove_later_logs((fs, dir), &logs[i..], &reason, &mut report)?;
                break;
            }
        };
        if let Some(dropped) = judge_tail(&path, tail, mode)? {
            truncate(fs, &path, dropped.offset)?;
            log_dropped(&dropped);
            report.dropped.push(dropped);
            if !is_last {
                let reason = "follows the point of recovery".to_string();
                remove_later_logs((fs, dir), &logs[i + 1..], &reason, &mut report)?;
                break;
            }
        }
    }
    Ok(report)
}

/// How replaying a log file ended.
enum FileEnd {
    /// At the end of the file, or at a bad record (the tail state says which); `sealed` when
    /// the last record read is a seal marker.
    Read { tail: TailState, sealed: bool },
    /// Before the file's first new record, which starts at `found`, not at `expected`, after
    /// a file that ended without its seal marker.
    StartsAfterGap { expected: SeqNo, found: SeqNo },
}

/// Replays one log file. `after_unsealed`: the file before it ended cleanly but without a
/// seal marker, so a gap before this file's first record means that file was cut short.
fn replay_file(
    path: &Path,
    (mem, subs): (&Memtable, &mut SubscriptionTable),
    report: &mut RecoveryReport,
    after_unsealed: bool,
) -> Result<FileEnd> {
    let unsealed = |tail| FileEnd::Read {
        tail,
        sealed: false,
    };
    let file = match LogFile::read(path) {
        Ok(f) => f,
        Err(e) => return corruption_as_tail(path, e).map(unsealed),
    };
    let mut replayed_here = false;
    let mut sealed = false;
    let mut gap = None;
    let outcome = file.scan(|item| {
        if gap.is_some() {
            return Ok(()); // the file is dropped whole: nothing after the gap counts
        }
        let rec = item.record;
        let new = rec.last_seqno() > report.last_seqno;
        if new && rec.first_seqno != report.last_seqno + 1 {
            let expected = report.last_seqno + 1;
            if after_unsealed && !replayed_here {
                gap = Some((expected, rec.first_seqno));
                return Ok(());
            }
            let detail = format!(
                "record starts at sequence number {}; expected {expected}",
                rec.first_seqno
            );
            return Err(Error::corruption(path, item.offset, detail));
        }
        sealed = rec.is_seal_marker();
        // Acknowledgements are replayed even when the batch's data is already in a segment:
        // the manifest holds only the positions acknowledged before the last flush.
        subs.apply_acks(rec.last_seqno(), &rec.acks);
        if !new {
            return Ok(()); // already in a segment, or no operations
        }
        insert_batch(mem, rec.first_seqno, &rec.batch);
        report.last_seqno = rec.last_seqno();
        report.records_replayed += 1;
        replayed_here = true;
        Ok(())
    });
    if let Some((expected, found)) = gap {
        return Ok(FileEnd::StartsAfterGap { expected, found });
    }
    match outcome {
        Ok(tail) => Ok(FileEnd::Read { tail, sealed }),
        Err(e) => corruption_as_tail(path, e).map(unsealed),
    }
}

/// Turns a corruption in this log file's records into a tail state so the recovery mode can
/// judge it. A bad file header (a foreign file, a newer format) stays an error in every mode:
/// nothing of such a file may be dropped or truncated.
fn corruption_as_tail(path: &Path, e: Error) -> Result<TailState> {
    match e {
        Error::Corruption {
            path: p,
            offset,
            detail,
        } if p == path && offset >= LOG_HEADER_LEN as u64 => Ok(TailState::Corrupt {
            offset,
            detail,
            at_tail: false,
        }),
        other => Err(other),
    }
}

/// Decides what a bad tail means: `Ok(Some)` to drop it, `Err` for corruption.
fn judge_tail(path: &Path, tail: TailState, mode: RecoveryMode) -> Result<Option<DroppedTail>> {
    let len = std::fs::metadata(path).at(path)?.len();
    let (offset, reason, torn) = match tail {
        TailState::Clean => return Ok(None),
        TailState::Incomplete { offset } => {
            let reason = "incomplete record (torn write), or a zero length: the end of what was \
                          written (an append cut short by a crash, or space preallocated for \
                          appends)";
            (offset, reason.to_string(), true)
        }
        TailState::Corrupt {
            offset,
            detail,
            at_tail,
        } => (offset, detail, at_tail),
    };
    // A torn end of an older log file is a rotation's unsynced file cut by a power loss
    // (`replay` then drops the files after it); anything else bad is corruption, unless the
    // mode recovers to a point in time.
    let tolerated = mode == RecoveryMode::PointInTime || torn;
    if !tolerated {
        return Err(Error::corruption(path, offset, reason));
    }
    Ok(Some(DroppedTail {
        path: path.to_path_buf(),
        offset,
        bytes: len.saturating_sub(offset),
        reason,
    }))
}

/// Cuts a log file at `offset`; a file cut inside its header is removed, since an empty or
/// header-less file that is no longer the newest would read as corruption at the next open.
fn truncate(fs: &dyn FileSystem, path: &Path, offset: u64) -> Result<()> {
    if offset < LOG_HEADER_LEN as u64 {
        files::remove_if_exists(fs, path)?;
        return files::sync_dir(fs, path.parent().unwrap_or(Path::new(".")));
    }
    fs.truncate(path, offset).at(path)
}

fn remove_later_logs(
    (fs, dir): (&dyn FileSystem, &Path),
    later: &[u64],
    reason: &str,
    report: &mut RecoveryReport,
) -> Result<()> {
    for &n in later {
        let path = files::log_path(dir, n);
        let len = std::fs::metadata(&path).at(&path)?.len();
        let dropped = DroppedTail {
            path: path.clone(),
            offset: 0,
            bytes: len,
            reason: reason.to_string(),
        };
        log_dropped(&dropped);
        report.dropped.push(dropped);
        files::remove_if_exists(fs, &path)?;
        report.removed_logs.push(path);
    }
    files::sync_dir(fs, dir)
}

fn log_dropped(d: &DroppedTail) {
    log::warn!(
        "alluvium recovery dropped {} bytes of {} from offset {}: {}",
        d.bytes,
        d.path.display(),
        d.offset,
        d.reason
    );
}
