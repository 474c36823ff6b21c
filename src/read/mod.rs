//! The read path: merging the memtables and segments into one ordered view.
//!
//! [`DbIter`] merges any number of sources — memtable iterators and segment iterators, each a
//! double-ended iterator of encoded internal keys — and turns versions into user entries: the
//! newest version at or below the read's sequence number wins, tombstones hide their key.

mod level;
mod merge;

pub use level::LevelIter;
pub use merge::DbIter;
pub(crate) use merge::Source;

use std::ops::Bound;

use crate::key::{internal_key, ValueKind, SEQNO_MAX};
use crate::memtable::MemKey;

/// Converts a user-key lower bound into an encoded internal-key bound covering every version.
pub(crate) fn lower_internal(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(internal_key(k, SEQNO_MAX, ValueKind::Put)),
        Bound::Excluded(k) => Bound::Excluded(internal_key(k, 0, ValueKind::Delete)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Converts a user-key upper bound into an encoded internal-key bound covering every version.
pub(crate) fn upper_internal(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(internal_key(k, 0, ValueKind::Delete)),
        Bound::Excluded(k) => Bound::Excluded(internal_key(k, SEQNO_MAX, ValueKind::Put)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The same bound in the memtable's key type.
pub(crate) fn to_memtable_bound(b: &Bound<Vec<u8>>) -> Bound<MemKey> {
    match b {
        Bound::Included(k) => Bound::Included(MemKey::from_internal_key(k)),
        Bound::Excluded(k) => Bound::Excluded(MemKey::from_internal_key(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` when there is no
/// such key (the prefix is empty or all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let end = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut out = prefix[..=end].to_vec();
    out[end] += 1;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
