//! Data and index blocks: a run of prefix-compressed entries followed by restart offsets.
//!
//! ```text
//! entry:   [shared varint][unshared varint][value_len varint][key delta][value]
//! block:   entry* [restart offset u32 LE]* [num_restarts u32 LE]
//! ```
//!
//! Every `restart_interval`-th entry stores its key whole (`shared == 0`) and its offset is
//! recorded, so a lookup can binary-search the restart points and decode only one interval.
//! See `FORMAT.md`, "Data block".

use std::cmp::Ordering;
use std::ops::Range;

use crate::coding::{self, Reader};
use crate::key::TRAILER_LEN;
use crate::options::KEY_SIZE_MAX;

/// A problem found while decoding a block; the reader turns it into
/// [`Error::Corruption`](crate::Error::Corruption) naming the file and the block's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

type Decoded<T> = std::result::Result<T, Malformed>;

fn malformed<T>(detail: impl Into<String>) -> Decoded<T> {
    Err(Malformed(detail.into()))
}

/// Accumulates sorted entries into one block.
///
/// # Invariants
/// Keys are added in strictly increasing order (the segment writer checks this before
/// calling [`BlockBuilder::add`]). Entry offsets fit in `u32` because a block is flushed once
/// it reaches the block size (at most 4 MiB) and one entry is at most a key (64 KiB) plus a
/// value (256 MiB).
///
/// The builder keeps its buffers from block to block: a segment writer builds thousands of
/// blocks, and a fresh buffer per block would regrow from empty (a dozen reallocations) every
/// time.
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    /// Set by [`BlockBuilder::finish`]: `buf` holds a whole block until the next `add`.
    finished: bool,
}

impl BlockBuilder {
    /// An empty builder that stores a whole key every `restart_interval` entries (at least 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            finished: false,
        }
    }

    /// True when no entry was added since the last [`BlockBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Size the finished block would have now.
    pub fn size_bytes(&self) -> usize {
        let entries_len = if self.finished { 0 } else { self.buf.len() };
        entries_len + 4 * self.restarts.len() + 4
    }

    /// Appends one entry, prefix-compressed against the previous key.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        if self.finished {
            self.reset();
        }
        let shared = if self.is_empty() || self.since_restart == self.restart_interval {
            self.restarts.push(offset_u32(self.buf.len()));
            self.since_restart = 0;
            0
        } else {
            common_prefix_len(&self.last_key, key)
        };
        let delta = &key[shared..];
        coding::put_varint(&mut self.buf, shared as u64);
        coding::put_varint(&mut self.buf, delta.len() as u64);
        coding::put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(delta);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(delta);
        self.since_restart += 1;
    }

    /// Appends the restart array and returns the block's bytes, which stay valid until the
    /// next [`BlockBuilder::add`]; the builder is empty from then on.
    pub fn finish(&mut self) -> &[u8] {
        if !self.finished {
            for &r in &self.restarts {
                coding::put_u32(&mut self.buf, r);
            }
            coding::put_u32(&mut self.buf, offset_u32(self.restarts.len()));
            self.restarts.clear();
            self.since_restart = 0;
            self.last_key.clear();
            self.finished = true;
        }
        &self.buf
    }

    /// Forgets the finished block, keeping the buffer's capacity.
    fn reset(&mut self) {
        self.buf.clear();
        self.finished = false;
    }
}

