//! Entry points for the fuzz targets in `fuzz/` (see `TESTING.md`, "Fuzzing").
//!
//! Each function feeds arbitrary bytes to one decoder, the same code the database reads its
//! files with, and drives everything the decoder hands back, so the fuzzer can reach the
//! bounds checks behind it. None of them may panic, whatever the bytes; they return what the
//! decoder returned so that a test can check a valid input decodes.
//!
//! Not part of the stable API: hidden from the docs and free to change with the decoders.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crate::commit_log::{
    decode_record, encode_record, LogFile, LogFileReader, NextRecord, RecordBody,
};
use crate::commit_log::{RecordWindow, TailState, LOG_FORMAT_VERSION};
use crate::error::Result;
use crate::key::{self, SEQNO_MAX};
use crate::manifest::VersionEdit;
use crate::options::Compression;
use crate::segment::block::{BlockBuilder, BlockView};
use crate::segment::{filter, Segment};

/// What a decoder made of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The bytes decoded into this many items (entries, operations, records, edits).
    Decoded(usize),
    /// The decoder rejected the bytes, as it should reject anything it did not write.
    Rejected(String),
    /// The decoder contradicted itself: it accepted bytes and then read them two ways. The
    /// fuzz targets panic on this.
    Inconsistent(String),
}

impl Verdict {
    fn from_result<E: std::fmt::Display>(r: std::result::Result<usize, E>) -> Verdict {
        match r {
            Ok(n) => Verdict::Decoded(n),
            Err(e) => Verdict::Rejected(e.to_string()),
        }
    }
}

/// Decodes `data` as the uncompressed contents of a data or index block: every entry, then a
/// seek to a few keys. A block whose keys come out strictly increasing must be rebuilt to the
/// same entries by [`BlockBuilder`], so a decoder that accepts bytes it misreads is caught too.
pub fn block(data: &[u8]) -> Verdict {
    let decoded = BlockView::parse(data).and_then(|v| Ok((v, v.entries()?)));
    let (view, entries) = match decoded {
        Ok(d) => d,
        Err(m) => return Verdict::Rejected(m.0),
    };
    let probes = entries.iter().map(|(k, _)| k.as_slice()).take(4);
    for target in probes.chain([&b""[..], b"\xff\xff"]) {
        // Arbitrary keys may not be internal keys: both comparators must cope.
        let _ = view.seek(target, |a, b| a.cmp(b));
        let _ = view.seek(target, key::compare_internal);
    }
    let sorted = entries.windows(2).all(|w| w[0].0 < w[1].0);
    if sorted && rebuilt(&entries).as_ref() != Some(&entries) {
        return Verdict::Inconsistent(format!("a rebuilt block decodes differently: {entries:?}"));
    }
    Verdict::Decoded(entries.len())
}

fn rebuilt(entries: &[(Vec<u8>, Vec<u8>)]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut builder = BlockBuilder::new(3);
    for (k, v) in entries {
        builder.add(k, v);
    }
    let bytes = builder.finish();
    BlockView::parse(bytes).and_then(|v| v.entries()).ok()
}

/// Asks a bloom filter block (bit array and probe count) about a few keys.
pub fn filter(data: &[u8]) -> bool {
    [&b""[..], b"a", data]
        .iter()
        .any(|k| filter::may_contain(data, k))
}

