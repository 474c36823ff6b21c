//! A memtable rotation seals the old log file without syncing it (its pages usually never
//! reach the disk: the flush makes it redundant and retention deletes it first). So a power
//! loss can cut any log file, not only the newest, and recovery must end the log at the first
//! file that is cut short and drop every later one, while a synced write syncs every older
//! log file first, so no synced write is ever behind a cut.
//!
//! Flushes are kept from happening (creating a segment fails with a full disk, which is not
//! sticky: the flush retries) so the rotated log files stay the only copy of their batches.
//! The tests can fail: without the older files' sync before a synced write, batch 12 below
//! is lost; with the former recovery rule (only the newest log file may be torn) the open
//! after the power loss is `Error::Corruption`; a flush that does not sync the log files a
//! subscription still reads leaves a hole the cursor reports (TESTING.md, "Planted bugs").
use std::path::Path;
use std::sync::Arc;

use alluvium::commit_log::{LogFile, LogItem};
use alluvium::fs::{FaultInjectingFs, FaultKind};
use alluvium::{files, Db, Error, Options, Result, Start, WriteBatch, WriteOptions};

/// A file layer on which no segment can be created (so nothing is flushed).
fn no_flush_fs() -> FaultInjectingFs {
    let fs = FaultInjectingFs::new();
    fs.only_for(Some(".seg"));
    fs.set_fault(Some(FaultKind::NoSpaceForNewFiles));
    fs
}

fn options(fs: &FaultInjectingFs) -> Options {
    Options::default()
        .memtable_size_bytes(4096)
        .immutable_memtables_max(16)
        // Rotations go on while flushes cannot finish: no wait at the flush headroom.
        .flush_headroom_bytes(usize::MAX)
        .file_system(Arc::new(fs.clone()))
}

fn key(i: u32) -> String {
    format!("k{i:03}")
}

/// 1,000 bytes that do not compress (so four batches fill a 4 KiB memtable).
fn value(i: u32) -> Vec<u8> {
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..1000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn put(db: &Db, i: u32, sync: bool) -> Result<()> {
    let mut b = WriteBatch::new();
    b.put(key(i), value(i));
    db.write(b, &WriteOptions { sync }).map(|_| ())
}

/// Every later file operation fails (the process died), then the machine loses power.
fn crash_with_power_loss(db: Db, fs: &FaultInjectingFs) {
    fs.only_for(None);
    fs.set_fault(Some(FaultKind::CrashAt(1)));
    drop(db);
    fs.power_loss().expect("power loss");
}

/// Which of the first `n` batches the database holds; asserts they are a prefix.
fn present_prefix(db: &Db, n: u32) -> Result<u32> {
    let mut present = 0;
    for i in 0..n {
        if db.get(key(i))?.is_some() {
            assert_eq!(present, i, "batch {i} present after a missing one");
            present += 1;
        }
    }
    Ok(present)
}

fn log_count(dir: &Path) -> usize {
    files::log_numbers(dir).expect("list logs").len()
}

#[test]
fn a_synced_write_after_unsynced_rotations_survives_a_power_loss() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = no_flush_fs();
    let db = Db::open(dir.path(), options(&fs))?;
    for i in 0..12 {
        put(&db, i, false)?;
    }
    let logs_before_sync = log_count(dir.path());
    assert!(
        logs_before_sync >= 3,
        "the unsynced batches span several rotated log files: {logs_before_sync}"
    );
    put(&db, 12, true)?;
    for i in 13..20 {
        put(&db, i, false)?;
    }
    assert!(
        log_count(dir.path()) > logs_before_sync,
        "a rotation after it"
    );
    crash_with_power_loss(db, &fs);

    let db = Db::open(dir.path(), Options::default())?;
    let present = present_prefix(&db, 20)?;
    assert!(
        present >= 13,
        "the synced batch 12 and every batch before it survive; present: {present}"
    );
    Ok(())
}

