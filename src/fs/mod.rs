//! The file layer: every file alluvium *changes* goes through [`FileSystem`].
//!
//! Reads go straight to the operating system (segments are memory-mapped, log files and
//! manifests read whole); creations, appends, syncs, renames, truncations and removals go
//! through this interface so that tests can inject faults ([`FaultInjectingFs`]): a failing
//! `fsync`, a full disk, a crash at the k-th operation, or a power loss that drops everything
//! not yet synced. [`OsFileSystem`] is the default.

mod fault;
#[cfg(target_os = "linux")]
mod mapped;

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

pub use fault::{FaultInjectingFs, FaultKind};
#[cfg(target_os = "linux")]
use mapped::MappedLogFile;

/// A file opened for appending.
pub trait WritableFile: Send + fmt::Debug {
    /// Appends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the written bytes and the file length durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Asks the operating system to start writing `len` bytes at `offset` to the device
    /// without waiting for them. Only a hint that spreads writeback out, so that a later
    /// [`WritableFile::sync_data`] has little left to wait for; it makes nothing durable.
    fn start_writeback(&mut self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
    /// Ends the file at exactly the bytes written (a file that preallocates gives back what
    /// it did not use) without making anything durable: a later
    /// [`WritableFile::sync_data`] does that. Nothing is written to the file afterwards.
    fn seal(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Makes the file durable as complete: [`WritableFile::seal`], then
    /// [`WritableFile::sync_data`].
    fn finish(&mut self) -> io::Result<()> {
        self.seal()?;
        self.sync_data()
    }
    /// Cuts off what a failed [`WritableFile::write_all`] left after the first `len` bytes,
    /// when the file can do that itself; `None` leaves it to [`FileSystem::truncate`].
    fn cut_back(&mut self, len: u64) -> Option<io::Result<()>> {
        let _ = len;
        None
    }
}

/// The operations alluvium uses to change files.
///
/// # Concurrency
/// Implementations are shared by every thread of a database.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `path`, failing if it exists, for appending (every write goes to the end, also
    /// after a [`FileSystem::truncate`]).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Creates a commit log file, failing if it exists. Log files are only appended to, read
    /// by frames, and finished with [`WritableFile::finish`], so an implementation may
    /// preallocate them ([`OsFileSystem`] writes them through a memory map on Linux).
    fn create_log(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.create_new(path)
    }
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Renames `from` over `to`, atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Cuts the file at `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

#[derive(Debug)]
struct OsFile(File);

impl WritableFile for OsFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn start_writeback(&mut self, offset: u64, len: u64) {
        start_writeback(&self.0, offset, len);
    }
}

/// Starts writeback of `len` bytes at `offset` of `file` (`sync_file_range`, Linux only).
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for
        // as long as `file` lives. An error (say EIO) is left for the next fdatasync, which
        // reports it, so ignoring the result here loses nothing.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

impl FileSystem for OsFileSystem {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        // Append mode: after a failed write is cut off by `truncate`, the next write lands at
        // the new end instead of leaving a hole.
        let file = File::options().append(true).create_new(true).open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    #[cfg(target_os = "linux")]
    fn create_log(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        match MappedLogFile::create_new(path)? {
            Some(mapped) => Ok(Box::new(mapped)),
            None => self.create_new(path),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = File::options().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
}

/// Reads up to `buf.len()` bytes at `offset` of `file` without moving its position (`pread`),
/// retrying interrupted reads; 0 at the end of the file.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, buf, offset);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, buf, offset);
        match read {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fills `buf` from `offset` of `file` ([`read_at`] until full; the file ending first is
/// `UnexpectedEof`).
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Bytes between two writeback hints ([`WritebackHints`]).
pub const WRITEBACK_EVERY_BYTES: u64 = 1 << 20;

/// The page size writeback works in (4 KiB on every platform alluvium runs on; a larger page
/// only makes a hint end inside a page, which costs a page written twice, nothing more).
const PAGE_BYTES: u64 = 4096;

/// Asks the OS to start writing a growing file out every [`WRITEBACK_EVERY_BYTES`]
/// ([`WritableFile::start_writeback`]), so the `fdatasync` that ends it (a log at rotation, a
/// segment when finished) waits for the last stretch only, not for the whole file.
#[derive(Debug)]
pub struct WritebackHints {
    hinted: u64,
}

impl WritebackHints {
    /// For a file whose first `from` bytes need no hint.
    pub fn from(from: u64) -> Self {
        WritebackHints { hinted: from }
    }

    /// Called after each write, with the file's size now. Only whole pages are hinted: a
    /// partly written last page written back now would be dirtied again by the next write
    /// and written twice (about 4 KiB a MiB of file, 1.5 MB over a 5M-overwrite run).
    pub fn wrote(&mut self, file: &mut dyn WritableFile, size: u64) {
        let whole_pages = size & !(PAGE_BYTES - 1);
        let unhinted = whole_pages.saturating_sub(self.hinted);
        if unhinted >= WRITEBACK_EVERY_BYTES {
            file.start_writeback(self.hinted, unhinted);
            self.hinted = whole_pages;
        }
    }
}

/// Adapts a [`WritableFile`] to [`std::io::Write`], for buffered writers, with
/// [`WritebackHints`].
#[derive(Debug)]
pub struct WriteAdapter {
    file: Box<dyn WritableFile>,
    written: u64,
    hints: WritebackHints,
}

impl WriteAdapter {
    /// Wraps `file`, empty.
    pub fn new(file: Box<dyn WritableFile>) -> Self {
        WriteAdapter {
            file,
            written: 0,
            hints: WritebackHints::from(0),
        }
    }

    /// The wrapped file.
    pub fn file_mut(&mut self) -> &mut dyn WritableFile {
        &mut *self.file
    }
}

impl Write for WriteAdapter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        self.hints.wrote(&mut *self.file, self.written);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the writeback hints it is given.
    #[derive(Debug, Default)]
    struct Recorder {
        hints: Vec<(u64, u64)>,
    }

    impl WritableFile for Recorder {
        fn write_all(&mut self, _buf: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn start_writeback(&mut self, offset: u64, len: u64) {
            self.hints.push((offset, len));
        }
    }

    #[test]
    fn writeback_hints_cover_whole_pages_back_to_back() {
        let mut file = Recorder::default();
        let mut hints = WritebackHints::from(0);
        let mut size = 0;
        while size < 5 * WRITEBACK_EVERY_BYTES {
            size += 1000; // never a page multiple where a hint falls due
            hints.wrote(&mut file, size);
        }
        assert!(file.hints.len() >= 4, "{:?}", file.hints);
        let mut next = 0;
        for &(offset, len) in &file.hints {
            assert_eq!(offset, next, "back to back: {:?}", file.hints);
            assert_eq!(
                (offset + len) % PAGE_BYTES,
                0,
                "whole pages: {:?}",
                file.hints
            );
            assert!(len >= WRITEBACK_EVERY_BYTES);
            next = offset + len;
        }
    }
}
