//! A cursor starts where its `Start` says: the oldest retained batch, the batch holding a
//! sequence number (whole, even from its middle), the next commit, or the first batch committed
//! at or after a time; a sequence number that retention discarded is `FeedTruncated`.
use std::time::{Duration, SystemTime};

use alluvium::{Db, Error, Options, Result, Start, WriteBatch};

fn batch_of(n: usize, tag: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    for j in 0..n {
        b.put(format!("{tag}.{j}"), "v");
    }
    b
}

#[test]
fn every_start_kind_begins_at_the_right_batch() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let a = db.write(batch_of(3, "a"), &Default::default())?; // 1..=3
    std::thread::sleep(Duration::from_millis(5));
    let between = SystemTime::now();
    std::thread::sleep(Duration::from_millis(5));
    let b = db.write(batch_of(2, "b"), &Default::default())?; // 4..=5
    let c = db.write(batch_of(1, "c"), &Default::default())?; // 6
    assert_eq!((a, b, c), (1, 4, 6));

    let first = |start| -> Result<Option<u64>> {
        Ok(db.changes(start)?.try_next()?.map(|b| b.first_seqno))
    };
    assert_eq!(first(Start::Beginning)?, Some(1));
    assert_eq!(first(Start::SeqNo(4))?, Some(4));
    assert_eq!(
        first(Start::SeqNo(5))?,
        Some(4),
        "the whole batch holding 5"
    );
    assert_eq!(first(Start::SeqNo(7))?, None, "not committed yet");
    assert_eq!(first(Start::Time(between))?, Some(4));
    assert_eq!(first(Start::Time(SystemTime::UNIX_EPOCH))?, Some(1));
    let future = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(first(Start::Time(future))?, None);

    let mut now = db.changes(Start::Now)?;
    assert_eq!(now.try_next()?, None);
    let d = db.write(batch_of(2, "d"), &Default::default())?;
    assert_eq!(
        now.try_next()?.map(|b| (b.first_seqno, b.last_seqno)),
        Some((d, d + 1))
    );

    // After a flush nobody subscribed to, the flushed log files are gone (the default
    // feed_retention_bytes_min is 0): older positions are reported, not skipped.
    db.flush()?;
    let oldest = db.stats().feed_oldest_seqno;
    assert_eq!(oldest, d + 2);
    let err = db.changes(Start::SeqNo(2)).err();
    assert!(
        matches!(err, Some(Error::FeedTruncated { requested: 2, oldest_available }) if oldest_available == oldest),
        "{err:?}"
    );
    assert_eq!(first(Start::Beginning)?, None, "nothing retained yet");
    let e = db.write(batch_of(1, "e"), &Default::default())?;
    assert_eq!(first(Start::Beginning)?, Some(e));
    Ok(())
}
