//! Regression: a manifest whose checksums match but whose version edit holds a number no
//! writer produces made `Db::open` panic on an overflow (a `last_seqno` or `next_file_number`
//! of `u64::MAX`) or succeed and panic later (a subscription position of `u64::MAX`), and a
//! manifest describing a segment's key range differently from the segment itself was trusted
//! (only its size was checked).
//! Each is now `Error::Corruption`: numbers are checked as the edit is decoded, naming the
//! manifest and the offset of the field, and a segment's description is checked against its
//! properties when it is opened, naming the segment.
use std::path::{Path, PathBuf};

use alluvium::files::{self, FileKind, FILE_NUMBER_MAX};
use alluvium::frame::{encode_frame, file_header, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use alluvium::key::SEQNO_MAX;
use alluvium::manifest::{
    read_current, read_manifest, SubscriptionChange, VersionEdit, MANIFEST_FORMAT_VERSION,
    MANIFEST_MAGIC,
};
use alluvium::{Db, Error, Options, Result, Start};

/// A database with one flushed segment and one subscription, closed.
fn flushed_db() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.create_subscription("index", Start::Beginning)?;
    db.put("apple", "red")?;
    db.put("kiwi", "green")?;
    db.flush()?;
    db.close()?;
    Ok(dir)
}

/// Replaces the manifest with one whose single edit is the database's state changed by
/// `change`. Returns the manifest's path and the edit's offset in it.
fn rewrite_manifest(dir: &Path, change: impl FnOnce(&mut VersionEdit)) -> Result<(PathBuf, u64)> {
    let manifest = read_current(dir)?;
    let (state, _) = read_manifest(&manifest)?;
    let mut edit = state.snapshot_edit();
    change(&mut edit);
    let mut bytes = file_header(MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION);
    encode_frame(&mut bytes, &edit.encode());
    std::fs::write(&manifest, bytes).expect("write manifest");
    Ok((manifest, (FILE_HEADER_LEN + FRAME_HEADER_LEN) as u64))
}

/// Where the field that `prefix` leaves out starts: the length of the fields before it.
fn field_offset(edit_at: u64, prefix: VersionEdit) -> u64 {
    edit_at + prefix.encode().len() as u64
}

fn expect_corruption(dir: &Path, file: &Path, at: u64, what: &str) {
    match Db::open(dir, Options::default()) {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!(path, file, "{what}");
            assert_eq!(offset, at, "{what}");
        }
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
}

#[test]
fn a_manifest_holding_impossible_numbers_is_corruption() -> Result<()> {
    let counters = |edit: &VersionEdit, fields: usize| VersionEdit {
        log_number: edit.log_number,
        next_file_number: edit.next_file_number.filter(|_| fields >= 2),
        ..VersionEdit::default()
    };

    let pristine = flushed_db()?;
    let snapshot = read_manifest(&read_current(pristine.path())?)?
        .0
        .snapshot_edit();

    let dir = flushed_db()?;
    let (manifest, at) = rewrite_manifest(dir.path(), |e| e.last_seqno = Some(SEQNO_MAX + 1))?;
    let last_seqno_at = field_offset(at, counters(&snapshot, 2));
    expect_corruption(dir.path(), &manifest, last_seqno_at, "last_seqno 2^56");

    let dir = flushed_db()?;
    let (manifest, at) = rewrite_manifest(dir.path(), |e| e.next_file_number = Some(u64::MAX))?;
    let next_file_at = field_offset(at, counters(&snapshot, 1));
    expect_corruption(
        dir.path(),
        &manifest,
        next_file_at,
        "next_file_number u64::MAX",
    );

    let dir = flushed_db()?;
    let (manifest, at) = rewrite_manifest(dir.path(), |e| {
        e.next_file_number = Some(FILE_NUMBER_MAX + 1)
    })?;
    expect_corruption(
        dir.path(),
        &manifest,
        field_offset(at, counters(&snapshot, 1)),
        "2^63",
    );

    let dir = flushed_db()?;
    let (manifest, at) = rewrite_manifest(dir.path(), |e| {
        let Some(SubscriptionChange::Set { position, .. }) = e.subscriptions.last_mut() else {
            panic!("the snapshot lists the subscription");
        };
        *position = u64::MAX;
    })?;
    let mut before = snapshot.clone();
    before.subscriptions.clear();
    expect_corruption(
        dir.path(),
        &manifest,
        field_offset(at, before),
        "position u64::MAX",
    );
    Ok(())
}

#[test]
fn a_manifest_describing_a_segment_wrongly_is_corruption_of_the_segment() -> Result<()> {
    let dir = flushed_db()?;
    let segment = only_segment(dir.path())?;
    // The manifest says the segment starts at "kiwi": a lookup of "apple" would skip it.
    rewrite_manifest(dir.path(), |e| {
        let largest = e.added[0].meta.largest.clone();
        e.added[0].meta.smallest = largest;
    })?;
    expect_corruption(dir.path(), &segment, 0, "smallest key");

    let dir = flushed_db()?;
    rewrite_manifest(dir.path(), |e| e.added[0].meta.seqno_max += 1)?;
    expect_corruption(dir.path(), &only_segment(dir.path())?, 0, "seqno_max");

    let dir = flushed_db()?;
    rewrite_manifest(dir.path(), |e| e.added[0].meta.size_bytes += 1)?;
    expect_corruption(dir.path(), &only_segment(dir.path())?, 0, "size");
    Ok(())
}

fn only_segment(dir: &Path) -> Result<PathBuf> {
    let segment = files::list(dir)?.into_iter().find_map(|k| match k {
        FileKind::Segment(n) => Some(files::segment_path(dir, n)),
        _ => None,
    });
    Ok(segment.expect("a segment"))
}

#[test]
fn the_same_manifest_rewritten_unchanged_opens() -> Result<()> {
    // The tests above can fail: the rewriting itself keeps a database that opens and reads.
    let dir = flushed_db()?;
    rewrite_manifest(dir.path(), |_| {})?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("apple")?, Some(b"red".to_vec()));
    assert_eq!(db.subscriptions().len(), 1);
    db.close()
}
