//! The database id: 128 random bits written once, at the first open, to the `IDENTITY` file.
//!
//! Systems outside the database name its changes by `(database id, sequence number)`: the NATS
//! bridge uses it as JetStream's deduplication id (`alluvium-bridge`). An id must therefore
//! never change while the directory lives, and two databases must not share one. A copy of
//! the directory keeps the id (as RocksDB's `IDENTITY` does); delete `IDENTITY` from a copy
//! that should be a database of its own and the next open writes a new one.
//!
//! `FORMAT.md`, "IDENTITY", documents the bytes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::files;
use crate::fs::FileSystem;

/// Name of the file holding the database id.
pub const IDENTITY: &str = "IDENTITY";
/// Name of the file the id is written to before it is renamed to `IDENTITY`.
pub const IDENTITY_TMP: &str = "IDENTITY.tmp";
/// Length of an id: 32 lowercase hexadecimal digits.
pub const ID_LEN: usize = 32;

/// Path of the `IDENTITY` file of `dir`.
pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join(IDENTITY)
}

/// Reads the id of the database in `dir` without opening it; `None` when `IDENTITY` is missing
/// (a database created before ids existed, not yet reopened).
///
/// # Errors
/// [`Error::Corruption`] when the file is not 32 lowercase hex digits and a newline.
pub fn read(dir: &Path) -> Result<Option<String>> {
    match read_file(&identity_path(dir)) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// Reads and checks an `IDENTITY` file at `path` (for `verify`, which may be given any path).
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::Corruption`] as for [`read`].
pub fn read_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes)
}

/// The id of the database in `dir`, written (synced, atomically) if missing. Called by open
/// with the directory locked, before any other file is written, so every database directory
/// opened by this build has an id.
pub(crate) fn load_or_create(fs: &dyn FileSystem, dir: &Path) -> Result<String> {
    if let Some(id) = read(dir)? {
        return Ok(id);
    }
    let id = new_id();
    let tmp = dir.join(IDENTITY_TMP);
    // A crash during an earlier first write can leave the temporary file behind.
    files::remove_if_exists(fs, &tmp)?;
    files::write_atomically(
        fs,
        dir,
        &tmp,
        &identity_path(dir),
        format!("{id}\n").as_bytes(),
    )?;
    Ok(id)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<String> {
    let hex = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let valid = hex.len() == ID_LEN && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match (valid, std::str::from_utf8(hex)) {
        (true, Ok(id)) => Ok(id.to_string()),
        _ => Err(Error::corruption(
            path,
            0,
            "IDENTITY is not 32 lowercase hexadecimal digits and a newline",
        )),
    }
}

/// 128 bits from the operating system's randomness (std seeds each `RandomState` from it),
/// mixed with the time and the process id.
fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(salt);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFileSystem;

    #[test]
    fn an_id_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let id = load_or_create(&OsFileSystem, dir.path()).unwrap();
        assert_eq!(id.len(), ID_LEN);
        assert_eq!(load_or_create(&OsFileSystem, dir.path()).unwrap(), id);
        assert_eq!(read(dir.path()).unwrap(), Some(id));
        assert!(!dir.path().join(IDENTITY_TMP).exists());
    }

    #[test]
    fn two_ids_differ_and_a_damaged_file_is_corruption() {
        assert_ne!(new_id(), new_id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(identity_path(dir.path()), "not an id\n").unwrap();
        assert!(read(dir.path()).unwrap_err().is_corruption());
    }
}
