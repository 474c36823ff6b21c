//! A version: the set of live segments at one moment, per level.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::edit::VersionEdit;
use super::LEVELS;
use crate::error::{Error, Result};
use crate::key::{compare_internal, SeqNo};
use crate::segment::{Segment, SegmentId, SegmentMeta};

/// An open segment as the version set tracks it.
///
/// # Invariants
/// The file is deleted when the last `Arc` of it drops *and* a version edit removed it: any
/// version, iterator or snapshot holding it keeps the file on disk.
#[derive(Debug)]
pub struct LiveSegment {
    /// The open segment.
    pub segment: Arc<Segment>,
    /// Its metadata as the manifest records it.
    pub meta: SegmentMeta,
    obsolete: AtomicBool,
}

impl LiveSegment {
    /// Wraps an open segment.
    pub fn new(segment: Arc<Segment>, meta: SegmentMeta) -> Arc<Self> {
        Arc::new(LiveSegment {
            segment,
            meta,
            obsolete: AtomicBool::new(false),
        })
    }

    /// The segment's id.
    pub fn id(&self) -> SegmentId {
        self.segment.id()
    }

    /// The smallest user key in the segment.
    pub fn smallest_user_key(&self) -> &[u8] {
        crate::key::user_key(&self.meta.smallest)
    }

    /// The largest user key in the segment.
    pub fn largest_user_key(&self) -> &[u8] {
        crate::key::user_key(&self.meta.largest)
    }

    /// Marks the file for deletion once nothing uses it any more.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    fn path(&self) -> PathBuf {
        self.segment.path().to_path_buf()
    }
}

impl Drop for LiveSegment {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Best effort: a file left behind is removed at the next open.
            let _ = std::fs::remove_file(self.path());
        }
    }
}

/// The live segments of every level at one moment. Immutable once built.
///
/// # Invariants
/// Level 0 is ordered oldest first (by flush). Levels 1 and deeper are sorted by smallest key
/// and their segments do not overlap.
#[derive(Debug, Clone, Default)]
pub struct Version {
    levels: Vec<Vec<Arc<LiveSegment>>>,
}

impl Version {
    /// An empty version with every level present.
    pub fn empty() -> Self {
        Version {
            levels: vec![Vec::new(); LEVELS],
        }
    }

    /// The segments of `level`.
    pub fn level(&self, level: usize) -> &[Arc<LiveSegment>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Number of levels.
    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// Every live segment.
    pub fn all(&self) -> impl Iterator<Item = &Arc<LiveSegment>> {
        self.levels.iter().flatten()
    }

    /// Largest sequence number in any segment (0 when there is none).
    pub fn seqno_max(&self) -> SeqNo {
        self.all().map(|s| s.meta.seqno_max).max().unwrap_or(0)
    }

    /// A new version with `edit` applied, and the segments it removed; `opened` supplies the
    /// segments the edit adds. The caller marks the removed segments obsolete once the edit is
    /// durable.
    pub fn apply(
        &self,
        edit: &VersionEdit,
        opened: &[Arc<LiveSegment>],
    ) -> Result<(Version, Vec<Arc<LiveSegment>>)> {
        let mut next = self.clone();
        let mut removed = Vec::new();
        for (level, id) in &edit.deleted {
            let files = &mut next.levels[*level as usize];
            let at = files.iter().position(|s| s.id() == *id).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "version edit deletes segment {id} absent from level {level}"
                ))
            })?;
            removed.push(files.remove(at));
        }
        for added in &edit.added {
            let seg = opened.iter().find(|s| s.id() == added.id).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "version edit adds segment {} that is not open",
                    added.id
                ))
            })?;
            next.levels[added.level as usize].push(seg.clone());
        }
        for level in next.levels.iter_mut().skip(1) {
            level.sort_by(|a, b| compare_internal(&a.meta.smallest, &b.meta.smallest));
        }
        Ok((next, removed))
    }

    /// Sum of the file sizes of `level`.
    pub fn level_size_bytes(&self, level: usize) -> u64 {
        self.level(level).iter().map(|s| s.meta.size_bytes).sum()
    }

    /// Segments of `level` whose user-key range meets `[smallest, largest]` (user keys).
    pub fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<LiveSegment>> {
        self.level(level)
            .iter()
            .filter(|s| s.smallest_user_key() <= largest && s.largest_user_key() >= smallest)
            .cloned()
            .collect()
    }

    /// True when some segment of a level deeper than `level` may hold `user_key`.
    pub fn may_exist_below(&self, level: usize, user_key: &[u8]) -> bool {
        // Levels 1 and deeper are sorted and do not overlap: the only candidate is the first
        // segment whose largest key is not below `user_key`.
        (level + 1..self.levels.len()).any(|l| {
            let segs = self.level(l);
            let at = segs.partition_point(|s| s.largest_user_key() < user_key);
            segs.get(at)
                .is_some_and(|s| s.smallest_user_key() <= user_key)
        })
    }
}
