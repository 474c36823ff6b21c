//! Below the retention bound, a subscription that has not read anything keeps every flushed
//! log file it needs (stats show its lag), and once it has read and acknowledged them, the next
//! flush lets them go, except the one holding its next position.
use alluvium::{Db, Error, Options, Result, Start, WriteBatch, WriteOptions};

fn write_batches(db: &Db, n: u64) -> Result<()> {
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:06}"), vec![b'v'; 200]);
        db.write(b, &WriteOptions::default())?;
    }
    db.flush()
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
