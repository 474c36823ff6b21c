//! Opening a segment, point lookups and bounded iteration.

use std::borrow::Cow;
use std::fs::File;
use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::block::BlockView;
use super::cache::{self, BlockCache, DecodedBlock};
use super::filter;
use super::format::{BlockHandle, Footer, Properties, BLOCK_RAW, BLOCK_SNAPPY, FOOTER_LEN};
use super::index::BlockIndex;
use super::{SegmentId, SegmentMeta};
use crate::coding::{self, Reader};
use crate::error::{Error, IoContext, Result};
use crate::key::{self, SeqNo, ValueKind, SEQNO_MAX};

thread_local! {
    /// Per thread: a data block's stored bytes and trailer as read from the file.
    static STORED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One decoded entry: encoded internal key and value.
type Entry = (Vec<u8>, Vec<u8>);

/// An open, immutable segment file.
///
/// The index is decoded into memory at open. Data blocks are read on demand with `pread` into
/// buffers of their own and their checksums verified on every read; only the bloom filter is
/// read through a memory map. Reading blocks through the map instead cost a page-table entry
/// per page ever read, and those pages counted as the process's resident memory for as long
/// as the segment was open (fault-around maps 64 KiB per fault): a read-heavy process's peak
/// memory grew with the data it had read (BENCHMARKS.md, "Peak memory"). Opened with a
/// [`BlockCache`], point lookups and iterators look blocks up there first and keep what they
/// read; a dropped segment removes its blocks from the cache.
///
/// # Concurrency
/// `Segment` is `Send + Sync` and never mutated after [`Segment::open`]; share it with
/// `Arc<Segment>`.
#[derive(Debug)]
pub struct Segment {
    id: SegmentId,
    path: PathBuf,
    file: File,
    mmap: Mmap,
    props: Properties,
    index: BlockIndex,
    filter: Range<usize>,
    cache: Option<Arc<BlockCache>>,
    /// This opening's half of its blocks' cache keys (unique in the process).
    file_key: u64,
}

impl Segment {
    /// Maps the file, then reads and verifies the footer, properties, index and the filter's
    /// checksum. Anything inconsistent is [`Error::Corruption`] naming the file and offset.
    pub fn open(path: &Path, id: SegmentId) -> Result<Segment> {
        Segment::open_cached(path, id, None)
    }

    /// [`Segment::open`], reading data blocks through `cache` when there is one.
    pub fn open_cached(
        path: &Path,
        id: SegmentId,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Segment> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        if len < FOOTER_LEN as u64 {
            let detail = format!("file of {len} bytes is too short to be a segment");
            return Err(Error::corruption(path, 0, detail));
        }
        // SAFETY: segment files are immutable once written and are never truncated or
        // modified while open (they are only deleted, which keeps the mapping valid), so
        // the mapped bytes cannot change under us.
        let mmap = unsafe { Mmap::map(&file) }.at(path)?;
        let file_view = FileView { path, bytes: &mmap };
        let footer = file_view.footer()?;
        let props = file_view.properties(footer.properties)?;
        let index = file_view.index(footer.index, footer.filter.offset, &props)?;
        let filter = file_view.filter(footer.filter)?;
        let segment = Segment {
            id,
            path: path.to_path_buf(),
            file,
            mmap,
            props,
            index,
            filter,
            cache,
            file_key: cache::next_file_key(),
        };
        // Verifying read every byte after the data blocks (filter, index, properties, footer);
        // only the filter is read again, a few bits per lookup, and faults back what it needs.
        let len = segment.mmap.len();
        segment.release_pages(usize::try_from(footer.filter.offset).unwrap_or(len)..len);
        Ok(segment)
    }

    /// The segment's id.
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The file this segment was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file.
    pub fn size_bytes(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// The statistics stored in the properties block.
    pub fn properties(&self) -> &Properties {
        &self.props
    }

    /// The metadata a writer returned for this file, rebuilt from its properties.
    pub fn meta(&self) -> SegmentMeta {
        SegmentMeta::from_properties(&self.props, self.size_bytes())
    }

    /// False only when no version of `user_key` is in this segment (bloom filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        let bits = self.mmap.get(self.filter.clone()).unwrap_or_default();
        filter::may_contain(bits, user_key)
    }

    /// The newest version of `user_key` with seqno `<= snapshot`, as
    /// `(seqno, kind, value)`; `None` if this segment has no such version.
    ///
    /// Consults the bloom filter, binary-searches the index, then the block's restart points.
    pub fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        if !self.may_contain(user_key) {
            return Ok(None);
        }
        // (key, snapshot, Put) has the largest trailer at `snapshot`, so it sorts before
        // every version visible at the snapshot and after every newer one.
        let target = key::internal_key(user_key, snapshot.min(SEQNO_MAX), ValueKind::Put);
        let Some(handle) = self.index.handle(self.first_block_reaching(&target)) else {
            return Ok(None);
        };
        let (ikey, value) = self.seek_in_block(handle, &target)?;
        let parsed = key::parse_internal_key(&ikey)
            .ok_or_else(|| self.corrupt(handle.offset, "malformed internal key"))?;
        if parsed.user_key != user_key {
            return Ok(None);
        }
        Ok(Some((parsed.seqno, parsed.kind, value)))
    }

    /// The first entry `>= target` in the block, which the index promises exists.
    fn seek_in_block(&self, handle: BlockHandle, target: &[u8]) -> Result<Entry> {
        let block = self.decoded_block(handle, true)?;
        let found = BlockView::with_layout(&block.bytes, block.layout)
            .seek(target, key::compare_internal)
            .map_err(|m| self.corrupt(handle.offset, m.0))?;
        let (ikey, value) =
            found.ok_or_else(|| self.corrupt(handle.offset, "block ends before its index key"))?;
        Ok((ikey, value.to_vec()))
    }

    /// Index of the first data block whose last key is `>= target`, or the block count.
    fn first_block_reaching(&self, target: &[u8]) -> usize {
        self.index.first_reaching(target)
    }

    /// Iterates over entries whose internal key lies within `lower..upper` (bounds are
    /// encoded internal keys compared with
    /// [`compare_internal`](crate::key::compare_internal)). See [`SegmentIter`] for how
    /// the two ends behave.
    ///
    /// The blocks it reads go into the segment's block cache, if it has one; see
    /// [`SegmentIter::fill_cache`].
    pub fn range(self: &Arc<Self>, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> SegmentIter {
        SegmentIter {
            segment: Arc::clone(self),
            lower,
            upper,
            front: Front::Unpositioned,
            back: Cursor::Unpositioned,
            fill_cache: true,
        }
    }

    /// Drops this process's mapping of the file's pages in `range` (page-aligned inward), so
    /// bytes a sequential reader is done with stop counting as its resident memory. The pages
    /// stay in the OS page cache; a later read of the range faults them back in unchanged.
    fn release_pages(&self, range: Range<usize>) {
        const PAGE: usize = 4096;
        let start = range.start.next_multiple_of(PAGE);
        let end = (range.end / PAGE * PAGE).min(self.mmap.len() / PAGE * PAGE);
        if start >= end {
            return;
        }
        // SAFETY: the mapping is shared and read-only over a file that is never modified
        // while open (see `open`). MADV_DONTNEED on such a mapping drops only page-table
        // entries: the next access faults in the same bytes from the page cache or the file,
        // so slices borrowed from the map (by other readers too) never see a change. Offsets
        // are in bounds (clamped above). A failure only leaves the pages mapped.
        #[cfg(unix)]
        let _ = unsafe {
            self.mmap
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }

    /// The handle of every data block, in key order.
    pub fn data_block_handles(&self) -> Vec<BlockHandle> {
        self.index.handles().to_vec()
    }

    /// The user keys that end each data block, every `step`-th one: evenly spaced samples of
    /// the key space, used to split a compaction into subcompactions.
    pub fn block_boundaries(&self, step: usize) -> Vec<Vec<u8>> {
        let step = step.max(1);
        let ends = (0..self.index.len()).step_by(step);
        ends.filter_map(|i| self.index.key(i))
            .map(|k| key::user_key(k).to_vec())
            .collect()
    }

    /// Reads one data block, verifying its checksum, and decodes all its entries (a cached
    /// copy is used, none is added).
    pub fn read_block_entries(&self, handle: BlockHandle) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.entries_of(handle, false)
    }

    /// Every entry of the block at `handle` (see [`Segment::decoded_block`]).
    fn entries_of(&self, handle: BlockHandle, fill_cache: bool) -> Result<Vec<Entry>> {
        let block = self.decoded_block(handle, fill_cache)?;
        BlockView::with_layout(&block.bytes, block.layout)
            .entries()
            .map_err(|m| self.corrupt(handle.offset, m.0))
    }

    /// Reads data block `block_no` for a cursor (see [`Segment::decoded_block`]). `None`
    /// past the last block.
    fn load_block(&self, block_no: usize, fill_cache: bool) -> Result<Option<LoadedBlock>> {
        let Some(handle) = self.index.handle(block_no) else {
            return Ok(None);
        };
        Ok(Some(LoadedBlock {
            block: block_no,
            offset: handle.offset,
            data: self.decoded_block(handle, fill_cache)?,
        }))
    }

    /// A data block from the cache, or read from the file: checksum verified, decompressed if
    /// needed, restarts checked; then kept in the cache when `fill_cache` says so.
    fn decoded_block(&self, handle: BlockHandle, fill_cache: bool) -> Result<Arc<DecodedBlock>> {
        let cache = self.cache.as_deref();
        if let Some(found) = cache.and_then(|c| c.get(self.file_key, handle.offset)) {
            return Ok(found);
        }
        let bytes = self.data_block(handle)?;
        let layout = BlockView::parse(&bytes)
            .map_err(|m| self.corrupt(handle.offset, m.0))?
            .layout();
        let block = Arc::new(DecodedBlock { bytes, layout });
        if let Some(cache) = cache.filter(|_| fill_cache) {
            cache.insert(self.file_key, handle.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    /// A data block's uncompressed contents: read with `pread` (see [`Segment`]), checked
    /// to lie before the footer and against its checksum, decompressed if stored compressed.
    fn data_block(&self, handle: BlockHandle) -> Result<Vec<u8>> {
        let view = self.file_view();
        let limit = view.footer_offset() as u64;
        let Some(end) = handle.end_with_trailer().filter(|&end| end <= limit) else {
            let detail = format!("block handle {handle:?} points past offset {limit}");
            return Err(self.corrupt(handle.offset, detail));
        };
        // The stored bytes go to a per-thread buffer (no allocation or zeroing per read);
        // only the block handed out is allocated. In bounds of the mapped file, so the
        // length fits in usize.
        STORED.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            buf.resize((end - handle.offset) as usize, 0);
            crate::fs::read_exact_at(&self.file, buf, handle.offset).at(&self.path)?;
            let size = handle.size_bytes as usize;
            let kind = view.check_trailer(handle, &buf[..size], &buf[size..])?;
            let block = match kind {
                BLOCK_RAW => Ok(buf[..size].to_vec()),
                _ => view.decompress(&buf[..size], handle.offset),
            };
            coding::release_if_large(buf);
            block
        })
    }

    fn block_entries(&self, block_no: usize, fill_cache: bool) -> Result<Vec<Entry>> {
        match self.index.handle(block_no) {
            Some(handle) => self.entries_of(handle, fill_cache),
            None => Ok(Vec::new()),
        }
    }

    fn file_view(&self) -> FileView<'_> {
        FileView {
            path: &self.path,
            bytes: &self.mmap,
        }
    }

    fn corrupt(&self, offset: u64, detail: impl Into<String>) -> Error {
        Error::corruption(&self.path, offset, detail)
    }
}

impl Drop for Segment {
    /// Removes this opening's blocks from the cache: nothing can ask for them again.
    fn drop(&mut self) {
        if let Some(cache) = &self.cache {
            for handle in self.index.handles() {
                cache.remove(self.file_key, handle.offset);
            }
        }
    }
}

/// The raw bytes of a segment file plus its path, for decoding with precise errors.
#[derive(Clone, Copy)]
struct FileView<'a> {
    path: &'a Path,
    bytes: &'a [u8],
}

