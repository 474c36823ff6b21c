//! Segment files as entries and statistics.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::key::{self, SeqNo, ValueKind, SEQNO_MAX};
use crate::segment::format::{
    BlockHandle, Footer, Properties, BLOCK_SNAPPY, BLOCK_TRAILER_LEN, FOOTER_LEN,
};
use crate::segment::Segment;

use super::DecodedKey;

/// One entry of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    /// The user key.
    pub key: Vec<u8>,
    /// The entry's sequence number.
    pub seqno: SeqNo,
    /// Put or delete (a tombstone).
    pub kind: ValueKind,
    /// The value; empty for a tombstone.
    pub value: Vec<u8>,
}

/// The entries of a segment in order, read one data block at a time (each block's checksum
/// verified). Created by [`segment_entries`].
#[derive(Debug)]
pub struct SegmentEntries {
    segment: Segment,
    handles: Vec<BlockHandle>,
    next_block: usize,
    block_offset: u64,
    pending: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    from: Option<Vec<u8>>,
    done: bool,
}

/// Opens the segment at `path` (checking its footer, properties, index and filter) and
/// iterates over its entries, starting at the first whose user key is `>= from`.
pub fn segment_entries(path: &Path, from: Option<&[u8]>) -> Result<SegmentEntries> {
    let segment = Segment::open(path, super::file_number(path))?;
    let handles = segment.data_block_handles();
    let from = from.map(|k| key::internal_key(k, SEQNO_MAX, ValueKind::Put));
    let first = match &from {
        Some(target) => first_block_reaching(&segment, &handles, target)?,
        None => 0,
    };
    Ok(SegmentEntries {
        segment,
        handles,
        next_block: first,
        block_offset: 0,
        pending: Vec::new().into_iter(),
        from,
        done: false,
    })
}

/// Index of the first data block whose last key is `>= target`, by binary search over the
/// blocks (each probe reads one block).
fn first_block_reaching(seg: &Segment, handles: &[BlockHandle], target: &[u8]) -> Result<usize> {
    let (mut lo, mut hi) = (0, handles.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let last = seg.read_block_entries(handles[mid])?.pop().map(|(k, _)| k);
        if last.is_some_and(|k| key::compare_internal(&k, target).is_lt()) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

impl SegmentEntries {
    /// The next raw entry, loading the next block when the current one is used up.
    fn next_raw(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            if let Some(entry) = self.pending.next() {
                return Ok(Some(entry));
            }
            let Some(&handle) = self.handles.get(self.next_block) else {
                return Ok(None);
            };
            self.next_block += 1;
            self.block_offset = handle.offset;
            self.pending = self.segment.read_block_entries(handle)?.into_iter();
        }
    }

    fn decode(&self, ikey: &[u8], value: Vec<u8>) -> Result<SegmentEntry> {
        let parsed = DecodedKey::parse(ikey).ok_or_else(|| {
            let detail = "entry key is not a valid internal key";
            Error::corruption(self.segment.path(), self.block_offset, detail)
        })?;
        Ok(SegmentEntry {
            key: parsed.user_key,
            seqno: parsed.seqno,
            kind: parsed.kind,
            value,
        })
    }

    fn below_from(&self, ikey: &[u8]) -> bool {
        let from = self.from.as_deref();
        from.is_some_and(|t| key::compare_internal(ikey, t).is_lt())
    }

    fn step(&mut self) -> Result<Option<SegmentEntry>> {
        while let Some((ikey, value)) = self.next_raw()? {
            if !self.below_from(&ikey) {
                return self.decode(&ikey, value).map(Some);
            }
        }
        Ok(None)
    }
}

impl Iterator for SegmentEntries {
    type Item = Result<SegmentEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        self.done = !matches!(step, Ok(Some(_)));
        step.transpose()
    }
}

/// Sizes of a segment's data blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataBlockSizes {
    /// Number of data blocks.
    pub count: u64,
    /// How many of them are stored snappy-compressed.
    pub compressed_count: u64,
    /// Stored bytes of all data blocks, trailers excluded.
    pub stored_bytes: u64,
    /// Uncompressed bytes of all data blocks.
    pub uncompressed_bytes: u64,
    /// The smallest stored block.
    pub stored_bytes_min: u64,
    /// The largest stored block.
    pub stored_bytes_max: u64,
}

/// What `alluvium segment stats` shows: the footer, the properties and measured sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStats {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
    /// The decoded footer.
    pub footer: Footer,
    /// The properties block.
    pub properties: Properties,
    /// Data block sizes, measured from the block handles and trailers.
    pub data_blocks: DataBlockSizes,
    /// Bytes of the filter's bit array (0 when the segment has no filter).
    pub filter_bits_bytes: u64,
    /// The filter's number of probes per key (0 when there is no filter).
    pub filter_probes: u32,
    /// True when the filter keeps each key's bits in one 64-byte line (the layout this
    /// version writes); false for the classic layout of older segments, or no filter.
    pub filter_blocked: bool,
    /// Distinct user keys, counted by reading every entry.
    pub distinct_user_keys: u64,
}

