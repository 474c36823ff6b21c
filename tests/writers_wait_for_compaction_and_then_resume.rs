//! With level-0 thresholds set low, a burst of writes is slowed down and stopped while
//! compaction catches up, and every write still completes: the stall always lifts.
use std::sync::Arc;

use alluvium::{Db, Error, Options, Result};

#[test]
fn writers_wait_for_compaction_and_then_resume() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let opts = Options::default()
        .memtable_size_bytes(4096)
        .segment_size_bytes(16 * 1024)
        .level_base_size_bytes(64 * 1024)
        .level0_triggers(1, 2, 3)
        .compaction_threads(1);
    let db = Arc::new(Db::open(dir.path(), opts)?);
    let writers: Vec<_> = (0..4u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || -> Result<()> {
                for i in 0..1500u32 {
                    db.put(format!("t{t}-{:05}", (i * 7919) % 1500), vec![b'v'; 200])?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join()
            .map_err(|_| Error::InvalidArgument("writer panicked".into()))??;
    }
    db.wait_idle()?;
    let stats = db.stats();
    assert!(
        stats.write_slowdowns + stats.write_stops > 0,
        "writers were throttled: {stats:?}"
    );
    assert!(
        stats.levels[0].segments < 3,
        "compaction caught up: {:?}",
        stats.levels[0]
    );
    for t in 0..4u32 {
        let n = db.prefix(format!("t{t}-")).count();
        assert_eq!(n, 1500, "every write of writer {t} landed");
    }
    Ok(())
}
