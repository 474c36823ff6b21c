//! On Linux the commit log is written by copying into a shared map of a preallocated file
//! (FORMAT.md, "Appending through a memory map"). A process killed during a copy leaves the
//! start of its append with a zero length and any part of the rest, followed by the zeros of
//! the preallocated tail. Reopening must keep every batch before that append, drop the rest
//! and say so; a zero tail after the last complete record loses nothing.
//!
//! The file states are made by hand from a cleanly closed database's log, so the test does not
//! depend on where a kill lands. Without the rule that a zero length ends a log file's written
//! part, every state but "nothing copied" is a header checksum mismatch followed by data:
//! corruption, and the database would not open.
mod common;
use common::newest_log;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use alluvium::commit_log::LogFile;
use alluvium::{Db, Options, Result, WriteBatch, WriteOptions};

const BATCHES: usize = 8;

fn key(b: usize) -> Vec<u8> {
    format!("key-{b:03}").into_bytes()
}

fn value(b: usize) -> Vec<u8> {
    format!("value of batch {b} ").repeat(8).into_bytes()
}

/// A closed database whose newest log holds `BATCHES` single-put batches, with the offset
/// at which the last one's frame starts and the log's length.
fn pristine() -> Result<(tempfile::TempDir, std::path::PathBuf, u64, u64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for b in 0..BATCHES {
        let mut wb = WriteBatch::new();
        wb.put(key(b), value(b));
        db.write(wb, &WriteOptions::default())?;
    }
    db.close()?;
    let log = newest_log(dir.path())?;
    let (items, _) = LogFile::read(&log)?.records()?;
    assert_eq!(items.len(), BATCHES + 1);
    // A killed process never sealed the file: its seal marker (the close's) goes.
    assert!(items[BATCHES].record.is_seal_marker());
    let len = items[BATCHES].offset;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(len))
        .expect("cut off the seal marker");
    let last_start = items[BATCHES - 1].offset;
    Ok((dir, log, last_start, len))
}

fn contents(db: &Db) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    db.iter().collect()
}

fn expected(batches: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..batches).map(|b| (key(b), value(b))).collect()
}

/// Overwrites bytes of `log` at `at`, and extends it with a preallocated window's zeros.
fn damage(log: &std::path::Path, at: u64, bytes: &[u8], len: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(log)
        .expect("open log");
    f.write_all_at(bytes, at).expect("write");
    f.set_len(len.next_multiple_of(1 << 20)).expect("extend");
}

#[test]
fn an_append_killed_mid_copy_is_dropped_and_reported_and_everything_before_it_kept() -> Result<()> {
    let (_, _, last_start, len) = pristine()?;
    let frame_len = len - last_start;
    // What the copy had done when the process died: always not the first four bytes (copied
    // last); of the rest nothing, the front part, the back part, or all of it.
    type Copied = Box<dyn Fn(u64) -> bool>;
    let states: [(&str, Copied); 4] = [
        ("nothing copied", Box::new(|_| false)),
        ("front copied", Box::new(move |i| i < frame_len / 2)),
        ("back copied", Box::new(move |i| i >= frame_len / 2)),
        ("all but the length", Box::new(|_| true)),
    ];
    for (name, copied) in states {
        let (dir, log, last_start, len) = pristine()?;
        let frame = std::fs::read(&log).expect("read log")[last_start as usize..].to_vec();
        let left: Vec<u8> = (0..frame_len)
            .map(|i| match i >= 4 && copied(i) {
                true => frame[i as usize],
                false => 0,
            })
            .collect();
        damage(&log, last_start, &left, len);
        let db = Db::open(dir.path(), Options::default())?;
        assert_eq!(contents(&db)?, expected(BATCHES - 1), "{name}");
        let dropped = &db.recovery_report().dropped;
        assert_eq!(dropped.len(), 1, "{name}: {dropped:?}");
        assert_eq!(
            (&dropped[0].path, dropped[0].offset),
            (&log, last_start),
            "{name}"
        );
        db.close()?;
        // The next open finds a clean file.
        let db = Db::open(dir.path(), Options::default())?;
        assert_eq!(contents(&db)?, expected(BATCHES - 1), "{name}, reopened");
        assert!(db.recovery_report().dropped.is_empty(), "{name}");
    }
    Ok(())
}

#[test]
fn a_zero_tail_after_the_last_record_loses_nothing() -> Result<()> {
    let (dir, log, _, len) = pristine()?;
    damage(&log, len, &[], len);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(contents(&db)?, expected(BATCHES));
    let dropped = &db.recovery_report().dropped;
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(
        (dropped[0].offset, dropped[0].bytes),
        (len, (1 << 20) - len)
    );
    Ok(())
}
