mod common;

use alluvium::{Db, Options};
use common::*;
use serde_json::json;

/// Enough small flushes that compaction moves data below level 0.
fn compacted(dir: &std::path::Path) -> alluvium::Result<()> {
    let db = Db::open(dir, Options::default().memtable_size_bytes(16 << 10))?;
    for i in 0..6000u32 {
        db.put(
            format!("key:{:06}", (i * 7919) % 6000),
            format!("value {i:06} {}", "x".repeat(16)),
        )?;
        if i % 500 == 0 {
            db.delete(format!("key:{:06}", i / 2))?;
        }
    }
    db.flush()?;
    db.wait_idle()?;
    db.close()
}

#[test]
fn verify_passes_and_levels_draw_a_compacted_database() -> TestResult {
    let tmp = tempfile::tempdir()?;
    compacted(tmp.path())?;
    let dir = arg(tmp.path());
    let report = json_lines(&stdout_of(&["verify", &dir, "--json", "--strict"]));
    assert_eq!(report.len(), 1, "{report:#?}");
    assert_eq!(report[0]["errors"], json!(0));

    let segments = json_lines(&stdout_of(&["levels", &dir, "--json"]));
    assert!(
        segments.iter().any(|s| s["level"].as_u64() > Some(0)),
        "{segments:#?}"
    );
    let on_disk = files_ending(tmp.path(), ".seg").len();
    assert_eq!(segments.len(), on_disk);
    // Levels 1 and deeper do not overlap, in key order.
    for level in 1..7 {
        let keys: Vec<_> = segments
            .iter()
            .filter(|s| s["level"] == json!(level))
            .flat_map(|s| [s["smallest"]["key"].clone(), s["largest"]["key"].clone()])
            .map(|k| k.as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "level {level}: {keys:?}"
        );
    }
    let edits = json_lines(&stdout_of(&["manifest", "dump", &dir, "--json"]));
    let deleted = |e: &serde_json::Value| e["deleted"].as_array().is_some_and(|d| !d.is_empty());
    assert!(
        edits.iter().any(deleted),
        "compaction deletes segments: {edits:#?}"
    );
    Ok(())
}
