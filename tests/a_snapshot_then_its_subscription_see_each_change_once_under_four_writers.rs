//! A view built from a consistent snapshot at sequence number S and then from the change feed
//! from S + 1 sees every change exactly once, with no gap and no duplicate, while four writers
//! keep committing: `create_subscription_at_snapshot`, and a plain cursor at S + 1.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alluvium::{Db, Error, Options, Result, Start, WriteBatch, WriteOptions};

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 400;

/// Writer `t` writes keys `w{t}:{i}`, each once, in batches of one or two.
fn writer(db: Db, t: u64) -> Result<()> {
    let mut i = 0;
    while i < PER_WRITER {
        let mut b = WriteBatch::new();
        b.put(format!("w{t}:{i:05}"), i.to_string());
        i += 1;
        if i.is_multiple_of(3) && i < PER_WRITER {
            b.put(format!("w{t}:{i:05}"), i.to_string());
            i += 1;
        }
        db.write(b, &WriteOptions::default())?;
        if i.is_multiple_of(20) {
            std::thread::sleep(Duration::from_millis(1)); // keep writing after the snapshot
        }
    }
    Ok(())
}

/// Counts, per key, how often the snapshot and the feed after it delivered it.
fn deliveries(
    snapshot_keys: Vec<Vec<u8>>,
    mut next: impl FnMut() -> Result<Option<alluvium::ChangeBatch>>,
    done: &AtomicBool,
) -> Result<BTreeMap<Vec<u8>, u32>> {
    let mut seen: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for k in snapshot_keys {
        *seen.entry(k).or_default() += 1;
    }
    loop {
        let finished = done.load(Ordering::Acquire);
        match next()? {
            Some(batch) => {
                for (_, op) in batch.ops {
                    *seen.entry(op.key().to_vec()).or_default() += 1;
                }
            }
            // Every write was visible before this call, which found nothing: caught up.
            None if finished => break,
            None => {}
        }
    }
    Ok(seen)
}

fn run(use_subscription: bool) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(
        dir.path(),
        Options::default().memtable_size_bytes(16 * 1024),
    )?;
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || writer(db, t))
        })
        .collect();
    while db.latest_seqno() < WRITERS * PER_WRITER / 4 {
        std::thread::yield_now(); // take the snapshot mid-way
    }
    let (snapshot, mut sub) = db.create_subscription_at_snapshot("view")?;
    let mut cursor = db.changes(Start::SeqNo(snapshot.seqno() + 1))?;
    let keys: Vec<Vec<u8>> = snapshot
        .prefix("w")
        .map(|e| e.map(|(k, _)| k))
        .collect::<Result<_>>()?;
    let total = (WRITERS * PER_WRITER) as usize;
    assert!(
        keys.len() < total / 2,
        "the snapshot was taken mid-way: {}",
        keys.len()
    );
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("writer"))
                .collect();
            done.store(true, Ordering::Release);
            results
        })
    };
    let seen = if use_subscription {
        deliveries(keys, || sub.next_timeout(Duration::from_millis(20)), &done)?
    } else {
        deliveries(
            keys,
            || cursor.next_timeout(Duration::from_millis(20)),
            &done,
        )?
    };
    for r in watcher.join().expect("watcher") {
        r?;
    }
    assert_eq!(seen.len() as u64, WRITERS * PER_WRITER, "no gap");
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "no duplicate: {twice:?}");
    Ok(())
}

#[test]
fn a_snapshot_then_its_subscription_see_each_change_once_under_four_writers() -> Result<()> {
    run(true)
}

#[test]
fn a_snapshot_then_a_cursor_after_it_see_each_change_once_under_four_writers() -> Result<()> {
    run(false)
}
