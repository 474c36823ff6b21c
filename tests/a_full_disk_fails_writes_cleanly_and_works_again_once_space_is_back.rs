//! ENOSPC during a commit log append, a flush and a compaction: the write (or the background
//! job) fails cleanly, the database stays readable, nothing is lost, and it works again once
//! space is back — without a reopen.
use std::sync::Arc;
use std::time::Duration;

use alluvium::fs::{FaultInjectingFs, FaultKind};
use alluvium::{Db, Error, Options, Result};

fn open(dir: &std::path::Path, fs: &FaultInjectingFs) -> Result<Db> {
    let opts = Options::default()
        .memtable_size_bytes(8 * 1024)
        .segment_size_bytes(8 * 1024)
        .level_base_size_bytes(32 * 1024)
        .level0_triggers(2, 20, 30)
        .file_system(Arc::new(fs.clone()));
    Db::open(dir, opts)
}

fn fill(db: &Db, prefix: &str, n: u32) -> Result<()> {
    for i in 0..n {
        db.put(format!("{prefix}{i:05}"), vec![b'x'; 100])?;
    }
    Ok(())
}

#[test]
fn a_log_append_on_a_full_disk_fails_and_the_next_one_succeeds() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let fs = FaultInjectingFs::new();
    let db = open(dir.path(), &fs)?;
    fill(&db, "k", 10)?;
    fs.set_fault(Some(FaultKind::NoSpace));
    let failed = db.put("full", "disk");
    assert!(failed.as_ref().is_err_and(Error::is_no_space), "{failed:?}");
    assert_eq!(db.get("k00003")?, Some(vec![b'x'; 100]), "still readable");
    fs.set_fault(None);
    let seqno = db.put("after", "space is back")?;
    assert_eq!(seqno, 11, "the failed batch took no sequence number");
    drop(db);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("full")?, None);
    assert_eq!(db.get("after")?, Some(b"space is back".to_vec()));
    assert_eq!(db.prefix("k").count(), 10);
    Ok(())
}

#[test]
fn a_flush_on_a_full_disk_is_retried_while_writers_wait_and_then_finishes() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let fs = FaultInjectingFs::new();
    let db = open(dir.path(), &fs)?;
    fill(&db, "b", 200)?;
    db.wait_idle()?;
    // Only segment files meet the full disk: the commit log still has room, so writes go on
    // until the memtables are full, then wait for the flush.
    fs.only_for(Some(".seg"));
    fs.set_fault(Some(FaultKind::NoSpace));
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || fill(&db, "c", 300))
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(db.stats().background_retries > 0, "the flush was retried");
    assert!(!writer.is_finished(), "writers wait for the flush");
    assert_eq!(
        db.get("b00199")?,
        Some(vec![b'x'; 100]),
        "readable while the disk is full"
    );
    fs.set_fault(None);
    writer
        .join()
        .map_err(|_| Error::InvalidArgument("writer panicked".into()))??;
    db.wait_idle()?;
    assert_eq!(db.prefix("c").count(), 300);
    drop(db);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.prefix("b").count() + db.prefix("c").count(), 500);
    Ok(())
}

#[test]
fn a_compaction_on_a_full_disk_fails_leaving_no_file_and_succeeds_later() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let fs = FaultInjectingFs::new();
    let opts = Options::default()
        .compaction_enabled(false)
        .file_system(Arc::new(fs.clone()));
    let db = Db::open(dir.path(), opts)?;
    for round in 0..3 {
        fill(&db, &format!("r{round}-"), 100)?;
        db.flush()?;
    }
    let files = |d: &std::path::Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    let before = files(dir.path());
    fs.set_fault(Some(FaultKind::NoSpace));
    let failed = db.compact_range::<&[u8], _>(..);
    assert!(failed.as_ref().is_err_and(Error::is_no_space), "{failed:?}");
    assert_eq!(
        files(dir.path()),
        before,
        "the failed compaction left no file behind"
    );
    assert_eq!(db.iter().count(), 300, "readable");
    fs.set_fault(None);
    db.compact_range::<&[u8], _>(..)?;
    assert_eq!(db.stats().levels[6].segments, 1);
    assert_eq!(db.iter().count(), 300);
    Ok(())
}

/// A rotation switches memtables before it creates the next log file. When the disk has no
/// room for that file, the write fails and so does every write until the file exists; none
/// of them may append to the old file, whose records a flush of the old memtable hands over
/// to its segment (recovery then starts at the file that was never created).
#[test]
fn a_rotation_that_cannot_create_the_next_log_fails_writes_until_it_can() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let fs = FaultInjectingFs::new();
    let db = open(dir.path(), &fs)?;
    fill(&db, "a", 10)?;
    fs.only_for(Some(".log"));
    fs.set_fault(Some(FaultKind::NoSpaceForNewFiles));
    let mut written = 10;
    let failed = loop {
        match db.put(format!("a{written:05}"), vec![b'x'; 100]) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "the memtable never rotated");
    };
    assert!(failed.is_no_space(), "{failed}");
    let again = db.put("b", "still no room");
    assert!(again.as_ref().is_err_and(Error::is_no_space), "{again:?}");
    fs.set_fault(None);
    db.put("c", "space is back")?;
    // The old memtable's flush names the new file as the first to replay.
    db.wait_idle()?;
    drop(db);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("c")?, Some(b"space is back".to_vec()));
    assert_eq!(db.get("b")?, None);
    assert_eq!(db.get(format!("a{written:05}"))?, None);
    assert_eq!(db.prefix("a").count(), written);
    Ok(())
}
