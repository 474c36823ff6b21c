//! Writes one segment file front to back: data blocks, then the filter, index and
//! properties blocks, then the footer.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::block::BlockBuilder;
use super::filter::FilterBuilder;
use super::format::{
    self, BlockHandle, Footer, Properties, BLOCK_RAW, BLOCK_SNAPPY, BLOCK_TRAILER_LEN,
    FORMAT_VERSION,
};
use super::SegmentMeta;
use crate::error::{Error, IoContext, Result};
use crate::fs::WriteAdapter;
use crate::key::{self, ValueKind, TRAILER_LEN};
use crate::options::{Compression, Options, KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// Builds a segment from entries added in increasing internal-key order.
///
/// Dropping a writer without calling [`SegmentWriter::finish`] leaves a partial file that is
/// not a valid segment (it has no footer); the caller deletes it.
///
/// # Concurrency
/// A writer is used by one thread; it is `Send` so a flush or compaction job can own it.
#[derive(Debug)]
pub struct SegmentWriter {
    out: BlockSink,
    block_size_bytes: usize,
    compression: Compression,
    block: BlockBuilder,
    index: BlockBuilder,
    /// The encoded handle of the block just written (the index entry's value), reused.
    handle_buf: Vec<u8>,
    filter: FilterBuilder,
    props: Properties,
}

/// The file end of a writer: stores blocks with their trailers and counts the offset.
///
/// The snappy encoder and its output buffer live as long as the writer: a new encoder per
/// block allocates and zeroes a 32 KiB hash table, and a new output buffer is another
/// allocation, thousands of times per segment.
struct BlockSink {
    path: PathBuf,
    file: BufWriter<WriteAdapter>,
    offset: u64,
    snappy: snap::raw::Encoder,
    compressed: Vec<u8>,
}

impl std::fmt::Debug for BlockSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSink")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// Creates the file (`create_new`: an existing file is an error) at `path`.
    pub fn create(path: &Path, opts: &Options) -> Result<Self> {
        Self::create_inner(path, opts, None)
    }

    /// [`SegmentWriter::create`] for entries of `distinct_keys` distinct user keys, known
    /// beforehand (a flush): the filter is then built as keys arrive, with no hash kept
    /// ([`FilterBuilder::with_key_count`]). Any count gives a correct file.
    pub fn create_with_key_count(
        path: &Path,
        opts: &Options,
        distinct_keys: usize,
    ) -> Result<Self> {
        Self::create_inner(path, opts, Some(distinct_keys))
    }

    fn create_inner(path: &Path, opts: &Options, distinct_keys: Option<usize>) -> Result<Self> {
        opts.validate()?;
        let bits_per_key = opts.bloom_bits_per_key_value();
        let filter = match distinct_keys {
            None => FilterBuilder::new(bits_per_key),
            Some(n) => FilterBuilder::with_key_count(bits_per_key, n).at(path)?,
        };
        let file = opts.file_system_value().create_new(path).at(path)?;
        Ok(SegmentWriter {
            out: BlockSink {
                path: path.to_path_buf(),
                file: BufWriter::with_capacity(64 * 1024, WriteAdapter::new(file)),
                offset: 0,
                snappy: snap::raw::Encoder::new(),
                compressed: Vec::new(),
            },
            block_size_bytes: opts.block_size_bytes_value(),
            compression: opts.compression_value(),
            block: BlockBuilder::new(opts.block_restart_interval_value()),
            // Prefix-compressed like a data block (and compressed like one in `finish`): the
            // reader decodes the whole index into flat arrays at open and binary-searches those,
            // never the block's restart points, so whole keys would only cost bytes (37 a block
            // of a db_bench segment instead of about 20).
            index: BlockBuilder::new(opts.block_restart_interval_value()),
            handle_buf: Vec::with_capacity(20),
            filter,
            props: Properties::empty(opts.compression_value()),
        })
    }

    /// Adds one entry. `ikey` is an encoded internal key; keys must be strictly increasing
    /// by [`compare_internal`](crate::key::compare_internal), otherwise
    /// [`Error::InvalidArgument`]. A tombstone's value is empty.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        self.check_entry(ikey, value)?;
        let Some(parsed) = key::parse_internal_key(ikey) else {
            return Err(invalid("segment entry key is not a valid internal key"));
        };
        self.filter.add(parsed.user_key).at(&self.out.path)?;
        self.record_stats(ikey, value, parsed.seqno, parsed.kind);
        self.block.add(ikey, value);
        if self.block.size_bytes() >= self.block_size_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    fn check_entry(&self, ikey: &[u8], value: &[u8]) -> Result<()> {
        if ikey.len() > KEY_SIZE_MAX + TRAILER_LEN || value.len() > VALUE_SIZE_MAX {
            return Err(invalid("segment entry key or value exceeds the size limit"));
        }
        let in_order =
            self.props.entry_count == 0 || key::compare_internal(&self.props.largest, ikey).is_lt();
        if !in_order {
            return Err(invalid(
                "segment entries must be added in strictly increasing order",
            ));
        }
        Ok(())
    }

    fn record_stats(&mut self, ikey: &[u8], value: &[u8], seqno: u64, kind: ValueKind) {
        let p = &mut self.props;
        if p.entry_count == 0 {
            p.smallest = ikey.to_vec();
        }
        p.largest.clear();
        p.largest.extend_from_slice(ikey);
        p.entry_count += 1;
        p.tombstone_count += u64::from(kind == ValueKind::Delete);
        p.raw_key_bytes += ikey.len() as u64;
        p.raw_value_bytes += value.len() as u64;
        p.seqno_min = p.seqno_min.min(seqno);
        p.seqno_max = p.seqno_max.max(seqno);
    }

    /// Number of entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.props.entry_count
    }

    /// Bytes written so far plus the block being built: what the file would roughly weigh
    /// if finished now (the filter, index and footer add a little more).
    pub fn estimated_size_bytes(&self) -> u64 {
        self.out.offset + self.block.size_bytes() as u64
    }

    /// Writes the pending data block and records it in the index.
    fn flush_block(&mut self) -> Result<()> {
        let handle = self
            .out
            .write_block(self.block.finish(), self.compression)?;
        self.props.data_block_count += 1;
        self.props.data_bytes += handle.size_bytes + BLOCK_TRAILER_LEN as u64;
        self.handle_buf.clear();
        handle.encode_to(&mut self.handle_buf);
        // The index key is the block's last key: every key in the block is <= it and every
        // key in the next block is > it, which is all a binary search needs.
        self.index.add(&self.props.largest, &self.handle_buf);
        Ok(())
    }

    /// Writes the filter, index, properties and footer, `fdatasync`s the file and returns
    /// its metadata. Fails with [`Error::InvalidArgument`] (and removes the file) if no entry
    /// was added. Syncing the directory entry is the caller's job.
    pub fn finish(mut self) -> Result<SegmentMeta> {
        if self.props.entry_count == 0 {
            let BlockSink { path, file, .. } = self.out;
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(invalid("a segment needs at least one entry"));
        }
        if !self.block.is_empty() {
            self.flush_block()?;
        }
        let out = &mut self.out;
        let filter_bits = self.filter.finish().at(&out.path)?;
        let filter = out.write_block(
            filter_bits.as_deref().unwrap_or_default(),
            Compression::None,
        )?;
        drop(filter_bits);
        let index = out.write_block(self.index.finish(), self.compression)?;
        let properties = out.write_block(&self.props.encode(), Compression::None)?;
        let footer = Footer {
            filter,
            index,
            properties,
            format_version: FORMAT_VERSION,
        };
        out.write_all(&footer.encode())?;
        out.sync()?;
        Ok(SegmentMeta::from_properties(&self.props, out.offset))
    }
}

