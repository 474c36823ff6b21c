//! Helpers shared by the tool's tests: run the built binary, build small databases.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alluvium::{Compression, Db, Options, WriteBatch, WriteOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The `alluvium` binary cargo built for these tests.
pub fn alluvium() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alluvium"))
}

/// Runs `alluvium args...` to completion.
pub fn run(args: &[&str]) -> Output {
    alluvium()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running alluvium {args:?}: {e}"))
}

/// Runs `alluvium args...`, requires success and returns stdout.
pub fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "alluvium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Parses every line of `text` as one JSON object.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Small uncompressed blocks, so a few hundred entries span several blocks.
pub fn small_blocks() -> Options {
    Options::default()
        .block_size_bytes(256)
        .compression(Compression::None)
}

/// A `String` view of a path, for command lines.
pub fn arg(path: &Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_string()
}

/// The files of `dir` whose names end with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// One operation of a test batch: `(key, Some(value))` is a put, `(key, None)` a delete.
pub type TestOp = (Vec<u8>, Option<Vec<u8>>);

/// Writes `batches`, each synced.
pub fn write_batches(db: &Db, batches: &[Vec<TestOp>]) -> alluvium::Result<()> {
    for ops in batches {
        let mut batch = WriteBatch::new();
        for (key, value) in ops {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            };
        }
        db.write(batch, &WriteOptions::synced())?;
    }
    Ok(())
}

/// Flips the bits of the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize] ^= 0x55;
    std::fs::write(path, bytes).expect("write");
}

/// Lowercase hexadecimal, as `--key-encoding hex` prints.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
