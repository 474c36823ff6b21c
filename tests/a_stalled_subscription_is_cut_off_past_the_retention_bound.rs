//! A stalled subscription holds back log deletion only up to the retention bound. Past it the
//! oldest flushed log files go, the flushed log kept stays within the bound, the stalled
//! subscription is cut off (stats say so) and its next read is `FeedTruncated` naming the
//! oldest position still on disk; a subscription that keeps up loses nothing. Below the bound
//! a subscription keeps every file it needs; the age bound cuts off the same way.
use std::time::Duration;

use alluvium::commit_log::LogFile;
use alluvium::files::{self, FileKind};
use alluvium::{Db, Error, Options, Result, Start, WriteBatch, WriteOptions};

const BOUND_BYTES: u64 = 64 * 1024;

fn options() -> Options {
    Options::default()
        .memtable_size_bytes(8 * 1024)
        .feed_retention_bytes_max(BOUND_BYTES)
}

fn write_batches(db: &Db, n: u64) -> Result<()> {
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:06}"), vec![b'v'; 200]);
        db.write(b, &WriteOptions::default())?;
    }
    db.flush()
}

/// The first sequence number of the oldest log file on disk.
fn oldest_on_disk(dir: &std::path::Path) -> Result<u64> {
    let oldest = files::list(dir)?
        .into_iter()
        .filter_map(|k| {
            if let FileKind::Log(n) = k {
                Some(n)
            } else {
                None
            }
        })
        .min()
        .expect("a log file");
    let (items, _) = LogFile::read(&files::log_path(dir, oldest))?.records()?;
    Ok(items[0].record.first_seqno)
}

/// Reads and acknowledges everything visible.
fn keep_up(db: &Db, name: &str) -> Result<u64> {
    let mut sub = db.open_subscription(name)?;
    let mut n = 0;
    while let Some(b) = sub.try_next()? {
        sub.ack(b.last_seqno, &WriteOptions::default())?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn a_stalled_subscription_is_cut_off_past_the_retention_bound() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), options())?;
    db.create_subscription("stalled", Start::Beginning)?;
    db.create_subscription("fast", Start::Beginning)?;
    let mut read = 0;
    for _ in 0..12 {
        write_batches(&db, 100)?;
        read += keep_up(&db, "fast")?;
    }
    assert_eq!(read, 1200, "the fast subscription saw every batch");
    let stats = db.stats();
    assert!(stats.feed_retained_log_bytes <= BOUND_BYTES, "{stats:?}");
    assert!(stats.feed_retained_log_files > 0);
    let stalled = &stats.subscriptions[1];
    assert_eq!((stalled.name.as_str(), stalled.cut_off), ("stalled", true));
    assert!(!stats.subscriptions[0].cut_off, "{stats:?}");
    let oldest = oldest_on_disk(dir.path())?;
    assert_eq!(stats.feed_oldest_seqno, oldest);
    let err = db.open_subscription("stalled")?.try_next().err();
    assert!(
        matches!(err, Some(Error::FeedTruncated { requested: 1, oldest_available }) if oldest_available == oldest),
        "{err:?} (oldest on disk {oldest})"
    );
    let mut cursor = db.changes(Start::Beginning)?;
    assert_eq!(cursor.try_next()?.map(|b| b.first_seqno), Some(oldest));
    db.close()?;

    // Reopening does not bring anything back, nor delete what the policy keeps.
    let db = Db::open(dir.path(), options())?;
    assert_eq!(db.stats().feed_oldest_seqno, oldest);
    assert!(db.open_subscription("stalled")?.try_next().is_err());
    db.close()?;
    Ok(())
}

#[test]
fn below_the_bound_a_subscription_keeps_every_file_it_needs() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default().memtable_size_bytes(8 * 1024))?;
    db.create_subscription("slow", Start::Beginning)?;
    write_batches(&db, 600)?;
    let stats = db.stats();
    assert!(
        stats.flushes > 3 && !stats.subscriptions[0].cut_off,
        "{stats:?}"
    );
    assert_eq!(stats.subscriptions[0].lag_seqnos, 600);
    assert!(stats.subscriptions[0].lag_bytes >= stats.feed_retained_log_bytes);
    assert_eq!(keep_up(&db, "slow")?, 600);
    write_batches(&db, 10)?; // the next flush lets the files the subscription read go
    let stats = db.stats();
    assert_eq!(
        stats.feed_retained_log_files, 1,
        "only the file holding 601.. {stats:?}"
    );
    assert_eq!(stats.feed_oldest_seqno, 601);
    assert_eq!(stats.subscriptions[0].lag_seqnos, 10);
    Ok(())
}

#[test]
fn the_age_bound_cuts_off_like_the_size_bound() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let opts = Options::default()
        .memtable_size_bytes(8 * 1024)
        .feed_retention_age_max(Duration::from_millis(1));
    let db = Db::open(dir.path(), opts)?;
    db.create_subscription("slow", Start::Beginning)?;
    write_batches(&db, 100)?;
    std::thread::sleep(Duration::from_millis(20));
    write_batches(&db, 100)?;
    assert!(db.stats().subscriptions[0].cut_off);
    let err = db.open_subscription("slow")?.try_next().err();
    assert!(
        matches!(err, Some(Error::FeedTruncated { requested: 1, .. })),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn the_minimum_keeps_flushed_files_for_cursors_without_a_subscription() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let opts = Options::default()
        .memtable_size_bytes(8 * 1024)
        .feed_retention_bytes_min(1 << 20);
    let db = Db::open(dir.path(), opts)?;
    write_batches(&db, 300)?;
    let mut cursor = db.changes(Start::Beginning)?;
    assert_eq!(cursor.try_next()?.map(|b| b.first_seqno), Some(1));
    let bad = Options::default()
        .feed_retention_bytes_min(2)
        .feed_retention_bytes_max(1);
    assert!(matches!(
        Db::open(dir.path().join("x"), bad),
        Err(Error::InvalidArgument(_))
    ));
    Ok(())
}
