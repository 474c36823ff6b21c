//! Writes are readable, survive flush and reopen, and iterate in both directions.
use alluvium::{Db, Options, Result, WriteBatch, WriteOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn writes_survive_flush_and_reopen() -> Result<()> {
    let dir = tmp();
    let opts = Options::default().memtable_size_bytes(64 * 1024);
    {
        let db = Db::open(dir.path(), opts.clone())?;
        for i in 0..5000u32 {
            db.put(format!("key{i:05}"), format!("value{i}"))?;
        }
        db.delete("key00007")?;
        let mut b = WriteBatch::new();
        b.put("a", "1").put("b", "2");
        db.write(b, &WriteOptions::synced())?;
        db.flush()?;
        db.put("after-flush", "x")?;
        assert!(db.stats().levels[0].segments > 1);
        assert_eq!(db.get("key00042")?, Some(b"value42".to_vec()));
        assert_eq!(db.get("key00007")?, None);
    }
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.get("key04999")?, Some(b"value4999".to_vec()));
    assert_eq!(db.get("key00007")?, None);
    assert_eq!(db.get("after-flush")?, Some(b"x".to_vec()));
    assert_eq!(db.latest_seqno(), 5000 + 1 + 2 + 1);
    let fwd: Vec<_> = db.prefix("key").collect::<Result<_>>()?;
    assert_eq!(fwd.len(), 4999);
    let mut back: Vec<_> = db.prefix("key").rev().collect::<Result<_>>()?;
    back.reverse();
    assert_eq!(fwd, back);
    Ok(())
}
