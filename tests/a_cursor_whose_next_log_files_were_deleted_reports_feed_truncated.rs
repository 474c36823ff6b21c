//! A cursor that opened a log file and then fell behind retention (the files after it were
//! deleted while it was reading) reports `FeedTruncated` with the oldest available position
//! when it reaches the end of its file, never `Corruption` and never a gap. Found by the HTTP
//! server's slow-client test, which got "record starts at sequence number 965; expected 483".
mod common;

use alluvium::{Db, Error, Options, Result, Start};
use common::write_batches;

#[test]
fn a_cursor_whose_next_log_files_were_deleted_reports_feed_truncated() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default().memtable_size_bytes(8 * 1024))?;
    db.put("first", "1")?;
    let mut cursor = db.changes(Start::Beginning)?;
    let first = cursor.try_next()?.map(|b| b.last_seqno);
    // The cursor holds its file open; retention deletes the ones after it.
    write_batches(&db, 500)?;
    let oldest = db.stats().feed_oldest_seqno;
    assert!(oldest > 100, "retention kept too much: oldest is {oldest}");
    let mut last = first;
    let outcome = loop {
        match cursor.try_next() {
            Ok(Some(batch)) => last = Some(batch.last_seqno),
            other => break other,
        }
    };
    match outcome {
        Err(Error::FeedTruncated {
            requested,
            oldest_available,
        }) => {
            assert_eq!(Some(requested), last.map(|l| l + 1), "no batch was skipped");
            assert!(oldest_available >= oldest);
        }
        other => panic!("expected FeedTruncated, got {other:?}"),
    }
    db.close()
}
