//! An `fdatasync` that fails (EIO) is never retried or ignored: the write that needed it fails,
//! every later write fails with a clear error (the failure is sticky, as LevelDB and Postgres
//! learnt), reads go on, and a reopen finds every write acknowledged before the failure.
use std::sync::Arc;

use alluvium::fs::{FaultInjectingFs, FaultKind};
use alluvium::{Db, Error, Options, Result, WriteBatch, WriteOptions};

fn put(db: &Db, k: &str, sync: bool) -> Result<u64> {
    let mut b = WriteBatch::new();
    b.put(k, format!("value of {k}"));
    db.write(b, &WriteOptions { sync })
}

#[test]
fn a_failed_fsync_stops_writes_with_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let fs = FaultInjectingFs::new();
    let db = Db::open(
        dir.path(),
        Options::default().file_system(Arc::new(fs.clone())),
    )?;
    for i in 0..10 {
        put(&db, &format!("before{i}"), i % 2 == 0)?;
    }
    fs.set_fault(Some(FaultKind::SyncFails));
    let failed = put(&db, "the-failing-one", true);
    assert!(
        failed.is_err(),
        "a write whose fdatasync failed is not acknowledged"
    );
    fs.set_fault(None);
    let later = put(&db, "after", false);
    assert!(
        matches!(&later, Err(Error::Closed(msg)) if msg.contains("EIO")),
        "the failure is sticky and says why: {later:?}"
    );
    assert_eq!(
        db.get("before3")?,
        Some(b"value of before3".to_vec()),
        "reads go on"
    );
    drop(db);
    let db = Db::open(dir.path(), Options::default())?;
    for i in 0..10 {
        assert!(
            db.get(format!("before{i}"))?.is_some(),
            "acknowledged write {i} survived"
        );
    }
    assert_eq!(db.get("after")?, None);
    Ok(())
}
