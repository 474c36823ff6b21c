//! Reading a log file from an offset, in large chunks, while it may still grow.
//!
//! The change feed reads records in order from files that the group-commit leader is still
//! appending to, and the follower does so from another process. Both need the same thing: the
//! next complete record, or "nothing more yet" when the file ends at a frame boundary or in the
//! middle of a frame that is still being written (`FORMAT.md`, "What a reader finds").

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::reader::{check_log_header, decode_item};
use super::LogItem;
use crate::coding::Reader;
use crate::error::{Error, IoContext, Result};
use crate::frame::{Frame, FrameReader, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use crate::key::SeqNo;

/// Bytes read from the file at a time.
const CHUNK_BYTES: usize = 256 << 10;

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
    chunk: Box<[u8]>,
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
            chunk: vec![0; CHUNK_BYTES].into_boxed_slice(),
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
    /// A damaged frame is [`Error::Corruption`], except a payload checksum mismatch in a frame
    /// that ends exactly at the current end of the file: a writer may still be appending it, so
    /// it is `Pending` (recovery decides about it if the writer crashed).
    pub fn next_record(&mut self, window: RecordWindow) -> Result<NextRecord> {
        let Some(version) = self.read_header()? else {
            return Ok(NextRecord::Pending { offset: 0 });
        };
        loop {
            let frame = FrameReader::new(&self.buf, self.pos).next_frame();
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
                    if !self.fill()? {
                        return Ok(self.pending());
                    }
                }
                Frame::Corrupt {
                    at_tail: true,
                    offset,
                    ..
                } if offset == self.pos => {
                    if !self.fill()? {
                        return Ok(self.pending());
                    }
                }
                Frame::Corrupt { offset, detail, .. } => {
                    let at = self.buf_offset + offset as u64;
                    return Err(Error::corruption(&self.path, at, detail));
                }
            }
        }
    }

    fn pending(&self) -> NextRecord {
        NextRecord::Pending {
            offset: self.offset(),
        }
    }

    /// Reads and checks the file header once; `None` while it is not all there.
    fn read_header(&mut self) -> Result<Option<u32>> {
        if let Some(v) = self.version {
            return Ok(Some(v));
        }
        while self.buf.len() < FILE_HEADER_LEN && self.fill()? {}
        let header = &self.buf[..self.buf.len().min(FILE_HEADER_LEN)];
        self.version = check_log_header(&self.path, header)?;
        if self.version.is_some() {
            self.pos = FILE_HEADER_LEN;
        }
        Ok(self.version)
    }

    /// Reads up to one more chunk; false when the file has no more bytes now.
    fn fill(&mut self) -> Result<bool> {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        let n = self.file.read(&mut self.chunk).at(&self.path)?;
        self.buf.extend_from_slice(&self.chunk[..n]);
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

    #[test]
    fn a_growing_file_is_read_record_by_record_and_a_half_frame_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(&crate::fs::OsFileSystem, dir.path(), 1).unwrap();
        let path = crate::files::log_path(dir.path(), 1);
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
}
