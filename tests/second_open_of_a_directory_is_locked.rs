//! While one `Db` has a directory open, a second open of it, from this process or another,
//! fails with `Error::Locked`; once the first closes, the directory opens again.
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use alluvium::{Db, Error, Options, Result};

/// Set (to a database directory) in the child process that holds the lock.
const CHILD_DIR_VAR: &str = "ALLUVIUM_TEST_LOCK_HOLDER_DIR";

fn assert_locked(dir: &std::path::Path, what: &str) {
    match Db::open(dir, Options::default()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir, "{what}"),
        other => panic!("{what}: expected Error::Locked, got {other:?}"),
    }
}

#[test]
fn second_open_in_the_same_process_is_locked_until_close() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("k", "v")?;
    assert_locked(dir.path(), "second open");
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("k")?, Some(b"v".to_vec()));
    assert_locked(dir.path(), "open after reopen");
    drop(db);
    Db::open(dir.path(), Options::default())?.close()
}

#[test]
fn the_lock_is_held_until_the_last_clone_drops() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    let clone = db.clone();
    drop(db);
    assert_locked(dir.path(), "one clone still alive");
    clone.put("k", "v")?;
    drop(clone);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_failed_open_does_not_take_the_lock_away() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    assert_locked(dir.path(), "first try");
    assert_locked(dir.path(), "second try");
    db.put("still", "writable")?;
    assert_eq!(db.get("still")?, Some(b"writable".to_vec()));
    Ok(())
}

/// Child mode: opens the directory named by [`CHILD_DIR_VAR`], says "ready" and holds the
/// database open until its stdin closes. Without the variable (a normal test run) it does
/// nothing.
#[test]
fn lock_holder_child() -> Result<()> {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return Ok(());
    };
    let db = Db::open(&dir, Options::default())?;
    db.put("from", "child")?;
    println!("\nready");
    std::io::stdout().flush().expect("flush stdout");
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).expect("read stdin");
    db.close()
}

#[test]
fn second_open_from_another_process_is_locked_until_it_exits() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut stdout = BufReader::new(stdout);
    let ready = stdout
        .by_ref()
        .lines()
        .map_while(std::io::Result::ok)
        .any(|line| line.trim() == "ready");
    assert!(ready, "the child opened the database");

    assert_locked(dir.path(), "held by another process");

    drop(child.stdin.take());
    // Keep reading so the child's last lines of output never meet a closed pipe.
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).expect("read child stdout");
    let status = child.wait().expect("wait for child");
    assert!(status.success(), "child failed: {status}");
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("from")?, Some(b"child".to_vec()));
    Ok(())
}
