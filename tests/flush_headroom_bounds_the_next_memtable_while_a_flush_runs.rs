//! `Options::flush_headroom_bytes`: while a full memtable waits for its flush, writers fill
//! the next one up to the headroom (by default an eighth of the memtable), then wait for the
//! flush; with the wait turned off they fill it to `memtable_size_bytes`. A flush held back by a full disk (segment files only) makes
//! the flush last as long as the test needs.
use std::sync::Arc;
use std::time::{Duration, Instant};

use alluvium::fs::{FaultInjectingFs, FaultKind};
use alluvium::{Db, Error, Options, Result};

const MEMTABLE: usize = 64 * 1024;
/// The default: an eighth of the memtable.
const HEADROOM: usize = MEMTABLE / 8;
const WRITES: u32 = 2000;

/// Opens a database, writes 100 entries, holds flushes back and starts a writer of
/// [`WRITES`] more. Returns the database, the fault switch and the writer once the active
/// memtable has stopped growing for 300 ms (or after 10 s).
fn stuck_flush(
    dir: &std::path::Path,
    headroom: Option<usize>,
) -> Result<(Db, FaultInjectingFs, std::thread::JoinHandle<Result<()>>)> {
    let fs = FaultInjectingFs::new();
    let mut opts = Options::default()
        .memtable_size_bytes(MEMTABLE)
        .file_system(Arc::new(fs.clone()));
    if let Some(h) = headroom {
        opts = opts.flush_headroom_bytes(h);
    }
    let db = Db::open(dir, opts)?;
    fs.only_for(Some(".seg"));
    fs.set_fault(Some(FaultKind::NoSpace));
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..WRITES {
                db.put(format!("key{i:06}"), vec![b'v'; 100])?;
            }
            Ok(())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut last, mut since) = (u64::MAX, Instant::now());
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(300) {
        let s = db.stats();
        let now = s.memtable_bytes;
        if now != last || s.immutable_memtables == 0 {
            (last, since) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((db, fs, writer))
}

fn finish(db: Db, fs: FaultInjectingFs, writer: std::thread::JoinHandle<Result<()>>) -> Result<Db> {
    fs.set_fault(None);
    writer
        .join()
        .map_err(|_| Error::InvalidArgument("writer panicked".into()))??;
    db.wait_idle()?;
    assert_eq!(
        db.prefix("key").count(),
        WRITES as usize,
        "every write landed"
    );
    Ok(db)
}

#[test]
fn by_default_writers_wait_for_the_flush_once_the_next_memtable_holds_an_eighth() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let (db, fs, writer) = stuck_flush(dir.path(), None)?;
    let s = db.stats();
    assert_eq!(s.immutable_memtables, 1, "one memtable awaits its flush");
    // One write past the headroom at most: the write that found it full waits.
    let over = s.memtable_bytes as usize;
    assert!(
        (HEADROOM..HEADROOM + 400).contains(&over),
        "the next memtable holds {over} bytes, the headroom is {HEADROOM}"
    );
    assert!(!writer.is_finished(), "the writer waits for the flush");
    let db = finish(db, fs, writer)?;
    assert!(
        db.stats().write_stalls >= 1,
        "the wait is counted once over"
    );
    Ok(())
}

#[test]
fn with_the_wait_turned_off_the_next_memtable_fills_up_while_the_flush_waits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let (db, fs, writer) = stuck_flush(dir.path(), Some(usize::MAX))?;
    let s = db.stats();
    assert!(
        s.immutable_memtables >= 1
            && s.memtable_bytes as usize + s.immutable_memtable_bytes as usize >= 2 * MEMTABLE,
        "{s:?}"
    );
    finish(db, fs, writer).map(drop)
}

#[test]
fn a_zero_headroom_is_refused() {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e));
    let opened = dir.and_then(|d| Db::open(d.path(), Options::default().flush_headroom_bytes(0)));
    assert!(
        matches!(&opened, Err(Error::InvalidArgument(m)) if m.contains("flush_headroom_bytes")),
        "{:?}",
        opened.err()
    );
}
