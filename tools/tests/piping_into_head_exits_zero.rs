mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use alluvium::{Db, Options, WriteBatch, WriteOptions};
use common::*;

/// A database whose dumps run to far more than a pipe buffer (64 KiB).
fn big(dir: &std::path::Path) -> alluvium::Result<()> {
    let db = Db::open(dir, Options::default())?;
    for b in 0..100 {
        let mut batch = WriteBatch::new();
        for i in 0..50 {
            batch.put(format!("key:{b:03}:{i:02}"), "v".repeat(40));
        }
        db.write(batch, &WriteOptions::default())?;
    }
    db.close()
}

/// Runs `alluvium args`, reads one line, closes the pipe, and returns (status ok, stderr).
fn read_one_line_then_close(args: &[&str]) -> (bool, String) {
    let mut child = alluvium()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("one line");
    // The reader (and the pipe) is dropped here, like `head` exiting.
    assert!(!first.is_empty());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn piping_into_head_exits_zero() -> TestResult {
    let tmp = tempfile::tempdir()?;
    big(tmp.path())?;
    let dir = arg(tmp.path());
    for args in [
        vec!["log", "dump", &dir],
        vec!["log", "dump", &dir, "--json"],
        vec!["scan", &dir],
    ] {
        let (ok, stderr) = read_one_line_then_close(&args);
        assert!(ok, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    Ok(())
}

#[test]
fn a_shell_pipe_into_head_exits_zero() -> TestResult {
    let tmp = tempfile::tempdir()?;
    big(tmp.path())?;
    let bin = env!("CARGO_BIN_EXE_alluvium");
    let dir = arg(tmp.path());
    for command in [
        format!("log dump '{dir}'"),
        format!("demo --keys 2000 --dir '{dir}/demo'"),
    ] {
        let script = format!("'{bin}' {command} | head -n 1 >/dev/null; exit ${{PIPESTATUS[0]}}");
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        assert!(stderr.is_empty(), "{command}: {stderr}");
    }
    Ok(())
}
