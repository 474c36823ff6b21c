//! Regression test: closing a `Db` releases its directory even while another thread of the
//! process is spawning a child process.
//!
//! A child that has been forked but has not yet called `exec` holds copies of all the parent's
//! file descriptors. With a lock tied to the open file (BSD `flock`, which `std::fs::File::
//! try_lock` uses) that child keeps the directory locked after the parent's `Db` closed, so a
//! close and reopen in a process that spawns commands fails with `Error::Locked`. (A child that
//! forks and never execs keeps it locked for its whole life.) This scenario has its own file
//! because the lingering child holds every descriptor of the test process, which would disturb
//! other tests running alongside it.
#![cfg(unix)]

use std::process::Command;

use alluvium::{Db, Options, Result};

/// The child lingers before `exec` on purpose to make the window wide.
#[test]
fn closing_releases_the_lock_while_a_child_process_is_spawned() -> Result<()> {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    // `spawn` returns only once the child has called `exec`, so the window is open to other
    // threads of the process: spawn from one and close and reopen from this one meanwhile.
    let spawner = std::thread::spawn(|| {
        let mut command = Command::new("true");
        // SAFETY: the closure only sleeps (nanosleep is async-signal-safe) and allocates
        // nothing.
        unsafe {
            command.pre_exec(|| {
                std::thread::sleep(std::time::Duration::from_millis(500));
                Ok(())
            });
        }
        command.status().expect("run child")
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    db.close()?;
    let reopened = Db::open(dir.path(), Options::default());
    assert!(spawner.join().expect("spawner thread").success());
    assert!(
        reopened.is_ok(),
        "a closed Db must release its directory: {:?}",
        reopened.err()
    );
    Ok(())
}
