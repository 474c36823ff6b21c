//! Prints the worked hex examples of `FORMAT.md` by really writing a database:
//! `cargo test --test format_worked_examples -- --ignored --nocapture`.
//!
//! Ignored by default: it asserts only the file set, and its output (the `commit_time_us` field
//! of every log record) changes on every run.
use std::path::Path;

use alluvium::{Db, Options, Result, WriteBatch, WriteOptions};

/// `xxd`-style dump: offset, 16 bytes in hex, the printable ASCII.
fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "{:08x}  {:<47}  |{ascii}|\n",
            row * 16,
            hex.join(" ")
        ));
    }
    out
}

fn dump(dir: &Path, name: &str) {
    let bytes = std::fs::read(dir.join(name)).expect("read file");
    println!("== {name} ({} bytes)\n{}", bytes.len(), hexdump(&bytes));
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
#[ignore = "prints the hex examples of FORMAT.md"]
fn two_batches_then_close_leave_a_log_a_manifest_and_current() -> Result<()> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let db = Db::open(&dir, Options::default())?;
    let mut first = WriteBatch::new();
    first.put(b"apple", b"red").put(b"kiwi", b"green");
    db.write(first, &WriteOptions::synced())?;
    let mut second = WriteBatch::new();
    second.delete(b"apple");
    db.write(second, &WriteOptions::synced())?;
    db.close()?;

    let names = listing(&dir);
    println!("== directory after close: {names:?}\n");
    assert_eq!(
        names,
        [
            "000003.log",
            "CURRENT",
            "IDENTITY",
            "LOCK",
            "MANIFEST-000001"
        ]
    );
    for name in ["000003.log", "MANIFEST-000001", "CURRENT"] {
        dump(&dir, name);
    }

    // Reopen (a fresh manifest), flush (a segment, a version edit, old log files deleted).
    let db = Db::open(&dir, Options::default())?;
    db.flush()?;
    db.close()?;
    let names = listing(&dir);
    println!("== directory after reopen + flush + close: {names:?}\n");
    assert_eq!(
        names,
        [
            "000007.log",
            "000008.seg",
            "CURRENT",
            "IDENTITY",
            "LOCK",
            "MANIFEST-000004"
        ]
    );
    for name in ["MANIFEST-000004", "CURRENT"] {
        dump(&dir, name);
    }
    Ok(())
}