impl<'a> FileView<'a> {
    fn corrupt(&self, offset: u64, detail: impl Into<String>) -> Error {
        Error::corruption(self.path, offset, detail)
    }

    /// Where the footer starts; every block must end at or before it.
    fn footer_offset(&self) -> usize {
        self.bytes.len().saturating_sub(FOOTER_LEN)
    }

    fn footer(&self) -> Result<Footer> {
        let at = self.footer_offset();
        let raw: Option<&[u8; FOOTER_LEN]> = self.bytes.get(at..).and_then(|b| b.try_into().ok());
        let raw = raw.ok_or_else(|| self.corrupt(at as u64, "file too short for a footer"))?;
        Footer::decode(raw).map_err(|detail| self.corrupt(at as u64, detail))
    }

    /// The stored bytes and compression type of a block, after checking that it lies
    /// before `limit` and that its checksum matches.
    fn checked_stored(&self, handle: BlockHandle, limit: u64) -> Result<(&'a [u8], u8)> {
        let in_bounds = handle.end_with_trailer().is_some_and(|end| end <= limit);
        if !in_bounds {
            let detail = format!("block handle {handle:?} points past offset {limit}");
            return Err(self.corrupt(handle.offset, detail));
        }
        // In bounds of the mapped file, so these fit in usize.
        let start = handle.offset as usize;
        let end = start + handle.size_bytes as usize;
        let stored = self.bytes.get(start..end).unwrap_or_default();
        let trailer = self.bytes.get(end..).unwrap_or_default();
        Ok((stored, self.check_trailer(handle, stored, trailer)?))
    }

