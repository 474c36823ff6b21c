//! Regression (found by the `log_record` and `log_file` fuzz targets): a commit log record
//! whose checksums match but whose sequence numbers run past `SEQNO_MAX` (2^56 - 1) made
//! `LogRecord::last_seqno` and the change feed's record window overflow, a panic in a debug
//! build and a wrapped, wrong sequence number in a release build. Such a record is
//! `Error::Corruption` at its frame, in the scan recovery does, in the incremental reader the
//! change feed uses and in `Db::open`.
mod common;
use common::newest_log;
use std::path::{Path, PathBuf};

use alluvium::commit_log::{
    encode_record, LogFile, LogFileReader, RecordAck, RecordBody, RecordWindow, TailState,
};
use alluvium::frame::{encode_frame, FRAME_HEADER_LEN};
use alluvium::key::SEQNO_MAX;
use alluvium::{Compression, Db, Error, Options, Result, WriteBatch};

/// A database whose newest log file ends with one valid batch, then the crafted record, in a
/// frame whose checksums match. Returns the directory, the log file and the crafted frame's
/// offset.
fn with_crafted_record(
    first_seqno: u64,
    ops: usize,
    acks: &[RecordAck],
) -> Result<(tempfile::TempDir, PathBuf, u64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("before", "the crafted record")?;
    db.close()?;
    let log = newest_log(dir.path())?;
    let mut batch = WriteBatch::new();
    for i in 0..ops {
        batch.put(format!("k{i}"), "v");
    }
    let mut payload = Vec::new();
    let body = RecordBody::encode(&batch, acks, Compression::Snappy);
    encode_record(&mut payload, first_seqno, 0, &body);
    let mut bytes = std::fs::read(&log).expect("read");
    let offset = bytes.len() as u64;
    encode_frame(&mut bytes, &payload);
    std::fs::write(&log, &bytes).expect("write");
    Ok((dir, log, offset))
}

fn assert_corruption_at(got: Result<impl std::fmt::Debug>, log: &Path, at: u64, what: &str) {
    match got {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!(path, log, "{what}");
            assert_eq!(offset, at, "{what}");
        }
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
}

#[test]
fn a_log_record_past_the_largest_sequence_number_is_corruption() -> Result<()> {
    let ack = |position| RecordAck {
        subscription_id: 1,
        position,
    };
    let cases = [
        ("first sequence number u64::MAX", u64::MAX, 1, vec![]),
        ("first sequence number 2^56", SEQNO_MAX + 1, 1, vec![]),
        ("two operations from SEQNO_MAX", SEQNO_MAX, 2, vec![]),
        ("an acknowledgement at u64::MAX", 2, 1, vec![ack(u64::MAX)]),
    ];
    for (what, first, ops, acks) in cases {
        let (dir, log, frame) = with_crafted_record(first, ops, &acks)?;
        // The sequence number is the record's first field; the acknowledgement's position
        // is its last, so the decoder stops at the end of the file.
        let at = match acks.is_empty() {
            true => frame + FRAME_HEADER_LEN as u64,
            false => std::fs::metadata(&log).expect("metadata").len(),
        };
        let records = LogFile::read(&log)?.records().map(|(items, _)| items.len());
        assert_corruption_at(records, &log, at, &format!("{what}: scan"));
        let mut reader = LogFileReader::open(&log)?.expect("the log file exists");
        let window = RecordWindow {
            min_seqno: 2,
            max_first_seqno: u64::MAX,
        };
        let read = reader.next_record(window);
        assert_corruption_at(read, &log, at, &format!("{what}: incremental"));
        let opened = Db::open(dir.path(), Options::default());
        assert_corruption_at(opened, &log, at, &format!("{what}: open"));
    }
    Ok(())
}

#[test]
fn the_largest_sequence_number_itself_is_accepted() -> Result<()> {
    // The test above can fail: the same crafted frame one sequence number lower decodes.
    let (_dir, log, frame) = with_crafted_record(SEQNO_MAX, 1, &[])?;
    let (items, tail) = LogFile::read(&log)?.records()?;
    assert_eq!(tail, TailState::Clean);
    let last = items.last().expect("two records");
    assert_eq!((last.offset, last.record.last_seqno()), (frame, SEQNO_MAX));
    Ok(())
}
