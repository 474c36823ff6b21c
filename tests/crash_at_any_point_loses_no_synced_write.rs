//! A process killed at a random moment (SIGKILL, mid-write or mid-flush) loses no write it
//! acknowledged as synced, applies every batch whole or not at all, and keeps the batches it
//! applied a prefix of the ones it was asked to write.
//!
//! The parent runs this test executable again as a child (selected by an environment
//! variable) that writes synced batches forever with a tiny memtable, printing each
//! acknowledged batch number. The parent kills it after a random number of acknowledgements,
//! reopens the directory and checks; then lets a new child continue, several rounds on the
//! same directory.
//!
//! The test can fail: `the_checker_reports_lost_acknowledged_writes` runs the same check on a
//! directory whose newest log file was removed after the kill, and on databases with a torn
//! batch and a gap made on purpose, and requires the checker to report each.
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use alluvium::files::{self, FileKind};
use alluvium::{Db, Options, Result, WriteBatch, WriteOptions};

/// Set (to a database directory) in the child process that writes until killed.
const CHILD_DIR_VAR: &str = "ALLUVIUM_TEST_CRASH_DIR";
/// The memtable size the child uses, in bytes.
const CHILD_MEMTABLE_VAR: &str = "ALLUVIUM_TEST_CRASH_MEMTABLE_BYTES";
const ROUNDS: usize = 10;

fn value(i: u64) -> Vec<u8> {
    format!("value of batch {i} {}", "x".repeat((i % 100) as usize + 50)).into_bytes()
}

/// Batch `i` puts `k{i}` and `pair{i}` with the same value, so a half-applied batch shows.
fn batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(format!("k{i:08}"), value(i))
        .put(format!("pair{i:08}"), value(i));
    b
}

/// Child mode: continues from the number of batches already in the database and writes
/// synced batches until killed, printing `ack <i>` once batch `i` is acknowledged. Without
/// the variable (a normal test run) it does nothing.
#[test]
fn crash_child_writes_until_killed() -> Result<()> {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return Ok(());
    };
    let memtable: usize = std::env::var(CHILD_MEMTABLE_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 * 1024);
    let db = Db::open(&dir, Options::default().memtable_size_bytes(memtable))?;
    let start = db.prefix("k").count() as u64;
    let mut out = std::io::stdout().lock();
    // Bounded so that a child whose parent vanished does not write forever.
    for i in start..start + 1_000_000 {
        db.write(batch(i), &WriteOptions::synced())?;
        if writeln!(out, "ack {i}").and_then(|()| out.flush()).is_err() {
            break; // the parent is gone
        }
    }
    Ok(())
}

fn parse_ack(line: &str) -> Option<u64> {
    let at = line.find("ack ")?;
    line[at + 4..].trim().parse().ok()
}

/// Runs a child on `dir` until it has acknowledged `acks` batches, kills it with SIGKILL, and
/// returns the highest batch number it acknowledged (counting acknowledgements still in the
/// pipe when it died).
fn run_child_and_kill(dir: &Path, memtable_bytes: usize, acks: usize) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "crash_child_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_MEMTABLE_VAR, memtable_bytes.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut stdout = BufReader::new(child.stdout.take().expect("child stdout"));
    let mut highest = None;
    let mut seen = 0;
    let mut line = String::new();
    while seen < acks {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "the child stopped before {acks} acknowledgements");
        if let Some(i) = parse_ack(&line) {
            highest = Some(i);
            seen += 1;
        }
    }
    child.kill().expect("kill child");
    child.wait().expect("wait for child");
    let mut rest = String::new();
    stdout
        .read_to_string(&mut rest)
        .expect("drain child stdout");
    highest.max(rest.lines().filter_map(parse_ack).max())
}

fn indices(db: &Db, prefix: &str) -> Result<BTreeSet<u64>> {
    let mut out = BTreeSet::new();
    for entry in db.prefix(prefix) {
        let (k, v) = entry?;
        let i: u64 = std::str::from_utf8(&k[prefix.len()..])
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("keys are numbered");
        assert_eq!(v, value(i), "the value of {prefix}{i}");
        out.insert(i);
    }
    Ok(out)
}

/// Opens `dir` and lists every violation of the crash guarantees, given that batches up to
/// `acked` were acknowledged as synced.
fn violations(dir: &Path, acked: Option<u64>) -> Result<Vec<String>> {
    let db = Db::open(dir, Options::default())?;
    let (ks, pairs) = (indices(&db, "k")?, indices(&db, "pair")?);
    db.close()?;
    let mut found = Vec::new();
    for i in ks.symmetric_difference(&pairs) {
        found.push(format!("batch {i} is half applied"));
    }
    let n = ks.len() as u64;
    if ks.iter().copied().ne(0..n) {
        found.push(format!("present batches are not a prefix: {ks:?}"));
    }
    if let Some(acked) = acked {
        if let Some(lost) = (0..=acked).find(|i| !ks.contains(i)) {
            found.push(format!(
                "lost acknowledged writes: batch {lost} is missing, {acked} was acknowledged"
            ));
        }
    }
    Ok(found)
}

/// A small xorshift generator: the test needs varied kill points, not good randomness.
fn kill_points(seed: u64) -> impl Iterator<Item = usize> {
    let mut state = seed | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        50 + (state % 350) as usize
    })
}

#[test]
fn crash_at_any_point_loses_no_synced_write() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut acked = None;
    for (round, acks) in kill_points(seed).take(ROUNDS).enumerate() {
        let highest = run_child_and_kill(dir.path(), 16 * 1024, acks);
        acked = acked.max(highest);
        let found = violations(dir.path(), acked)?;
        assert!(
            found.is_empty(),
            "round {round} (seed {seed}, killed after {acks} acknowledgements): {found:?}"
        );
    }
    let db = Db::open(dir.path(), Options::default())?;
    let segments: usize = db.stats().levels.iter().map(|l| l.segments).sum();
    assert!(segments > 0, "the children flushed");
    Ok(())
}

#[test]
fn the_checker_reports_lost_acknowledged_writes() -> Result<()> {
    // A default-size memtable never fills here, so every acknowledged batch is in the
    // newest log file; removing it loses them all.
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = run_child_and_kill(dir.path(), 64 << 20, 50);
    assert!(acked >= Some(49));
    let newest = files::list(dir.path())?
        .into_iter()
        .filter_map(|k| match k {
            FileKind::Log(n) => Some(n),
            _ => None,
        })
        .max()
        .expect("a log file");
    std::fs::remove_file(files::log_path(dir.path(), newest)).expect("remove log file");
    let found = violations(dir.path(), acked)?;
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("lost acknowledged writes")),
        "{found:?}"
    );
    Ok(())
}

#[test]
fn the_checker_reports_torn_batches_and_gaps() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for i in 0..10 {
        db.write(batch(i), &WriteOptions::default())?;
    }
    db.close()?;
    assert_eq!(violations(dir.path(), Some(9))?, Vec::<String>::new());

    let db = Db::open(dir.path(), Options::default())?;
    db.delete(format!("pair{:08}", 5))?;
    db.close()?;
    let found = violations(dir.path(), Some(9))?;
    assert!(
        found.iter().any(|v| v.contains("half applied")),
        "{found:?}"
    );

    let db = Db::open(dir.path(), Options::default())?;
    db.delete(format!("k{:08}", 5))?;
    db.close()?;
    let found = violations(dir.path(), Some(4))?;
    assert!(
        found.iter().any(|v| v.contains("not a prefix")),
        "{found:?}"
    );
    Ok(())
}
