//! Appending to a commit log file.

use std::path::{Path, PathBuf};

use super::{LOG_FORMAT_VERSION, LOG_HEADER_LEN, LOG_MAGIC};
use crate::error::{IoContext, Result};
use crate::files;
use crate::fs::{FileSystem, WritableFile, WritebackHints};

/// An open commit log file that only grows.
///
/// # Concurrency
/// Not synchronised: the group-commit leader is the only writer (it holds the database's log
/// mutex while appending).
#[derive(Debug)]
pub struct LogWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    number: u64,
    size_bytes: u64,
    /// So the `fdatasync` at a memtable rotation waits for about a MiB, not a whole memtable's
    /// log (hundreds of milliseconds for 64 MiB on a plain disk).
    hints: WritebackHints,
}

impl LogWriter {
    /// Creates log file `number` in `dir`, writes and syncs its header, and syncs the directory
    /// so the file's existence is durable before any record depends on it.
    pub fn create(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<LogWriter> {
        let path = files::log_path(dir, number);
        let mut file = fs.create_log(&path).at(&path)?;
        let started = file
            .write_all(&file_header())
            .and_then(|()| file.sync_data());
        if let Err(e) = started.at(&path).and_then(|()| files::sync_dir(fs, dir)) {
            // A half-made file that is not the newest would read as corruption at open.
            let _ = fs.remove_file(&path);
            return Err(e);
        }
        let size_bytes = LOG_HEADER_LEN as u64;
        Ok(LogWriter {
            file,
            path,
            number,
            size_bytes,
            hints: WritebackHints::from(size_bytes),
        })
    }

    /// Appends already framed bytes with one `write` call.
    pub fn append(&mut self, frames: &[u8]) -> Result<()> {
        self.file.write_all(frames).at(&self.path)?;
        self.size_bytes += frames.len() as u64;
        self.hints.wrote(&mut *self.file, self.size_bytes);
        Ok(())
    }

    /// Cuts off whatever a failed [`LogWriter::append`] left behind, so the file ends at the
    /// last complete record again and later appends follow it.
    pub fn rollback(&mut self, fs: &dyn FileSystem) -> Result<()> {
        match self.file.cut_back(self.size_bytes) {
            Some(done) => done.at(&self.path),
            None => fs.truncate(&self.path, self.size_bytes).at(&self.path),
        }
    }

    /// `fdatasync`s the file.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().at(&self.path)
    }

    /// Makes the file durable as complete, at exactly the bytes written (a preallocated
    /// tail goes: [`crate::fs::WritableFile::finish`]). Nothing is appended afterwards.
    pub fn finish(&mut self) -> Result<()> {
        self.file.finish().at(&self.path)
    }

    /// The file's number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes written so far, header included.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

fn file_header() -> Vec<u8> {
    crate::frame::file_header(LOG_MAGIC, LOG_FORMAT_VERSION)
}
