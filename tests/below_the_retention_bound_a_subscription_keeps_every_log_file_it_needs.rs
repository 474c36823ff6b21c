//! Below the retention bound, a subscription that has not read anything keeps every flushed
//! log file it needs (stats show its lag), and once it has read and acknowledged them, the next
//! flush lets them go, except the one holding its next position.
mod common;

use alluvium::{Db, Error, Options, Result, Start};
use common::{keep_up, write_batches};

#[test]
fn below_the_retention_bound_a_subscription_keeps_every_log_file_it_needs() -> Result<()> {
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
