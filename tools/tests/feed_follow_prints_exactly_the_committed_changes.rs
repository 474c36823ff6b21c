mod common;

use std::io::{BufRead, BufReader};
use std::process::{ChildStdout, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use alluvium::{Db, Options, Start, WriteOptions};
use common::*;
use serde_json::{json, Value};

fn put(k: &str, v: &str) -> TestOp {
    (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
}

/// The batches the tests write, and the `ops` the feed must print for each.
fn batches() -> (Vec<Vec<TestOp>>, Vec<Value>) {
    let written = vec![
        vec![put("user:1", "ada"), put("order:1", "book")],
        vec![(b"user:1".to_vec(), None)],
        vec![put("user:2", "grace\n")],
    ];
    let printed = vec![
        json!([
            {"key": "user:1", "seqno": 1, "kind": "put", "value": "ada"},
            {"key": "order:1", "seqno": 2, "kind": "put", "value": "book"},
        ]),
        json!([{"key": "user:1", "seqno": 3, "kind": "delete", "value": null}]),
        json!([{"key": "user:2", "seqno": 4, "kind": "put", "value": "grace\\x0a"}]),
    ];
    (written, printed)
}

/// The lines of `stdout`, as they arrive, through a channel (so a test can time out).
fn lines_of(stdout: ChildStdout) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}

fn ops(lines: &[Value]) -> Vec<Value> {
    lines.iter().map(|l| l["ops"].clone()).collect()
}

#[test]
fn feed_follow_with_exit_at_end_prints_exactly_the_committed_changes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(tmp.path(), Options::default())?;
    let (written, printed) = batches();
    write_batches(&db, &written)?;
    db.close()?;
    let dir = arg(tmp.path());
    let follow = |extra: &[&str]| {
        let mut args = vec!["feed", "follow", dir.as_str(), "--exit-at-end"];
        args.extend(extra);
        json_lines(&stdout_of(&args))
    };

    let all = follow(&["--from-beginning"]);
    assert_eq!(ops(&all), printed);
    let bounds: Vec<_> = all
        .iter()
        .map(|b| (b["first_seqno"].clone(), b["last_seqno"].clone()))
        .collect();
    assert_eq!(
        bounds,
        vec![
            (json!(1), json!(2)),
            (json!(3), json!(3)),
            (json!(4), json!(4))
        ]
    );
    assert!(all.iter().all(|b| b["commit_time_us"].as_u64() > Some(0)));

    assert_eq!(ops(&follow(&["--from", "3"])), printed[1..]);
    assert_eq!(ops(&follow(&["--from", "2"])), printed); // the whole batch holding 2
    assert_eq!(follow(&["--from-end"]), Vec::<Value>::new());
    assert_eq!(follow(&[]), Vec::<Value>::new()); // the end is the default
    let users = follow(&["--from-beginning", "--prefix", "user:"]);
    assert_eq!(users[0]["ops"], json!([printed[0][0]]));
    assert_eq!(users.len(), 3);
    Ok(())
}

#[test]
fn feed_follow_prints_each_batch_of_a_live_database_as_it_is_committed() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(tmp.path(), Options::default())?; // held open: the tool takes no lock
    let (written, printed) = batches();
    let mut child = alluvium()
        .args(["feed", "follow", &arg(tmp.path()), "--from", "1"])
        .stdout(Stdio::piped())
        .spawn()?;
    let lines = lines_of(child.stdout.take().expect("stdout"));
    for (batch, expected) in written.iter().zip(&printed) {
        write_batches(&db, std::slice::from_ref(batch))?;
        // Each line arrives while the follower keeps running: it is flushed per line.
        let line = lines.recv_timeout(Duration::from_secs(20))?;
        assert_eq!(serde_json::from_str::<Value>(&line)?["ops"], *expected);
        db.flush()?; // a new log file: the follower moves on to it
    }
    child.kill()?;
    child.wait()?;
    db.close()?;
    Ok(())
}

#[test]
fn feed_subscriptions_show_names_positions_and_lag() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(tmp.path(), Options::default())?;
    let indexer = db.create_subscription("indexer", Start::Beginning)?;
    db.create_subscription("cache", Start::Beginning)?;
    let (written, _) = batches();
    write_batches(&db, &written)?;
    indexer.ack(2, &WriteOptions::synced())?;
    // The database is still open: the listing reads its files without the lock.
    let listed = json_lines(&stdout_of(&[
        "feed",
        "subscriptions",
        &arg(tmp.path()),
        "--json",
    ]));
    let rows: Vec<_> = listed
        .iter()
        .map(|s| {
            (
                s["name"].clone(),
                s["position"].clone(),
                s["lag_seqnos"].clone(),
                s["cut_off"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!("cache"), json!(0), json!(4), json!(false)),
            (json!("indexer"), json!(2), json!(2), json!(false)),
        ]
    );
    db.close()?;
    let edits = json_lines(&stdout_of(&[
        "manifest",
        "dump",
        &arg(tmp.path()),
        "--json",
    ]));
    let created = edits
        .iter()
        .flat_map(|e| e["subscriptions"].as_array().cloned().unwrap_or_default());
    let names: Vec<_> = created
        .filter(|c| c["change"] == json!("set"))
        .map(|c| c["name"].clone())
        .collect();
    assert!(
        names.contains(&json!("indexer")) && names.contains(&json!("cache")),
        "{edits:?}"
    );
    let table = stdout_of(&["feed", "subscriptions", &arg(tmp.path())]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("indexer") && l.contains(" 2 ")),
        "{table}"
    );
    Ok(())
}
