mod common;

use std::path::{Path, PathBuf};

use alluvium::segment::Segment;
use alluvium::Db;
use common::*;
use serde_json::{json, Value};

/// A database with a multi-block segment, a manifest with two edits and a log file with
/// three records.
fn healthy(dir: &Path) -> alluvium::Result<()> {
    let db = Db::open(dir, small_blocks())?;
    for i in 0..100 {
        db.put(format!("key:{i:03}"), format!("value {i}"))?;
    }
    db.flush()?;
    for i in 0..3 {
        db.put(format!("late:{i}"), "x")?;
    }
    db.close()
}

/// A copy of the database in `from`, to damage.
fn copy(from: &Path, to: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        std::fs::copy(&path, to.join(path.file_name().unwrap_or_default()))?;
    }
    Ok(to.to_path_buf())
}

/// Runs `verify --json` on `path`: the exit status, the problems and the summary.
fn verify(path: &Path, extra: &[&str]) -> (bool, Vec<Value>, Value) {
    let mut args = vec!["verify", "--json"];
    args.extend(extra);
    let p = arg(path);
    args.push(&p);
    let out = run(&args);
    let mut lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], json!("summary"));
    (out.status.success(), lines, summary)
}

fn assert_names(problems: &[Value], file: &Path, offset: u64) {
    let named = problems.iter().any(|p| {
        p["severity"] == json!("error")
            && p["path"] == json!(arg(file))
            && p["offset"] == json!(offset)
    });
    assert!(
        named,
        "no error at {}:{offset} in {problems:#?}",
        file.display()
    );
}

#[test]
fn verify_passes_a_healthy_database() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("db");
    healthy(&db)?;
    let (ok, problems, summary) = verify(&db, &[]);
    assert!(ok && problems.is_empty(), "{problems:#?}");
    assert_eq!(summary["errors"], json!(0));
    assert_eq!(summary["files_checked"], json!(5)); // CURRENT, manifest, segment, log, IDENTITY
    for file in std::fs::read_dir(&db)? {
        let file = file?.path();
        if file.ends_with("LOCK") {
            continue;
        }
        let (ok, problems, summary) = verify(&file, &[]);
        assert!(
            ok && problems.is_empty(),
            "{}: {problems:#?}",
            file.display()
        );
        assert_eq!(summary["files_checked"], json!(1));
    }
    let human = stdout_of(&["verify", &arg(&db)]);
    assert!(human.contains("0 error(s), 0 warning(s)"), "{human}");
    Ok(())
}

#[test]
fn verify_names_a_flipped_byte_in_a_segment() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let seg = files_ending(&db, ".seg").remove(0);
    let second_block = Segment::open(&seg, 0)?.data_block_handles()[1].offset;
    flip_byte(&seg, second_block + 3);
    let (ok, problems, _) = verify(&db, &[]);
    assert!(!ok);
    assert_names(&problems, &seg, second_block);
    let (ok, problems, _) = verify(&seg, &[]);
    assert!(!ok);
    assert_names(&problems, &seg, second_block);
    let out = run(&["verify", &arg(&db)]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.lines().any(|l| l.starts_with("error")
            && l.contains(&arg(&seg))
            && l.contains(&second_block.to_string())),
        "{human}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("verify found 1 error(s)"));
    Ok(())
}

#[test]
fn verify_names_a_flipped_byte_in_a_log_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let log = files_ending(&db, ".log").pop().expect("the newest log");
    flip_byte(&log, 16 + 12 + 2); // inside the first record's payload
    let (ok, problems, _) = verify(&db, &[]);
    assert!(!ok);
    assert_names(&problems, &log, 16);
    Ok(())
}

#[test]
fn verify_names_a_flipped_byte_in_the_manifest() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let manifest = files_ending(&db, "")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("MANIFEST-"))
        .expect("a manifest");
    flip_byte(&manifest, 16 + 12); // the first edit's first byte
    let (ok, problems, _) = verify(&db, &[]);
    assert!(!ok);
    assert_names(&problems, &manifest, 16);
    Ok(())
}

#[test]
fn verify_names_a_damaged_identity_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let identity = db.join("IDENTITY");
    // An uppercase digit: a byte flip could give another valid id.
    let id = std::fs::read_to_string(&identity)?;
    std::fs::write(
        &identity,
        id.replacen(|c: char| c.is_ascii_hexdigit(), "G", 1),
    )?;
    let (ok, problems, _) = verify(&db, &[]);
    assert!(!ok);
    assert_names(&problems, &identity, 0);
    let (ok, problems, _) = verify(&identity, &[]);
    assert!(!ok);
    assert_names(&problems, &identity, 0);
    Ok(())
}

#[test]
fn a_torn_end_of_the_newest_log_file_is_a_warning() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let log = files_ending(&db, ".log").pop().expect("the newest log");
    let len = std::fs::metadata(&log)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)?
        .set_len(len - 3)?;
    let (ok, problems, summary) = verify(&db, &[]);
    assert!(ok, "{problems:#?}");
    assert_eq!(
        (summary["errors"].clone(), summary["warnings"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(problems[0]["severity"], json!("warning"));
    let (strict_ok, _, _) = verify(&db, &["--strict"]);
    assert!(!strict_ok);
    Ok(())
}

#[test]
fn verify_reports_every_problem_not_only_the_first() -> TestResult {
    let tmp = tempfile::tempdir()?;
    healthy(&tmp.path().join("healthy"))?;
    let db = copy(&tmp.path().join("healthy"), &tmp.path().join("db"))?;
    let seg = files_ending(&db, ".seg").remove(0);
    let blocks = Segment::open(&seg, 0)?.data_block_handles();
    flip_byte(&seg, blocks[0].offset + 1);
    flip_byte(&seg, blocks[2].offset + 1);
    let log = files_ending(&db, ".log").pop().expect("the newest log");
    let records = json_lines(&stdout_of(&["log", "dump", &arg(&log), "--json"]));
    let second_record = records[1]["offset"].as_u64().expect("an offset");
    flip_byte(&log, 16 + 12 + 2);
    flip_byte(&log, second_record + 12 + 2);
    let (ok, problems, summary) = verify(&db, &[]);
    assert!(!ok);
    assert_names(&problems, &seg, blocks[0].offset);
    assert_names(&problems, &seg, blocks[2].offset);
    assert_names(&problems, &log, 16);
    assert_names(&problems, &log, second_record);
    // And what follows from losing two records: a gap after what the segments hold.
    let gap = problems.iter().any(|p| {
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("101..=102"))
    });
    assert!(gap, "{problems:#?}");
    assert_eq!(summary["errors"], json!(5), "{problems:#?}");
    Ok(())
}
