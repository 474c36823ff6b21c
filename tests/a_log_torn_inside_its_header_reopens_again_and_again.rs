//! Regression: a newest log file torn inside its 16-byte header was truncated to nothing and
//! kept; the next open then found an empty log file that was no longer the newest and failed
//! with corruption. Recovery must remove such a file, so every later open succeeds.
use alluvium::files;
use alluvium::{Db, Options, Result};

fn newest_log(dir: &std::path::Path) -> Result<u64> {
    let logs = files::log_numbers(dir)?.into_iter();
    Ok(logs.max().unwrap_or(0))
}

#[test]
fn a_log_torn_inside_its_header_reopens_again_and_again() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    db.put("kept", "1")?;
    db.close()?;
    drop(db);
    // A crash while the next log file's header was being written.
    let torn = files::log_path(dir.path(), newest_log(dir.path())? + 10);
    std::fs::write(&torn, b"ALVML").map_err(|e| alluvium::Error::io(&torn, e))?;
    for round in 0..3 {
        let db = Db::open(dir.path(), Options::default())?;
        assert_eq!(db.get("kept")?, Some(b"1".to_vec()), "round {round}");
        let dropped = &db.recovery_report().dropped;
        assert_eq!(
            dropped.len(),
            usize::from(round == 0),
            "round {round}: {dropped:?}"
        );
        db.put(format!("round{round}"), "x")?;
        db.close()?;
    }
    assert!(!torn.exists());
    Ok(())
}
