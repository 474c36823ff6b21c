//! A crash in the middle of appending a version edit leaves a manifest whose last frame is a
//! prefix of a frame. That edit was never acknowledged (the append is synced before the new
//! version is used), so open keeps the edits before it, loses nothing and writes a fresh
//! manifest; the torn bytes are gone after the next open. Damage anywhere else in the
//! manifest is corruption (`tests/damaged_files_give_corruption_errors_naming_the_file.rs`).
use alluvium::frame::encode_frame;
use alluvium::manifest::{read_current, read_manifest, VersionEdit};
use alluvium::{Db, Options, Result};

#[test]
fn a_manifest_torn_in_its_last_edit_opens_with_the_edits_before() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("apple", "red")?;
    db.flush()?;
    db.put("kiwi", "green")?;
    db.close()?;
    let manifest = read_current(dir.path())?;
    let pristine = std::fs::read(&manifest).expect("read");
    let (_, edits) = read_manifest(&manifest)?;

    let next = VersionEdit {
        last_seqno: Some(99),
        ..VersionEdit::default()
    };
    let mut frame = Vec::new();
    encode_frame(&mut frame, &next.encode());
    for cut in [1, 11, 12, frame.len() - 1] {
        let mut torn = pristine.clone();
        torn.extend_from_slice(&frame[..cut]);
        std::fs::write(&manifest, &torn).expect("write");
        assert_eq!(
            read_manifest(&manifest)?.1,
            edits,
            "cut at {cut}: the edits before"
        );
        let db = Db::open(dir.path(), Options::default())?;
        assert_eq!(
            db.latest_seqno(),
            2,
            "cut at {cut}: the torn edit is not applied"
        );
        assert_eq!(db.get("apple")?, Some(b"red".to_vec()));
        assert_eq!(db.get("kiwi")?, Some(b"green".to_vec()));
        db.close()?;
        let fresh = read_current(dir.path())?;
        assert_ne!(fresh, manifest, "cut at {cut}: open wrote a fresh manifest");
        let (_, fresh_edits) = read_manifest(&fresh)?;
        assert_eq!(fresh_edits.len(), 1, "cut at {cut}: one snapshot edit");
        assert_eq!(fresh_edits[0].last_seqno, Some(1), "cut at {cut}");
        // Put the torn manifest back for the next cut.
        std::fs::remove_file(&fresh).expect("remove");
        std::fs::write(
            dir.path().join("CURRENT"),
            format!(
                "{}\n",
                manifest.file_name().and_then(|n| n.to_str()).expect("name")
            ),
        )
        .expect("write CURRENT");
    }

    // The check can fail: the whole frame is an edit that is applied.
    let mut whole = pristine.clone();
    whole.extend_from_slice(&frame);
    std::fs::write(&manifest, &whole).expect("write");
    assert_eq!(read_manifest(&manifest)?.0.last_seqno, 99);
    Ok(())
}
