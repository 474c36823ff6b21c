//! Appending to a commit log file.

use std::path::{Path, PathBuf};

use super::{seal_marker_frame, LOG_FORMAT_VERSION, LOG_HEADER_LEN, LOG_MAGIC};
use crate::error::{IoContext, Result};
use crate::files;
use crate::fs::{FileSystem, WritableFile};

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
    /// [`LogWriter::seal`] ran: the seal marker is written and the file cut to its length.
    sealed: bool,
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
            sealed: false,
        })
    }

    /// Appends already framed bytes with one `write` call.
    pub fn append(&mut self, frames: &[u8]) -> Result<()> {
        self.file.write_all(frames).at(&self.path)?;
        self.size_bytes += frames.len() as u64;
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

    /// Appends the seal marker for `next_seqno`, the sequence number the next file starts at
    /// (one framed record of no operations and no acknowledgements, `FORMAT.md` "Seal
    /// marker"), and ends the file at exactly the bytes
    /// written (a preallocated tail goes: [`crate::fs::WritableFile::seal`]), without syncing
    /// it. Nothing is appended afterwards; sealing again changes nothing. A marker that cannot
    /// be appended (a full disk) is cut back and left out: the file is then complete but
    /// reads as possibly cut short, which only weakens how recovery tells a missing log file
    /// from a cut one.
    pub fn seal(&mut self, fs: &dyn FileSystem, next_seqno: u64) -> Result<()> {
        if self.sealed {
            return Ok(());
        }
        if self.append(&seal_marker_frame(next_seqno)).is_err() {
            self.rollback(fs)?;
        }
        self.file.seal().at(&self.path)?;
        self.sealed = true;
        Ok(())
    }

    /// [`LogWriter::seal`], then [`LogWriter::sync`].
    pub fn finish(&mut self, fs: &dyn FileSystem, next_seqno: u64) -> Result<()> {
        self.seal(fs, next_seqno)?;
        self.sync()
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
