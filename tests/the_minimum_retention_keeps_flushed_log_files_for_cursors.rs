//! `feed_retention_bytes_min` keeps flushed log files for cursors that have no subscription,
//! and may not exceed `feed_retention_bytes_max`.
mod common;

use alluvium::{Db, Error, Options, Result, Start};
use common::write_batches;

#[test]
fn the_minimum_retention_keeps_flushed_log_files_for_cursors() -> Result<()> {
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