    /// The compression type from a block's trailer, once the checksum over the stored bytes
    /// and that type matches; a known type only.
    fn check_trailer(&self, handle: BlockHandle, stored: &[u8], trailer: &[u8]) -> Result<u8> {
        let mut r = Reader::new(trailer);
        let (kind, crc) = (r.u8().unwrap_or(u8::MAX), r.u32().unwrap_or(0));
        if coding::crc32(&[stored, &[kind]]) != crc {
            return Err(self.corrupt(handle.offset, "block checksum mismatch"));
        }
        match kind {
            BLOCK_RAW | BLOCK_SNAPPY => Ok(kind),
            other => Err(self.corrupt(handle.offset, format!("unknown compression type {other}"))),
        }
    }

    /// A block's uncompressed contents, checksum verified: borrowed from the map when stored
    /// raw (the index and properties blocks, read once at open).
    fn block(&self, handle: BlockHandle) -> Result<Cow<'a, [u8]>> {
        let (stored, kind) = self.checked_stored(handle, self.footer_offset() as u64)?;
        match kind {
            BLOCK_RAW => Ok(Cow::Borrowed(stored)),
            _ => self.decompress(stored, handle.offset).map(Cow::Owned),
        }
    }

    fn decompress(&self, stored: &[u8], offset: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        coding::snappy_decompress(stored, &mut out, usize::MAX, "block")
            .map_err(|detail| self.corrupt(offset, detail))?;
        Ok(out)
    }

    fn properties(&self, handle: BlockHandle) -> Result<Properties> {
        let contents = self.block(handle)?;
        Properties::decode(&contents).map_err(|detail| self.corrupt(handle.offset, detail))
    }

    /// Decodes the index and checks it against the properties: keys strictly increasing,
    /// handles inside the data area, one entry per data block, the last key the largest.
    fn index(&self, handle: BlockHandle, data_end: u64, props: &Properties) -> Result<BlockIndex> {
        let contents = self.block(handle)?;
        let bad = |detail: String| self.corrupt(handle.offset, detail);
        let index = BlockIndex::decode(&contents, data_end).map_err(|m| bad(m.0))?;
        let count_ok = index.len() as u64 == props.data_block_count;
        if !count_ok || index.last_key() != Some(props.largest.as_slice()) {
            return Err(bad("index disagrees with the properties block".to_string()));
        }
        Ok(index)
    }

    /// The filter's bit array (with its `k` byte) as a range of the file.
    fn filter(&self, handle: BlockHandle) -> Result<Range<usize>> {
        let (_, kind) = self.checked_stored(handle, self.footer_offset() as u64)?;
        if kind != BLOCK_RAW {
            return Err(self.corrupt(handle.offset, "filter block must not be compressed"));
        }
        let start = handle.offset as usize;
        Ok(start..start + handle.size_bytes as usize)
    }
}

