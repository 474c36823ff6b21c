//! Merging the input segments of a compaction and deciding which versions survive.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::key::{compare_internal, parse_internal_key, SeqNo, ValueKind};
use crate::segment::SegmentIter;

/// Every entry of several segment iterators, in internal-key order (all versions), read in
/// place: [`MergedEntries::current`] borrows the smallest entry from its segment's block and
/// nothing is copied unless the caller keeps it.
///
/// # Invariants
/// `heap` holds the index of every source that has a current entry, as a binary min-heap
/// under [`MergedEntries::less`]: internal-key order, then the lower source index first.
pub struct MergedEntries {
    sources: Vec<SegmentIter>,
    heap: Vec<usize>,
}

impl MergedEntries {
    /// Merges `sources`, each already bounded to the compaction's key range.
    pub fn new(mut sources: Vec<SegmentIter>) -> Result<Self> {
        let mut heap = Vec::with_capacity(sources.len());
        for (i, it) in sources.iter_mut().enumerate() {
            if it.advance()? {
                heap.push(i);
            }
        }
        let mut merged = MergedEntries { sources, heap };
        for at in (0..merged.heap.len() / 2).rev() {
            merged.sift_down(at);
        }
        Ok(merged)
    }

    /// The smallest entry not yet passed, as `(internal key, value)`; `None` at the end.
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        let top = &self.sources[*self.heap.first()?];
        Some((top.key(), top.value()))
    }

    /// Moves past the current entry.
    pub fn advance(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        if !self.sources[top].advance()? {
            self.heap.swap_remove(0);
        }
        self.sift_down(0);
        Ok(())
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let by_key = compare_internal(self.sources[a].key(), self.sources[b].key());
        by_key.then(a.cmp(&b)) == Ordering::Less
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut smallest = at;
            for child in [left, right] {
                if child < self.heap.len() && self.less(self.heap[child], self.heap[smallest]) {
                    smallest = child;
                }
            }
            if smallest == at {
                return;
            }
            self.heap.swap(at, smallest);
            at = smallest;
        }
    }
}

/// Decides, version by version in internal-key order, what a compaction keeps.
///
/// Live snapshots cut each key's history into stripes: the versions a snapshot `s` sees are
/// those with sequence number at most `s`, and only the newest of them matters to it. So of
/// each stripe — the versions between two consecutive snapshots — only the newest survives. A
/// tombstone in the oldest stripe (visible to every reader) is dropped too when no deeper
/// level may still hold the key, since then nothing remains for it to hide.
///
/// With [`GarbageCollector::zero_seqnos`], a put in the oldest stripe whose key no deeper level
/// may hold is kept with sequence number 0 (RocksDB does the same at its bottommost level):
/// every reader already sees it, nothing older remains for the sequence number to order it
/// against, and a trailer of zeros costs a few bytes after compression where a real sequence
/// number costs five or six.
pub struct GarbageCollector<F> {
    snapshots: Vec<SeqNo>,
    exists_below: F,
    zero_seqnos: bool,
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
            zero_seqnos: false,
            current: None,
            stripe: None,
            shadowed: 0,
            tombstones: 0,
        }
    }

    /// Keeps puts every reader sees with sequence number 0 where nothing deeper holds their key
    /// (compactions do; a flush writes to level 0, above everything, and does not).
    pub fn zero_seqnos(mut self) -> Self {
        self.zero_seqnos = true;
        self
    }

    /// What to do with the version `ikey`.
    pub fn keep(&mut self, ikey: &[u8]) -> Result<Verdict> {
        let parsed = parse_internal_key(ikey).ok_or_else(|| {
            Error::InvalidArgument("compaction input holds a malformed key".into())
        })?;
        if self.current.as_deref() != Some(parsed.user_key) {
            // Reuses the buffer: one allocation per key would be one per entry written.
            let current = self.current.get_or_insert_with(Vec::new);
            current.clear();
            current.extend_from_slice(parsed.user_key);
            self.stripe = None;
        }
        let stripe = self.snapshots.partition_point(|&s| s < parsed.seqno);
        if self.stripe == Some(stripe) {
            self.shadowed += 1;
            return Ok(Verdict::Drop);
        }
        self.stripe = Some(stripe);
        if stripe > 0 || (parsed.kind == ValueKind::Put && !self.zero_seqnos) || parsed.seqno == 0 {
            return Ok(Verdict::Keep);
        }
        if (self.exists_below)(parsed.user_key) {
            return Ok(Verdict::Keep);
        }
        match parsed.kind {
            ValueKind::Delete => {
                self.tombstones += 1;
                Ok(Verdict::Drop)
            }
            ValueKind::Put => Ok(Verdict::KeepWithSeqnoZero),
        }
    }
}

/// What a compaction or flush does with one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not written: a newer version hides it from every reader, or it is a tombstone with
    /// nothing left to hide.
    Drop,
    /// Written as it is.
    Keep,
    /// Written with sequence number 0 (see [`GarbageCollector::zero_seqnos`]).
    KeepWithSeqnoZero,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    /// The sequence numbers written, 0 where the collector zeroes one.
    fn run_with(
        gc: &mut GarbageCollector<impl FnMut(&[u8]) -> bool>,
        versions: &[(u64, ValueKind)],
    ) -> Vec<u64> {
        versions
            .iter()
            .filter_map(
                |(s, k)| match gc.keep(&internal_key(b"k", *s, *k)).unwrap() {
                    Verdict::Drop => None,
                    Verdict::Keep => Some(*s),
                    Verdict::KeepWithSeqnoZero => Some(0),
                },
            )
            .collect()
    }

    fn run(snapshots: Vec<SeqNo>, below: bool, versions: &[(u64, ValueKind)]) -> Vec<u64> {
        run_with(&mut GarbageCollector::new(snapshots, |_| below), versions)
    }

    fn run_zeroing(snapshots: Vec<SeqNo>, below: bool, v: &[(u64, ValueKind)]) -> Vec<u64> {
        run_with(
            &mut GarbageCollector::new(snapshots, |_| below).zero_seqnos(),
            v,
        )
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

    #[test]
    fn only_a_put_every_reader_sees_with_nothing_below_gets_sequence_number_zero() {
        let v = [(9, ValueKind::Put), (5, ValueKind::Put)];
        assert_eq!(run_zeroing(vec![], false, &v), vec![0]);
        // Something deeper may hold an older version: the order must stay.
        assert_eq!(run_zeroing(vec![], true, &v), vec![9]);
        // A snapshot at 6 does not see 9: 9 keeps its number, 5 (seen by all) is zeroed.
        assert_eq!(run_zeroing(vec![6], false, &v), vec![9, 0]);
        // A snapshot at 4 sees neither: 5 goes, 9 keeps its number (the snapshot must not
        // see it).
        assert_eq!(run_zeroing(vec![4], false, &v), vec![9]);
        // Tombstones are dropped, never zeroed; without zero_seqnos nothing is zeroed.
        let t = [(9, ValueKind::Delete), (5, ValueKind::Put)];
        assert_eq!(run_zeroing(vec![], false, &t), Vec::<u64>::new());
        assert_eq!(run(vec![], false, &v), vec![9]);
    }
}
