//! One source over a whole level: its non-overlapping segments read one after another.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::manifest::LiveSegment;
use crate::segment::SegmentIter;

type Entry = (Vec<u8>, Vec<u8>);

/// Concatenates the segments of one level (1 or deeper), opening each only when reached.
///
/// # Invariants
/// `segments` are sorted and do not overlap, so their concatenation is in internal-key order.
/// As every source of the merging iterator, the front and the back walk independently.
pub struct LevelIter {
    segments: Vec<Arc<LiveSegment>>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: (usize, Option<SegmentIter>),
    back: (usize, Option<SegmentIter>),
}

impl LevelIter {
    /// Iterates `segments` (sorted, non-overlapping) between two internal-key bounds.
    pub fn new(
        segments: Vec<Arc<LiveSegment>>,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    ) -> Self {
        let n = segments.len();
        LevelIter {
            segments,
            lower,
            upper,
            front: (0, None),
            back: (n, None),
        }
    }

    fn open(&self, i: usize) -> SegmentIter {
        self.segments[i]
            .segment
            .range(self.lower.clone(), self.upper.clone())
    }
}

impl Iterator for LevelIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.front.1.as_mut().and_then(Iterator::next) {
                return Some(item);
            }
            if self.front.0 >= self.segments.len() {
                return None;
            }
            self.front.1 = Some(self.open(self.front.0));
            self.front.0 += 1;
        }
    }
}

impl DoubleEndedIterator for LevelIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self
                .back
                .1
                .as_mut()
                .and_then(DoubleEndedIterator::next_back)
            {
                return Some(item);
            }
            if self.back.0 == 0 {
                return None;
            }
            self.back.0 -= 1;
            self.back.1 = Some(self.open(self.back.0));
        }
    }
}
