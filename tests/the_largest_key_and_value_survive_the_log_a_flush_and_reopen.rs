//! The largest key (64 KiB) with the largest value (256 MiB) goes through every file kind: it
//! is replayed from the commit log, flushed into a segment (one entry bigger than any block),
//! read back after a reopen, and overwritten, byte for byte. The empty key with the empty
//! value makes the same trip. One byte more is rejected (`tests/limits_and_invalid_options_
//! are_rejected.rs`). This test holds about 1.5 GiB at its peak.
use alluvium::options::{KEY_SIZE_MAX, VALUE_SIZE_MAX};
use alluvium::{Compression, Db, Options, Result};

fn big_value() -> Vec<u8> {
    // Not compressible by a run-length trick, cheap to make.
    (0..VALUE_SIZE_MAX as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8)
        .collect()
}

#[test]
fn the_largest_key_and_value_survive_the_log_a_flush_and_reopen() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = vec![0xa5; KEY_SIZE_MAX];
    let value = big_value();
    let opts = Options::default()
        .compression(Compression::Snappy)
        .memtable_size_bytes(1 << 30); // the value stays in the log until the flush below
    let db = Db::open(dir.path(), opts.clone())?;
    db.put(&key, &value)?;
    db.put("", "")?;
    db.put("after", "the big one")?;
    db.close()?;

    let db = Db::open(dir.path(), opts.clone())?;
    assert_eq!(
        db.recovery_report().records_replayed,
        3,
        "replayed from the log"
    );
    assert!(
        db.get(&key)? == Some(value.clone()),
        "from the replayed memtable"
    );
    db.flush()?;
    db.close()?;

    let db = Db::open(dir.path(), opts)?;
    assert_eq!(
        db.recovery_report().records_replayed,
        0,
        "everything is in a segment"
    );
    assert!(db.get(&key)? == Some(value.clone()), "from the segment");
    assert_eq!(db.get("")?, Some(Vec::new()));
    let keys: Vec<usize> = db
        .iter()
        .map(|e| e.map(|(k, _)| k.len()))
        .collect::<Result<_>>()?;
    assert_eq!(keys, vec![0, 5, KEY_SIZE_MAX]);
    drop(value);
    db.put(&key, "small now")?;
    db.flush()?;
    assert_eq!(db.get(&key)?, Some(b"small now".to_vec()));
    db.close()
}
