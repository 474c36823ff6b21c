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
    // Every user key in `mem` keeps at least its newest version, so the filter holds
    // exactly the memtable's distinct keys and needs no hash kept until the end.
    let writer = SegmentWriter::create_with_key_count(path, opts, mem.distinct_keys())?;
    write_entries(writer, mem, snapshots)
}

/// Adds the entries of `mem` a reader can still see to `writer` and finishes it.
fn write_entries(
    mut writer: SegmentWriter,
    mem: &Memtable,
    snapshots: Vec<SeqNo>,
) -> Result<crate::segment::SegmentMeta> {
    let mut gc = GarbageCollector::new(snapshots, |_: &[u8]| true);
    // Without `zero_seqnos` the verdict is Keep or Drop.
    mem.for_each(|ikey, value| match gc.keep(ikey)? {
        Verdict::Drop => Ok(()),
        Verdict::Keep | Verdict::KeepWithSeqnoZero => writer.add(ikey, value),
    })?;
    writer.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::ValueKind;
    use crate::options::Compression;

    /// A flush sizes the filter by the memtable's distinct-key count instead of keeping every
    /// hash: the file must be the one the kept-hashes way writes, byte for byte (a count off
    /// by one key in a hundred would change the filter's size).
    #[test]
    fn a_flushed_segment_is_the_one_written_with_kept_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default();
        let mem = Memtable::with_compression(1, Compression::Snappy);
        let mut seqno = 0;
        for round in 0..3u64 {
            for i in 0..5000u64 {
                // Each round overwrites a different share of the keys, some with tombstones.
                if (i * 7 + round) % (round + 2) != 0 {
                    continue;
                }
                seqno += 1;
                let key = format!("user key {:06}", i * 2654435761 % 100_000);
                let kind = if i % 11 == 0 {
                    ValueKind::Delete
                } else {
                    ValueKind::Put
                };
                mem.insert(
                    key.as_bytes(),
                    seqno,
                    kind,
                    format!("value {i} {round}").as_bytes(),
                );
            }
        }
        assert!(
            mem.distinct_keys() < mem.len(),
            "the test needs keys with several versions"
        );
        let (added, _live) = write_segment(dir.path(), 7, &mem, Vec::new(), &opts).unwrap();

        let kept_hashes = dir.path().join("kept-hashes.seg");
        let w = SegmentWriter::create(&kept_hashes, &opts).unwrap();
        write_entries(w, &mem, Vec::new()).unwrap();

        let flushed = std::fs::read(files::segment_path(dir.path(), 7)).unwrap();
        assert_eq!(flushed.len() as u64, added.meta.size_bytes);
        assert!(flushed == std::fs::read(&kept_hashes).unwrap());
    }
}
