//! The commit log: append-only log files holding one record per batch.
//!
//! Every batch is appended here before it reaches the memtable, so the log is both the
//! recovery source and the change feed. A log file starts with a 16-byte file header; the rest
//! is a sequence of frames (see [`crate::frame`]), each carrying one [`LogRecord`].
//! `FORMAT.md`, "Commit log files", documents every byte.

mod incremental;
mod reader;
mod record;
mod writer;

pub use incremental::{LogFileReader, NextRecord, RecordWindow};
pub use reader::{LogFile, LogItem, TailState};
pub use record::{
    decode_record, encode_record, now_us, record_header, seal_marker_frame, BodyEncoding,
    LogRecord, RecordAck, RecordBody, RECORD_HEADER_LEN,
};
pub use writer::LogWriter;

/// The first 8 bytes of every commit log file.
pub const LOG_MAGIC: [u8; 8] = *b"ALVMLOG1";
/// The commit log format version this build writes. It reads this one and every earlier one
/// (`FORMAT.md`, "Version changes").
pub const LOG_FORMAT_VERSION: u32 = 4;
/// The first commit log format version with seal markers (`LogRecord::is_seal_marker`).
pub const LOG_FORMAT_VERSION_SEAL_MARKERS: u32 = 4;
/// The oldest commit log format version this build reads.
pub const LOG_FORMAT_VERSION_OLDEST: u32 = 1;
/// Bytes of the file header: magic, version, checksum.
pub const LOG_HEADER_LEN: usize = crate::frame::FILE_HEADER_LEN;
