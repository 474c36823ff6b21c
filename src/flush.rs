//! Flush: an immutable memtable becomes a level-0 segment.

use std::path::Path;
use std::sync::Arc;

use crate::compaction::{GarbageCollector, Verdict};
use crate::error::Result;
use crate::files;
use crate::key::SeqNo;
use crate::manifest::{AddedSegment, LiveSegment};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::segment::{Segment, SegmentWriter};

/// Writes the entries of `mem` that a reader can still see to segment `id` in `dir`, syncs
/// it and opens it.
///
/// `snapshots` are the live snapshots (ascending), read after `mem` became immutable. Of the
/// versions of a key between two snapshots only the newest is written, as compaction does
/// ([`GarbageCollector`]); a snapshot taken later sees the newest version of every key in
/// `mem`, since it reads at or above `mem`'s largest sequence number. Tombstones are all kept:
/// older versions of their keys may be in segments.
pub fn write_segment(
    dir: &Path,
    id: u64,
    mem: &Memtable,
    snapshots: Vec<SeqNo>,
    opts: &Options,
) -> Result<(AddedSegment, Arc<LiveSegment>)> {
    let path = files::segment_path(dir, id);
    let written = write_file(&path, mem, snapshots, opts);
    if written.is_err() {
        // Best effort: a leftover file is an orphan that the next open removes anyway.
        let _ = files::remove_if_exists(&**opts.file_system_value(), &path);
    }
    let meta = written?;
    files::sync_dir(&**opts.file_system_value(), dir)?;
    let cache = opts.block_cache_value().cloned();
    let segment = Arc::new(Segment::open_cached(&path, id, cache)?);
    let added = AddedSegment {
        level: 0,
        id,
        meta: meta.clone(),
    };
    Ok((added, LiveSegment::new(segment, meta)))
}

fn write_file(
    path: &Path,
    mem: &Memtable,
    snapshots: Vec<SeqNo>,
    opts: &Options,
) -> Result<crate::segment::SegmentMeta> {
    let mut writer = SegmentWriter::create(path, opts)?;
    let mut gc = GarbageCollector::new(snapshots, |_: &[u8]| true);
    // Without `zero_seqnos` the verdict is Keep or Drop.
    mem.for_each(|ikey, value| match gc.keep(ikey)? {
        Verdict::Drop => Ok(()),
        Verdict::Keep | Verdict::KeepWithSeqnoZero => writer.add(ikey, value),
    })?;
    writer.finish()
}
