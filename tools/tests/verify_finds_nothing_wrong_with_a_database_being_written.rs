mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alluvium::{Db, Options};
use common::*;
use serde_json::json;

#[test]
fn verify_finds_nothing_wrong_with_a_database_being_written() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = Db::open(tmp.path(), Options::default().memtable_size_bytes(16 << 10))?;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || -> alluvium::Result<()> {
            for i in 0..4000u32 {
                db.put(
                    format!("key:{:05}", (i * 7919) % 4000),
                    format!("value {i} {}", "x".repeat(24)),
                )?;
            }
            done.store(true, Ordering::Release);
            Ok(())
        })
    };
    let dir = arg(tmp.path());
    let mut runs = 0;
    while !done.load(Ordering::Acquire) || runs == 0 {
        // Flushes, compactions and appends go on meanwhile: at most warnings (a record being
        // appended, a segment not yet named, a file deleted during the run).
        let out = run(&["verify", &dir, "--json"]);
        let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
        let errors: Vec<_> = lines
            .iter()
            .filter(|l| l["severity"] == json!("error"))
            .collect();
        assert!(
            errors.is_empty() && out.status.success(),
            "run {runs}: {errors:#?}"
        );
        runs += 1;
    }
    writer.join().expect("writer")?;
    db.close()?;
    Ok(())
}
