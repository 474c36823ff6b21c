//! Merging the input segments of a compaction and deciding which versions survive.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{Error, Result};
use crate::key::{compare_internal, parse_internal_key, SeqNo, ValueKind};
use crate::segment::SegmentIter;

type Entry = (Vec<u8>, Vec<u8>);

struct Head {
    entry: Entry,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    // Reversed: `BinaryHeap` is a max-heap and the merge wants the smallest internal key.
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&other.entry.0, &self.entry.0).then(other.source.cmp(&self.source))
    }
}

/// Every entry of several segment iterators, in internal-key order (all versions).
pub struct MergedEntries {
    sources: Vec<SegmentIter>,
    heap: BinaryHeap<Head>,
}

impl MergedEntries {
    /// Merges `sources`, each already bounded to the compaction's key range.
    pub fn new(mut sources: Vec<SegmentIter>) -> Result<Self> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (source, it) in sources.iter_mut().enumerate() {
            if let Some(entry) = it.next().transpose()? {
                heap.push(Head { entry, source });
            }
        }
        Ok(MergedEntries { sources, heap })
    }
}

impl Iterator for MergedEntries {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let Head { entry, source } = self.heap.pop()?;
        match self.sources[source].next() {
            Some(Ok(next)) => self.heap.push(Head {
                entry: next,
                source,
            }),
            Some(Err(e)) => return Some(Err(e)),
            None => {}
        }
        Some(Ok(entry))
    }
}

/// Decides, version by version in internal-key order, what a compaction keeps.
///
/// Live snapshots cut each key's history into stripes: the versions a snapshot `s` sees are
/// those with sequence number at most `s`, and only the newest of them matters to it. So of
/// each stripe — the versions between two consecutive snapshots — only the newest survives. A
/// tombstone in the oldest stripe (visible to every reader) is dropped too when no deeper
/// level may still hold the key, since then nothing remains for it to hide.
pub struct GarbageCollector<F> {
    snapshots: Vec<SeqNo>,
    exists_below: F,
    current: Option<Vec<u8>>,
    stripe: Option<usize>,
    /// Versions dropped because a newer one in the same stripe shadows them.
    pub shadowed: u64,
    /// Tombstones dropped at the bottom.
    pub tombstones: u64,
}

impl<F: FnMut(&[u8]) -> bool> GarbageCollector<F> {
    /// `snapshots` ascending; `exists_below(user_key)` tells whether a deeper level may hold it.
    pub fn new(snapshots: Vec<SeqNo>, exists_below: F) -> Self {
        GarbageCollector {
            snapshots,
            exists_below,
            current: None,
            stripe: None,
            shadowed: 0,
            tombstones: 0,
        }
    }

    /// True when the version `ikey` must be written to the output.
    pub fn keep(&mut self, ikey: &[u8]) -> Result<bool> {
        let parsed = parse_internal_key(ikey).ok_or_else(|| {
            Error::InvalidArgument("compaction input holds a malformed key".into())
        })?;
        if self.current.as_deref() != Some(parsed.user_key) {
            self.current = Some(parsed.user_key.to_vec());
            self.stripe = None;
        }
        let stripe = self.snapshots.partition_point(|&s| s < parsed.seqno);
        if self.stripe == Some(stripe) {
            self.shadowed += 1;
            return Ok(false);
        }
        self.stripe = Some(stripe);
        if parsed.kind == ValueKind::Delete && stripe == 0 && !(self.exists_below)(parsed.user_key)
        {
            self.tombstones += 1;
            return Ok(false);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    fn run(snapshots: Vec<SeqNo>, below: bool, versions: &[(u64, ValueKind)]) -> Vec<u64> {
        let mut gc = GarbageCollector::new(snapshots, |_| below);
        versions
            .iter()
            .filter(|(s, k)| gc.keep(&internal_key(b"k", *s, *k)).unwrap())
            .map(|(s, _)| *s)
            .collect()
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let v = [
            (9, ValueKind::Put),
            (5, ValueKind::Put),
            (2, ValueKind::Delete),
        ];
        assert_eq!(run(vec![], false, &v), vec![9]);
    }

    #[test]
    fn each_snapshot_keeps_the_newest_version_it_sees() {
        let v = [
            (9, ValueKind::Put),
            (7, ValueKind::Put),
            (5, ValueKind::Put),
            (2, ValueKind::Put),
        ];
        assert_eq!(run(vec![3, 7], false, &v), vec![9, 7, 2]);
    }

    #[test]
    fn a_tombstone_is_dropped_only_at_the_bottom_and_when_every_reader_sees_it() {
        let v = [(9, ValueKind::Delete), (5, ValueKind::Put)];
        assert_eq!(run(vec![], false, &v), Vec::<u64>::new());
        assert_eq!(run(vec![], true, &v), vec![9]);
        assert_eq!(run(vec![6], false, &v), vec![9, 5]);
    }
}
