//! Reading a log file from an offset, in large chunks, while it may still grow.
//!
//! The change feed reads records in order from files that the group-commit leader is still
//! appending to, and the follower does so from another process. Both need the same thing: the
//! next complete record, or "nothing more yet" when the file ends at a frame boundary or in the
//! middle of a frame that is still being written (`FORMAT.md`, "What a reader finds").

use std::fs::File;
use std::path::{Path, PathBuf};

use super::reader::{check_log_header, decode_item};
use super::LogItem;
use crate::coding::Reader;
use crate::error::{Error, Result};
use crate::files::{self, FileKind};
use crate::frame::{Frame, FrameReader, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use crate::key::SeqNo;

/// Bytes read from the file at a time, at most.
const CHUNK_BYTES: usize = 256 << 10;

/// Bytes of the first read after `Pending`.
const READ_MIN_BYTES: usize = 4 << 10;

/// What [`LogFileReader::next_record`] found.
#[derive(Debug)]
pub enum NextRecord {
    /// A complete, checked record.
    Record(LogItem),
    /// Nothing more for now: the file ends at a frame boundary, inside a frame still being
    /// written, or at a record the caller may not see yet. `offset` is where reading resumes.
    Pending {
        /// File offset of the next frame.
        offset: u64,
    },
}

/// Which records [`LogFileReader::next_record`] returns.
#[derive(Debug, Clone, Copy)]
pub struct RecordWindow {
    /// Records whose last sequence number is below this are skipped without being decoded.
    pub min_seqno: SeqNo,
    /// A record whose first sequence number is above this is left unread (`Pending`).
    pub max_first_seqno: SeqNo,
}

impl RecordWindow {
    /// Every record.
    pub const ALL: RecordWindow = RecordWindow {
        min_seqno: 0,
        max_first_seqno: SeqNo::MAX,
    };
}

/// Reads the records of one log file in order, from its header or from a frame offset.
///
/// # Invariants
/// `buf` holds the file bytes `[buf_offset, buf_offset + buf.len())`, and `pos` is the offset
/// within `buf` of the next frame to read. Bytes before `pos` have been returned.
pub struct LogFileReader {
    file: File,
    path: PathBuf,
    version: Option<u32>,
    buf: Vec<u8>,
    buf_offset: u64,
    pos: usize,
    /// Bytes the next [`LogFileReader::fill`] asks for.
    read_size: usize,
}

impl std::fmt::Debug for LogFileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFileReader")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

impl LogFileReader {
    /// Opens the log file at `path`; `Ok(None)` when it does not exist (any more).
    pub fn open(path: &Path) -> Result<Option<LogFileReader>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(Some(LogFileReader {
            file,
            path: path.to_path_buf(),
            version: None,
            buf: Vec::new(),
            buf_offset: 0,
            pos: 0,
            read_size: READ_MIN_BYTES,
        }))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File offset of the next frame to read.
    pub fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// The next record inside `window`, or `Pending` when there is none yet.
    ///
    /// The newest log file may still be being written, through a memory map (`FORMAT.md`,
    /// "What a reader finds"): it can end in zeros, and a frame being copied can be seen
    /// half there. So bytes after the last complete frame are never kept from one call to the
    /// next, and a damaged frame is read again once; if it is still damaged it is
    /// [`Error::Corruption`] when a newer log file exists (this one is then finished: the
    /// writer finishes a file before it creates the next) and `Pending` otherwise.
    pub fn next_record(&mut self, window: RecordWindow) -> Result<NextRecord> {
        let Some(version) = self.read_header()? else {
            return Ok(NextRecord::Pending { offset: 0 });
        };
        // Whether the bytes after `pos` were read during this call, and whether a newer log
        // file was seen to exist.
        let (mut fresh, mut finished) = (false, false);
        loop {
            let frame = FrameReader::new(&self.buf, self.pos)
                .zero_length_ends(true)
                .next_frame();
            match frame {
                Frame::Record { offset, payload } => {
                    let next = offset + FRAME_HEADER_LEN + payload.len();
                    match window_check(payload, window) {
                        Window::Skip => self.pos = next,
                        Window::Later => return Ok(self.pending()),
                        Window::Take => {
                            let at = self.buf_offset + offset as u64;
                            let item = decode_item(&self.path, at, payload, version)?;
                            self.pos = next;
                            return Ok(NextRecord::Record(item));
                        }
                    }
                }
                Frame::End | Frame::Incomplete { .. } => {
                    // Zeros where the next frame would start: nothing written there yet.
                    if fresh && self.zero_header() {
                        return Ok(self.pending());
                    }
                    if !fresh {
                        fresh = true;
                        self.buf.truncate(self.pos);
                    }
                    if !self.fill()? {
                        return Ok(self.pending());
                    }
                }
                Frame::Corrupt { offset, detail, .. } => {
                    if fresh && !finished {
                        if !self.newer_log_exists()? {
                            return Ok(self.pending());
                        }
                        // Finished now: whatever was being copied is complete. Read it again.
                        finished = true;
                        fresh = false;
                    }
                    if !fresh {
                        fresh = true;
                        self.buf.truncate(self.pos);
                        self.fill()?;
                        continue;
                    }
                    let at = self.buf_offset + offset as u64;
                    return Err(Error::corruption(&self.path, at, detail));
                }
            }
        }
    }

    /// `Pending` at the next frame, forgetting the bytes after it (they may change).
    fn pending(&mut self) -> NextRecord {
        self.forget_unread();
        NextRecord::Pending {
            offset: self.offset(),
        }
    }

    /// Drops the buffered bytes after `pos`, so they are read from the file again.
    fn forget_unread(&mut self) {
        self.buf.truncate(self.pos);
        self.read_size = READ_MIN_BYTES;
    }

    /// True when a zero length field is buffered at `pos`: nothing (complete) written there.
    fn zero_header(&self) -> bool {
        self.buf.get(self.pos..self.pos + 4) == Some(&[0u8; 4][..])
    }

    /// True when the directory holds a log file numbered after this one.
    fn newer_log_exists(&self) -> Result<bool> {
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(FileKind::Log(number)) = files::parse_file_name(name) else {
            return Ok(false);
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        Ok(files::log_numbers(dir)?.into_iter().any(|n| n > number))
    }

    /// Reads and checks the file header once; `None` while it is not all there.
    fn read_header(&mut self) -> Result<Option<u32>> {
        if let Some(v) = self.version {
            return Ok(Some(v));
        }
        self.forget_unread();
        while self.buf.len() < FILE_HEADER_LEN && self.fill()? {}
        let header = &self.buf[..self.buf.len().min(FILE_HEADER_LEN)];
        self.version = check_log_header(&self.path, header)?;
        if self.version.is_some() {
            self.pos = FILE_HEADER_LEN;
        }
        Ok(self.version)
    }

    /// Reads more of the file after the buffered bytes; false when it has no more now. Reads
    /// start small after `Pending` (a follower at the end of a preallocated file would
    /// otherwise read a window of zeros each time it looks) and double up to
    /// [`CHUNK_BYTES`].
    fn fill(&mut self) -> Result<bool> {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        // Read straight into the buffer's new tail, then cut it to what arrived.
        let have = self.buf.len();
        let at = self.buf_offset + have as u64;
        self.buf.resize(have + self.read_size, 0);
        let n = match crate::fs::read_at(&self.file, &mut self.buf[have..], at) {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(have);
                return Err(Error::io(&self.path, e));
            }
        };
        self.buf.truncate(have + n);
        self.read_size = (self.read_size * 2).min(CHUNK_BYTES);
        Ok(n > 0)
    }
}

enum Window {
    Skip,
    Take,
    Later,
}

/// Places a record payload against `window` by its first 12 bytes, without decoding it.
fn window_check(payload: &[u8], window: RecordWindow) -> Window {
    let mut r = Reader::new(payload);
    let (Some(first), Some(count)) = (r.u64(), r.u32()) else {
        return Window::Take; // too short: decoding reports the corruption
    };
    let last = first.saturating_add(u64::from(count)).saturating_sub(1);
    if last < window.min_seqno {
        Window::Skip
    } else if first > window.max_first_seqno {
        Window::Later
    } else {
        Window::Take
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::WriteBatch;
    use crate::commit_log::{encode_record, LogWriter, RecordBody};
    use crate::frame::encode_frame;

    fn frame_for(first: SeqNo, key: &str) -> Vec<u8> {
        let mut batch = WriteBatch::new();
        batch.put(key, "v");
        let (mut payload, mut frame) = (Vec::new(), Vec::new());
        let body = RecordBody::encode(&batch, &[], crate::Compression::Snappy);
        encode_record(&mut payload, first, 0, &body);
        encode_frame(&mut frame, &payload);
        frame
    }

    /// Log file 1 of a fresh directory, its writer and its path.
    fn new_log() -> (tempfile::TempDir, LogWriter, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::create(&crate::fs::OsFileSystem, dir.path(), 1).unwrap();
        let path = crate::files::log_path(dir.path(), 1);
        (dir, w, path)
    }

    #[test]
    fn a_growing_file_is_read_record_by_record_and_a_half_frame_is_pending() {
        let (_dir, mut w, path) = new_log();
        let mut r = LogFileReader::open(&path).unwrap().unwrap();
        assert!(matches!(
            r.next_record(RecordWindow::ALL).unwrap(),
            NextRecord::Pending { offset: 16 }
        ));
        let f1 = frame_for(1, "a");
        w.append(&f1).unwrap();
        let f2 = frame_for(2, "b");
        w.append(&f2[..5]).unwrap();
        let got = r.next_record(RecordWindow::ALL).unwrap();
        assert!(matches!(got, NextRecord::Record(ref i) if i.record.first_seqno == 1));
        assert!(matches!(
            r.next_record(RecordWindow::ALL).unwrap(),
            NextRecord::Pending { .. }
        ));
        w.append(&f2[5..]).unwrap();
        let hidden = RecordWindow {
            min_seqno: 0,
            max_first_seqno: 1,
        };
        assert!(matches!(
            r.next_record(hidden).unwrap(),
            NextRecord::Pending { .. }
        ));
        let got = r.next_record(RecordWindow::ALL).unwrap();
        assert!(matches!(got, NextRecord::Record(ref i) if i.record.first_seqno == 2));
    }

    fn seqno_of(got: NextRecord) -> Option<SeqNo> {
        match got {
            NextRecord::Record(item) => Some(item.record.first_seqno),
            NextRecord::Pending { .. } => None,
        }
    }

    /// Appends `bytes` to the file at `at` without going through the writer (a copy the
    /// writer is in the middle of).
    fn poke(path: &Path, at: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(bytes, at).unwrap();
    }

    #[test]
    fn a_reader_at_a_zero_tail_sees_each_later_append_and_a_zero_length_as_not_yet() {
        let (_dir, mut w, path) = new_log();
        let mut r = LogFileReader::open(&path).unwrap().unwrap();
        for n in 1..=3 {
            w.append(&frame_for(n, "k")).unwrap();
            // The reader has read past the record into the zeros after it last time: it must
            // read them again rather than keep them.
            assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), Some(n));
            assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), None);
        }
        // A copy in progress: everything but the first frame's length is there.
        let f4 = frame_for(4, "k");
        let at = w.size_bytes();
        poke(&path, at + 4, &f4[4..]);
        assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), None);
        poke(&path, at, &f4[..4]);
        assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), Some(4));
    }

    #[test]
    fn a_damaged_frame_waits_in_the_newest_file_and_is_corruption_once_a_newer_file_exists() {
        let (dir, mut w, path) = new_log();
        w.append(&frame_for(1, "a")).unwrap();
        let mut f2 = frame_for(2, "b");
        let last = f2.len() - 1;
        f2[last] ^= 0x40; // payload checksum mismatch
        let at = w.size_bytes();
        w.append(&f2).unwrap();
        let mut r = LogFileReader::open(&path).unwrap().unwrap();
        assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), Some(1));
        assert_eq!(seqno_of(r.next_record(RecordWindow::ALL).unwrap()), None);
        w.finish(&crate::fs::OsFileSystem, 3).unwrap();
        drop(w);
        LogWriter::create(&crate::fs::OsFileSystem, dir.path(), 2).unwrap();
        match r.next_record(RecordWindow::ALL) {
            Err(Error::Corruption {
                path: p, offset, ..
            }) => {
                assert_eq!((p, offset), (path, at));
            }
            other => panic!("expected corruption at {at}, got {other:?}"),
        }
    }
}
