//! The on-disk pieces of a segment that are not blocks: block handles, the block trailer,
//! the properties encoding and the footer.
//! Format: FORMAT.md, "Segment files".
//!
//! The layout is specified in `FORMAT.md` (the segment section of `FORMAT.md`); any
//! change here must change that document and bump [`FORMAT_VERSION`].

use crate::coding::{self, Reader};
use crate::key::{self, SeqNo};
use crate::options::Compression;

/// `b"ALVMSEG1"` read as a little-endian `u64` (`0x3147_4553_4d56_4c41`): the last 8 bytes of
/// every segment file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ALVMSEG1");

/// The segment format version this code writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the footer at the end of every segment file.
pub const FOOTER_LEN: usize = 64;

/// Bytes following every block's stored bytes: compression type `u8` + CRC-32 `u32`.
pub const BLOCK_TRAILER_LEN: usize = 5;

/// Compression type byte for a block stored as is.
pub const BLOCK_RAW: u8 = 0;

/// Compression type byte for a block stored snappy-compressed (raw snappy, no framing).
pub const BLOCK_SNAPPY: u8 = 1;

/// Where a block lives in a segment file.
///
/// `size_bytes` counts the stored (possibly compressed) bytes only, not the 5-byte trailer
/// that follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    /// Byte offset of the block's first stored byte.
    pub offset: u64,
    /// Number of stored bytes, excluding the trailer.
    pub size_bytes: u64,
}

impl BlockHandle {
    /// Appends `[offset varint][size varint]`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        coding::put_varint(out, self.offset);
        coding::put_varint(out, self.size_bytes);
    }

    /// Decodes a handle written by [`BlockHandle::encode_to`]; `None` on short input.
    pub fn decode_from(r: &mut Reader<'_>) -> Option<Self> {
        Some(BlockHandle {
            offset: r.varint()?,
            size_bytes: r.varint()?,
        })
    }

    /// Offset one past the block's trailer; `None` on overflow (only from corrupt input).
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size_bytes)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }
}

/// The block trailer: the checksum covers the stored bytes followed by the compression byte,
/// so a flipped compression byte is caught too.
pub fn block_trailer(stored: &[u8], compression: u8) -> [u8; BLOCK_TRAILER_LEN] {
    let crc = coding::crc32(&[stored, &[compression]]);
    let mut out = [compression, 0, 0, 0, 0];
    out[1..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The fixed 64-byte footer: handles of the three metadata blocks, the format version and
/// the magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The bloom filter block (size 0 when filters are disabled).
    pub filter: BlockHandle,
    /// The index block.
    pub index: BlockHandle,
    /// The properties block.
    pub properties: BlockHandle,
    /// The format version the file was written with.
    pub format_version: u32,
}

impl Footer {
    /// Encodes the footer; the CRC covers bytes 0..52 (the six handles and the version).
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for h in [self.filter, self.index, self.properties] {
            coding::put_u64(&mut out, h.offset);
            coding::put_u64(&mut out, h.size_bytes);
        }
        coding::put_u32(&mut out, self.format_version);
        let crc = coding::crc32(&[&out]);
        coding::put_u32(&mut out, crc);
        coding::put_u64(&mut out, MAGIC);
        let mut fixed = [0u8; FOOTER_LEN];
        fixed.copy_from_slice(&out);
        fixed
    }

    /// Decodes and checks a footer. The error string is the corruption detail; the caller
    /// adds the path and the footer's offset.
    pub fn decode(buf: &[u8; FOOTER_LEN]) -> Result<Footer, String> {
        let field = |at: usize| u64_at(buf, at);
        if field(56) != MAGIC {
            return Err("not an alluvium segment (bad magic)".to_string());
        }
        let stored_crc = coding::u32_at(buf, 52).unwrap_or(0);
        if coding::crc32(&[&buf[..52]]) != stored_crc {
            return Err("footer checksum mismatch".to_string());
        }
        let format_version = coding::u32_at(buf, 48).unwrap_or(0);
        check_version(format_version)?;
        let handle = |at: usize| BlockHandle {
            offset: field(at),
            size_bytes: field(at + 8),
        };
        Ok(Footer {
            filter: handle(0),
            index: handle(16),
            properties: handle(32),
            format_version,
        })
    }
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    buf.get(at..)
        .and_then(|b| Reader::new(b).u64())
        .unwrap_or(0)
}

fn check_version(v: u32) -> Result<(), String> {
    match v {
        0 => Err("format version 0 is not a valid segment format version".to_string()),
        v if v > FORMAT_VERSION => Err(format!(
            "segment format version {v} is newer than the newest supported ({FORMAT_VERSION})"
        )),
        _ => Ok(()),
    }
}

/// Summary statistics of a segment, stored in its properties block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// Number of entries (puts and tombstones).
    pub entry_count: u64,
    /// Number of tombstones among them.
    pub tombstone_count: u64,
    /// Number of data blocks.
    pub data_block_count: u64,
    /// Sum of encoded internal key lengths (user key + 8-byte trailer), uncompressed.
    pub raw_key_bytes: u64,
    /// Sum of value lengths, uncompressed.
    pub raw_value_bytes: u64,
    /// The smallest internal key (encoded).
    pub smallest: Vec<u8>,
    /// The largest internal key (encoded).
    pub largest: Vec<u8>,
    /// The smallest sequence number of any entry.
    pub seqno_min: SeqNo,
    /// The largest sequence number of any entry.
    pub seqno_max: SeqNo,
    /// Bytes the data blocks occupy in the file, trailers included.
    pub data_bytes: u64,
    /// The compression the writer was configured with (individual blocks may still be raw).
    pub compression: Compression,
}