fn offset_u32(n: usize) -> u32 {
    // The builder's invariant keeps this in range; saturating keeps it panic-free regardless.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Length of the longest common prefix, compared eight bytes at a time (keys share most of
/// their bytes with their predecessor, so a byte-at-a-time loop runs long).
fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (wa, wb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    let mut at = 0;
    for (x, y) in wa.zip(wb) {
        let diff = word(x) ^ word(y);
        if diff != 0 {
            // Little-endian words: the first differing byte is the lowest set byte.
            return at + (diff.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + a[at..n]
        .iter()
        .zip(&b[at..n])
        .take_while(|(x, y)| x == y)
        .count()
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

/// Where a checked block's entry region ends (see [`BlockView::layout`]).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    entries_len: usize,
}

/// A parsed, validated view of one block's uncompressed bytes.
///
/// # Invariants
/// After [`BlockView::parse`], every restart offset is strictly increasing and lies inside
/// the entry region, so decoding may start at any of them.
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    entries: &'a [u8],
    restarts: &'a [u8],
}

impl<'a> BlockView<'a> {
    /// Splits `contents` into the entry region and the restart array and checks the restarts.
    pub fn parse(contents: &'a [u8]) -> Decoded<Self> {
        let Some(count_at) = contents.len().checked_sub(4) else {
            return malformed(format!("block of {} bytes is too short", contents.len()));
        };
        let count = coding::u32_at(contents, count_at).unwrap_or(0) as usize;
        let Some(entries_len) = count.checked_mul(4).and_then(|n| count_at.checked_sub(n)) else {
            return malformed(format!("restart count {count} does not fit in the block"));
        };
        let view = BlockView {
            entries: &contents[..entries_len],
            restarts: &contents[entries_len..count_at],
        };
        view.check_restarts()?;
        Ok(view)
    }

    /// Where the entry region ends: with the same bytes, [`BlockView::with_layout`] rebuilds
    /// this view without checking the restarts again.
    pub fn layout(&self) -> Layout {
        Layout {
            entries_len: self.entries.len(),
        }
    }

    /// The view [`BlockView::parse`] returned for `contents`, given its [`Layout`]. `contents`
    /// must be the bytes that were parsed; other bytes give a view that decodes garbage as
    /// [`Malformed`] errors, never a panic.
    pub fn with_layout(contents: &'a [u8], layout: Layout) -> Self {
        let count_at = contents.len().saturating_sub(4);
        BlockView {
            entries: contents.get(..layout.entries_len).unwrap_or_default(),
            restarts: contents
                .get(layout.entries_len..count_at)
                .unwrap_or_default(),
        }
    }

    /// Length of the entry region: decoding is done once the next entry offset reaches it.
    pub fn entries_len(&self) -> usize {
        self.entries.len()
    }

    fn check_restarts(&self) -> Decoded<()> {
        if self.restart_count() == 0 && !self.entries.is_empty() {
            return malformed("block has entries but no restart point");
        }
        let mut prev: Option<usize> = None;
        for i in 0..self.restart_count() {
            let at = self.restart(i);
            let first_ok = i > 0 || at == 0;
            if !first_ok || at >= self.entries.len() || prev.is_some_and(|p| at <= p) {
                return malformed(format!("restart offset {at} (#{i}) is out of range"));
            }
            prev = Some(at);
        }
        Ok(())
    }

    fn restart_count(&self) -> usize {
        self.restarts.len() / 4
    }

    fn restart(&self, i: usize) -> usize {
        coding::u32_at(self.restarts, i * 4).unwrap_or(u32::MAX) as usize
    }

    /// Decodes the entry at `pos` given the previous key (which it replaces with this key);
    /// returns where the value lies in the block and the offset of the next entry.
    pub fn decode_at(&self, pos: usize, key: &mut Vec<u8>) -> Decoded<(Range<usize>, usize)> {
        let (value, next) = self.entry_at(pos, key)?;
        Ok((next - value.len()..next, next))
    }

    /// The value bytes at `range`, as [`BlockView::decode_at`] returned it.
    pub fn value(&self, range: Range<usize>) -> &'a [u8] {
        self.entries.get(range).unwrap_or_default()
    }

    /// Offset of the restart point from which a forward scan finds the first key `>= target`
    /// under `cmp` (the scan starts with an empty previous key).
    pub fn seek_start(
        &self,
        target: &[u8],
        cmp: impl Fn(&[u8], &[u8]) -> Ordering,
    ) -> Decoded<usize> {
        if self.restart_count() == 0 {
            return Ok(0);
        }
        Ok(self.restart(self.last_restart_below(target, &cmp)?))
    }

    /// Decodes the entry at `pos` given the previous key (which it replaces with this key);
    /// returns the value and the offset of the next entry.
    fn entry_at(&self, pos: usize, key: &mut Vec<u8>) -> Decoded<(&'a [u8], usize)> {
        let mut r = Reader::new(self.entries.get(pos..).unwrap_or_default());
        let bad = |what: &str| Malformed(format!("entry at block offset {pos}: {what}"));
        let shared = r.varint().ok_or_else(|| bad("truncated header"))?;
        let unshared = r.len().ok_or_else(|| bad("key length past the end"))?;
        let value_len = r.len().ok_or_else(|| bad("value length past the end"))?;
        let shared = usize::try_from(shared)
            .ok()
            .filter(|&s| s <= key.len())
            .ok_or_else(|| bad("shared prefix longer than the previous key"))?;
        if shared.saturating_add(unshared) > KEY_SIZE_MAX + TRAILER_LEN {
            // Bounds what a run of prefix-sharing entries can make us allocate.
            return Err(bad("key longer than the largest key alluvium writes"));
        }
        let delta = r.bytes(unshared).ok_or_else(|| bad("key past the end"))?;
        let value = r
            .bytes(value_len)
            .ok_or_else(|| bad("value past the end"))?;
        key.truncate(shared);
        key.extend_from_slice(delta);
        Ok((value, pos + r.pos()))
    }

    /// Every entry in order, as owned `(key, value)` pairs.
    pub fn entries(&self) -> Decoded<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut key = Vec::new();
        let mut pos = 0;
        while pos < self.entries.len() {
            let (value, next) = self.entry_at(pos, &mut key)?;
            out.push((key.clone(), value.to_vec()));
            pos = next;
        }
        Ok(out)
    }

    /// The first entry whose key is `>= target` under `cmp`, found by binary search over the
    /// restart points and a linear scan of one interval; `None` if every key is smaller.
    pub fn seek(
        &self,
        target: &[u8],
        cmp: impl Fn(&[u8], &[u8]) -> Ordering,
    ) -> Decoded<Option<(Vec<u8>, &'a [u8])>> {
        let mut key = Vec::new();
        let mut pos = self.restart(self.last_restart_below(target, &cmp)?);
        while pos < self.entries.len() {
            let (value, next) = self.entry_at(pos, &mut key)?;
            if cmp(&key, target).is_ge() {
                return Ok(Some((key, value)));
            }
            pos = next;
        }
        Ok(None)
    }

    /// Index of the last restart point whose key is `< target` (0 if none is), so the first
    /// key `>= target` lies in that restart interval or at the start of the next one.
    fn last_restart_below(
        &self,
        target: &[u8],
        cmp: &impl Fn(&[u8], &[u8]) -> Ordering,
    ) -> Decoded<usize> {
        let (mut lo, mut hi) = (0, self.restart_count());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cmp(self.restart_key(mid)?, target).is_lt() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The key at restart point `i`, borrowed from the block: a restart entry shares no
    /// prefix, so its key is stored whole.
    fn restart_key(&self, i: usize) -> Decoded<&'a [u8]> {
        let at = self.restart(i);
        let mut r = Reader::new(self.entries.get(at..).unwrap_or_default());
        if r.varint() != Some(0) {
            return malformed(format!(
                "restart point at block offset {at} shares a prefix"
            ));
        }
        let bad = |what: &str| Malformed(format!("entry at block offset {at}: {what}"));
        let unshared = r.len().ok_or_else(|| bad("key length past the end"))?;
        r.len().ok_or_else(|| bad("value length past the end"))?;
        if unshared > KEY_SIZE_MAX + TRAILER_LEN {
            return Err(bad("key longer than the largest key alluvium writes"));
        }
        r.bytes(unshared).ok_or_else(|| bad("key past the end"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn build(keys: &[&[u8]], interval: usize) -> Vec<u8> {
        let mut b = BlockBuilder::new(interval);
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        b.finish().to_vec()
    }

    const KEYS: &[&[u8]] = &[
        b"apple", b"apricot", b"banana", b"band", b"bandana", b"cherry", b"cherub",
    ];

    #[test]
    fn entries_decode_to_what_was_added_for_every_restart_interval() {
        for interval in [1, 2, 3, 16] {
            let bytes = build(KEYS, interval);
            let got = BlockView::parse(&bytes).unwrap().entries().unwrap();
            let keys: Vec<&[u8]> = got.iter().map(|(k, _)| k.as_slice()).collect();
            assert_eq!(keys, KEYS);
            assert_eq!(got[3].1, b"v3");
        }
    }

    #[test]
    fn a_reused_builder_writes_the_bytes_a_fresh_one_writes() {
        let mut b = BlockBuilder::new(2);
        let empty_size = b.size_bytes();
        for round in 0..3 {
            let keys = &KEYS[round..];
            for (i, k) in keys.iter().enumerate() {
                b.add(k, format!("v{i}").as_bytes());
            }
            assert_eq!(b.size_bytes(), build(keys, 2).len());
            assert_eq!(b.finish(), build(keys, 2).as_slice());
            assert_eq!(b.finish(), build(keys, 2).as_slice(), "finish twice");
            assert!(b.is_empty());
            assert_eq!(b.size_bytes(), empty_size);
        }
    }

    #[test]
    fn common_prefix_len_matches_a_byte_by_byte_count() {
        let slow = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let base: Vec<u8> = (0..40u8).collect();
        for len_a in [0, 1, 7, 8, 9, 16, 23, 24, 40] {
            for diff_at in 0..40 {
                let a = &base[..len_a];
                let mut b = base.clone();
                b[diff_at] ^= 0x80;
                assert_eq!(common_prefix_len(a, &b), slow(a, &b), "{len_a} {diff_at}");
                assert_eq!(common_prefix_len(&b, a), slow(&b, a), "{len_a} {diff_at}");
            }
        }
    }

    #[test]
    fn seek_finds_the_first_key_at_or_after_the_target() {
        for interval in [1, 2, 4] {
            let bytes = build(KEYS, interval);
            let view = BlockView::parse(&bytes).unwrap();
            let seek = |t: &[u8]| view.seek(t, |a, b| a.cmp(b)).unwrap().map(|(k, _)| k);
            assert_eq!(seek(b"a"), Some(b"apple".to_vec()));
            assert_eq!(seek(b"band"), Some(b"band".to_vec()));
            assert_eq!(seek(b"bandb"), Some(b"cherry".to_vec()));
            assert_eq!(seek(b"z"), None);
        }
    }

    #[test]
    fn bad_restart_counts_and_offsets_are_malformed() {
        let bytes = build(KEYS, 2);
        let n = bytes.len();
        let mut huge = bytes.clone();
        huge[n - 4..].copy_from_slice(&1000u32.to_le_bytes());
        assert!(BlockView::parse(&huge).is_err());
        let mut off = bytes.clone();
        off[n - 8..n - 4].copy_from_slice(&60_000u32.to_le_bytes());
        assert!(BlockView::parse(&off).is_err());
        assert!(BlockView::parse(&[1, 0]).is_err());
    }

    #[test]
    fn shared_prefix_longer_than_the_previous_key_is_malformed() {
        // One entry claiming to share 5 bytes with a previous key that does not exist.
        let mut bytes = vec![5, 1, 0, b'x'];
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        let err = BlockView::parse(&bytes).unwrap().entries().unwrap_err();
        assert!(err.0.contains("shared prefix"), "{err:?}");
    }

    #[test]
    fn lengths_past_the_end_are_malformed() {
        let mut bytes = vec![0, 1, 9, b'k', b'v'];
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        assert!(BlockView::parse(&bytes).unwrap().entries().is_err());
    }
}
