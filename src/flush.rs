//! Flush: an immutable memtable becomes a level-0 segment.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::files;
use crate::manifest::{AddedSegment, LiveSegment};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::segment::{Segment, SegmentWriter};

/// Writes every entry of `mem` to segment `id` in `dir`, syncs it and opens it.
///
/// Every version is kept: snapshots may still read older ones, and compaction is the place
/// that drops what nobody can see.
pub fn write_segment(
    dir: &Path,
    id: u64,
    mem: &Memtable,
    opts: &Options,
) -> Result<(AddedSegment, Arc<LiveSegment>)> {
    let path = files::segment_path(dir, id);
    let written = write_file(&path, mem, opts);
    if written.is_err() {
        // Best effort: a leftover file is an orphan that the next open removes anyway.
        let _ = files::remove_if_exists(&**opts.file_system_value(), &path);
    }
    let meta = written?;
    files::sync_dir(&**opts.file_system_value(), dir)?;
    let segment = Arc::new(Segment::open(&path, id)?);
    let added = AddedSegment {
        level: 0,
        id,
        meta: meta.clone(),
    };
    Ok((added, LiveSegment::new(segment, meta)))
}

fn write_file(path: &Path, mem: &Memtable, opts: &Options) -> Result<crate::segment::SegmentMeta> {
    let mut writer = SegmentWriter::create(path, opts)?;
    mem.for_each(|ikey, value| writer.add(ikey, value))?;
    writer.finish()
}
