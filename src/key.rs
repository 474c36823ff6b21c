//! Sequence numbers, value kinds and internal keys.
//!
//! An *internal key* is a user key plus an 8-byte trailer `(seqno << 8) | kind`, stored
//! little-endian after the user key (see `FORMAT.md`, "Internal keys"). Internal keys sort by
//! user key ascending (bytewise), then by trailer **descending**, so the newest version of a
//! key comes first and a seek to `(key, S)` lands on the newest version visible at `S`.

use std::cmp::Ordering;

/// A sequence number: the position of one operation in the total write order.
///
/// Sequence numbers start at 1; 0 means "nothing written yet". They fit in 56 bits because
/// the trailer packs them with the kind byte.
pub type SeqNo = u64;

/// The largest sequence number the format can hold.
pub const SEQNO_MAX: SeqNo = (1 << 56) - 1;

/// Length of the trailer that follows the user key in an encoded internal key.
pub const TRAILER_LEN: usize = 8;

/// What an entry says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key was deleted at this sequence number.
    Delete = 0,
    /// The key was set to the entry's value.
    Put = 1,
}

impl ValueKind {
    /// Decodes the kind byte; `None` for a byte alluvium never writes.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// Packs a sequence number and kind into a trailer.
pub fn trailer(seqno: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(seqno <= SEQNO_MAX);
    (seqno << 8) | kind as u64
}

/// Appends the encoded internal key `user_key ++ trailer` to `out`.
pub fn encode_internal_key(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo, kind: ValueKind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer(seqno, kind).to_le_bytes());
}

/// Returns the encoded internal key as a new vector.
pub fn internal_key(user_key: &[u8], seqno: SeqNo, kind: ValueKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_internal_key(&mut out, user_key, seqno, kind);
    out
}

/// A decoded view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// The sequence number of this version.
    pub seqno: SeqNo,
    /// Put or delete.
    pub kind: ValueKind,
}

/// Splits an encoded internal key; `None` when it is shorter than a trailer or the kind byte
/// is unknown.
pub fn parse_internal_key(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    let split = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user_key, t) = ikey.split_at(split);
    let t = u64::from_le_bytes(t.try_into().ok()?);
    Some(ParsedKey {
        user_key,
        seqno: t >> 8,
        kind: ValueKind::from_u8((t & 0xff) as u8)?,
    })
}

/// The user-key part of an encoded internal key (the whole slice if it is too short).
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

/// The trailer of an encoded internal key as a number (0 if the key is too short).
pub fn trailer_of(ikey: &[u8]) -> u64 {
    let split = ikey.len().saturating_sub(TRAILER_LEN);
    ikey[split..]
        .try_into()
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Orders two encoded internal keys: user key ascending, then trailer descending.
pub fn compare_internal(a: &[u8], b: &[u8]) -> Ordering {
    compare_bytes(user_key(a), user_key(b)).then_with(|| trailer_of(b).cmp(&trailer_of(a)))
}

/// `a.cmp(b)` for byte strings, with keys of up to 32 bytes compared eight bytes at a time
/// inline: a seek compares a few dozen short keys, and the `memcmp` call cost more than the
/// comparison (9% of a random seek). Longer keys go to `memcmp`.
#[inline]
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    if n > 32 {
        return a.cmp(b);
    }
    let word = |s: &[u8], at: usize| -> u64 {
        s.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    };
    let mut at = 0;
    while at + 8 <= n {
        let (x, y) = (word(a, at), word(b, at));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    // The last n - at < 8 bytes of both, zero-padded alike, then the lengths.
    let tail = |s: &[u8]| {
        let mut w = [0u8; 8];
        let rest = s.get(at..n).unwrap_or_default();
        w[..rest.len()].copy_from_slice(rest);
        u64::from_be_bytes(w)
    };
    tail(a).cmp(&tail(b)).then(a.len().cmp(&b.len()))
}

/// An owned internal key as the memtable stores it.
///
/// # Invariants
/// `Ord` is the internal-key order: `user_key` ascending, then `seqno` descending, then kind
/// descending — the same order [`compare_internal`] gives the encoded form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The user key.
    pub user_key: Box<[u8]>,
    /// `(seqno << 8) | kind`.
    pub trailer: u64,
}

impl InternalKey {
    /// Builds a key.
    pub fn new(user_key: &[u8], seqno: SeqNo, kind: ValueKind) -> Self {
        InternalKey {
            user_key: user_key.into(),
            trailer: trailer(seqno, kind),
        }
    }

    /// The sequence number.
    pub fn seqno(&self) -> SeqNo {
        self.trailer >> 8
    }

    /// Put or delete.
    pub fn kind(&self) -> ValueKind {
        if self.trailer & 0xff == ValueKind::Put as u64 {
            ValueKind::Put
        } else {
            ValueKind::Delete
        }
    }

    /// The encoded form (`user_key ++ trailer`).
    pub fn encode(&self) -> Vec<u8> {
        internal_key(&self.user_key, self.seqno(), self.kind())
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user_key
            .cmp(&other.user_key)
            .then_with(|| other.trailer.cmp(&self.trailer))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_bytes_orders_as_slices_do() {
        // Every length up to 40 against every length, differing at every position or not at
        // all, with bytes on both sides of 0x80 (a signed comparison would misorder them).
        let base: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for la in 0..=40 {
            for lb in 0..=40 {
                let (a, b) = (&base[..la], &base[..lb]);
                assert_eq!(compare_bytes(a, b), a.cmp(b), "{la} {lb}");
                for at in 0..la.min(lb) {
                    for delta in [1u8, 0x80, 0xff] {
                        let mut c = b.to_vec();
                        c[at] = c[at].wrapping_add(delta);
                        assert_eq!(compare_bytes(a, &c), a.cmp(&c), "{la} {lb} {at} {delta}");
                        assert_eq!(compare_bytes(&c, a), c.as_slice().cmp(a), "{la} {lb} {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn newer_versions_sort_first_within_a_user_key() {
        let a = internal_key(b"k", 5, ValueKind::Put);
        let b = internal_key(b"k", 7, ValueKind::Put);
        let c = internal_key(b"ka", 1, ValueKind::Put);
        assert_eq!(compare_internal(&b, &a), Ordering::Less);
        assert_eq!(compare_internal(&a, &c), Ordering::Less);
        let (ia, ib) = (
            InternalKey::new(b"k", 5, ValueKind::Put),
            InternalKey::new(b"k", 7, ValueKind::Delete),
        );
        assert!(ib < ia);
    }

    #[test]
    fn parse_rejects_short_keys_and_unknown_kinds() {
        assert!(parse_internal_key(b"short").is_none());
        let mut k = internal_key(b"abc", 9, ValueKind::Delete);
        let p = parse_internal_key(&k).map(|p| (p.user_key.to_vec(), p.seqno, p.kind));
        assert_eq!(p, Some((b"abc".to_vec(), 9, ValueKind::Delete)));
        let n = k.len();
        k[n - 8] = 7;
        assert!(parse_internal_key(&k).is_none());
    }
}
