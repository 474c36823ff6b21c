//! A follower in another process, reading a live database's commit log without its lock,
//! sees exactly the committed batches, in order, across log file rotations and flushes.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium::{Db, Error, Follower, Op, Options, Result, Start, WriteBatch, WriteOptions};

const DIR_VAR: &str = "ALLUVIUM_TEST_FOLLOW_DIR";
const OPS_VAR: &str = "ALLUVIUM_TEST_FOLLOW_OPS";
const BATCHES: u64 = 1500;

fn batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(format!("k{i:06}"), format!("v{i}"));
    if i.is_multiple_of(4) {
        b.delete(format!("k{:06}", i / 2));
    }
    b
}

/// One line per batch: first sequence number, then `+key=value` or `-key` per operation.
fn describe(first: u64, ops: impl Iterator<Item = Op>) -> String {
    let ops: Vec<String> = ops
        .map(|op| match op {
            Op::Put { key, value } => format!(
                "+{}={}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            ),
            Op::Delete { key } => format!("-{}", String::from_utf8_lossy(&key)),
        })
        .collect();
    format!("batch {first} {}", ops.join(" "))
}

/// Child mode: follows the database until it has seen `OPS_VAR` operations (or 60 s pass),
/// printing every batch.
#[test]
fn follower_child_prints_what_it_sees() -> Result<()> {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return Ok(());
    };
    let want: usize = std::env::var(OPS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut follower = Follower::open(&dir, Start::Beginning)?;
    let mut out = std::io::stdout().lock();
    let (mut seen, deadline) = (0, Instant::now() + Duration::from_secs(60));
    while seen < want && Instant::now() < deadline {
        if let Some(b) = follower.next_timeout(Duration::from_millis(100))? {
            seen += b.ops.len();
            let line = describe(b.first_seqno, b.ops.into_iter().map(|(_, op)| op));
            writeln!(out, "{line}").map_err(|e| Error::io("stdout", e))?;
        }
    }
    out.flush().map_err(|e| Error::io("stdout", e))
}

#[test]
fn a_follower_in_another_process_sees_exactly_what_was_committed() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let opts = Options::default().memtable_size_bytes(8 * 1024);
    let db = Db::open(dir.path(), opts)?;
    db.create_subscription("keep", Start::Beginning)?; // keeps the log files for the follower
    let total_ops: u64 = (0..BATCHES).map(|i| batch(i).len() as u64).sum();
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "follower_child_prints_what_it_sees",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir.path())
        .env(OPS_VAR, total_ops.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follower");
    let written = write_all(&db);
    let stdout = child.stdout.take().expect("stdout");
    let got: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        // The test harness may print its own words before the first line.
        .filter_map(|l| l.find("batch ").map(|at| l[at..].to_string()))
        .collect();
    let _ = child.wait();
    let expected = written?;
    assert!(
        db.stats().flushes >= 3,
        "the follower crossed rotations and flushes"
    );
    assert_eq!(got.len(), expected.len(), "every batch, once");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "batch {i}");
    }
    Ok(())
}

/// Writes every batch, flushing now and then; returns each batch's description.
fn write_all(db: &Db) -> Result<Vec<String>> {
    let mut expected = Vec::new();
    for i in 0..BATCHES {
        let first = db.write(batch(i), &WriteOptions::default())?;
        expected.push(describe(first, batch(i).ops().iter().cloned()));
        if i % 500 == 499 {
            db.flush()?;
        }
        if i.is_multiple_of(100) {
            std::thread::sleep(Duration::from_millis(2)); // let the follower catch up now and then
        }
    }
    Ok(expected)
}