impl SegmentStats {
    /// Uncompressed data bytes per stored data byte (1.0 when nothing is compressed).
    pub fn compression_ratio(&self) -> f64 {
        let b = &self.data_blocks;
        b.uncompressed_bytes as f64 / (b.stored_bytes.max(1)) as f64
    }

    /// Filter bits per distinct user key.
    pub fn filter_bits_per_key(&self) -> f64 {
        (self.filter_bits_bytes * 8) as f64 / (self.distinct_user_keys.max(1)) as f64
    }

    /// The smallest entry's key, sequence number and kind.
    pub fn smallest(&self) -> Option<DecodedKey> {
        DecodedKey::parse(&self.properties.smallest)
    }

    /// The largest entry's key, sequence number and kind.
    pub fn largest(&self) -> Option<DecodedKey> {
        DecodedKey::parse(&self.properties.largest)
    }
}

/// Opens the segment at `path`, reads every data block (verifying each checksum) and measures
/// it.
pub fn segment_stats(path: &Path) -> Result<SegmentStats> {
    let mut entries = segment_entries(path, None)?;
    let distinct_user_keys = count_user_keys(&mut entries)?;
    let segment = &entries.segment;
    let bytes = std::fs::read(path).at(path)?;
    let footer = read_footer(path, &bytes)?;
    let filter = byte_range(&bytes, footer.filter);
    let (filter_probes, filter_blocked) = crate::segment::filter::describe(filter);
    Ok(SegmentStats {
        path: path.to_path_buf(),
        size_bytes: bytes.len() as u64,
        footer,
        properties: segment.properties().clone(),
        data_blocks: data_block_sizes(&bytes, &segment.data_block_handles()),
        filter_bits_bytes: filter.len().saturating_sub(1) as u64,
        filter_probes,
        filter_blocked,
        distinct_user_keys,
    })
}

fn count_user_keys(entries: &mut SegmentEntries) -> Result<u64> {
    let mut count = 0;
    let mut last: Option<Vec<u8>> = None;
    for entry in entries {
        let entry = entry?;
        if last.as_ref() != Some(&entry.key) {
            count += 1;
            last = Some(entry.key);
        }
    }
    Ok(count)
}

/// Decodes the footer at the end of a segment's bytes.
pub(super) fn read_footer(path: &Path, bytes: &[u8]) -> Result<Footer> {
    let at = bytes.len().saturating_sub(FOOTER_LEN);
    let raw: Option<&[u8; FOOTER_LEN]> = bytes.get(at..).and_then(|b| b.try_into().ok());
    let raw = raw.ok_or_else(|| Error::corruption(path, 0, "file too short for a footer"))?;
    Footer::decode(raw).map_err(|detail| Error::corruption(path, at as u64, detail))
}

fn byte_range(bytes: &[u8], h: BlockHandle) -> &[u8] {
    let start = usize::try_from(h.offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(h.size_bytes).unwrap_or(usize::MAX));
    bytes.get(start..end).unwrap_or_default()
}

fn data_block_sizes(bytes: &[u8], handles: &[BlockHandle]) -> DataBlockSizes {
    let mut sizes = DataBlockSizes {
        stored_bytes_min: u64::MAX,
        ..DataBlockSizes::default()
    };
    for &h in handles {
        let stored = byte_range(bytes, h);
        let trailer_at = h.offset.saturating_add(h.size_bytes);
        let kind = bytes
            .get(usize::try_from(trailer_at).unwrap_or(usize::MAX))
            .copied();
        let snappy = kind == Some(BLOCK_SNAPPY);
        let raw_len = match snappy {
            true => snap::raw::decompress_len(stored).unwrap_or(0) as u64,
            false => h.size_bytes,
        };
        sizes.count += 1;
        sizes.compressed_count += u64::from(snappy);
        sizes.stored_bytes += h.size_bytes;
        sizes.uncompressed_bytes += raw_len;
        sizes.stored_bytes_min = sizes.stored_bytes_min.min(h.size_bytes);
        sizes.stored_bytes_max = sizes.stored_bytes_max.max(h.size_bytes);
    }
    sizes.stored_bytes_min = sizes.stored_bytes_min.min(sizes.stored_bytes_max);
    sizes
}

/// Bytes the data blocks occupy, trailers included (what the properties call `data_bytes`).
pub(super) fn data_bytes(handles: &[BlockHandle]) -> u64 {
    handles
        .iter()
        .map(|h| h.size_bytes + BLOCK_TRAILER_LEN as u64)
        .sum()
}
