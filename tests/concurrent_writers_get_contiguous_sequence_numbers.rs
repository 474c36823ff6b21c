//! Batches written concurrently through clones of one `Db` take sequence numbers that tile
//! `1..=latest` exactly, and every key keeps its last value, also after reopen.
use std::collections::BTreeMap;

use alluvium::{Db, Options, Result, WriteBatch, WriteOptions};

const THREADS: usize = 4;
const BATCHES_PER_THREAD: usize = 250;
const KEYS_PER_THREAD: usize = 40;

/// What one writer did: for every batch its first sequence number and length, and the last
/// value it wrote to each of its keys (writers never share keys, so a writer's own order
/// decides the final value).
struct Written {
    batches: Vec<(u64, u64)>,
    last_values: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn writer(db: Db, thread: usize) -> Result<Written> {
    let mut written = Written {
        batches: Vec::new(),
        last_values: BTreeMap::new(),
    };
    for i in 0..BATCHES_PER_THREAD {
        let len = 1 + (i * 7 + thread) % 4;
        let mut batch = WriteBatch::new();
        let mut values = Vec::new();
        for op in 0..len {
            let key = format!("t{thread}-{:03}", (i * 3 + op) % KEYS_PER_THREAD).into_bytes();
            let value = format!("{thread}:{i}:{op}:{}", "v".repeat(i % 50)).into_bytes();
            batch.put(&key, &value);
            values.push((key, value));
        }
        let opts = WriteOptions {
            sync: i % 16 == thread,
        };
        let first = db.write(batch, &opts)?;
        if let Some(&(prev, prev_len)) = written.batches.last() {
            assert!(first >= prev + prev_len, "a writer's batches are ordered");
        }
        written.batches.push((first, len as u64));
        written.last_values.extend(values);
    }
    Ok(written)
}

fn check_values(db: &Db, expected: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<()> {
    for (key, value) in expected {
        assert_eq!(db.get(key)?.as_ref(), Some(value), "key {key:?}");
    }
    let all: Vec<_> = db.iter().collect::<Result<_>>()?;
    let expected: Vec<_> = expected
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(all, expected);
    Ok(())
}

#[test]
fn concurrent_writers_get_contiguous_sequence_numbers() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options::default().memtable_size_bytes(16 * 1024);
    let db = Db::open(dir.path(), opts.clone())?;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || writer(db, t))
        })
        .collect();
    let mut batches = Vec::new();
    let mut expected = BTreeMap::new();
    for h in handles {
        let w = h.join().expect("writer thread panicked")?;
        batches.extend(w.batches);
        expected.extend(w.last_values);
    }

    batches.sort_unstable();
    let mut next = 1;
    for &(first, len) in &batches {
        assert_eq!(first, next, "gap or overlap at sequence number {next}");
        next = first + len;
    }
    assert_eq!(db.latest_seqno(), next - 1);

    let stats = db.stats();
    assert_eq!(stats.batches, (THREADS * BATCHES_PER_THREAD) as u64);
    assert!(stats.commit_groups >= 1);
    assert!(stats.commit_groups <= stats.batches, "{stats:?}");
    assert!(stats.flushes > 0, "the test means to write across flushes");
    check_values(&db, &expected)?;

    let latest = db.latest_seqno();
    db.close()?;
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.latest_seqno(), latest);
    check_values(&db, &expected)
}