impl BlockSink {
    /// Writes `raw` (compressed when that pays) and its trailer; returns its handle.
    fn write_block(&mut self, raw: &[u8], compression: Compression) -> Result<BlockHandle> {
        let compressed_len = match compression {
            Compression::Snappy => {
                crate::coding::snappy_if_smaller(&mut self.snappy, raw, &mut self.compressed, 0)
            }
            Compression::None => None,
        };
        // Taken (no allocation) so the bytes can be written while `self` is borrowed mutably;
        // put back below for the next block.
        let compressed = std::mem::take(&mut self.compressed);
        let (stored, kind) = match compressed_len {
            Some(n) => (&compressed[..n], BLOCK_SNAPPY),
            None => (raw, BLOCK_RAW),
        };
        let handle = BlockHandle {
            offset: self.offset,
            size_bytes: stored.len() as u64,
        };
        let written = self
            .write_all(stored)
            .and_then(|()| self.write_all(&format::block_trailer(stored, kind)));
        self.compressed = compressed;
        written.map(|()| handle)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).at(&self.path)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.flush().at(&self.path)?;
        self.file.get_mut().file_mut().sync_data().at(&self.path)
    }
}

fn invalid(msg: &str) -> Error {
    Error::InvalidArgument(msg.to_string())
}
