//! A flushed log file older than `feed_retention_age_max` is deleted even though a subscription
//! still needs it; the subscription is cut off and its next read is `FeedTruncated`.
mod common;

use common::write_batches;
use std::time::Duration;

use alluvium::{Db, Error, Options, Result, Start};

#[test]
fn the_age_bound_cuts_off_a_stalled_subscription() -> Result<()> {
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
