//! The in-memory index of an open segment: each data block's last internal key and handle.
//!
//! Decoded once at open from the index block (`FORMAT.md`, "Index block") into three flat
//! arrays rather than a vector of entries each owning its key: one allocation per array
//! instead of one per data block (a 64 MiB segment has about 10,000 blocks), about 48 bytes
//! per block instead of about 72, and a binary search that walks contiguous memory.

use super::block::{BlockView, Malformed};
use super::format::BlockHandle;
use crate::coding::Reader;
use crate::key;

type Decoded<T> = std::result::Result<T, Malformed>;

/// Every data block's last internal key and handle, in file (and key) order.
///
/// # Invariants
/// After [`BlockIndex::decode`]: `key_ends` and `handles` have one element per data block;
/// `key_ends` is non-decreasing and its last element is `keys.len()`; the keys are valid
/// internal keys in strictly increasing [`compare_internal`](key::compare_internal) order;
/// every handle (with its trailer) ends at or before the end of the data area.
#[derive(Debug, Default)]
pub struct BlockIndex {
    /// The keys, concatenated.
    keys: Vec<u8>,
    /// Where key `i` ends in `keys` (it starts where key `i - 1` ends).
    key_ends: Vec<usize>,
    handles: Vec<BlockHandle>,
}

impl BlockIndex {
    /// Decodes and checks an index block's uncompressed `contents`; handles must end by
    /// `data_end`, the offset where the data blocks end.
    pub fn decode(contents: &[u8], data_end: u64) -> Decoded<BlockIndex> {
        let view = BlockView::parse(contents)?;
        let mut index = BlockIndex::default();
        let mut key = Vec::new();
        let mut pos = 0;
        while pos < view.entries_len() {
            let (value, next) = view.decode_at(pos, &mut key)?;
            index.push(&key, view.value(value), data_end)?;
            pos = next;
        }
        Ok(index)
    }

    /// Appends one decoded entry after checking it against the previous one.
    fn push(&mut self, last_key: &[u8], value: &[u8], data_end: u64) -> Decoded<()> {
        let n = self.len();
        let mut r = Reader::new(value);
        let handle = BlockHandle::decode_from(&mut r)
            .filter(|h| r.is_empty() && h.end_with_trailer().is_some_and(|end| end <= data_end))
            .ok_or_else(|| Malformed(format!("index entry #{n} has a bad block handle")))?;
        let ordered = self
            .last_key()
            .is_none_or(|prev| key::compare_internal(prev, last_key).is_lt());
        if !ordered || key::parse_internal_key(last_key).is_none() {
            return Err(Malformed(format!(
                "index key #{n} is malformed or out of order"
            )));
        }
        self.keys.extend_from_slice(last_key);
        self.key_ends.push(self.keys.len());
        self.handles.push(handle);
        Ok(())
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// The last internal key of block `i`; `None` past the last block.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let end = *self.key_ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.key_ends[i - 1],
        };
        self.keys.get(start..end)
    }

    /// The handle of block `i`; `None` past the last block.
    pub fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.handles.get(i).copied()
    }

    /// The last key of the last block: the segment's largest key.
    pub fn last_key(&self) -> Option<&[u8]> {
        self.key(self.len().checked_sub(1)?)
    }

    /// Every handle, in key order.
    pub fn handles(&self) -> &[BlockHandle] {
        &self.handles
    }

    /// Index of the first block whose last key is `>= target` (under
    /// [`compare_internal`](key::compare_internal)), or the block count if none is.
    pub fn first_reaching(&self, target: &[u8]) -> usize {
        self.partition_point(|k| key::compare_internal(k, target).is_lt())
    }

    /// Index of the first block whose last key is not `before` (the keys are sorted, so
    /// `before` holds for a prefix of them), as [`slice::partition_point`].
    pub fn partition_point(&self, before: impl Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid).is_some_and(&before) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};
    use crate::segment::block::BlockBuilder;

    /// An index block over blocks ending at `user_keys` (seqno 1), block `i` at offset
    /// `100 * i`, 90 bytes long.
    fn index_block(user_keys: &[&[u8]]) -> Vec<u8> {
        let mut b = BlockBuilder::new(1);
        for (i, k) in user_keys.iter().enumerate() {
            let mut handle = Vec::new();
            let offset = 100 * i as u64;
            BlockHandle {
                offset,
                size_bytes: 90,
            }
            .encode_to(&mut handle);
            b.add(&internal_key(k, 1, ValueKind::Put), &handle);
        }
        b.finish().to_vec()
    }

    const KEYS: &[&[u8]] = &[b"apple", b"banana", b"bandana", b"cherry"];

    #[test]
    fn decoded_index_returns_every_key_and_handle_in_order() {
        let index = BlockIndex::decode(&index_block(KEYS), 1000).unwrap();
        assert_eq!(index.len(), 4);
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(index.key(i).unwrap(), internal_key(k, 1, ValueKind::Put));
            assert_eq!(index.handle(i).unwrap().offset, 100 * i as u64);
        }
        assert_eq!(index.key(4), None);
        assert_eq!(index.handle(4), None);
        assert_eq!(index.last_key(), index.key(3));
        assert_eq!(index.handles().len(), 4);
    }

    #[test]
    fn first_reaching_finds_the_only_block_that_can_hold_the_target() {
        let index = BlockIndex::decode(&index_block(KEYS), 1000).unwrap();
        let find = |k: &[u8], seqno| index.first_reaching(&internal_key(k, seqno, ValueKind::Put));
        assert_eq!(find(b"a", 9), 0);
        assert_eq!(find(b"apple", 9), 0);
        // An older version of "apple" than the block's last key sorts after it.
        assert_eq!(find(b"apple", 0), 1);
        assert_eq!(find(b"banana", 1), 1);
        assert_eq!(find(b"band", 1), 2);
        assert_eq!(find(b"cherry", 1), 3);
        assert_eq!(find(b"zebra", 1), 4);
        assert_eq!(BlockIndex::default().first_reaching(b"anything"), 0);
        let at_or_before_banana = |k: &[u8]| key::user_key(k) <= &b"banana"[..];
        assert_eq!(index.partition_point(at_or_before_banana), 2);
    }

    #[test]
    fn out_of_order_keys_and_handles_past_the_data_are_malformed() {
        let err = BlockIndex::decode(&index_block(&[b"b", b"a"]), 1000).unwrap_err();
        assert!(err.0.contains("out of order"), "{err:?}");
        // The second block ends at 100 + 90 + trailer, past a data area of 150 bytes.
        let err = BlockIndex::decode(&index_block(&[b"a", b"b"]), 150).unwrap_err();
        assert!(err.0.contains("bad block handle"), "{err:?}");
        let mut b = BlockBuilder::new(1);
        b.add(b"short", b"\x00\x01");
        let err = BlockIndex::decode(b.finish(), 1000).unwrap_err();
        assert!(err.0.contains("malformed"), "{err:?}");
    }
}
