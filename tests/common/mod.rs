//! Helpers several test files share.
#![allow(dead_code, reason = "each test file uses the helpers it needs")]

use alluvium::{Db, Result, WriteBatch, WriteOptions};

/// Writes `n` single-put batches of 200-byte values, then flushes.
pub fn write_batches(db: &Db, n: u64) -> Result<()> {
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:06}"), vec![b'v'; 200]);
        db.write(b, &WriteOptions::default())?;
    }
    db.flush()
}

/// Reads and acknowledges everything visible to subscription `name`; returns the batches read.
pub fn keep_up(db: &Db, name: &str) -> Result<u64> {
    let mut sub = db.open_subscription(name)?;
    let mut n = 0;
    while let Some(b) = sub.try_next()? {
        sub.ack(b.last_seqno, &WriteOptions::default())?;
        n += 1;
    }
    Ok(n)
}

/// The path of the newest commit log file in `dir` (panics when there is none).
pub fn newest_log(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let newest = alluvium::files::log_numbers(dir)?.into_iter().max();
    Ok(alluvium::files::log_path(dir, newest.expect("a log file")))
}
