mod common;

use alluvium::{Db, Options};
use common::*;
use serde_json::json;

#[test]
fn put_get_delete_and_scan_round_trip_through_the_tool() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = arg(&tmp.path().join("db"));
    let put = json_lines(&stdout_of(&[
        "put", &db, "user:1", "ada", "--create", "--json",
    ]));
    assert_eq!(put, vec![json!({"op": "put", "key": "user:1", "seqno": 1})]);
    stdout_of(&["put", &db, "user:2", "grace"]);
    stdout_of(&["put", &db, r"bin\x00\\", r"v\xff"]); // escapes read back as bytes
    stdout_of(&[
        "put",
        &db,
        "ff00",
        "00",
        "--key-encoding",
        "hex",
        "--value-encoding",
        "hex",
    ]);

    assert_eq!(stdout_of(&["get", &db, "user:1"]), "ada\n");
    assert_eq!(
        stdout_of(&["get", &db, "62696e005c", "--key-encoding", "hex"]),
        "v\\xff\n"
    );
    let got = json_lines(&stdout_of(&[
        "get",
        &db,
        r"bin\x00\\",
        "--json",
        "--value-encoding",
        "base64",
    ]));
    assert_eq!(got, vec![json!({"key": r"bin\x00\\", "value": "dv8="})]);

    stdout_of(&["delete", &db, "user:1"]);
    let missing = run(&["get", &db, "user:1"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let all = json_lines(&stdout_of(&["scan", &db, "--json"]));
    let keys: Vec<_> = all.iter().map(|e| e["key"].clone()).collect();
    assert_eq!(
        keys,
        vec![json!(r"bin\x00\\"), json!("user:2"), json!(r"\xff\x00")]
    );
    let users = json_lines(&stdout_of(&["scan", &db, "--prefix", "user:", "--json"]));
    assert_eq!(users, vec![json!({"key": "user:2", "value": "grace"})]);
    let last = json_lines(&stdout_of(&[
        "scan",
        &db,
        "--reverse",
        "--limit",
        "1",
        "--json",
        "--key-encoding",
        "hex",
    ]));
    assert_eq!(last, vec![json!({"key": "ff00", "value": r"\x00"})]);
    let range = stdout_of(&["scan", &db, "--from", "c", "--to", "v"]);
    assert_eq!(range, "KEY     VALUE\nuser:2  grace\n");

    // The tool's writes are the database's: the library reads them back.
    let opened = Db::open(tmp.path().join("db"), Options::default())?;
    assert_eq!(opened.get(b"bin\x00\\")?, Some(b"v\xff".to_vec()));
    opened.close()?;
    Ok(())
}

#[test]
fn a_database_another_process_holds_is_refused_with_a_clear_message() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(tmp.path(), Options::default())?;
    for args in [
        vec!["get", "k"],
        vec!["put", "k", "v"],
        vec!["delete", "k"],
        vec!["scan"],
    ] {
        let mut full = vec![args[0], tmp.path().to_str().unwrap_or_default()];
        full.extend(&args[1..]);
        let out = run(&full);
        assert!(!out.status.success(), "{full:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("database is in use by another process"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    db.close()?;
    Ok(())
}

#[test]
fn a_directory_without_a_database_is_not_turned_into_one() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = run(&["put", tmp.path().to_str().unwrap_or_default(), "k", "v"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no alluvium database here"));
    assert_eq!(std::fs::read_dir(tmp.path())?.count(), 0);
    Ok(())
}
