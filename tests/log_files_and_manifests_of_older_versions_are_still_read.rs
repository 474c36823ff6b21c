//! A database written before the change feed (commit log and manifest format version 1),
//! before log compression (log format version 2), or before seal markers (log format version
//! 3), still opens: its log files are replayed and handed out by the change feed, and new files
//! are written in the current format next to the old ones.
use std::path::Path;

use alluvium::coding::Reader;
use alluvium::commit_log::{LOG_FORMAT_VERSION, RECORD_HEADER_LEN};
use alluvium::files::{self, FileKind};
use alluvium::frame::{encode_frame, file_header, Frame, FrameReader, FILE_HEADER_LEN};
use alluvium::{Db, Error, Options, Result, Start, WriteBatch};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Rewrites a current log file as version 3, 2 or 1: its seal marker goes (no earlier version
/// has one); below version 3 every record loses its body encoding byte (the bodies here are
/// too small to be compressed), and for version 1 its acknowledgement section too (here
/// always the single byte `ack_count = 0`).
fn downgrade_log(path: &Path, version: u32) -> Result<()> {
    let data = read(path)?;
    assert_eq!(Reader::new(&data[8..12]).u32(), Some(LOG_FORMAT_VERSION));
    let mut out = file_header(*b"ALVMLOG1", version);
    let mut frames = FrameReader::new(&data, FILE_HEADER_LEN);
    while let Frame::Record { payload, .. } = frames.next_frame() {
        let (header, stored) = payload.split_at(RECORD_HEADER_LEN);
        let count = Reader::new(&header[8..12]).u32();
        if count == Some(0) && stored == [0, 0] {
            continue; // the seal marker: raw, no operations, no acknowledgements
        }
        if version == 3 {
            encode_frame(&mut out, payload);
            continue;
        }
        assert_eq!(stored[0], 0, "a raw body");
        let body = &stored[1..];
        let body = match version {
            1 => {
                assert_eq!(body.last(), Some(&0), "no acknowledgement to drop");
                &body[..body.len() - 1]
            }
            _ => body,
        };
        encode_frame(&mut out, &[header, body].concat());
    }
    write(path, &out)
}

/// Rewrites a version 2 manifest without subscriptions as version 1 (only the header differs).
fn downgrade_manifest(path: &Path) -> Result<()> {
    let mut data = read(path)?;
    assert_eq!(Reader::new(&data[8..12]).u32(), Some(2));
    data[..FILE_HEADER_LEN].copy_from_slice(&file_header(*b"ALVMMAN1", 1));
    write(path, &data)
}

#[test]
fn version_1_log_files_and_manifests_are_still_read() -> Result<()> {
    old_files_are_still_read(1)
}

#[test]
fn version_2_log_files_are_still_read() -> Result<()> {
    old_files_are_still_read(2)
}

#[test]
fn version_3_log_files_are_still_read() -> Result<()> {
    old_files_are_still_read(3)
}

/// Writes a database, rewrites its log files in format `log_version` (and its manifests in
/// version 1 when that is 1), and reads it back.
fn old_files_are_still_read(log_version: u32) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let mut b = WriteBatch::new();
    b.put("apple", "red").put("kiwi", "green");
    db.write(b, &Default::default())?;
    db.delete("apple")?;
    db.close()?;
    for kind in files::list(dir.path())? {
        match kind {
            FileKind::Log(n) => downgrade_log(&files::log_path(dir.path(), n), log_version)?,
            FileKind::Manifest(n) if log_version == 1 => {
                downgrade_manifest(&files::manifest_path(dir.path(), n))?
            }
            _ => {}
        }
    }

    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.recovery_report().records_replayed, 2);
    assert_eq!(db.get("kiwi")?, Some(b"green".to_vec()));
    assert_eq!(db.get("apple")?, None);
    db.put("fig", "purple")?; // into a new log file, in the current version
    let mut cursor = db.changes(Start::Beginning)?;
    let firsts: Vec<u64> = std::iter::from_fn(|| cursor.try_next().transpose())
        .map(|b| b.map(|b| b.first_seqno))
        .collect::<Result<_>>()?;
    assert_eq!(firsts, vec![1, 3, 4]);
    db.close()?;
    Ok(())
}