/// A closed database with several log files and no segment; their numbers, oldest first.
fn several_log_files(dir: &Path) -> Result<Vec<u64>> {
    let fs = no_flush_fs();
    let db = Db::open(dir, options(&fs))?;
    for i in 0..12 {
        put(&db, i, false)?;
    }
    db.close()?;
    drop(db);
    let numbers = files::log_numbers(dir).expect("list logs");
    assert!(numbers.len() >= 3, "several log files: {numbers:?}");
    Ok(numbers)
}

/// Cuts the oldest log file at the offset `at` picks from its records (which it returns),
/// then reopens the database.
fn reopen_with_oldest_cut(
    dir: &Path,
    numbers: &[u64],
    at: impl Fn(&[LogItem]) -> u64,
) -> Result<(Db, Vec<LogItem>)> {
    let oldest = files::log_path(dir, numbers[0]);
    let (records, _) = LogFile::read(&oldest)?.records()?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&oldest)
        .and_then(|f| f.set_len(at(&records)))
        .expect("cut the file");
    Ok((Db::open(dir, Options::default())?, records))
}

#[test]
fn an_older_log_file_cut_short_between_records_ends_the_log_there() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let numbers = several_log_files(dir.path())?;
    // What a power loss leaves of a file a rotation sealed unsynced when only its first pages
    // were written back: the file ends cleanly after its first batch, without its seal marker,
    // and the next file starts later than that.
    let (db, records) = reopen_with_oldest_cut(dir.path(), &numbers, |r| r[1].offset)?;
    assert!(
        records.len() >= 3,
        "two batches or more, then the seal marker"
    );
    assert!(records.last().is_some_and(|r| r.record.is_seal_marker()));
    assert_eq!(
        present_prefix(&db, 12)?,
        1,
        "the first batch, nothing after"
    );
    let report = db.recovery_report();
    assert_eq!(
        report.removed_logs.len(),
        numbers.len() - 1,
        "every later log file is removed: {report:?}"
    );
    assert!(
        report
            .dropped
            .iter()
            .all(|d| d.reason.contains("cut short")),
        "the report says why: {report:?}"
    );
    // The database goes on from there: written, reopened, read.
    put(&db, 1, true)?;
    drop(db);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(present_prefix(&db, 12)?, 2);
    Ok(())
}

#[test]
fn a_gap_after_a_sealed_log_file_is_a_missing_file_not_a_cut() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let numbers = several_log_files(dir.path())?;
    // The second file is gone whole; the first still ends with its seal marker.
    std::fs::remove_file(files::log_path(dir.path(), numbers[1])).expect("remove");
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Corruption { path, .. }) => {
            assert_eq!(path, files::log_path(dir.path(), numbers[2]));
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    Ok(())
}

#[test]
fn a_torn_older_log_file_ends_the_log_there() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let numbers = several_log_files(dir.path())?;
    // Tear the oldest file inside its second record, as a power loss can when a rotation
    // sealed it unsynced.
    let (db, records) = reopen_with_oldest_cut(dir.path(), &numbers, |r| r[1].offset + 7)?;
    assert!(
        records.len() >= 2,
        "the oldest file holds two batches or more"
    );
    assert_eq!(
        present_prefix(&db, 12)?,
        1,
        "the batch before the tear, and nothing after it"
    );
    let report = db.recovery_report();
    assert_eq!(report.removed_logs.len(), numbers.len() - 1, "{report:?}");
    assert_eq!(report.dropped[0].offset, records[1].offset, "{report:?}");
    Ok(())
}

#[test]
fn a_flush_syncs_the_log_files_a_subscription_still_reads() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = FaultInjectingFs::new();
    let db = Db::open(dir.path(), options(&fs))?;
    db.create_subscription("view", Start::Beginning)?;
    for i in 0..12 {
        put(&db, i, false)?;
    }
    db.flush()?; // every rotated file is flushed; the subscription keeps them all
    crash_with_power_loss(db, &fs);

    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(present_prefix(&db, 12)?, 12, "flushed to synced segments");
    let mut cursor = db.open_subscription("view")?;
    let mut seen = 0;
    while let Some(batch) = cursor.try_next()? {
        seen += batch.ops.len();
    }
    assert_eq!(seen, 12, "the feed hands out every flushed batch");
    Ok(())
}
