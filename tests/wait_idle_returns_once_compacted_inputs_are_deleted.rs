//! `wait_idle` returns only after the compactions it waited for have let go of their inputs,
//! so the directory then holds exactly the live segments (a benchmark measuring space
//! amplification right after it once counted deleted-to-be inputs twice over).
use alluvium::{Db, Options, Result};

fn segment_files(db: &Db) -> usize {
    std::fs::read_dir(db.path())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn wait_idle_returns_once_compacted_inputs_are_deleted() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    let opts = Options::default().memtable_size_bytes(32 << 10);
    let db = Db::open(dir.path(), opts)?;
    let value = vec![7u8; 200];
    for round in 0..40u64 {
        for i in 0..600u64 {
            let key = format!("{:08}", (i * 7919 + round * 131) % 5000);
            db.put(key.as_bytes(), &value)?;
        }
        db.flush()?;
        db.wait_idle()?;
        let live: usize = db.stats().levels.iter().map(|l| l.segments).sum();
        assert_eq!(segment_files(&db), live, "round {round}");
    }
    Ok(())
}