/// An iterator over the entries of one segment within a key range, yielding
/// `(encoded internal key, value)` in internal-key order.
///
/// # Two independent ends
/// The front (`next`) and the back (`next_back`) are **independent cursors**: each walks the
/// whole bounded range on its own and they do *not* stop when they meet, unlike
/// `std`'s double-ended iterators. Calling both yields every entry from each end. The
/// merging layer above owns the crossing logic; it usually drives only one end.
///
/// Blocks are read lazily, one per cursor at a time, when the cursor first needs them.
/// After an error (a corrupt block) is yielded, that end yields `None` from then on.
#[derive(Debug)]
pub struct SegmentIter {
    segment: Arc<Segment>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: Front,
    back: Cursor,
    /// Whether blocks this iterator reads are added to the block cache.
    fill_cache: bool,
}

/// A data block a cursor reads, checked once when loaded.
#[derive(Debug)]
struct LoadedBlock {
    block: usize,
    /// Where the block starts in the file, for corruption errors.
    offset: u64,
    data: Arc<DecodedBlock>,
}

/// The front end of a [`SegmentIter`]: decodes one entry at a time from its block, so a
/// seek that reads a few entries decodes only those and the restart interval before them.
#[derive(Debug)]
enum Front {
    /// Nothing read yet: positioned from the lower bound on first use.
    Unpositioned,
    At(BlockCursor),
    /// Exhausted or failed.
    Done,
}

