//! A commit log file cut anywhere inside its last record opens with every batch but the last
//! and reports the dropped tail; damage followed by valid records is corruption, unless
//! `RecoveryMode::PointInTime` asks to keep what comes before it.
mod common;
use common::newest_log;
use std::collections::BTreeMap;
use std::path::Path;

use alluvium::commit_log::{LogFile, LogItem};
use alluvium::{Db, Error, Options, RecoveryMode, Result, WriteBatch, WriteOptions};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const BATCHES: usize = 6;

/// Batch `b`: a put of its own key, an overwrite of a shared key and, from the third batch
/// on, a delete of an earlier batch's key. The last batch is kept small so that cutting the
/// log at each of its bytes stays quick.
fn batch(b: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut ops = vec![(
        format!("b{b}").into_bytes(),
        Some(format!("v{b}").into_bytes()),
    )];
    if b + 1 < BATCHES {
        ops.push((
            b"shared".to_vec(),
            Some(format!("from batch {b}").into_bytes()),
        ));
    }
    if b >= 2 {
        ops.push((format!("b{}", b - 2).into_bytes(), None));
    }
    ops
}

fn model_of(batches: usize) -> Model {
    let mut model = Model::new();
    for b in 0..batches {
        for (k, v) in batch(b) {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
    }
    model
}

fn contents(db: &Db) -> Result<Model> {
    db.iter().collect()
}

/// Writes every batch without flushing and closes: the newest log file holds them all. The
/// seal marker the close appends is cut off again, so the file ends as a killed writer leaves
/// it, with the last batch.
fn pristine() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for b in 0..BATCHES {
        let mut wb = WriteBatch::new();
        for (k, v) in batch(b) {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            };
        }
        db.write(wb, &WriteOptions::default())?;
    }
    db.close()?;
    let log = newest_log(dir.path())?;
    let items = records(&log)?;
    assert!(items.last().is_some_and(|i| i.record.is_seal_marker()));
    truncate(&log, items[items.len() - 1].offset);
    Ok(dir)
}

fn records(log: &Path) -> Result<Vec<LogItem>> {
    let (items, _tail) = LogFile::read(log)?.records()?;
    Ok(items)
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copy");
    }
    to
}

