//! A flush writes, of each key's versions between two live snapshots, only the newest: the
//! overwritten versions nobody can read any more never reach a segment, while every version a
//! live snapshot reads does, and tombstones stay.
use alluvium::{Db, Options, Result};

fn level0_entries(db: &Db) -> u64 {
    db.stats().levels[0].entries
}

#[test]
fn a_flush_writes_only_the_versions_a_reader_can_still_see() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    let opts = Options::default().compaction_enabled(false);
    let db = Db::open(dir.path(), opts)?;

    // Three versions of `a` and no snapshot: one survives.
    for v in [b"a1", b"a2", b"a3"] {
        db.put(b"a", v)?;
    }
    db.flush()?;
    assert_eq!(level0_entries(&db), 1);
    assert_eq!(db.get(b"a")?, Some(b"a3".to_vec()));

    // A snapshot between versions keeps the newest version it sees.
    db.put(b"b", b"b1")?;
    db.put(b"b", b"b2")?;
    let snap = db.snapshot();
    db.put(b"b", b"b3")?;
    db.delete(b"b")?;
    db.put(b"c", b"c1")?;
    db.delete(b"c")?;
    db.flush()?;
    // b2 (for the snapshot) and the tombstone of b; the tombstone of c; not b1, b3 or c1.
    assert_eq!(level0_entries(&db), 1 + 3);
    assert_eq!(snap.get(b"b")?, Some(b"b2".to_vec()));
    assert_eq!(db.get(b"b")?, None);
    assert_eq!(db.get(b"c")?, None);
    drop(snap);
    drop(db);

    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get(b"a")?, Some(b"a3".to_vec()));
    assert_eq!((db.get(b"b")?, db.get(b"c")?), (None, None));
    Ok(())
}
