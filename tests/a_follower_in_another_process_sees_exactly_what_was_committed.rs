//! A follower in another process, reading a live database's commit log without its lock,
//! sees exactly the committed batches, in order, across log file rotations and flushes; an
//! unfinished last record means "not yet"; and a position whose log file was deleted is
//! `FeedTruncated`, never a silent gap.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium::commit_log::encode_record;
use alluvium::files::{self, FileKind};
use alluvium::frame::encode_frame;
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

#[test]
fn an_unfinished_last_record_means_not_yet() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let first = db.put("a", "1")?;
    db.close()?;
    let newest = log_numbers(dir.path())?
        .into_iter()
        .max()
        .expect("a log file");
    let mut follower = Follower::open(dir.path(), Start::Beginning)?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(first));

    let (mut payload, mut frame) = (Vec::new(), Vec::new());
    let mut next = WriteBatch::new();
    next.put("b", "2");
    encode_record(&mut payload, first + 1, 0, &next, &[]);
    encode_frame(&mut frame, &payload);
    let path = files::log_path(dir.path(), newest);
    let append = |bytes: &[u8]| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&path, e))
    };
    append(&frame[..frame.len() / 2])?;
    assert_eq!(
        follower.try_next()?,
        None,
        "half a record is not yet a record"
    );
    append(&frame[frame.len() / 2..])?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(first + 1));
    Ok(())
}

#[test]
fn a_deleted_position_is_feed_truncated() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default().memtable_size_bytes(8 * 1024))?;
    for i in 0..50 {
        db.write(batch(i), &WriteOptions::default())?;
    }
    let mut follower = Follower::open(dir.path(), Start::Beginning)?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(1));
    // No subscription: flushes delete the log files the follower has not reached yet.
    for i in 50..1000 {
        db.write(batch(i), &WriteOptions::default())?;
    }
    db.flush()?;
    // The gap shows when the next record arrives: the newest file is still empty.
    let later = db.put("later", "1")?;
    let result = std::iter::from_fn(|| follower.try_next().transpose()).find(|r| r.is_err());
    let oldest = db.stats().feed_oldest_seqno;
    assert!(
        matches!(result, Some(Err(Error::FeedTruncated { oldest_available, .. })) if oldest_available == later),
        "{result:?} (oldest {oldest})"
    );
    let err = Follower::open(dir.path(), Start::SeqNo(2)).err();
    assert!(
        matches!(err, Some(Error::FeedTruncated { requested: 2, oldest_available })
            if oldest_available == later && later == oldest),
        "{err:?}"
    );
    Ok(())
}

fn log_numbers(dir: &std::path::Path) -> Result<Vec<u64>> {
    Ok(files::list(dir)?
        .into_iter()
        .filter_map(|k| {
            if let FileKind::Log(n) = k {
                Some(n)
            } else {
                None
            }
        })
        .collect())
}
