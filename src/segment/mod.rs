//! Segments: immutable, sorted files of internal-key/value entries.
//!
//! A segment is written once, front to back, by a [`SegmentWriter`] (a flush or a
//! compaction) and then only read, through a memory map, by a [`Segment`]. The file is
//!
//! ```text
//! [data block 0][trailer] ... [data block n-1][trailer]
//! [filter block][trailer] [index block][trailer] [properties block][trailer]
//! [footer: 64 bytes, ends with the magic "ALVMSEG1"]
//! ```
//!
//! The byte-level format is specified in `FORMAT.md` (the segment section of
//! `FORMAT.md`) and implemented in [`format`], `block.rs` and `filter.rs`.
//!
//! # Invariants
//! - Entries are strictly increasing by [`compare_internal`](crate::key::compare_internal).
//! - Every block is followed by a trailer whose CRC-32 covers its stored bytes and its
//!   compression byte; every read verifies it.
//! - A segment file is never modified after [`SegmentWriter::finish`] returns; it is only
//!   deleted. The memory map in [`Segment`] relies on this.

pub mod block;
mod cache;
pub(crate) mod filter;
pub mod format;
mod index;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use cache::BlockCache;
pub use format::{BlockHandle, Properties};
pub use reader::{Segment, SegmentIter};
pub use writer::SegmentWriter;

use crate::key::SeqNo;

/// Identifies a segment file; its name is derived from it.
pub type SegmentId = u64;

/// What the manifest records about a segment: its size, key range and sequence range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Size of the file.
    pub size_bytes: u64,
    /// The smallest internal key (encoded).
    pub smallest: Vec<u8>,
    /// The largest internal key (encoded).
    pub largest: Vec<u8>,
    /// The smallest sequence number of any entry.
    pub seqno_min: SeqNo,
    /// The largest sequence number of any entry.
    pub seqno_max: SeqNo,
    /// Number of entries.
    pub entry_count: u64,
    /// Number of tombstones.
    pub tombstone_count: u64,
}

impl SegmentMeta {
    fn from_properties(props: &Properties, size_bytes: u64) -> Self {
        SegmentMeta {
            size_bytes,
            smallest: props.smallest.clone(),
            largest: props.largest.clone(),
            seqno_min: props.seqno_min,
            seqno_max: props.seqno_max,
            entry_count: props.entry_count,
            tombstone_count: props.tombstone_count,
        }
    }
}
