//! Reading a commit log file from start to end.

use std::path::{Path, PathBuf};

use super::record::decode_record;
use super::{LogRecord, LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_OLDEST, LOG_HEADER_LEN, LOG_MAGIC};
use crate::error::{Error, IoContext, Result};
use crate::frame::{read_file_header, Frame, FrameReader, FILE_HEADER_LEN};

/// How a log file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailState {
    /// The last record ends at the end of the file.
    Clean,
    /// From `offset` on the file holds a prefix of a record, or zeros: an append a crash
    /// interrupted (or, for a live file, one still in progress).
    Incomplete {
        /// Where the incomplete record starts.
        offset: u64,
    },
    /// The record at `offset` is damaged.
    Corrupt {
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        detail: String,
        /// True when the damaged record is the last thing in the file (a torn write looks the
        /// same as damage there).
        at_tail: bool,
    },
}

impl TailState {
    /// Offset from which bytes are not part of a valid record, if any.
    pub fn bad_offset(&self) -> Option<u64> {
        match self {
            TailState::Clean => None,
            TailState::Incomplete { offset } | TailState::Corrupt { offset, .. } => Some(*offset),
        }
    }
}

/// One item of a scan: a record and the offset of its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogItem {
    /// Offset of the frame header in the file.
    pub offset: u64,
    /// The decoded record.
    pub record: LogRecord,
    /// Bytes of the frame's payload as stored (after compression).
    pub stored_bytes: u32,
    /// True when the record's body is stored snappy-compressed (format version 3).
    pub compressed: bool,
}

/// A whole commit log file read into memory.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    data: Vec<u8>,
}

/// Checks a log file's header; `Ok(None)` for a torn header, else the format version.
///
/// A header not copied in yet is torn too: a log file is preallocated before its header is
/// copied into it, first four bytes last (`crate::fs::MappedLogFile`), so a crash or a reader
/// in between finds 16 zeros, or zeros followed by the rest of a valid header.
pub(crate) fn check_log_header(path: &Path, data: &[u8]) -> Result<Option<u32>> {
    if let Some(head) = data.get(..FILE_HEADER_LEN) {
        let uncopied = head[..4] == [0; 4]
            && (head[4..].iter().all(|&b| b == 0)
                || (LOG_FORMAT_VERSION_OLDEST..=LOG_FORMAT_VERSION)
                    .any(|v| crate::frame::file_header(LOG_MAGIC, v)[4..] == head[4..]));
        if uncopied {
            return Ok(None);
        }
    }
    read_file_header(
        path,
        data,
        LOG_MAGIC,
        LOG_FORMAT_VERSION_OLDEST..=LOG_FORMAT_VERSION,
        "commit log",
    )
}

impl LogFile {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<LogFile> {
        let data = std::fs::read(path).at(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            data,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// Calls `f` on every valid record in order and returns how the file ends.
    ///
    /// A file too short to hold its header, whose bytes are a prefix of a valid header (or
    /// zeros), ends `Incomplete` at offset 0; a wrong magic or a newer format version is
    /// [`Error::Corruption`].
    pub fn scan(&self, mut f: impl FnMut(LogItem) -> Result<()>) -> Result<TailState> {
        let Some(version) = check_log_header(&self.path, &self.data)? else {
            return Ok(TailState::Incomplete { offset: 0 });
        };
        let mut frames = FrameReader::new(&self.data, LOG_HEADER_LEN).zero_length_ends(true);
        loop {
            match frames.next_frame() {
                Frame::Record { offset, payload } => f(self.decode(offset, payload, version)?)?,
                Frame::End => return Ok(TailState::Clean),
                Frame::Incomplete { offset } => {
                    return Ok(TailState::Incomplete {
                        offset: offset as u64,
                    })
                }
                Frame::Corrupt {
                    offset,
                    detail,
                    at_tail,
                } => {
                    return Ok(TailState::Corrupt {
                        offset: offset as u64,
                        detail,
                        at_tail,
                    })
                }
            }
        }
    }

    /// Every valid record and the tail state (for inspection and tests).
    pub fn records(&self) -> Result<(Vec<LogItem>, TailState)> {
        let mut out = Vec::new();
        let tail = self.scan(|item| {
            out.push(item);
            Ok(())
        })?;
        Ok((out, tail))
    }

    fn decode(&self, offset: usize, payload: &[u8], version: u32) -> Result<LogItem> {
        decode_item(&self.path, offset as u64, payload, version)
    }
}

/// Decodes the record in the frame at `offset` of the log file at `path`.
pub(crate) fn decode_item(
    path: &Path,
    offset: u64,
    payload: &[u8],
    version: u32,
) -> Result<LogItem> {
    let body = offset + crate::frame::FRAME_HEADER_LEN as u64;
    let record = decode_record(payload, version)
        .map_err(|(at, detail)| Error::corruption(path, body + at as u64, detail))?;
    Ok(LogItem {
        offset,
        record,
        stored_bytes: payload.len() as u32,
        compressed: super::record::is_compressed(payload, version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_whose_first_four_bytes_are_not_copied_yet_is_torn_and_nothing_else_is() {
        let path = Path::new("000007.log");
        let mut head = crate::frame::file_header(LOG_MAGIC, LOG_FORMAT_VERSION);
        head.extend_from_slice(&[0; 64]);
        assert_eq!(
            check_log_header(path, &head).unwrap(),
            Some(LOG_FORMAT_VERSION)
        );
        head[..4].fill(0);
        assert_eq!(check_log_header(path, &head).unwrap(), None);
        head[..FILE_HEADER_LEN].fill(0);
        assert_eq!(check_log_header(path, &head).unwrap(), None);
        // Zeros followed by anything but a valid header's rest: a foreign file.
        head[9] = 1;
        assert!(matches!(
            check_log_header(path, &head),
            Err(Error::Corruption { offset: 0, .. })
        ));
    }
}
