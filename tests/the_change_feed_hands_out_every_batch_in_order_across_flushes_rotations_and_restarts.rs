//! The change feed hands out every committed batch exactly once, whole and in commit order,
//! while memtables rotate, flushes delete nothing a subscription still needs, and the database
//! is closed and reopened in between.
use alluvium::{ChangeBatch, Db, Error, Op, Options, Result, Start, WriteBatch};

/// A tiny memtable makes rotations and flushes frequent.
fn options() -> Options {
    Options::default()
        .memtable_size_bytes(8 * 1024)
        .compression(alluvium::Compression::None)
}

/// Batch `i`: `1 + i % 4` operations, every fifth one a delete.
fn batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for j in 0..1 + i % 4 {
        let key = format!("key{:05}", (i * 7 + j) % 500);
        if (i + j).is_multiple_of(5) {
            b.delete(key);
        } else {
            b.put(
                key,
                format!("value {i}.{j} {}", "x".repeat((i % 40) as usize)),
            );
        }
    }
    b
}

/// What the feed must hand out for batch `i` committed at `first`.
fn expected(i: u64, first: u64) -> Vec<(u64, Op)> {
    (first..).zip(batch(i).ops().iter().cloned()).collect()
}

fn read_all(db: &Db, name: &str) -> Result<Vec<ChangeBatch>> {
    let mut sub = db.open_subscription(name)?;
    let mut out = Vec::new();
    while let Some(b) = sub.try_next()? {
        out.push(b);
    }
    Ok(out)
}

#[test]
fn the_change_feed_hands_out_every_batch_in_order_across_flushes_rotations_and_restarts(
) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let mut firsts = Vec::new();
    Db::open(dir.path(), options())?.create_subscription("all", Start::Beginning)?;
    for round in 0..4u64 {
        let db = Db::open(dir.path(), options())?;
        check(&db, &firsts)?; // after every restart
        for i in round * 300..(round + 1) * 300 {
            firsts.push(db.write(batch(i), &Default::default())?);
        }
        if round % 2 == 0 {
            db.flush()?;
        }
        check(&db, &firsts)?;
        db.close()?;
    }
    let db = Db::open(dir.path(), options())?;
    let stats = db.stats();
    assert!(stats.feed_retained_log_files > 0, "{stats:?}");
    assert_eq!(stats.feed_oldest_seqno, 1);
    let got = read_all(&db, "all")?;
    assert_eq!(got.len(), firsts.len());
    // A cursor from the beginning sees the same as the subscription.
    let mut cursor = db.changes(Start::Beginning)?;
    for b in &got {
        assert_eq!(cursor.try_next()?.as_ref(), Some(b));
    }
    assert_eq!(cursor.try_next()?, None);
    Ok(())
}

fn check(db: &Db, firsts: &[u64]) -> Result<()> {
    let got = read_all(db, "all")?;
    assert_eq!(
        got.len(),
        firsts.len(),
        "one change batch per written batch"
    );
    for (i, (b, &first)) in got.iter().zip(firsts).enumerate() {
        assert_eq!(b.first_seqno, first, "batch {i}");
        assert_eq!(b.ops, expected(i as u64, first), "batch {i}");
        assert_eq!(b.last_seqno, first + b.ops.len() as u64 - 1);
    }
    Ok(())
}