fn truncate(path: &Path, len: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open log file");
    file.set_len(len).expect("truncate");
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= 0x20;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn torn_commit_log_tail_is_dropped_at_every_offset() -> Result<()> {
    let pristine = pristine()?;
    let log_name = newest_log(pristine.path())?;
    let log_name = log_name.file_name().expect("file name").to_owned();
    let items = records(&pristine.path().join(&log_name))?;
    assert_eq!(items.len(), BATCHES, "one record per batch");
    let last_start = items[BATCHES - 1].offset;
    let len = std::fs::metadata(pristine.path().join(&log_name))
        .expect("metadata")
        .len();
    let all_but_last = model_of(BATCHES - 1);
    let seqno_before_last = items[BATCHES - 1].record.first_seqno - 1;

    for cut in last_start..len {
        let dir = copy_dir(pristine.path());
        let log = dir.path().join(&log_name);
        truncate(&log, cut);
        let db = Db::open(dir.path(), Options::default())?;
        assert_eq!(contents(&db)?, all_but_last, "cut at {cut}");
        assert_eq!(db.latest_seqno(), seqno_before_last, "cut at {cut}");
        let dropped = &db.recovery_report().dropped;
        if cut == last_start {
            assert!(
                dropped.is_empty(),
                "a cut at a record boundary is a clean end"
            );
        } else {
            assert_eq!(dropped.len(), 1, "cut at {cut}: {dropped:?}");
            assert_eq!(dropped[0].path, log, "cut at {cut}");
            assert_eq!(dropped[0].offset, last_start, "cut at {cut}");
            assert_eq!(dropped[0].bytes, cut - last_start, "cut at {cut}");
        }
        db.close()?;

        let db = Db::open(dir.path(), Options::default())?;
        assert!(
            db.recovery_report().dropped.is_empty(),
            "cut at {cut}: the second open finds a clean log: {:?}",
            db.recovery_report()
        );
        assert_eq!(contents(&db)?, all_but_last, "cut at {cut}, reopened");
    }
    Ok(())
}

#[test]
fn damage_followed_by_valid_records_is_corruption_unless_point_in_time() -> Result<()> {
    let pristine = pristine()?;
    let log_name = newest_log(pristine.path())?;
    let log_name = log_name.file_name().expect("file name").to_owned();
    let items = records(&pristine.path().join(&log_name))?;
    let middle = BATCHES / 2;
    let (start, end) = (items[middle].offset, items[middle + 1].offset);
    let len = std::fs::metadata(pristine.path().join(&log_name))
        .expect("metadata")
        .len();

    // Every byte of the middle record: its frame header, its checksums and its payload.
    for at in start..end {
        let dir = copy_dir(pristine.path());
        let log = dir.path().join(&log_name);
        flip_byte(&log, at);
        match Db::open(dir.path(), Options::default()) {
            Err(Error::Corruption { path, offset, .. }) => {
                assert_eq!(path, log, "byte {at}");
                assert!((start..end).contains(&offset), "byte {at}: offset {offset}");
            }
            other => panic!("byte {at}: expected corruption, got {other:?}"),
        }

        let dir = copy_dir(pristine.path());
        let log = dir.path().join(&log_name);
        flip_byte(&log, at);
        let opts = Options::default().recovery_mode(RecoveryMode::PointInTime);
        let db = Db::open(dir.path(), opts)?;
        assert_eq!(contents(&db)?, model_of(middle), "byte {at}");
        assert_eq!(db.latest_seqno(), items[middle].record.first_seqno - 1);
        let report = db.recovery_report();
        assert_eq!(report.dropped.len(), 1, "byte {at}: {report:?}");
        assert_eq!(report.dropped[0].path, log);
        assert_eq!(report.dropped[0].offset, start);
        assert_eq!(report.dropped[0].bytes, len - start);
        db.close()?;

        let db = Db::open(dir.path(), Options::default())?;
        assert!(db.recovery_report().dropped.is_empty(), "byte {at}");
        assert_eq!(contents(&db)?, model_of(middle), "byte {at}, reopened");
    }
    Ok(())
}

#[test]
fn point_in_time_recovery_removes_log_files_after_the_damage() -> Result<()> {
    // Two opens without a flush leave two log files that both hold records.
    let dir = pristine()?;
    let older = newest_log(dir.path())?;
    let db = Db::open(dir.path(), Options::default())?;
    db.put("later", "write")?;
    db.close()?;
    let newer = newest_log(dir.path())?;
    assert_ne!(older, newer);
    let newer_records = records(&newer)?;
    assert_eq!(
        newer_records.len(),
        2,
        "one batch, then the close's seal marker"
    );
    assert!(newer_records[1].record.is_seal_marker());

    let items = records(&older)?;
    flip_byte(&older, items[1].offset + 14);
    let damaged = copy_dir(dir.path());
    let older_copy = damaged.path().join(older.file_name().expect("file name"));
    match Db::open(damaged.path(), Options::default()) {
        Err(Error::Corruption { path, .. }) => assert_eq!(path, older_copy),
        other => panic!("expected corruption, got {other:?}"),
    }

    let opts = Options::default().recovery_mode(RecoveryMode::PointInTime);
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(contents(&db)?, model_of(1));
    let report = db.recovery_report();
    assert_eq!(report.removed_logs, vec![newer.clone()], "{report:?}");
    assert_eq!(report.dropped.len(), 2, "{report:?}");
    assert_eq!(
        (&report.dropped[0].path, report.dropped[0].offset),
        (&older, items[1].offset)
    );
    assert_eq!(
        (&report.dropped[1].path, report.dropped[1].offset),
        (&newer, 0)
    );
    assert!(!newer.exists());
    Ok(())
}
