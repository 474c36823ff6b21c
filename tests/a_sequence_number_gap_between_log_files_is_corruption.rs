//! Log files hold consecutive sequence numbers across files. When a log file in the middle is
//! missing, the next one starts past the expected sequence number: `Db::open` fails with
//! `Error::Corruption` naming that next file at its first record (offset 16), instead of
//! replaying around the hole. `RecoveryMode::PointInTime` recovers up to the hole: it drops
//! the file after it from that record on and reports it.
use std::path::{Path, PathBuf};

use alluvium::files::{self, FileKind};
use alluvium::{Db, Error, Options, RecoveryMode, Result};

/// Three opens without a flush: three log files holding sequence numbers 1-2, 3-4 and 5-6.
fn three_log_files() -> Result<(tempfile::TempDir, Vec<PathBuf>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..3 {
        let db = Db::open(dir.path(), Options::default())?;
        db.put(format!("a{round}"), "1")?;
        db.put(format!("b{round}"), "2")?;
        db.close()?;
    }
    let logs = logs(dir.path())?;
    Ok((dir, logs))
}

fn logs(dir: &Path) -> Result<Vec<PathBuf>> {
    let logs = files::list(dir)?.into_iter().filter_map(|k| match k {
        FileKind::Log(n) => Some(files::log_path(dir, n)),
        _ => None,
    });
    Ok(logs.collect())
}

#[test]
fn a_sequence_number_gap_between_log_files_is_corruption() -> Result<()> {
    let (dir, logs) = three_log_files()?;
    assert_eq!(logs.len(), 3, "{logs:?}");
    std::fs::remove_file(&logs[1]).expect("remove the middle log file");
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Corruption {
            path,
            offset,
            detail,
        }) => {
            assert_eq!(
                (path.as_path(), offset),
                (logs[2].as_path(), 16),
                "{detail}"
            );
            assert!(detail.contains("expected 3"), "{detail}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }

    let opts = Options::default().recovery_mode(RecoveryMode::PointInTime);
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.latest_seqno(), 2, "recovered up to the hole");
    assert_eq!(db.get("a0")?, Some(b"1".to_vec()));
    assert_eq!(db.get("a2")?, None, "nothing after the hole is replayed");
    let dropped = &db.recovery_report().dropped;
    assert_eq!(
        (&dropped[0].path, dropped[0].offset),
        (&logs[2], 16),
        "{dropped:?}"
    );
    db.close()?;

    // The check can fail: with every file there, all six writes replay.
    let (dir, _) = three_log_files()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.latest_seqno(), 6);
    db.close()
}