/// A position inside one loaded block.
///
/// # Invariants
/// `key` is the key of the entry decoded last (empty at a restart point, where the next
/// entry stores its key whole), so the entry at `next` can be decoded against it.
#[derive(Debug)]
struct BlockCursor {
    loaded: LoadedBlock,
    next: usize,
    key: Vec<u8>,
    value: Range<usize>,
}

impl BlockCursor {
    fn at(loaded: LoadedBlock, next: usize) -> Self {
        BlockCursor {
            loaded,
            next,
            key: Vec::new(),
            value: 0..0,
        }
    }

    /// Decodes the next entry into `key` and `value`; false at the end of the block.
    fn advance(&mut self, segment: &Segment) -> Result<bool> {
        let view = BlockView::with_layout(&self.loaded.data.bytes, self.loaded.data.layout);
        if self.next >= view.entries_len() {
            return Ok(false);
        }
        let (value, next) = view
            .decode_at(self.next, &mut self.key)
            .map_err(|m| segment.corrupt(self.loaded.offset, m.0))?;
        self.value = value;
        self.next = next;
        Ok(true)
    }

    /// The entry decoded last, copied out.
    fn entry(&self) -> Entry {
        (self.key.clone(), self.value().to_vec())
    }

    /// The value of the entry decoded last.
    fn value(&self) -> &[u8] {
        let view = BlockView::with_layout(&self.loaded.data.bytes, self.loaded.data.layout);
        view.value(self.value.clone())
    }
}

/// Where the back end of a [`SegmentIter`] is.
#[derive(Debug)]
enum Cursor {
    /// Nothing read yet: positioned from the bound on first use.
    Unpositioned,
    /// Inside data block `block`; for the front `pos` is the next entry to yield, for the
    /// back it is one past it.
    At {
        block: usize,
        entries: Vec<Entry>,
        pos: usize,
    },
    /// Exhausted or failed.
    Done,
}

fn above_upper(ikey: &[u8], upper: &Bound<Vec<u8>>) -> bool {
    match upper {
        Bound::Included(k) => key::compare_internal(ikey, k).is_gt(),
        Bound::Excluded(k) => key::compare_internal(ikey, k).is_ge(),
        Bound::Unbounded => false,
    }
}

fn below_lower(ikey: &[u8], lower: &Bound<Vec<u8>>) -> bool {
    match lower {
        Bound::Included(k) => key::compare_internal(ikey, k).is_lt(),
        Bound::Excluded(k) => key::compare_internal(ikey, k).is_le(),
        Bound::Unbounded => false,
    }
}

impl SegmentIter {
    /// Whether the blocks this iterator reads are kept in the block cache (default yes).
    /// Compactions turn it off: they read each block once, and would push out the blocks
    /// readers come back to. Blocks already cached are used either way.
    #[must_use]
    pub fn fill_cache(mut self, fill: bool) -> SegmentIter {
        self.fill_cache = fill;
        self
    }

    /// Loads the first block that can hold an entry at or after the lower bound and moves to
    /// the restart point the bound lies after; [`SegmentIter::step_front`] skips the rest.
    fn position_front(&self) -> Result<Front> {
        let seg = &self.segment;
        let (block, target) = match &self.lower {
            Bound::Unbounded => (0, None),
            Bound::Included(k) => (seg.first_block_reaching(k), Some(k)),
            Bound::Excluded(k) => {
                let at_or_before = |last: &[u8]| key::compare_internal(last, k).is_le();
                (seg.index.partition_point(at_or_before), Some(k))
            }
        };
        let Some(loaded) = seg.load_block(block, self.fill_cache)? else {
            return Ok(Front::Done);
        };
        let next = match target {
            None => 0,
            Some(k) => BlockView::with_layout(&loaded.data.bytes, loaded.data.layout)
                .seek_start(k, key::compare_internal)
                .map_err(|m| seg.corrupt(loaded.offset, m.0))?,
        };
        Ok(Front::At(BlockCursor::at(loaded, next)))
    }

