//! A stalled subscription holds back log deletion only up to the retention bound. Past it the
//! oldest flushed log files go, the flushed log kept stays within the bound, the stalled
//! subscription is cut off (stats say so) and its next read is `FeedTruncated` naming the
//! oldest position still on disk, also after a restart; a subscription that keeps up loses
//! nothing.
mod common;

use alluvium::commit_log::LogFile;
use alluvium::files;
use alluvium::{Db, Error, Options, Result, Start};
use common::{keep_up, write_batches};

const BOUND_BYTES: u64 = 64 * 1024;

fn options() -> Options {
    Options::default()
        .memtable_size_bytes(8 * 1024)
        .feed_retention_bytes_max(BOUND_BYTES)
}

/// The first sequence number of the oldest log file on disk.
fn oldest_on_disk(dir: &std::path::Path) -> Result<u64> {
    let oldest = files::log_numbers(dir)?
        .into_iter()
        .min()
        .expect("a log file");
    let (items, _) = LogFile::read(&files::log_path(dir, oldest))?.records()?;
    Ok(items[0].record.first_seqno)
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

    // Cut off, it holds back nothing any more: with the fast subscription keeping up, the
    // flushed log shrinks to what that one needs.
    write_batches(&db, 100)?;
    keep_up(&db, "fast")?;
    write_batches(&db, 1)?;
    let stats = db.stats();
    assert!(stats.feed_retained_log_bytes < BOUND_BYTES / 2, "{stats:?}");
    let oldest = stats.feed_oldest_seqno;
    db.close()?;

    // Reopening does not bring anything back, nor delete what the policy keeps.
    let db = Db::open(dir.path(), options())?;
    assert_eq!(db.stats().feed_oldest_seqno, oldest);
    assert!(db.open_subscription("stalled")?.try_next().is_err());
    db.close()?;
    Ok(())
}