/// Opens the segment file at `path`, reads every data block, looks up the first key of each,
/// and walks the whole segment forward and backward: both walks must yield exactly the
/// entries of the blocks, in block order.
pub fn segment(path: &Path) -> Verdict {
    let blocks = match segment_blocks(path) {
        Ok(b) => b,
        Err(e) => return Verdict::Rejected(e.to_string()),
    };
    let (segment, all) = blocks;
    let forward = segment.range(Bound::Unbounded, Bound::Unbounded);
    let forward: Vec<_> = forward.collect::<Result<_>>().unwrap_or_default();
    let backward = segment.range(Bound::Unbounded, Bound::Unbounded).rev();
    let mut backward: Vec<_> = backward.collect::<Result<_>>().unwrap_or_default();
    backward.reverse();
    if forward != all || backward != all {
        return Verdict::Inconsistent("iteration disagrees with the blocks".to_string());
    }
    Verdict::Decoded(all.len())
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn segment_blocks(path: &Path) -> Result<(Arc<Segment>, Entries)> {
    let segment = Arc::new(Segment::open(path, 1)?);
    let mut all = Vec::new();
    for handle in segment.data_block_handles() {
        let block = segment.read_block_entries(handle)?;
        if let Some(parsed) = block.first().and_then(|(k, _)| key::parse_internal_key(k)) {
            segment.get(parsed.user_key, SEQNO_MAX)?;
        }
        all.extend(block);
    }
    segment.get(b"", SEQNO_MAX)?;
    let _ = segment.block_boundaries(2);
    Ok((segment, all))
}

/// Decodes a commit log record payload as every format version. A record that decodes must
/// encode (raw and compressed) to bytes that decode to the same record.
pub fn log_record(payload: &[u8]) -> Verdict {
    let _ = decode_record(payload, 1).map(|r| r.last_seqno());
    let _ = decode_record(payload, 2).map(|r| r.last_seqno());
    let record = match decode_record(payload, LOG_FORMAT_VERSION) {
        Ok(r) => r,
        Err((_, detail)) => return Verdict::Rejected(detail),
    };
    let _ = record.last_seqno();
    for compression in [Compression::None, Compression::Snappy] {
        let body = RecordBody::encode(&record.batch, &record.acks, compression);
        let mut again = Vec::new();
        encode_record(&mut again, record.first_seqno, record.commit_time_us, &body);
        match decode_record(&again, LOG_FORMAT_VERSION) {
            Ok(r) if r == record => {}
            other => {
                return Verdict::Inconsistent(format!("{record:?} re-encoded decodes as {other:?}"))
            }
        }
    }
    Verdict::Decoded(record.batch.len())
}

/// Reads the commit log file at `path` twice: whole ([`LogFile`], as recovery does) and
/// incrementally ([`LogFileReader`], as the change feed does). Both must find the same records.
pub fn log_file(path: &Path) -> Verdict {
    let scanned = LogFile::read(path).and_then(|f| f.records());
    let incremental = read_incrementally(path);
    match (scanned, incremental) {
        // The incremental reader stops at damage in what may be a live file (no newer log
        // file beside it) as at a record still being written; the scan reports it.
        (Ok((items, tail)), Ok(read)) if items == read => match tail {
            TailState::Corrupt { offset, .. } => {
                Verdict::Rejected(format!("{} records, then damage at {offset}", items.len()))
            }
            _ => Verdict::Decoded(items.len()),
        },
        (Err(e), Err(_)) => Verdict::Rejected(e.to_string()),
        (Ok((items, tail)), Err(e)) if tail.bad_offset().is_some() => {
            // The scan reports damage as a tail state, the incremental reader as an error.
            Verdict::Rejected(format!("{} records, then {e}", items.len()))
        }
        (scanned, incremental) => Verdict::Inconsistent(format!(
            "the scan found {scanned:?}, the incremental reader {incremental:?}"
        )),
    }
}

fn read_incrementally(path: &Path) -> Result<Vec<crate::commit_log::LogItem>> {
    let mut reader = LogFileReader::open(path)?;
    let mut out = Vec::new();
    while let Some(r) = reader.as_mut() {
        match r.next_record(RecordWindow::ALL)? {
            NextRecord::Record(item) => out.push(item),
            NextRecord::Pending { .. } => break,
        }
    }
    Ok(out)
}

/// Decodes a version edit. An edit that decodes must encode to bytes that decode to the same
/// edit (the bytes may differ: the reader accepts any field order).
pub fn manifest_edit(payload: &[u8]) -> Verdict {
    let edit = match VersionEdit::decode(payload) {
        Ok(e) => e,
        Err((_, detail)) => return Verdict::Rejected(detail),
    };
    match VersionEdit::decode(&edit.encode()) {
        Ok(again) if again == edit => {
            Verdict::Decoded(edit.added.len() + edit.deleted.len() + edit.subscriptions.len())
        }
        other => Verdict::Inconsistent(format!("{edit:?} re-encoded decodes as {other:?}")),
    }
}

/// Replays the manifest file at `path` as open does, then encodes the state it describes.
/// Returns the number of version edits.
pub fn manifest_file(path: &Path) -> Verdict {
    let read = crate::manifest::read_manifest(path);
    Verdict::from_result(read.map(|(state, edits)| {
        let _ = state.snapshot_edit().encode();
        edits.len()
    }))
}

/// Rewrites every checksum of a framed file (commit log or manifest) so that it matches the
/// bytes: the file header's, then each frame's header and payload checksums, frame by frame
/// as the length fields lead. A fuzzer that mutates a payload then reaches the decoder behind
/// the checksum instead of stopping at it every time.
pub fn fix_framed_checksums(bytes: &mut [u8]) {
    use crate::frame::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
    if bytes.len() < FILE_HEADER_LEN {
        return;
    }
    let crc = crate::coding::crc32(&[&bytes[..12]]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut pos = FILE_HEADER_LEN;
    while bytes.len() >= pos + FRAME_HEADER_LEN {
        let len = crate::coding::u32_at(bytes, pos).unwrap_or(0) as usize;
        let body = pos + FRAME_HEADER_LEN;
        let end = body.saturating_add(len).min(bytes.len());
        let payload_crc = crate::coding::crc32(&[&bytes[body..end]]);
        bytes[pos + 4..pos + 8].copy_from_slice(&payload_crc.to_le_bytes());
        let header_crc = crate::coding::crc32(&[&bytes[pos..pos + 8]]);
        bytes[pos + 8..pos + 12].copy_from_slice(&header_crc.to_le_bytes());
        pos = end;
    }
}

/// Rewrites every checksum of a segment file so that it matches the bytes: the footer's, the
/// trailers of the blocks the footer points at, and the trailers of the data blocks the index
/// points at. Handles that point outside the file are left alone.
pub fn fix_segment_checksums(bytes: &mut [u8]) {
    use crate::segment::format::{BlockHandle, FOOTER_LEN};
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_LEN) else {
        return;
    };
    let crc = crate::coding::crc32(&[&bytes[footer_at..footer_at + 52]]);
    bytes[footer_at + 52..footer_at + 56].copy_from_slice(&crc.to_le_bytes());
    let field = |at: usize| {
        let raw = &bytes[footer_at + at..footer_at + at + 8];
        u64::from_le_bytes(raw.try_into().unwrap_or_default())
    };
    let handle = |at: usize| BlockHandle {
        offset: field(at),
        size_bytes: field(at + 8),
    };
    let (filter, index, properties) = (handle(0), handle(16), handle(32));
    for h in [filter, index, properties] {
        fix_block_trailer(bytes, h, footer_at);
    }
    for h in index_handles(bytes, index, footer_at) {
        fix_block_trailer(bytes, h, footer_at);
    }
}

/// The stored bytes and the compression byte of a block that lies before `limit`.
fn stored_block(
    bytes: &[u8],
    h: crate::segment::BlockHandle,
    limit: usize,
) -> Option<(std::ops::Range<usize>, u8)> {
    let end = usize::try_from(h.end_with_trailer()?).ok()?;
    if end > limit {
        return None;
    }
    let start = usize::try_from(h.offset).ok()?;
    let stored_end = end - crate::segment::format::BLOCK_TRAILER_LEN;
    Some((start..stored_end, bytes[stored_end]))
}

fn fix_block_trailer(bytes: &mut [u8], h: crate::segment::BlockHandle, limit: usize) {
    if let Some((stored, kind)) = stored_block(bytes, h, limit) {
        let crc = crate::coding::crc32(&[&bytes[stored.clone()], &[kind]]);
        bytes[stored.end + 1..stored.end + 5].copy_from_slice(&crc.to_le_bytes());
    }
}

fn index_handles(
    bytes: &[u8],
    index: crate::segment::BlockHandle,
    limit: usize,
) -> Vec<crate::segment::BlockHandle> {
    let Some((stored, kind)) = stored_block(bytes, index, limit) else {
        return Vec::new();
    };
    let contents = match kind {
        crate::segment::format::BLOCK_SNAPPY => {
            let mut decoder = snap::raw::Decoder::new();
            match snap::raw::decompress_len(&bytes[stored.clone()]) {
                Ok(n) if n <= 64 * stored.len() + 64 => {
                    decoder.decompress_vec(&bytes[stored]).unwrap_or_default()
                }
                _ => Vec::new(),
            }
        }
        _ => bytes[stored].to_vec(),
    };
    let entries = BlockView::parse(&contents).and_then(|v| v.entries());
    entries
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, v)| {
            crate::segment::BlockHandle::decode_from(&mut crate::coding::Reader::new(v))
        })
        .collect()
}
