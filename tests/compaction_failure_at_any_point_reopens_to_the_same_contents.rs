//! A compaction that dies after writing its outputs but before its version edit, or after the
//! edit but before the new version is installed, leaves a database that reopens to exactly
//! the contents it had: the outputs are orphans removed at open, or the edit is the new truth.
use std::collections::BTreeMap;

use alluvium::{CompactionFailPoint, Db, Error, Options, Result};

fn options() -> Options {
    Options::default()
        .memtable_size_bytes(4096)
        .segment_size_bytes(4096)
        .level_base_size_bytes(8192)
        .level_size_ratio(2)
        .compaction_enabled(false)
}

fn contents(db: &Db) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    db.iter().collect()
}

fn fill(db: &Db) -> Result<()> {
    for round in 0..4u32 {
        for i in 0..200u32 {
            let k = format!("key{:04}", (i * 7919 + round) % 300);
            if i % 5 == 4 {
                db.delete(k)?;
            } else {
                db.put(k, format!("value-{round}-{i}-{}", "x".repeat(40)))?;
            }
        }
        db.flush()?;
    }
    Ok(())
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .count()
        })
        .unwrap_or(0)
}

fn crash_during_compaction(point: CompactionFailPoint) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), options())?;
    fill(&db)?;
    let before = contents(&db)?;
    db.close()?;
    drop(db);
    let db = Db::open(dir.path(), options().compaction_fail_point(point))?;
    let failed = db.compact_range::<&[u8], _>(..);
    assert!(
        matches!(failed, Err(Error::Closed(_))),
        "{point:?}: {failed:?}"
    );
    drop(db); // no clean close: the process "dies" here
    let db = Db::open(dir.path(), options())?;
    assert_eq!(contents(&db)?, before, "{point:?}");
    let live: usize = db.stats().levels.iter().map(|l| l.segments).sum();
    assert_eq!(
        segment_files(dir.path()),
        live,
        "{point:?}: no orphan segment survives the reopen"
    );
    db.compact_range::<&[u8], _>(..)?;
    assert_eq!(
        contents(&db)?,
        before,
        "{point:?}: a compaction after recovery"
    );
    Ok(())
}

#[test]
fn a_failure_after_the_outputs_are_written_reopens_to_the_same_contents() -> Result<()> {
    crash_during_compaction(CompactionFailPoint::AfterOutputs)
}

#[test]
fn a_failure_after_the_version_edit_reopens_to_the_same_contents() -> Result<()> {
    crash_during_compaction(CompactionFailPoint::AfterManifest)
}