    /// Loads the block holding the last entry at or before the upper bound: the first block
    /// whose last key reaches the bound (later blocks are wholly above it), else the last.
    fn position_back(&self) -> Result<Cursor> {
        let seg = &self.segment;
        let Some(last) = seg.index.len().checked_sub(1) else {
            return Ok(Cursor::Done);
        };
        let block = match &self.upper {
            Bound::Unbounded => last,
            Bound::Included(k) | Bound::Excluded(k) => seg.first_block_reaching(k).min(last),
        };
        let entries = seg.block_entries(block, self.fill_cache)?;
        let pos = entries.partition_point(|(k, _)| !above_upper(k, &self.upper));
        Ok(Cursor::At {
            block,
            entries,
            pos,
        })
    }

    /// Moves the front to its next entry in range without copying it; false at the end.
    fn move_front(&mut self) -> Result<bool> {
        if matches!(self.front, Front::Unpositioned) {
            self.front = self.position_front()?;
        }
        loop {
            let Front::At(cursor) = &mut self.front else {
                return Ok(false);
            };
            if !cursor.advance(&self.segment)? {
                let next_block = cursor.loaded.block + 1;
                let Some(next) = self.segment.load_block(next_block, self.fill_cache)? else {
                    return Ok(false);
                };
                *cursor = BlockCursor::at(next, 0);
                continue;
            }
            if below_lower(&cursor.key, &self.lower) {
                continue; // between the restart point a seek starts at and the bound
            }
            return Ok(!above_upper(&cursor.key, &self.upper));
        }
    }

    fn step_front(&mut self) -> Result<Option<Entry>> {
        if !self.move_front()? {
            return Ok(None);
        }
        match &self.front {
            Front::At(cursor) => Ok(Some(cursor.entry())),
            _ => Ok(None),
        }
    }

    /// Moves the front to its next entry without copying it, for a merge that copies only
    /// what it keeps; [`SegmentIter::key`] and [`SegmentIter::value`] then show the entry.
    /// False at the end. After an error or the end, the front stays done (as with `next`).
    pub fn advance(&mut self) -> Result<bool> {
        let moved = self.move_front();
        if !matches!(moved, Ok(true)) {
            self.front = Front::Done;
        }
        moved
    }

    /// The encoded internal key of the entry [`SegmentIter::advance`] moved to (empty before
    /// the first move and after the end).
    pub fn key(&self) -> &[u8] {
        match &self.front {
            Front::At(cursor) => &cursor.key,
            _ => &[],
        }
    }

    /// The value of the entry [`SegmentIter::advance`] moved to (empty when there is none).
    pub fn value(&self) -> &[u8] {
        match &self.front {
            Front::At(cursor) => cursor.value(),
            _ => &[],
        }
    }

    fn step_back(&mut self) -> Result<Option<Entry>> {
        if matches!(self.back, Cursor::Unpositioned) {
            self.back = self.position_back()?;
        }
        loop {
            let Cursor::At {
                block,
                entries,
                pos,
            } = &mut self.back
            else {
                return Ok(None);
            };
            if let Some(p) = pos.checked_sub(1) {
                *pos = p;
                let entry = entries.get_mut(p).map(std::mem::take).unwrap_or_default();
                return Ok((!below_lower(&entry.0, &self.lower)).then_some(entry));
            }
            let Some(prev) = block.checked_sub(1) else {
                return Ok(None);
            };
            let entries = self.segment.block_entries(prev, self.fill_cache)?;
            let pos = entries.len();
            self.back = Cursor::At {
                block: prev,
                entries,
                pos,
            };
        }
    }
}

/// Turns a step result into an iterator item, replacing the cursor with `done` on end or
/// error.
fn settle<C>(cursor: &mut C, done: C, step: Result<Option<Entry>>) -> Option<Result<Entry>> {
    match step {
        Ok(Some(entry)) => Some(Ok(entry)),
        Ok(None) => {
            *cursor = done;
            None
        }
        Err(e) => {
            *cursor = done;
            Some(Err(e))
        }
    }
}

impl Iterator for SegmentIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let step = self.step_front();
        settle(&mut self.front, Front::Done, step)
    }
}

impl DoubleEndedIterator for SegmentIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let step = self.step_back();
        settle(&mut self.back, Cursor::Done, step)
    }
}
