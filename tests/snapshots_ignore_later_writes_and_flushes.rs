//! A snapshot keeps showing the database as it was when it was taken, through later
//! overwrites, deletes, inserts and flushes, while the live view shows the new state.
use std::collections::BTreeMap;

use alluvium::{Db, DbIter, Options, Result, Snapshot, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn entries<'a>(it: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Entries {
    it.map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn reversed(mut e: Entries) -> Entries {
    e.reverse();
    e
}

fn forward(it: DbIter) -> Result<Entries> {
    it.collect()
}

fn backward(it: DbIter) -> Result<Entries> {
    it.rev().collect()
}

/// A point read of the live view or of a snapshot.
type Get<'a> = &'a dyn Fn(&[u8]) -> Result<Option<Vec<u8>>>;

/// Checks point reads, a range, a prefix and a full scan, each forward and backward.
fn check_view(
    get: Get<'_>,
    range: &dyn Fn(&[u8], &[u8]) -> DbIter,
    prefix: &dyn Fn(&[u8]) -> DbIter,
    model: &Model,
    what: &str,
) -> Result<()> {
    for i in 0..120 {
        let k = format!("key{i:03}").into_bytes();
        assert_eq!(get(&k)?.as_ref(), model.get(&k), "{what}: get {k:?}");
    }
    let (lo, hi) = (b"key020".to_vec(), b"key070".to_vec());
    let expected = entries(model.range(lo.clone()..hi.clone()));
    assert_eq!(forward(range(&lo, &hi))?, expected, "{what}: range");
    assert_eq!(
        backward(range(&lo, &hi))?,
        reversed(expected),
        "{what}: reverse range"
    );
    let expected = entries(model.iter().filter(|(k, _)| k.starts_with(b"key05")));
    assert_eq!(forward(prefix(b"key05"))?, expected, "{what}: prefix");
    assert_eq!(
        backward(prefix(b"key05"))?,
        reversed(expected),
        "{what}: reverse prefix"
    );
    let expected = entries(model.iter());
    assert_eq!(forward(prefix(b""))?, expected, "{what}: everything");
    assert_eq!(
        backward(prefix(b""))?,
        reversed(expected),
        "{what}: everything reversed"
    );
    Ok(())
}

fn check_snapshot(snap: &Snapshot, model: &Model, what: &str) -> Result<()> {
    check_view(
        &|k| snap.get(k),
        &|lo, hi| snap.range(lo..hi),
        &|p| snap.prefix(p),
        model,
        what,
    )
}

fn check_live(db: &Db, model: &Model, what: &str) -> Result<()> {
    check_view(
        &|k| db.get(k),
        &|lo, hi| db.range(lo..hi),
        &|p| db.prefix(p),
        model,
        what,
    )
}

/// Writes to the database and to the model alike.
fn put(db: &Db, model: &mut Model, k: String, v: String) -> Result<()> {
    db.put(&k, &v)?;
    model.insert(k.into_bytes(), v.into_bytes());
    Ok(())
}

fn delete(db: &Db, model: &mut Model, k: String) -> Result<()> {
    db.delete(&k)?;
    model.remove(k.as_bytes());
    Ok(())
}

#[test]
fn snapshots_ignore_later_writes_and_flushes() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options::default().memtable_size_bytes(16 * 1024),
    )?;
    let mut live = Model::new();
    for i in (0..100).step_by(2) {
        put(&db, &mut live, format!("key{i:03}"), format!("first {i}"))?;
    }
    db.flush()?;
    for i in (0..100).step_by(5) {
        put(&db, &mut live, format!("key{i:03}"), format!("second {i}"))?;
    }
    let first = db.snapshot();
    let at_first = live.clone();

    // Overwrite, delete and add, in batches and single writes, across several flushes.
    for i in (0..100).step_by(3) {
        put(
            &db,
            &mut live,
            format!("key{i:03}"),
            format!("third {i} {}", "x".repeat(200)),
        )?;
    }
    for i in (0..100).step_by(4) {
        delete(&db, &mut live, format!("key{i:03}"))?;
    }
    db.flush()?;
    let second = db.snapshot();
    let at_second = live.clone();
    let mut batch = WriteBatch::new();
    for i in 100..120 {
        batch.put(format!("key{i:03}"), format!("new {i}"));
        live.insert(
            format!("key{i:03}").into_bytes(),
            format!("new {i}").into_bytes(),
        );
    }
    batch.delete("key050");
    live.remove(&b"key050"[..]);
    db.write(batch, &WriteOptions::default())?;
    db.flush()?;
    for i in (1..100).step_by(2) {
        put(&db, &mut live, format!("key{i:03}"), format!("fourth {i}"))?;
    }
    assert!(db.stats().flushes >= 3, "{:?}", db.stats());

    assert_ne!(at_first, live);
    assert_ne!(at_second, live);
    check_snapshot(&first, &at_first, "first snapshot")?;
    check_snapshot(&second, &at_second, "second snapshot")?;
    check_live(&db, &live, "live view")?;
    assert_eq!(db.stats().snapshots, 2);

    // Dropping one snapshot changes nothing for the other.
    drop(first);
    db.flush()?;
    check_snapshot(
        &second,
        &at_second,
        "second snapshot after the first dropped",
    )?;
    assert_eq!(db.stats().snapshots, 1);
    Ok(())
}

#[test]
fn a_snapshot_of_an_empty_database_stays_empty() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    let snap = db.snapshot();
    assert_eq!(snap.seqno(), 0);
    db.put("a", "1")?;
    db.flush()?;
    db.put("b", "2")?;
    assert_eq!(snap.get("a")?, None);
    assert_eq!(snap.range::<&[u8], _>(..).count(), 0);
    assert_eq!(snap.prefix("").rev().count(), 0);
    assert_eq!(db.iter().count(), 2);
    Ok(())
}
