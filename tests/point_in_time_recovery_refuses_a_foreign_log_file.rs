//! Regression: point-in-time recovery treated a log file with a bad header (a foreign file, or
//! one from a newer format) as a bad tail, truncated it and deleted every later log file. A bad
//! header must be a corruption error in every recovery mode, with nothing removed.
use alluvium::files::{self, FileKind};
use alluvium::{Db, Error, Options, RecoveryMode, Result};

#[test]
fn point_in_time_recovery_refuses_a_foreign_log_file() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    db.put("a", "1")?;
    db.close()?;
    drop(db);
    let logs: Vec<u64> = files::list(dir.path())?
        .into_iter()
        .filter_map(|k| {
            if let FileKind::Log(n) = k {
                Some(n)
            } else {
                None
            }
        })
        .collect();
    let first = files::log_path(dir.path(), logs[0]);
    let mut bytes = std::fs::read(&first).map_err(|e| Error::io(&first, e))?;
    bytes[..8].copy_from_slice(b"NOTALVM!");
    std::fs::write(&first, &bytes).map_err(|e| Error::io(&first, e))?;
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime] {
        let err = Db::open(dir.path(), Options::default().recovery_mode(mode)).err();
        assert!(
            matches!(&err, Some(Error::Corruption { path, offset: 0, .. }) if *path == first),
            "{mode:?}: {err:?}"
        );
        let after = std::fs::read(&first).map_err(|e| Error::io(&first, e))?;
        assert_eq!(after, bytes, "{mode:?} changed the foreign file");
        for n in &logs {
            assert!(
                files::log_path(dir.path(), *n).exists(),
                "{mode:?} removed log {n}"
            );
        }
    }
    Ok(())
}
