mod common;

use alluvium::Db;
use common::*;
use serde_json::{json, Value};

/// Puts 200 keys, a binary key, an overwrite and a delete under a snapshot, flushes, and
/// returns the entries the segment must hold as JSON (hex keys and values), in segment order.
fn write_and_flush(db: &Db) -> alluvium::Result<Vec<Value>> {
    let mut written = Vec::new();
    let mut put = |key: &[u8], value: &[u8]| -> alluvium::Result<()> {
        let seqno = db.put(key, value)?;
        written.push((key.to_vec(), seqno, "put", Some(hex(value))));
        Ok(())
    };
    for i in 0..200 {
        put(
            format!("key:{i:04}").as_bytes(),
            format!("value {i}").as_bytes(),
        )?;
    }
    put(b"\x00\xffbin\\", b"\n\x01")?;
    // The snapshot keeps the versions the overwrite and the delete shadow in the segment
    // (a flush writes only the versions some reader can still see).
    let snapshot = db.snapshot();
    put(b"key:0007", b"new")?;
    let seqno = db.delete(b"key:0010")?;
    written.push((b"key:0010".to_vec(), seqno, "delete", None));
    db.flush()?;
    drop(snapshot);
    written.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let entry = |(k, s, kind, v): (Vec<u8>, u64, &str, Option<String>)| json!({"key": hex(&k), "seqno": s, "kind": kind, "value": v});
    Ok(written.into_iter().map(entry).collect())
}

#[test]
fn segment_dump_prints_every_entry_that_was_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), small_blocks())?;
    let expected = write_and_flush(&db)?;
    db.close()?;
    let segments = files_ending(dir.path(), ".seg");
    assert_eq!(segments.len(), 1);
    let seg = arg(&segments[0]);
    let hex_args = ["--json", "--key-encoding", "hex", "--value-encoding", "hex"];

    let mut args = vec!["segment", "dump", seg.as_str()];
    args.extend(hex_args);
    assert_eq!(json_lines(&stdout_of(&args)), expected);

    let from = hex(b"key:0100");
    args.extend(["--from", from.as_str(), "--limit", "5"]);
    let start = expected
        .iter()
        .position(|e| e["key"] == json!(from))
        .expect("key:0100");
    assert_eq!(json_lines(&stdout_of(&args)), expected[start..start + 5]);

    let human = stdout_of(&["segment", "dump", &seg]);
    assert!(human.contains(r"\x00\xffbin\\"), "{human}");
    assert!(human
        .lines()
        .any(|l| l.starts_with("key:0010") && l.contains("delete")));
    Ok(())
}

#[test]
fn segment_stats_match_what_was_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), small_blocks())?;
    let expected = write_and_flush(&db)?;
    db.close()?;
    let seg = arg(&files_ending(dir.path(), ".seg")[0]);
    let stats = &json_lines(&stdout_of(&["segment", "stats", &seg, "--json"]))[0];
    assert_eq!(stats["entry_count"], json!(expected.len()));
    assert_eq!(stats["tombstone_count"], json!(1));
    assert_eq!(stats["distinct_keys"], json!(201));
    assert_eq!(stats["seqno_min"], json!(1));
    assert_eq!(stats["seqno_max"], json!(203));
    assert_eq!(stats["compression"], json!("none"));
    assert!(stats["data_block_count"].as_u64() > Some(1), "{stats}");
    assert_eq!(stats["smallest"]["key"], json!(r"\x00\xffbin\\"));
    assert_eq!(stats["largest"]["key"], json!("key:0199"));
    let bits = stats["filter_bits_per_key"].as_f64().unwrap_or(0.0);
    assert!((9.0..=11.0).contains(&bits), "{stats}");
    let human = stdout_of(&["segment", "stats", &seg]);
    assert!(
        human.contains("entries           203 (1 tombstones)"),
        "{human}"
    );
    Ok(())
}
