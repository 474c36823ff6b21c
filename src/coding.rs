//! Fixed-width little-endian and varint codecs, and checksums.
//!
//! Every multi-byte integer alluvium writes is little-endian (see `FORMAT.md`, "Conventions").
//! Decoders never panic: they return `None` on short input and the caller turns that into an
//! [`Error::Corruption`](crate::Error::Corruption) naming the file and offset.

/// Appends `v` as a LEB128 varint (7 bits a byte, low bits first).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_varint`] writes for `v`.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends a `u32` little-endian.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `u64` little-endian.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a varint length followed by the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over a byte slice that decodes without panicking.
///
/// Each getter returns `None` when the input is too short or malformed; `pos()` tells the
/// caller where decoding stopped so the error can carry an offset.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// Takes one byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// Takes a little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    /// Takes a little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    /// Takes a LEB128 varint of at most 10 bytes.
    pub fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Takes a varint that must fit in `usize` and in the remaining input (a length field).
    pub fn len(&mut self) -> Option<usize> {
        let v = usize::try_from(self.varint()?).ok()?;
        (v <= self.remaining()).then_some(v)
    }

    /// Takes a varint length followed by that many bytes.
    pub fn length_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.bytes(n)
    }
}

/// Reads a little-endian `u32` at `at`, `None` when out of bounds.
pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Reader::new(buf.get(at..)?).u32()
}

/// CRC-32 (IEEE) of the concatenation of `parts`: the checksum every alluvium frame carries.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Snappy-compresses `raw` into `out` from offset `at` (growing `out` to fit snappy's worst
/// case; bytes before `at` are kept) and returns the compressed length when it saves at least
/// 1/8 of `raw`; `None` means store `raw` as it is (a small saving is not worth
/// decompressing on every read). Segment blocks and commit log records both use this rule.
pub fn snappy_if_smaller(
    encoder: &mut snap::raw::Encoder,
    raw: &[u8],
    out: &mut Vec<u8>,
    at: usize,
) -> Option<usize> {
    let room = at + snap::raw::max_compress_len(raw.len());
    if out.len() < room {
        out.resize(room, 0);
    }
    let n = encoder.compress(raw, &mut out[at..]).ok()?;
    (n <= raw.len() - raw.len() / 8).then_some(n)
}

/// Snappy's raw format can expand at most ~21.3x (a 3-byte copy element yields 64 bytes), so
/// a claimed length past this many times the stored size is damage.
const SNAPPY_EXPANSION_MAX: usize = 22;

/// Decompresses snappy's raw format `stored` into `out` (replacing its contents), refusing a
/// claimed length above `max_len` or above what `stored` can expand to, so a damaged length
/// cannot make a reader allocate gigabytes. `what` names the thing in errors ("block",
/// "body"). Segment blocks and commit log records both use this.
pub fn snappy_decompress(
    stored: &[u8],
    out: &mut Vec<u8>,
    max_len: usize,
    what: &str,
) -> Result<(), String> {
    let bad = |e: snap::Error| format!("snappy {what}: {e}");
    let len = snap::raw::decompress_len(stored).map_err(bad)?;
    if len
        > stored
            .len()
            .saturating_mul(SNAPPY_EXPANSION_MAX)
            .min(max_len)
    {
        return Err(format!(
            "snappy {what} claims {len} bytes from {} stored",
            stored.len()
        ));
    }
    out.clear();
    out.resize(len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(stored, out)
        .map_err(bad)?;
    out.truncate(n);
    Ok(())
}

/// Drops a reusable buffer's allocation once it is over 1 MiB, so that one huge record or
/// block does not keep its size pinned in a thread-local or long-lived buffer.
pub fn release_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > 1 << 20 {
        *buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_if_smaller_keeps_the_prefix_and_refuses_small_savings() {
        let mut enc = snap::raw::Encoder::new();
        let mut out = vec![9u8];
        let repetitive = b"abcdefgh".repeat(32);
        let n = snappy_if_smaller(&mut enc, &repetitive, &mut out, 1).expect("compresses");
        assert_eq!(out[0], 9);
        let back = snap::raw::Decoder::new().decompress_vec(&out[1..1 + n]);
        assert_eq!(back.ok(), Some(repetitive));
        let noise: Vec<u8> = (0..256u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(snappy_if_smaller(&mut enc, &noise, &mut out, 0), None);
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
                let mut out = Vec::new();
                put_varint(&mut out, v);
                assert_eq!(out.len(), varint_len(v));
                let mut r = Reader::new(&out);
                assert_eq!(r.varint(), Some(v));
                assert!(r.is_empty());
            }
        }
    }

    #[test]
    fn truncated_input_is_none_not_a_panic() {
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX);
        assert_eq!(Reader::new(&out[..out.len() - 1]).varint(), None);
        assert_eq!(Reader::new(&[1, 2, 3]).u32(), None);
        assert_eq!(Reader::new(&[5, 1, 2]).length_prefixed(), None);
        assert_eq!(Reader::new(&[0xff; 11]).varint(), None);
    }
}
