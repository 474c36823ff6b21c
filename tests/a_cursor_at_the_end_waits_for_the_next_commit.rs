//! A cursor at the end of the log sleeps until the commit path wakes it: `next_timeout`
//! returns the next batch as soon as it is committed, returns `None` when the time runs out,
//! and the blocking iterator ends with `Closed` when the database closes.
use std::time::{Duration, Instant};

use alluvium::{Db, Error, Options, Result, Start};

#[test]
fn a_cursor_at_the_end_waits_for_the_next_commit() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let mut cursor = db.changes(Start::Now)?;

    let started = Instant::now();
    assert_eq!(cursor.next_timeout(Duration::from_millis(50))?, None);
    assert!(started.elapsed() >= Duration::from_millis(50));

    let writer = {
        let db = db.clone();
        std::thread::spawn(move || -> Result<u64> {
            std::thread::sleep(Duration::from_millis(100));
            db.put("woken", "1")
        })
    };
    let started = Instant::now();
    let batch = cursor
        .next_timeout(Duration::from_secs(30))?
        .expect("a batch");
    let waited = started.elapsed();
    let seqno = writer.join().expect("writer")?;
    assert_eq!(batch.first_seqno, seqno);
    assert!(
        waited < Duration::from_secs(10),
        "woken by the commit, not the timeout: {waited:?}"
    );

    let closer = {
        let db = db.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            db.put("last", "1").and_then(|_| db.close())
        })
    };
    let rest: Vec<_> = cursor.blocking().collect();
    closer.join().expect("closer")?;
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(matches!(&rest[0], Ok(b) if b.first_seqno == seqno + 1));
    assert!(matches!(&rest[1], Err(Error::Closed(_))));
    Ok(())
}