impl Properties {
    /// Properties of a segment with no entries yet; the writer fills them in as it goes.
    pub(crate) fn empty(compression: Compression) -> Self {
        Properties {
            entry_count: 0,
            tombstone_count: 0,
            data_block_count: 0,
            raw_key_bytes: 0,
            raw_value_bytes: 0,
            smallest: Vec::new(),
            largest: Vec::new(),
            seqno_min: SeqNo::MAX,
            seqno_max: 0,
            data_bytes: 0,
            compression,
        }
    }

    /// Encodes the fields in declaration order: eight varints, the compression byte, then
    /// the two keys length-prefixed. Field order is fixed by the format version.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.smallest.len() + self.largest.len());
        for v in [
            self.entry_count,
            self.tombstone_count,
            self.data_block_count,
            self.raw_key_bytes,
            self.raw_value_bytes,
            self.seqno_min,
            self.seqno_max,
            self.data_bytes,
        ] {
            coding::put_varint(&mut out, v);
        }
        out.push(compression_byte(self.compression));
        coding::put_bytes(&mut out, &self.smallest);
        coding::put_bytes(&mut out, &self.largest);
        out
    }

    /// Decodes and sanity-checks properties; the error string is the corruption detail.
    pub fn decode(buf: &[u8]) -> Result<Properties, String> {
        let props = decode_fields(&mut Reader::new(buf))
            .ok_or_else(|| "properties block is truncated or has trailing bytes".to_string())?;
        props.check()?;
        Ok(props)
    }

    /// The invariants a writer guarantees; checked again after reading.
    fn check(&self) -> Result<(), String> {
        let keys_ok = key::parse_internal_key(&self.smallest).is_some()
            && key::parse_internal_key(&self.largest).is_some()
            && key::compare_internal(&self.smallest, &self.largest).is_le();
        if !keys_ok {
            return Err("properties hold malformed smallest/largest keys".to_string());
        }
        if self.entry_count == 0
            || self.tombstone_count > self.entry_count
            || self.data_block_count == 0
            || self.seqno_min > self.seqno_max
        {
            return Err(format!("properties are inconsistent: {self:?}"));
        }
        Ok(())
    }
}

fn decode_fields(r: &mut Reader<'_>) -> Option<Properties> {
    let mut v = [0u64; 8];
    for slot in &mut v {
        *slot = r.varint()?;
    }
    let compression = compression_from_byte(r.u8()?)?;
    let smallest = r.length_prefixed()?.to_vec();
    let largest = r.length_prefixed()?.to_vec();
    let [entry_count, tombstone_count, data_block_count, raw_key_bytes, raw_value_bytes, seqno_min, seqno_max, data_bytes] =
        v;
    r.is_empty().then_some(Properties {
        entry_count,
        tombstone_count,
        data_block_count,
        raw_key_bytes,
        raw_value_bytes,
        smallest,
        largest,
        seqno_min,
        seqno_max,
        data_bytes,
        compression,
    })
}

/// The byte a [`Compression`] is recorded as: 0 none, 1 snappy (same values as the block
/// trailer's compression type).
pub fn compression_byte(c: Compression) -> u8 {
    match c {
        Compression::None => BLOCK_RAW,
        Compression::Snappy => BLOCK_SNAPPY,
    }
}

fn compression_from_byte(b: u8) -> Option<Compression> {
    match b {
        BLOCK_RAW => Some(Compression::None),
        BLOCK_SNAPPY => Some(Compression::Snappy),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};

    fn sample_footer() -> Footer {
        let h = |o, s| BlockHandle {
            offset: o,
            size_bytes: s,
        };
        Footer {
            filter: h(100, 20),
            index: h(125, 30),
            properties: h(160, 40),
            format_version: FORMAT_VERSION,
        }
    }

    #[test]
    fn footer_round_trips_and_ends_with_the_magic() {
        let f = sample_footer();
        let bytes = f.encode();
        assert_eq!(&bytes[56..], b"ALVMSEG1");
        assert_eq!(Footer::decode(&bytes), Ok(f));
    }

    #[test]
    fn footer_rejects_bad_magic_bad_crc_and_newer_versions() {
        let mut bytes = sample_footer().encode();
        bytes[3] ^= 1;
        assert!(Footer::decode(&bytes).unwrap_err().contains("checksum"));
        let mut bytes = sample_footer().encode();
        bytes[63] ^= 1;
        assert!(Footer::decode(&bytes).unwrap_err().contains("magic"));
        let newer = Footer {
            format_version: 7,
            ..sample_footer()
        };
        assert!(Footer::decode(&newer.encode())
            .unwrap_err()
            .contains("version 7"));
    }

    #[test]
    fn properties_round_trip_and_reject_trailing_bytes() {
        let p = Properties {
            entry_count: 3,
            tombstone_count: 1,
            data_block_count: 1,
            raw_key_bytes: 30,
            raw_value_bytes: 9,
            smallest: internal_key(b"a", 9, ValueKind::Put),
            largest: internal_key(b"c", 2, ValueKind::Delete),
            seqno_min: 2,
            seqno_max: 9,
            data_bytes: 77,
            compression: Compression::Snappy,
        };
        let mut bytes = p.encode();
        assert_eq!(Properties::decode(&bytes), Ok(p));
        bytes.push(0);
        assert!(Properties::decode(&bytes).is_err());
    }
}
