//! A follower whose next position was in log files that retention deleted reports
//! `FeedTruncated` with the oldest position still available, when it opens and when it finds
//! out while reading (at the next record), never a silent gap.
use alluvium::{Db, Error, Follower, Options, Result, Start, WriteBatch, WriteOptions};

fn batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(format!("k{i:06}"), format!("v{i}"));
    if i.is_multiple_of(4) {
        b.delete(format!("k{:06}", i / 2));
    }
    b
}

#[test]
fn a_follower_reports_deleted_log_files_as_feed_truncated() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default().memtable_size_bytes(8 * 1024))?;
    for i in 0..50 {
        db.write(batch(i), &WriteOptions::default())?;
    }
    let mut follower = Follower::open(dir.path(), Start::Beginning)?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(1));
    // No subscription: flushes delete the log files the follower has not reached yet.
    for i in 50..1000 {
        db.write(batch(i), &WriteOptions::default())?;
    }
    db.flush()?;
    // The gap shows when the next record arrives: the newest file is still empty.
    let later = db.put("later", "1")?;
    let result = std::iter::from_fn(|| follower.try_next().transpose()).find(|r| r.is_err());
    let oldest = db.stats().feed_oldest_seqno;
    assert!(
        matches!(result, Some(Err(Error::FeedTruncated { oldest_available, .. })) if oldest_available == later),
        "{result:?} (oldest {oldest})"
    );
    let err = Follower::open(dir.path(), Start::SeqNo(2)).err();
    assert!(
        matches!(err, Some(Error::FeedTruncated { requested: 2, oldest_available })
            if oldest_available == later && later == oldest),
        "{err:?}"
    );
    Ok(())
}
