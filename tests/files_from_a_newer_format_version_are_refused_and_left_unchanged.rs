//! A segment, a commit log file or a manifest that says it was written by a newer format
//! version (with checksums that match) fails `Db::open` with `Error::Corruption` naming the
//! file, at offset 8 for framed files and at the footer's offset for a segment, in both
//! recovery modes. No log file or segment is truncated, removed or rewritten. (Open replays
//! the commit log after it has written a fresh manifest, so a refused log file leaves the
//! same state under a new manifest number; a refused manifest or segment leaves every file.)
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alluvium::commit_log::{LOG_FORMAT_VERSION, LOG_MAGIC};
use alluvium::files::{self, FileKind};
use alluvium::frame::file_header;
use alluvium::manifest::{read_current, MANIFEST_FORMAT_VERSION, MANIFEST_MAGIC};
use alluvium::segment::format::{Footer, FOOTER_LEN};
use alluvium::{Db, Error, Options, RecoveryMode, Result};

/// A closed database with a segment and a log file that holds a batch.
fn db() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("flushed", "1")?;
    db.flush()?;
    db.put("in the log", "2")?;
    db.close()?;
    Ok(dir)
}

fn find(dir: &Path, pick: fn(&FileKind) -> bool) -> Result<PathBuf> {
    let kind = files::list(dir)?.into_iter().rev().find(pick);
    Ok(match kind.expect("the file exists") {
        FileKind::Log(n) => files::log_path(dir, n),
        FileKind::Segment(n) => files::segment_path(dir, n),
        other => panic!("{other:?}"),
    })
}

/// Every file's bytes; with `data_only`, only log files and segments.
fn snapshot(dir: &Path, data_only: bool) -> BTreeMap<PathBuf, Vec<u8>> {
    let is_data = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("log" | "seg"));
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| !data_only || is_data(p))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

fn refused(dir: &Path, file: &Path, at: u64, what: &str) {
    let data_only = what == "commit log";
    let before = snapshot(dir, data_only);
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
        match Db::open(dir, Options::default().recovery_mode(mode)) {
            Err(Error::Corruption {
                path,
                offset,
                detail,
            }) => {
                assert_eq!((path.as_path(), offset), (file, at), "{what}, {mode:?}");
                assert!(detail.contains("newer"), "{what}, {mode:?}: {detail}");
            }
            other => panic!("{what}, {mode:?}: expected corruption, got {other:?}"),
        }
        assert_eq!(
            snapshot(dir, data_only),
            before,
            "{what}, {mode:?}: the directory is unchanged"
        );
    }
}

fn set_header_version(path: &Path, magic: [u8; 8], version: u32) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[..16].copy_from_slice(&file_header(magic, version));
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn files_from_a_newer_format_version_are_refused_and_left_unchanged() -> Result<()> {
    let dir = db()?;
    let log = find(dir.path(), |k| matches!(k, FileKind::Log(_)))?;
    set_header_version(&log, LOG_MAGIC, LOG_FORMAT_VERSION + 1);
    refused(dir.path(), &log, 8, "commit log");

    let dir = db()?;
    let manifest = read_current(dir.path())?;
    set_header_version(&manifest, MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION + 1);
    refused(dir.path(), &manifest, 8, "manifest");

    let dir = db()?;
    let seg = find(dir.path(), |k| matches!(k, FileKind::Segment(_)))?;
    let mut bytes = std::fs::read(&seg).expect("read");
    let at = bytes.len() - FOOTER_LEN;
    let raw: &[u8; FOOTER_LEN] = bytes[at..].try_into().expect("64 bytes");
    let footer = Footer::decode(raw).expect("pristine footer");
    let newer = Footer {
        format_version: footer.format_version + 1,
        ..footer
    };
    bytes[at..].copy_from_slice(&newer.encode());
    std::fs::write(&seg, &bytes).expect("write");
    refused(dir.path(), &seg, at as u64, "segment");

    // The check can fail: the current versions, written the same way, open.
    let dir = db()?;
    let log = find(dir.path(), |k| matches!(k, FileKind::Log(_)))?;
    set_header_version(&log, LOG_MAGIC, LOG_FORMAT_VERSION);
    let manifest = read_current(dir.path())?;
    set_header_version(&manifest, MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION);
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("in the log")?, Some(b"2".to_vec()));
    db.close()
}
