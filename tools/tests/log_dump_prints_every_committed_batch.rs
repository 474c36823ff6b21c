mod common;

use alluvium::{Db, Options};
use common::*;
use serde_json::json;

fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
}

#[test]
fn log_dump_prints_every_committed_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let batches = vec![
        vec![put("apple", "red"), put("kiwi", "green")],
        vec![(b"apple".to_vec(), None)],
        vec![
            put("bin\u{1}", "tab\there"),
            put("cherry", "dark"),
            put("date", ""),
        ],
    ];
    write_batches(&db, &batches)?;
    db.close()?; // no flush: the batches live in the commit log only

    let records = json_lines(&stdout_of(&["log", "dump", &arg(dir.path()), "--json"]));
    let summary: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["first_seqno"].clone(),
                r["count"].clone(),
                r["ops"].clone(),
            )
        })
        .collect();
    let op = |seqno: u64, kind: &str, key: &str, value: Option<&str>| json!({"key": key, "seqno": seqno, "kind": kind, "value": value});
    assert_eq!(
        summary,
        vec![
            (
                json!(1),
                json!(2),
                json!([
                    op(1, "put", "apple", Some("red")),
                    op(2, "put", "kiwi", Some("green"))
                ])
            ),
            (json!(3), json!(1), json!([op(3, "delete", "apple", None)])),
            (
                json!(4),
                json!(3),
                json!([
                    op(4, "put", r"bin\x01", Some(r"tab\x09here")),
                    op(5, "put", "cherry", Some("dark")),
                    op(6, "put", "date", Some("")),
                ])
            ),
            (json!(7), json!(0), json!([])), // the close's seal marker
        ]
    );
    let markers: Vec<bool> = records
        .iter()
        .map(|r| r["seal_marker"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(markers, [false, false, false, true]);
    for r in &records {
        assert!(
            r["commit_time_us"].as_u64() > Some(1_600_000_000_000_000),
            "{r}"
        );
        assert!(
            r["file"].as_str().is_some_and(|f| f.ends_with(".log")),
            "{r}"
        );
    }

    // One file gives the same records as the directory holding it.
    let log = records[0]["file"].as_str().unwrap_or_default().to_string();
    let one = json_lines(&stdout_of(&["log", "dump", &log, "--json"]));
    assert_eq!(one, records);

    let human = stdout_of(&["log", "dump", &arg(dir.path())]);
    assert!(
        human
            .lines()
            .any(|l| l.contains("delete") && l.contains("apple")),
        "{human}"
    );
    assert!(human.contains(r"tab\x09here"), "{human}");
    assert!(human.lines().any(|l| l.contains("seal")), "{human}");
    Ok(())
}

#[test]
fn log_dump_shows_each_record_s_stored_size_and_compression() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let long = "ab".repeat(100);
    write_batches(&db, &[vec![put("apple", "red")], vec![put("pear", &long)]])?;
    db.close()?;

    let records = json_lines(&stdout_of(&["log", "dump", &arg(dir.path()), "--json"]));
    let stored: Vec<_> = records
        .iter()
        .map(|r| (r["stored_bytes"].clone(), r["compressed"].clone()))
        .collect();
    // 20 header bytes, the encoding byte, then kind, key and value with their lengths and the
    // acknowledgement count: 21 + 1 + 1 + 5 + 1 + 3 + 1 raw; the 200-byte value compressed.
    assert_eq!(stored[0], (json!(33), json!(false)));
    assert_eq!(stored[1].1, json!(true));
    assert!(stored[1].0.as_u64() < Some(60), "{:?}", stored[1]);
    assert_eq!(records[1]["ops"][0]["value"], json!(long));
    let human = stdout_of(&["log", "dump", &arg(dir.path())]);
    assert!(human.contains(" snappy "), "{human}");
    Ok(())
}
