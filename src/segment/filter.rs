//! The bloom filter over a segment's user keys.
//!
//! ```text
//! filter block: [bit array, ceil(bits / 8) bytes][k u8]
//! ```
//!
//! Each user key is hashed once with xxh3-64; `h1` is the low 32 bits and `h2` the high 32
//! bits, and probe `i` (for `i` in `0..k`) sets bit `(h1 + i * h2) mod bits`, computed in
//! 64-bit arithmetic, where bit `b` is bit `b % 8` of byte `b / 8`. Double hashing gives `k`
//! probes for the price of one hash. Filtering on user keys (not internal keys) is what lets
//! a point lookup at any snapshot use the filter. See `FORMAT.md`, "Filter block".

use xxhash_rust::xxh3::xxh3_64;

/// The fewest bits a non-empty filter has, so tiny segments still filter usefully.
const FILTER_BITS_MIN: u64 = 64;

/// Most probes per key; more only costs time once bits per key exceed ~43.
const PROBES_MAX: u32 = 30;

/// Collects user-key hashes and builds the filter at the end of the segment.
#[derive(Debug)]
pub struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
    last_user_key: Option<Vec<u8>>,
}

impl FilterBuilder {
    /// A builder; `bits_per_key == 0` builds the empty filter.
    pub fn new(bits_per_key: u32) -> Self {
        FilterBuilder {
            bits_per_key,
            hashes: Vec::new(),
            last_user_key: None,
        }
    }

    /// Adds a user key. Versions of one key arrive consecutively, so comparing with the
    /// previous key is enough to count each user key once.
    pub fn add(&mut self, user_key: &[u8]) {
        if self.bits_per_key == 0 || self.last_user_key.as_deref() == Some(user_key) {
            return;
        }
        self.hashes.push(xxh3_64(user_key));
        // Reuses the buffer: a new one per key would be an allocation per entry written.
        let last = self.last_user_key.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(user_key);
    }

    /// The filter block's bytes; empty when filtering is disabled or no key was added.
    pub fn finish(&self) -> Vec<u8> {
        if self.bits_per_key == 0 || self.hashes.is_empty() {
            return Vec::new();
        }
        let wanted = (self.hashes.len() as u64).saturating_mul(u64::from(self.bits_per_key));
        let bytes = wanted.max(FILTER_BITS_MIN).div_ceil(8);
        let mut out = vec![0u8; usize::try_from(bytes).unwrap_or(usize::MAX)];
        let bits = out.len() as u64 * 8;
        let k = probe_count(self.bits_per_key);
        for &h in &self.hashes {
            for bit in probes(h, k, bits) {
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        out.push(k as u8);
        out
    }
}

/// `round(bits_per_key * ln 2)`, the probe count that minimises the false-positive rate,
/// clamped to `1..=30`.
fn probe_count(bits_per_key: u32) -> u32 {
    let k = (f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32;
    k.clamp(1, PROBES_MAX)
}

fn probes(h: u64, k: u32, bits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h & 0xffff_ffff, h >> 32);
    (0..u64::from(k)).map(move |i| (h1 + i * h2) % bits)
}

/// False only when `user_key` is certainly not in the segment the filter was built for.
///
/// An empty filter, or one whose probe count this version does not write, answers true:
/// a filter may only ever save work, never hide a key.
pub fn may_contain(filter: &[u8], user_key: &[u8]) -> bool {
    let Some((&k, bit_array)) = filter.split_last() else {
        return true;
    };
    if bit_array.is_empty() || !(1..=PROBES_MAX).contains(&u32::from(k)) {
        return true;
    }
    let bits = bit_array.len() as u64 * 8;
    probes(xxh3_64(user_key), u32::from(k), bits).all(|bit| {
        let byte = bit_array.get((bit / 8) as usize).copied().unwrap_or(0xff);
        byte & (1 << (bit % 8)) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: u32, bits_per_key: u32) -> Vec<u8> {
        let mut b = FilterBuilder::new(bits_per_key);
        for i in 0..n {
            b.add(format!("key{i:08}").as_bytes());
        }
        b.finish()
    }

    #[test]
    fn every_added_key_may_be_contained() {
        let f = build(5000, 10);
        assert_eq!(*f.last().unwrap_or(&0), 7);
        assert!((0..5000).all(|i| may_contain(&f, format!("key{i:08}").as_bytes())));
    }

    #[test]
    fn false_positive_rate_is_about_one_percent_at_ten_bits_per_key() {
        let f = build(10_000, 10);
        let n = 20_000;
        let fp = (0..n)
            .filter(|i| may_contain(&f, format!("absent{i:08}").as_bytes()))
            .count();
        let rate = fp as f64 / f64::from(n);
        assert!(rate <= 0.02, "false-positive rate {rate}");
        assert!(
            fp > 0,
            "a bloom filter with no false positives is suspicious"
        );
    }

    #[test]
    fn empty_filter_and_zero_bits_per_key_may_contain_everything() {
        assert!(build(100, 0).is_empty());
        assert!(build(0, 10).is_empty());
        assert!(may_contain(&[], b"anything"));
    }

    #[test]
    fn versions_of_one_user_key_are_hashed_once() {
        let mut b = FilterBuilder::new(10);
        for _ in 0..5 {
            b.add(b"same");
        }
        b.add(b"other");
        assert_eq!(b.hashes.len(), 2);
    }
}
