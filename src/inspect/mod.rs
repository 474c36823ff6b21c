//! Inspection: decoders that turn every file kind into plain records.
//!
//! The `alluvium` tool prints what these functions return and the tests check the same
//! records, so what an operator sees is what the library decoded (LevelDB's `DumpFile`,
//! Pebble's `tool/`). Every function here only reads: none takes the directory's `LOCK` or
//! writes a byte, so they also work on a database another process has open. On a live
//! database each result is a view of one moment, and a file can vanish (a flush deletes log
//! files, an open replaces the manifest) between the listing and the read.
//!
//! | file kind | records |
//! |-----------|---------|
//! | segment | [`segment_entries`], [`segment_stats`] |
//! | commit log | [`log_files`], [`read_log`] |
//! | manifest, `CURRENT` | [`current_manifest`], [`read_manifest_edits`], [`levels`] |
//! | change-feed subscriptions | [`subscriptions`] |
//! | all of them | [`verify`]: every checksum and structural invariant, as a list of [`Problem`]s |
//!
//! Byte layouts are in `FORMAT.md`; these decoders reuse the readers the database itself uses.

mod commit_log;
mod feed;
mod frames;
mod manifest;
mod segment;
mod time;
mod verify;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub use commit_log::{log_files, read_log, LogDump};
pub use feed::{subscriptions, SubscriptionView, Subscriptions};
pub use manifest::{current_manifest, levels, read_manifest_edits, EditAt, Levels, ManifestDump};
pub use segment::{
    segment_entries, segment_stats, DataBlockSizes, SegmentEntries, SegmentEntry, SegmentStats,
};
pub use time::utc_time;
pub use verify::{verify, Problem, Progress, Severity, VerifyReport};

use crate::commit_log::LOG_MAGIC;
use crate::error::{IoContext, Result};
use crate::files::{self, FileKind};
use crate::key::{self, SeqNo, ValueKind};
use crate::manifest::MANIFEST_MAGIC;

/// An encoded internal key split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedKey {
    /// The user key.
    pub user_key: Vec<u8>,
    /// The sequence number of this version of the key.
    pub seqno: SeqNo,
    /// Put or delete.
    pub kind: ValueKind,
}

impl DecodedKey {
    /// Splits an encoded internal key; `None` when it is too short or its kind is unknown.
    pub fn parse(ikey: &[u8]) -> Option<DecodedKey> {
        let parsed = key::parse_internal_key(ikey)?;
        Some(DecodedKey {
            user_key: parsed.user_key.to_vec(),
            seqno: parsed.seqno,
            kind: parsed.kind,
        })
    }
}

/// The kinds of file the decoders understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A segment (`NNNNNN.seg`).
    Segment,
    /// A commit log file (`NNNNNN.log`).
    CommitLog,
    /// A manifest (`MANIFEST-NNNNNN`).
    Manifest,
    /// `CURRENT`.
    Current,
    /// `IDENTITY`, the database id.
    Identity,
}

/// What kind of alluvium file `path` is: by its magic number first (a renamed copy is still
/// recognised), then by its name (a file torn before its magic was written). `None` for
/// anything else.
pub fn identify(path: &Path) -> Result<Option<FileType>> {
    let (head, tail) = magic_bytes(path)?;
    if head == LOG_MAGIC {
        return Ok(Some(FileType::CommitLog));
    }
    if head == MANIFEST_MAGIC {
        return Ok(Some(FileType::Manifest));
    }
    if tail == *b"ALVMSEG1" {
        return Ok(Some(FileType::Segment));
    }
    let name = path.file_name().and_then(|n| n.to_str());
    if name == Some(crate::identity::IDENTITY) {
        return Ok(Some(FileType::Identity));
    }
    Ok(match name.and_then(files::parse_file_name) {
        Some(FileKind::Log(_)) => Some(FileType::CommitLog),
        Some(FileKind::Segment(_)) => Some(FileType::Segment),
        Some(FileKind::Manifest(_)) => Some(FileType::Manifest),
        Some(FileKind::Current) => Some(FileType::Current),
        _ => None,
    })
}

/// The first and the last 8 bytes of a file (zeros where it is shorter).
fn magic_bytes(path: &Path) -> Result<([u8; 8], [u8; 8])> {
    let mut file = std::fs::File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let (mut head, mut tail) = ([0u8; 8], [0u8; 8]);
    if len >= 8 {
        file.read_exact(&mut head).at(path)?;
        file.seek(SeekFrom::End(-8)).at(path)?;
        file.read_exact(&mut tail).at(path)?;
    }
    Ok((head, tail))
}

/// The number in an alluvium file name (`000007.seg` is 7), or 0.
fn file_number(path: &Path) -> u64 {
    let name = path.file_name().and_then(|n| n.to_str());
    match name.and_then(files::parse_file_name) {
        Some(
            FileKind::Log(n) | FileKind::Segment(n) | FileKind::Manifest(n) | FileKind::Temp(n),
        ) => n,
        _ => 0,
    }
}
