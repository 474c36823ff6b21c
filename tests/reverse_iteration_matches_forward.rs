//! Iterating backwards gives exactly the forward entries reversed, for every combination of
//! bounds, with data spread over several segments and the memtable; and an iterator walked
//! from both ends yields every key exactly once.
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use alluvium::{Db, DbIter, Options, Result, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;
type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

const KEYS: usize = 200;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Writes four layers — three flushed to segments, the last left in the memtable — that
/// overwrite and delete each other's keys, and returns the expected contents.
fn layered_db(dir: &std::path::Path) -> Result<(Db, Model)> {
    let db = Db::open(dir, Options::default())?;
    let mut model = Model::new();
    let mut apply = |db: &Db, i: usize, value: Option<String>| -> Result<()> {
        match value {
            Some(v) => {
                db.put(key(i), &v)?;
                model.insert(key(i), v.into_bytes());
            }
            None => {
                db.delete(key(i))?;
                model.remove(&key(i));
            }
        }
        Ok(())
    };
    for i in (0..KEYS).step_by(2) {
        apply(&db, i, Some(format!("layer 1 of {i}")))?;
    }
    db.flush()?;
    for i in 0..KEYS {
        if i % 3 == 0 {
            apply(&db, i, Some(format!("layer 2 of {i}")))?;
        } else if i % 5 == 0 {
            apply(&db, i, None)?;
        }
    }
    db.flush()?;
    for i in (1..KEYS).step_by(2) {
        apply(&db, i, Some(format!("layer 3 of {i}")))?;
    }
    for i in (0..KEYS).step_by(7) {
        apply(&db, i, None)?;
    }
    db.flush()?;
    for i in 0..KEYS {
        if i % 11 == 0 {
            apply(&db, i, Some(format!("layer 4 of {i}")))?;
        } else if i % 4 == 1 {
            apply(&db, i, None)?;
        }
    }
    // Delete whole stretches so some ranges see only tombstones at the newest level.
    let mut batch = WriteBatch::new();
    for i in 120..140 {
        batch.delete(key(i));
        model.remove(&key(i));
    }
    db.write(batch, &WriteOptions::default())?;
    assert_eq!(db.stats().levels[0].segments, 3);
    assert!(!model.is_empty());
    Ok((db, model))
}

/// Bound keys: before everything, present keys, deleted keys, keys between keys, and after
/// everything.
fn bound_keys() -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new(), b"a".to_vec(), b"key".to_vec()];
    for i in [0, 1, 7, 21, 50, 77, 121, 130, 139, 140, 199] {
        out.push(key(i));
    }
    out.push(b"key050x".to_vec());
    out.push(b"key2".to_vec());
    out.push(b"zzz".to_vec());
    out
}

fn bounds() -> Vec<Bound<Vec<u8>>> {
    let mut out = vec![Bound::Unbounded];
    for k in bound_keys() {
        out.push(Bound::Included(k.clone()));
        out.push(Bound::Excluded(k));
    }
    out
}

fn model_range(model: &Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Entries {
    let range = (
        lo.as_ref().map(Vec::as_slice),
        hi.as_ref().map(Vec::as_slice),
    );
    model
        .iter()
        .filter(|(k, _)| range.contains(k.as_slice()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn reverse_iteration_matches_forward() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, model) = layered_db(dir.path())?;
    let snap = db.snapshot();
    db.put("key000", "after the snapshot")?;
    db.delete("key003")?;
    let mut live = model.clone();
    live.insert(key(0), b"after the snapshot".to_vec());
    live.remove(&key(3));

    let mut nonempty = 0;
    for lo in bounds() {
        for hi in bounds() {
            let what = format!("{lo:?}..{hi:?}");
            let expected = model_range(&live, &lo, &hi);
            let fwd: Entries = db.range((lo.clone(), hi.clone())).collect::<Result<_>>()?;
            let mut back: Entries = db
                .range((lo.clone(), hi.clone()))
                .rev()
                .collect::<Result<_>>()?;
            back.reverse();
            assert_eq!(fwd, expected, "{what}");
            assert_eq!(back, expected, "{what} reversed");

            let expected = model_range(&model, &lo, &hi);
            let fwd: Entries = snap
                .range((lo.clone(), hi.clone()))
                .collect::<Result<_>>()?;
            let mut back: Entries = snap
                .range((lo.clone(), hi.clone()))
                .rev()
                .collect::<Result<_>>()?;
            back.reverse();
            assert_eq!(fwd, expected, "snapshot {what}");
            assert_eq!(back, expected, "snapshot {what} reversed");
            nonempty += usize::from(!expected.is_empty());
        }
    }
    assert!(nonempty > 100, "the bounds cover real data: {nonempty}");
    Ok(())
}

/// Walks `it` taking from the front or the back as `pattern` says, then checks both ends
/// stay exhausted.
fn walk_both_ends(mut it: DbIter, mut pattern: u64) -> Result<Entries> {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    loop {
        let from_front = pattern & 1 == 1;
        pattern = pattern.rotate_right(1) ^ 0x9e37_79b9_7f4a_7c15;
        let next = if from_front {
            it.next()
        } else {
            it.next_back()
        };
        match next {
            Some(entry) if from_front => front.push(entry?),
            Some(entry) => back.push(entry?),
            None => break,
        }
    }
    assert!(it.next().is_none(), "front stays exhausted");
    assert!(it.next_back().is_none(), "back stays exhausted");
    back.reverse();
    front.extend(back);
    Ok(front)
}

#[test]
fn mixing_next_and_next_back_yields_each_key_once() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, model) = layered_db(dir.path())?;
    let ranges: Vec<Bounds> = vec![
        (Bound::Unbounded, Bound::Unbounded),
        (Bound::Included(key(10)), Bound::Excluded(key(60))),
        (Bound::Excluded(key(119)), Bound::Included(key(141))),
        (Bound::Included(key(121)), Bound::Included(key(139))),
        (Bound::Included(key(77)), Bound::Included(key(77))),
        (Bound::Included(key(78)), Bound::Excluded(key(80))),
    ];
    for (lo, hi) in ranges {
        let expected = model_range(&model, &lo, &hi);
        for pattern in [
            0,
            u64::MAX,
            0xaaaa_aaaa_aaaa_aaaa,
            1,
            1 << 63,
            0x1234_5678_9abc_def0,
        ] {
            let got = walk_both_ends(db.range((lo.clone(), hi.clone())), pattern)?;
            assert_eq!(got, expected, "{lo:?}..{hi:?} pattern {pattern:#x}");
        }
    }
    Ok(())
}
