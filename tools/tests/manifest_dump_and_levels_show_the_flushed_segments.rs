mod common;

use alluvium::{Db, Options};
use common::*;
use serde_json::json;

/// Two flushes: level 0 holds two segments, the manifest an open edit and two flush edits.
fn two_flushes(dir: &std::path::Path) -> alluvium::Result<()> {
    let db = Db::open(dir, Options::default())?;
    db.put(b"apple", b"1")?;
    db.put(b"kiwi", b"2")?;
    db.flush()?;
    db.put(b"banana", b"3")?;
    db.delete(b"zebra")?;
    db.flush()?;
    db.close()
}

#[test]
fn manifest_dump_shows_every_version_edit_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    two_flushes(dir.path())?;
    let edits = json_lines(&stdout_of(&[
        "manifest",
        "dump",
        &arg(dir.path()),
        "--json",
    ]));
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert_eq!(edits[0]["last_seqno"], json!(0));
    assert_eq!(edits[0]["added"], json!([]));
    let added: Vec<_> = edits[1..].iter().map(|e| e["added"][0].clone()).collect();
    assert_eq!(edits[2]["last_seqno"], json!(4));
    assert_eq!(added[0]["level"], json!(0));
    assert_eq!(
        added[0]["smallest"],
        json!({"key": "apple", "seqno": 1, "kind": "put"})
    );
    assert_eq!(
        added[0]["largest"],
        json!({"key": "kiwi", "seqno": 2, "kind": "put"})
    );
    assert_eq!(
        added[1]["largest"],
        json!({"key": "zebra", "seqno": 4, "kind": "delete"})
    );
    assert_eq!(added[1]["tombstone_count"], json!(1));
    assert!(edits[1]["offset"].as_u64() < edits[2]["offset"].as_u64());

    let human = stdout_of(&["manifest", "dump", &arg(dir.path())]);
    assert!(human.contains("+ L0"), "{human}");
    Ok(())
}

#[test]
fn levels_show_each_level_with_its_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    two_flushes(dir.path())?;
    let segments = json_lines(&stdout_of(&["levels", &arg(dir.path()), "--json"]));
    let ranges: Vec<_> = segments
        .iter()
        .map(|s| {
            (
                s["level"].clone(),
                s["seqno_min"].clone(),
                s["seqno_max"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            (json!(0), json!(1), json!(2)),
            (json!(0), json!(3), json!(4))
        ]
    );
    for (s, file) in segments.iter().zip(files_ending(dir.path(), ".seg")) {
        let size = std::fs::metadata(&file)?.len();
        assert_eq!(s["size_bytes"], json!(size));
        assert_eq!(
            file.file_name().map(|n| n.to_string_lossy().into_owned()),
            s["id"].as_u64().map(|id| format!("{id:06}.seg"))
        );
    }

    let picture = stdout_of(&["levels", &arg(dir.path())]);
    assert!(picture.contains("L0  2 segments"), "{picture}");
    assert!(
        picture.contains("[apple .. kiwi]") && picture.contains("[banana .. zebra]"),
        "{picture}"
    );
    assert!(picture.contains("L6  empty"), "{picture}");
    assert!(picture.contains('█'), "{picture}");
    Ok(())
}

#[test]
fn levels_work_while_another_process_holds_the_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    two_flushes(dir.path())?;
    let db = Db::open(dir.path(), Options::default())?; // holds LOCK
    let segments = json_lines(&stdout_of(&["levels", &arg(dir.path()), "--json"]));
    assert_eq!(segments.len(), 2);
    db.close()?;
    Ok(())
}
