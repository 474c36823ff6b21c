//! A compaction's input segments stay on disk while an iterator that pinned them is alive,
//! the iterator reads them to the end unchanged, and the files go once it is dropped.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use alluvium::{Db, Error, Options, Result};

fn segment_files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compacted_segments_stay_until_the_last_reader_drops_them() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default().compaction_enabled(false))?;
    for round in 0..3u32 {
        for i in 0..100u32 {
            db.put(format!("k{i:03}"), format!("round {round}"))?;
        }
        db.flush()?;
    }
    let before = segment_files(dir.path());
    assert_eq!(before.len(), 3);
    let mut iter = db.iter();
    let first = iter.next().transpose()?;
    db.compact_range::<&[u8], _>(..)?;
    let after_compaction = segment_files(dir.path());
    assert!(
        before.is_subset(&after_compaction),
        "inputs stay while the iterator lives"
    );
    assert_eq!(
        db.stats().levels.iter().map(|l| l.segments).sum::<usize>(),
        1
    );
    let rest: Vec<_> = iter.collect::<Result<_>>()?;
    assert_eq!(first.map(|(k, _)| k), Some(b"k000".to_vec()));
    assert_eq!(rest.len(), 99);
    assert!(rest.iter().all(|(_, v)| v == b"round 2"));
    let after_drop = segment_files(dir.path());
    assert_eq!(
        after_drop.len(),
        1,
        "inputs are deleted once the iterator is gone"
    );
    assert!(after_drop.is_disjoint(&before));
    Ok(())
}
