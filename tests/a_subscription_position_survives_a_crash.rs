//! A subscription's acknowledged position survives a process killed at a random moment
//! (SIGKILL, while it reads, writes, acknowledges and flushes): after reopening, the position
//! is at least the last acknowledgement the killed process saw succeed, never moves backwards,
//! sits on a batch boundary, and the subscription resumes at position + 1.
//!
//! The parent runs this test executable again as a child (selected by an environment
//! variable) that consumes the feed and prints each acknowledged position. The test can fail:
//! `the_checker_reports_a_lost_position` removes the newest log file after a kill, which loses
//! acknowledgements, and requires the checker to notice.
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use alluvium::files::{self, FileKind};
use alluvium::{Db, KeyFilter, Options, Result, Start, WriteBatch, WriteOptions};

const CHILD_DIR_VAR: &str = "ALLUVIUM_TEST_POSITION_DIR";
const BATCHES: u64 = 2000;

fn options() -> Options {
    Options::default().memtable_size_bytes(8 * 1024)
}

/// Child mode: reads the `data:` batches of subscription `reader`, writes a derived key for
/// each (so memtables fill and flush), acknowledges it, and prints `ack <position>`.
#[test]
fn crash_child_consumes_until_killed() -> Result<()> {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return Ok(());
    };
    let db = Db::open(&dir, options())?;
    let mut sub = db
        .open_subscription("reader")?
        .with_filter(KeyFilter::Prefix(b"data:".to_vec()));
    let mut out = std::io::stdout().lock();
    while let Some(batch) = sub.next_timeout(Duration::from_millis(200))? {
        db.put(format!("seen:{:08}", batch.first_seqno), "1")?;
        sub.ack(batch.last_seqno, &WriteOptions::default())?;
        if writeln!(out, "ack {}", batch.last_seqno)
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Writes the data batches: batch `i` has `1 + i % 3` operations.
fn prepare(dir: &Path) -> Result<Vec<u64>> {
    let db = Db::open(dir, options())?;
    db.create_subscription("reader", Start::Beginning)?;
    let mut lasts = Vec::new();
    for i in 0..BATCHES {
        let mut b = WriteBatch::new();
        for j in 0..1 + i % 3 {
            b.put(format!("data:{i:06}.{j}"), vec![b'x'; 50]);
        }
        let first = db.write(b, &WriteOptions::default())?;
        lasts.push(first + i % 3);
    }
    db.close()?;
    Ok(lasts)
}

/// Runs a child until it printed `acks` acknowledgements (or finished), kills it, and returns
/// the last position it printed.
fn run_child_and_kill(dir: &Path, acks: usize) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "crash_child_consumes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut last = None;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        // The test harness may print its own words before the first line.
        let ack = line
            .find("ack ")
            .and_then(|at| line[at + 4..].trim().parse().ok());
        if let Some(p) = ack {
            last = Some(p);
            seen += 1;
            if seen >= acks {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    last
}

/// What is wrong with the subscription's state after a crash, given the last position a
/// child saw acknowledged and the last sequence number of every data batch.
fn violations(dir: &Path, acked: Option<u64>, before: u64, lasts: &[u64]) -> Result<Vec<String>> {
    let db = Db::open(dir, options())?;
    let mut sub = db.open_subscription("reader")?;
    let position = sub.position()?;
    let mut found = Vec::new();
    if acked.is_some_and(|a| position < a) {
        found.push(format!(
            "lost acknowledged position: {position} < {acked:?}"
        ));
    }
    if position < before {
        found.push(format!("position moved backwards: {position} < {before}"));
    }
    if position != 0 && lasts.binary_search(&position).is_err() {
        found.push(format!("position {position} is not the end of a batch"));
    }
    match sub.try_next() {
        Ok(Some(b)) if b.first_seqno != position + 1 => {
            found.push(format!(
                "resumed at {}, not {}",
                b.first_seqno,
                position + 1
            ));
        }
        Ok(_) => {}
        Err(e) => found.push(format!("cannot resume: {e}")),
    }
    db.close()?;
    Ok(found)
}

#[test]
fn a_subscription_position_survives_a_crash() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let lasts = prepare(dir.path())?;
    let mut position = 0;
    for (round, acks) in [37, 211, 5, 400, 123, 90].into_iter().enumerate() {
        let acked = run_child_and_kill(dir.path(), acks);
        let found = violations(dir.path(), acked, position, &lasts)?;
        assert!(found.is_empty(), "round {round}: {found:?}");
        let db = Db::open(dir.path(), options())?;
        position = db.open_subscription("reader")?.position()?;
        db.close()?;
    }
    let acked = run_child_and_kill(dir.path(), usize::MAX); // runs to the end
    assert_eq!(acked, lasts.last().copied());
    assert_eq!(
        violations(dir.path(), acked, position, &lasts)?,
        Vec::<String>::new()
    );
    let db = Db::open(dir.path(), options())?;
    let segments: usize = db.stats().levels.iter().map(|l| l.segments).sum();
    assert!(segments > 0, "the children flushed while acknowledging");
    Ok(())
}

#[test]
fn the_checker_reports_a_lost_position() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let lasts = prepare(dir.path())?;
    let acked = run_child_and_kill(dir.path(), 300);
    let newest = files::list(dir.path())?
        .into_iter()
        .filter_map(|k| {
            if let FileKind::Log(n) = k {
                Some(n)
            } else {
                None
            }
        })
        .max()
        .expect("a log file");
    std::fs::remove_file(files::log_path(dir.path(), newest)).expect("remove newest log file");
    let found = violations(dir.path(), acked, 0, &lasts)?;
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("lost acknowledged position")),
        "{found:?}"
    );
    Ok(())
}
