//! Deleted keys stay deleted through compactions and reopens, a snapshot taken before the
//! deletes keeps seeing the old values until it is dropped, and once no snapshot needs them a
//! full compaction removes every tombstone and shadowed version from disk.
use alluvium::{Db, Error, Options, Result};

fn options() -> Options {
    Options::default()
        .memtable_size_bytes(8192)
        .segment_size_bytes(8192)
        .level_base_size_bytes(32 * 1024)
        .level_size_ratio(4)
        .level0_triggers(2, 20, 30)
}

fn total_entries(db: &Db) -> u64 {
    db.stats().levels.iter().map(|l| l.entries).sum()
}

#[test]
fn deleted_keys_never_come_back_after_compaction() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), options())?;
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), format!("v{i}-{}", "y".repeat(60)))?;
    }
    let before_deletes = db.snapshot();
    for i in (0..2000u32).filter(|i| i % 3 == 0) {
        db.delete(format!("k{i:05}"))?;
    }
    db.flush()?;
    db.wait_idle()?;
    assert!(
        db.stats().levels.iter().skip(1).any(|l| l.segments > 0),
        "compaction ran"
    );
    for i in 0..2000u32 {
        let got = db.get(format!("k{i:05}"))?;
        assert_eq!(got.is_some(), i % 3 != 0, "key {i}");
        let old = before_deletes.get(format!("k{i:05}"))?;
        assert!(old.is_some(), "the snapshot still sees key {i}");
    }
    assert_eq!(before_deletes.range::<&[u8], _>(..).count(), 2000);
    db.compact_range::<&[u8], _>(..)?;
    assert_eq!(
        before_deletes.range::<&[u8], _>(..).count(),
        2000,
        "a full compaction keeps what the snapshot sees"
    );
    drop(before_deletes);
    db.compact_range::<&[u8], _>(..)?;
    let live = 2000 - (0..2000u32).filter(|i| i % 3 == 0).count() as u64;
    assert_eq!(
        total_entries(&db),
        live,
        "no tombstone or shadowed version is left"
    );
    db.close()?;
    drop(db);
    let db = Db::open(dir.path(), options())?;
    assert_eq!(db.iter().count() as u64, live);
    assert_eq!(db.get("k00003")?, None);
    Ok(())
}
