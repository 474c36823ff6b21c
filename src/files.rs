//! File numbers and names, directory fsync, and the `LOCK` file.
//!
//! Every file alluvium writes takes a number from one counter (`next_file_number` in the
//! manifest), so names never repeat within a database.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;

/// Name of the file holding the current manifest's name.
pub const CURRENT: &str = "CURRENT";
/// Name of the lock file.
pub const LOCK: &str = "LOCK";

/// The kinds of file alluvium keeps in a database directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// `NNNNNN.log`: a commit log file.
    Log(u64),
    /// `NNNNNN.seg`: a segment.
    Segment(u64),
    /// `MANIFEST-NNNNNN`.
    Manifest(u64),
    /// `NNNNNN.tmp`: a temporary file (a `CURRENT` being replaced).
    Temp(u64),
    /// `CURRENT`.
    Current,
    /// `LOCK`.
    Lock,
}

/// Path of commit log file `n`.
pub fn log_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.log"))
}

/// Path of segment `n`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.seg"))
}

/// Path of manifest `n`.
pub fn manifest_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(manifest_name(n))
}

/// File name of manifest `n`.
pub fn manifest_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

/// Path of temporary file `n`.
pub fn temp_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.tmp"))
}

/// Recognises an alluvium file name; `None` for anything else.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    match name {
        CURRENT => return Some(FileKind::Current),
        LOCK => return Some(FileKind::Lock),
        _ => {}
    }
    if let Some(n) = name.strip_prefix("MANIFEST-") {
        return parse_number(n).map(FileKind::Manifest);
    }
    let (stem, ext) = name.split_once('.')?;
    let n = parse_number(stem)?;
    match ext {
        "log" => Some(FileKind::Log(n)),
        "seg" => Some(FileKind::Segment(n)),
        "tmp" => Some(FileKind::Temp(n)),
        _ => None,
    }
}

/// The largest file number: a number above it in a file name is not alluvium's, and a version
/// edit holding one is corruption. The bound leaves room to count past any number read from
/// disk without overflowing (`FORMAT.md`, "Directory layout").
pub const FILE_NUMBER_MAX: u64 = (1 << 63) - 1;

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n <= FILE_NUMBER_MAX)
}

/// Every alluvium file in `dir`, sorted by kind then number.
pub fn list(dir: &Path) -> Result<Vec<FileKind>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if let Some(kind) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push(kind);
        }
    }
    out.sort();
    Ok(out)
}

/// The numbers of the commit log files in `dir`, ascending.
pub fn log_numbers(dir: &Path) -> Result<Vec<u64>> {
    let logs = list(dir)?.into_iter().filter_map(|k| match k {
        FileKind::Log(n) => Some(n),
        _ => None,
    });
    Ok(logs.collect())
}

/// Fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).at(dir)
}

/// Writes `contents` to `path` atomically: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory.
pub fn write_atomically(
    fs: &dyn FileSystem,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    contents: &[u8],
) -> Result<()> {
    let mut file = fs.create_new(tmp).at(tmp)?;
    file.write_all(contents)
        .and_then(|()| file.sync_data())
        .at(tmp)?;
    fs.rename(tmp, path).at(path)?;
    sync_dir(fs, dir)
}

/// Removes a file, ignoring "not found".
pub fn remove_if_exists(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// The held `LOCK` file of an open database. Dropping it releases the lock.
///
/// The lock is `flock`-style (std's [`File::try_lock`]): it belongs to the open file
/// description, which a child process shares from `fork` until `exec` closes its copy. Dropping
/// therefore unlocks explicitly instead of only closing the descriptor, so a child being spawned
/// at that moment cannot keep the directory locked after the `Db` closed.
#[derive(Debug)]
pub struct DirLock {
    file: File,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Best effort: closing the descriptor below releases the lock too, once no child
        // holds a copy of it.
        let _ = self.file.unlock();
    }
}

impl DirLock {
    /// Takes the directory's lock without waiting; [`Error::Locked`] when another `Db`, in
    /// this process or another, holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
                path: dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let dir = Path::new("/d");
        let name = |p: PathBuf| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        assert_eq!(
            name(log_path(dir, 7)).as_deref().and_then(parse_file_name),
            Some(FileKind::Log(7))
        );
        assert_eq!(
            name(segment_path(dir, 12))
                .as_deref()
                .and_then(parse_file_name),
            Some(FileKind::Segment(12))
        );
        assert_eq!(
            parse_file_name(&manifest_name(3)),
            Some(FileKind::Manifest(3))
        );
        for stranger in [
            "notes.txt",
            "12.LOG",
            ".log",
            "MANIFEST-",
            "x.seg",
            "1.2.seg",
        ] {
            assert_eq!(parse_file_name(stranger), None, "{stranger}");
        }
    }
}
