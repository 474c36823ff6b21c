//! A consumer that keeps a derived view inside the database and acknowledges its position in
//! the same batch as the view update applies every change exactly once, however often it
//! crashes: the view (a running sum of the `n:` values) always equals a recomputation.
//!
//! The consumer runs as a child process (this test executable again, selected by environment
//! variables) that aborts right after its k-th view update. The test can fail:
//! `a_separate_acknowledgement_applies_changes_twice_after_a_crash` runs the same consumer
//! with the acknowledgement in a batch of its own, and the checker sees the double count.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use alluvium::{Db, KeyFilter, Options, Result, Start, WriteBatch, WriteOptions};

const DIR_VAR: &str = "ALLUVIUM_TEST_EXACTLY_ONCE_DIR";
const MODE_VAR: &str = "ALLUVIUM_TEST_EXACTLY_ONCE_MODE";
const CRASH_VAR: &str = "ALLUVIUM_TEST_EXACTLY_ONCE_CRASH_AFTER";
const BATCHES: u64 = 300;

fn options() -> Options {
    Options::default().memtable_size_bytes(8 * 1024)
}

fn sum_of(db: &Db) -> Result<u64> {
    let v = db.get("view:sum")?;
    Ok(v.and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0))
}

/// Child mode: folds every `n:` value into `view:sum`, acknowledging atomically (`atomic`)
/// or in a separate batch (`separate`), and aborts after the view update number
/// `CRASH_VAR` (never, if unset).
#[test]
fn consumer_child_folds_the_feed_into_a_sum() -> Result<()> {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return Ok(());
    };
    let atomic = std::env::var(MODE_VAR).as_deref() == Ok("atomic");
    let crash_after: Option<u64> = std::env::var(CRASH_VAR).ok().and_then(|v| v.parse().ok());
    let db = Db::open(&dir, options())?;
    let mut sub = db
        .open_subscription("sum")?
        .with_filter(KeyFilter::Prefix(b"n:".to_vec()));
    let mut updates = 0;
    while let Some(batch) = sub.next_timeout(Duration::from_millis(200))? {
        let add: u64 = batch
            .ops
            .iter()
            .filter_map(|(_, op)| std::str::from_utf8(op.value()).ok()?.parse::<u64>().ok())
            .sum();
        let mut update = WriteBatch::new();
        update.put("view:sum", (sum_of(&db)? + add).to_string());
        if atomic {
            update.ack("sum", batch.last_seqno);
        }
        db.write(update, &WriteOptions::default())?;
        updates += 1;
        if crash_after == Some(updates) {
            std::process::abort(); // between the view update and anything after it
        }
        if !atomic {
            sub.ack(batch.last_seqno, &WriteOptions::default())?;
        }
    }
    Ok(())
}

fn prepare(dir: &Path) -> Result<u64> {
    let db = Db::open(dir, options())?;
    db.create_subscription("sum", Start::Beginning)?;
    let mut expected = 0;
    for i in 0..BATCHES {
        let mut b = WriteBatch::new();
        for j in 0..1 + i % 3 {
            let v = i * 10 + j;
            b.put(format!("n:{i:05}.{j}"), v.to_string());
            expected += v;
        }
        db.write(b, &WriteOptions::default())?;
    }
    db.close()?;
    Ok(expected)
}

fn run_consumer(dir: &Path, mode: &str, crash_after: Option<u64>) {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--exact",
        "consumer_child_folds_the_feed_into_a_sum",
        "--test-threads=1",
    ])
    .env(DIR_VAR, dir)
    .env(MODE_VAR, mode)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(k) = crash_after {
        cmd.env(CRASH_VAR, k.to_string());
    }
    let status = cmd.status().expect("run consumer");
    assert_eq!(status.success(), crash_after.is_none(), "{status:?}");
}

/// Crashes the consumer at several points, then lets it finish; returns the view's sum.
fn crash_then_finish(dir: &Path, mode: &str) -> Result<u64> {
    for k in [1, 17, 60, 5, 100] {
        run_consumer(dir, mode, Some(k));
    }
    run_consumer(dir, mode, None);
    let db = Db::open(dir, options())?;
    assert!(db.stats().subscriptions[0].position > 0);
    sum_of(&db)
}

#[test]
fn acknowledging_in_the_view_batch_applies_each_change_exactly_once_across_crashes() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = prepare(dir.path())?;
    assert_eq!(crash_then_finish(dir.path(), "atomic")?, expected);
    Ok(())
}

#[test]
fn a_separate_acknowledgement_applies_changes_twice_after_a_crash() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = prepare(dir.path())?;
    let got = crash_then_finish(dir.path(), "separate")?;
    assert!(
        got > expected,
        "the checker must see double application: {got} vs {expected}"
    );
    Ok(())
}
