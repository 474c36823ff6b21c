//! The payload of one commit log frame: a whole batch.
//! Format: FORMAT.md, "Commit log files", "Record payload".

use std::cell::RefCell;

use crate::batch::{Op, WriteBatch};
use crate::coding::{
    put_bytes, put_varint, release_if_large, snappy_decompress, snappy_if_smaller, Reader,
};
use crate::key::{SeqNo, ValueKind, SEQNO_MAX};
use crate::options::Compression;

/// Bytes of the fixed record header: `first_seqno u64, count u32, commit_time_us u64`.
pub const RECORD_HEADER_LEN: usize = 20;

/// A body shorter than this is never compressed (a handful of bytes is all snappy could save).
const COMPRESS_MIN_LEN: usize = 64;

/// How a version 3 record's body is stored (the byte after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyEncoding {
    /// The operations and acknowledgements as they are.
    Raw = 0,
    /// Snappy's raw format (length preamble, then the compressed bytes) of the raw body.
    Snappy = 1,
}

impl BodyEncoding {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(BodyEncoding::Raw),
            1 => Some(BodyEncoding::Snappy),
            _ => None,
        }
    }
}

/// True when a record payload of log format `version` stores its body compressed (only
/// version 3 can; the payload is not checked otherwise).
pub fn is_compressed(payload: &[u8], version: u32) -> bool {
    let encoding = payload.get(RECORD_HEADER_LEN).copied();
    version >= 3 && encoding.and_then(BodyEncoding::from_u8) == Some(BodyEncoding::Snappy)
}

/// A subscription's new position, carried by a record (log format version 2 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAck {
    /// The subscription's id (never reused, see `FORMAT.md`, "Subscriptions").
    pub subscription_id: u64,
    /// The last sequence number the subscription has processed.
    pub position: SeqNo,
}

/// One batch as the commit log stores it.
///
/// Payload layout (version 3): `first_seqno u64, count u32, commit_time_us u64`, a body
/// encoding byte, then the body, raw or snappy-compressed: `count` operations, each `kind u8,
/// key (varint length + bytes)` and for a put `value (varint length + bytes)`, then
/// `ack_count varint` and that many `(subscription id varint, position varint)` pairs.
/// Version 2 has no encoding byte (the body is raw); version 1 has no acknowledgements either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number of the first operation; operation i has `first_seqno + i`. A record
    /// with no operation (acknowledgements only) carries the next sequence number to be
    /// assigned and takes none.
    pub first_seqno: SeqNo,
    /// Commit time in microseconds since the Unix epoch.
    pub commit_time_us: u64,
    /// The operations, in order (possibly none, when `acks` is not empty).
    pub batch: WriteBatch,
    /// Subscription positions committed atomically with the operations.
    pub acks: Vec<RecordAck>,
}

impl LogRecord {
    /// Sequence number of the last operation; `first_seqno - 1` for a record without
    /// operations.
    pub fn last_seqno(&self) -> SeqNo {
        self.first_seqno + self.batch.len() as u64 - 1
    }

    /// A record of neither operations nor acknowledgements (format version 4 on): the last
    /// record of a log file a rotation or a close sealed, so a file that ends without one
    /// was cut short (`FORMAT.md`, "Seal marker").
    pub fn is_seal_marker(&self) -> bool {
        self.batch.is_empty() && self.acks.is_empty()
    }
}

/// Microseconds since the Unix epoch by this process's wall clock: a record's commit time.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The framed seal marker that ends a log file whose next sequence number is `next_seqno`
/// (`FORMAT.md`, "Seal marker"): a record of no operations and no acknowledgements.
pub fn seal_marker_frame(next_seqno: SeqNo) -> Vec<u8> {
    let header = record_header(next_seqno, 0, now_us());
    let body = RecordBody::encode(&WriteBatch::new(), &[], Compression::None);
    let mut out = Vec::new();
    crate::frame::encode_frame_parts(&mut out, &[&header, body.as_bytes()]);
    out
}

/// Everything of a version 3 record after its header: the encoding byte and the body.
///
/// Built by the writing thread before it joins a commit group, so that compression runs in
/// parallel across writers; the group's leader only adds the header (the sequence number and
/// commit time are known only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBody {
    count: u32,
    bytes: Vec<u8>,
}

thread_local! {
    /// Per thread: a decompressed body being decoded, reused across reads.
    static DECOMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Per thread: the raw body being encoded and snappy's hash table, reused across writes.
    static ENCODER: RefCell<(Vec<u8>, snap::raw::Encoder)> =
        RefCell::new((Vec::new(), snap::raw::Encoder::new()));
}

impl RecordBody {
    /// Encodes `batch` and `acks`, snappy-compressed when `compression` asks for it and it
    /// saves at least 1/8 of the body.
    pub fn encode(batch: &WriteBatch, acks: &[RecordAck], compression: Compression) -> Self {
        ENCODER.with(|cell| {
            let (raw, encoder) = &mut *cell.borrow_mut();
            raw.clear();
            encode_raw_body(raw, batch, acks);
            let bytes = match compression {
                Compression::Snappy if raw.len() >= COMPRESS_MIN_LEN => {
                    snappy_body(encoder, raw).unwrap_or_else(|| raw_body(raw))
                }
                _ => raw_body(raw),
            };
            release_if_large(raw);
            RecordBody {
                count: batch.len() as u32,
                bytes,
            }
        })
    }

    /// The encoding byte and the stored body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How the body is stored.
    pub fn encoding(&self) -> BodyEncoding {
        BodyEncoding::from_u8(self.bytes[0]).unwrap_or(BodyEncoding::Raw)
    }
}

fn raw_body(raw: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + raw.len());
    bytes.push(BodyEncoding::Raw as u8);
    bytes.extend_from_slice(raw);
    bytes
}

/// The encoding byte and snappy's output, or `None` when it saves less than 1/8.
fn snappy_body(encoder: &mut snap::raw::Encoder, raw: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(1 + snap::raw::max_compress_len(raw.len()));
    bytes.push(BodyEncoding::Snappy as u8);
    let n = snappy_if_smaller(encoder, raw, &mut bytes, 1)?;
    // Not shrunk: the body lives only until its group commits, and a reallocation costs more
    // than the few dozen spare bytes.
    bytes.truncate(1 + n);
    Some(bytes)
}

/// The 20-byte record header.
pub fn record_header(
    first_seqno: SeqNo,
    count: u32,
    commit_time_us: u64,
) -> [u8; RECORD_HEADER_LEN] {
    let mut out = [0u8; RECORD_HEADER_LEN];
    out[..8].copy_from_slice(&first_seqno.to_le_bytes());
    out[8..12].copy_from_slice(&count.to_le_bytes());
    out[12..].copy_from_slice(&commit_time_us.to_le_bytes());
    out
}

/// Appends the payload of a record (format version 3) for `body` to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    first_seqno: SeqNo,
    commit_time_us: u64,
    body: &RecordBody,
) {
    out.extend_from_slice(&record_header(first_seqno, body.count, commit_time_us));
    out.extend_from_slice(&body.bytes);
}

/// Appends the raw body (operations, then acknowledgements) of `batch` and `acks` to `out`.
fn encode_raw_body(out: &mut Vec<u8>, batch: &WriteBatch, acks: &[RecordAck]) {
    for op in batch.ops() {
        out.push(op.kind() as u8);
        put_bytes(out, op.key());
        if let Op::Put { value, .. } = op {
            put_bytes(out, value);
        }
    }
    put_varint(out, acks.len() as u64);
    for ack in acks {
        put_varint(out, ack.subscription_id);
        put_varint(out, ack.position);
    }
}

/// Decodes a record payload of log format `version` (1, 2 or 3); `Err` carries the offset within
/// the payload and what is wrong.
pub fn decode_record(payload: &[u8], version: u32) -> Result<LogRecord, (usize, String)> {
    let mut r = Reader::new(payload);
    let short = |r: &Reader| (r.pos(), "record header is truncated".to_string());
    let first_seqno = r.u64().ok_or_else(|| short(&r))?;
    let count = r.u32().ok_or_else(|| short(&r))?;
    let commit_time_us = r.u64().ok_or_else(|| short(&r))?;
    // One past the last sequence number; a record never takes one past `SEQNO_MAX`, and
    // the checks keep `last_seqno` from overflowing on a crafted record.
    let end = first_seqno.saturating_add(u64::from(count));
    if first_seqno == 0 || count as usize > crate::options::BATCH_OPS_MAX || end > SEQNO_MAX + 1 {
        return Err((
            0,
            format!("record has {count} operations at sequence number {first_seqno}"),
        ));
    }
    let (ops, acks) = match version {
        1 | 2 => decode_body(&payload[RECORD_HEADER_LEN..], count, version)
            .map_err(|(at, detail)| (RECORD_HEADER_LEN + at, detail))?,
        _ => decode_encoded_body(&payload[RECORD_HEADER_LEN..], count)?,
    };
    if ops.is_empty() && acks.is_empty() && version < super::LOG_FORMAT_VERSION_SEAL_MARKERS {
        return Err((
            0,
            "record has neither operations nor acknowledgements".into(),
        ));
    }
    Ok(LogRecord {
        first_seqno,
        commit_time_us,
        batch: WriteBatch::from_ops(ops),
        acks,
    })
}

type Body = (Vec<Op>, Vec<RecordAck>);

/// The encoding byte and body of a version 3 record (offsets in errors are from the header's
/// start; an error inside a compressed body names its offset in the decompressed bytes).
fn decode_encoded_body(stored: &[u8], count: u32) -> Result<Body, (usize, String)> {
    const AT: usize = RECORD_HEADER_LEN;
    let (&encoding, body) = stored
        .split_first()
        .ok_or_else(|| (AT, "record has no body encoding byte".to_string()))?;
    match BodyEncoding::from_u8(encoding) {
        Some(BodyEncoding::Raw) => {
            decode_body(body, count, 3).map_err(|(at, detail)| (AT + 1 + at, detail))
        }
        Some(BodyEncoding::Snappy) => DECOMPRESSED.with(|cell| {
            let raw = &mut *cell.borrow_mut();
            snappy_decompress(body, raw, crate::frame::FRAME_PAYLOAD_MAX, "body")
                .map_err(|detail| (AT + 1, detail))?;
            let decoded = decode_body(raw, count, 3).map_err(|(at, detail)| {
                let detail = format!("{detail} (byte {at} of the decompressed body)");
                (AT + 1, detail)
            });
            release_if_large(raw);
            decoded
        }),
        None => Err((AT, format!("unknown body encoding {encoding}"))),
    }
}

/// Operations and (from version 2 on) acknowledgements, which must end exactly at the end of
/// `body`; offsets in errors are within `body`.
fn decode_body(body: &[u8], count: u32, version: u32) -> Result<Body, (usize, String)> {
    let mut r = Reader::new(body);
    let ops = decode_ops(&mut r, count, body.len())?;
    let acks = if version >= 2 {
        decode_acks(&mut r)?
    } else {
        Vec::new()
    };
    if !r.is_empty() {
        return Err((
            r.pos(),
            format!("{} bytes after the last field", r.remaining()),
        ));
    }
    Ok((ops, acks))
}

fn decode_ops(r: &mut Reader, count: u32, len: usize) -> Result<Vec<Op>, (usize, String)> {
    let mut ops = Vec::with_capacity((count as usize).min(len));
    for i in 0..count {
        ops.push(decode_op(r).ok_or_else(|| (r.pos(), format!("operation {i} is malformed")))?);
    }
    Ok(ops)
}

fn decode_acks(r: &mut Reader) -> Result<Vec<RecordAck>, (usize, String)> {
    let malformed = |r: &Reader| (r.pos(), "acknowledgement section is malformed".to_string());
    let n = r.varint().ok_or_else(|| malformed(r))?;
    if n > r.remaining() as u64 {
        return Err(malformed(r));
    }
    let mut acks = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let subscription_id = r.varint().ok_or_else(|| malformed(r))?;
        let position = r
            .varint()
            .filter(|&p| p <= SEQNO_MAX)
            .ok_or_else(|| malformed(r))?;
        acks.push(RecordAck {
            subscription_id,
            position,
        });
    }
    Ok(acks)
}

fn decode_op(r: &mut Reader) -> Option<Op> {
    let kind = ValueKind::from_u8(r.u8()?)?;
    let key = r.length_prefixed()?.to_vec();
    Some(match kind {
        ValueKind::Put => Op::Put {
            key,
            value: r.length_prefixed()?.to_vec(),
        },
        ValueKind::Delete => Op::Delete { key },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(first: SeqNo, batch: &WriteBatch, acks: &[RecordAck], c: Compression) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_record(
            &mut buf,
            first,
            1_700_000_000_000_000,
            &RecordBody::encode(batch, acks, c),
        );
        buf
    }

    #[test]
    fn records_round_trip_and_reject_trailing_bytes() {
        let mut batch = WriteBatch::new();
        batch.put(b"k1", b"v1").delete(b"").put(b"", vec![7u8; 300]);
        let acks = [RecordAck {
            subscription_id: 9,
            position: 41,
        }];
        for c in [Compression::None, Compression::Snappy] {
            let buf = encode(42, &batch, &acks, c);
            let rec = decode_record(&buf, 3).map_err(|e| e.1);
            assert_eq!(
                rec.as_ref().map(|r| (r.first_seqno, r.last_seqno())),
                Ok((42, 44))
            );
            assert_eq!(rec.as_ref().map(|r| r.acks.clone()), Ok(acks.to_vec()));
            assert_eq!(rec.map(|r| r.batch), Ok(batch.clone()));
            let mut longer = buf.clone();
            longer.push(0);
            assert!(decode_record(&longer, 3).is_err(), "{c:?}");
            assert!(decode_record(&buf[..buf.len() - 10], 3).is_err(), "{c:?}");
        }
    }

    #[test]
    fn compressible_bodies_are_stored_compressed_and_others_raw() {
        let mut big = WriteBatch::new();
        big.put(b"key", [b"abcdefgh".as_slice(); 16].concat());
        let mut small = WriteBatch::new();
        small.put(b"key", b"abcdefgh");
        let mut random = WriteBatch::new();
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        random.put(b"key", noise);
        let enc = |b: &WriteBatch, c| RecordBody::encode(b, &[], c).encoding();
        assert_eq!(enc(&big, Compression::Snappy), BodyEncoding::Snappy);
        assert_eq!(enc(&big, Compression::None), BodyEncoding::Raw);
        assert_eq!(enc(&small, Compression::Snappy), BodyEncoding::Raw);
        assert_eq!(enc(&random, Compression::Snappy), BodyEncoding::Raw);
        let stored = RecordBody::encode(&big, &[], Compression::Snappy);
        assert!(stored.as_bytes().len() < 64, "{}", stored.as_bytes().len());
    }

    #[test]
    fn version_2_and_1_payloads_are_the_header_and_the_raw_body() {
        let mut batch = WriteBatch::new();
        batch.put(b"apple", b"red").delete(b"kiwi");
        let v3 = encode(5, &batch, &[], Compression::None);
        let v2 = [&v3[..RECORD_HEADER_LEN], &v3[RECORD_HEADER_LEN + 1..]].concat();
        let v1 = &v2[..v2.len() - 1]; // without `ack_count = 0`
        for (payload, version) in [(&v2[..], 2), (v1, 1)] {
            let rec = decode_record(payload, version).map_err(|e| e.1);
            assert_eq!(rec.map(|r| r.batch), Ok(batch.clone()), "version {version}");
        }
        assert!(
            decode_record(v1, 2).is_err(),
            "version 2 has an ack section"
        );
        assert!(
            decode_record(&v2, 3).is_err(),
            "version 3 has an encoding byte"
        );
    }

    #[test]
    fn damaged_compressed_bodies_are_errors_not_panics_or_huge_allocations() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", [b"abcdefgh".as_slice(); 64].concat());
        let buf = encode(1, &batch, &[], Compression::Snappy);
        assert_eq!(buf[RECORD_HEADER_LEN], BodyEncoding::Snappy as u8);
        // A preamble claiming 2^28 bytes.
        let mut huge = buf[..RECORD_HEADER_LEN + 1].to_vec();
        huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]);
        huge.extend_from_slice(&buf[RECORD_HEADER_LEN + 3..]);
        let err = decode_record(&huge, 3).map_err(|e| e.1).unwrap_err();
        assert!(err.contains("claims"), "{err}");
        let mut unknown = buf.clone();
        unknown[RECORD_HEADER_LEN] = 7;
        assert_eq!(decode_record(&unknown, 3).map_err(|e| e.0), Err(20));
        for cut in RECORD_HEADER_LEN..buf.len() {
            assert!(decode_record(&buf[..cut], 3).is_err(), "cut at {cut}");
        }
        for i in RECORD_HEADER_LEN + 1..buf.len() {
            let mut flipped = buf.clone();
            flipped[i] ^= 0x55;
            if let Ok(r) = decode_record(&flipped, 3) {
                assert_ne!(r.batch, batch, "flip at {i} decoded to the original");
            }
        }
    }

    #[test]
    fn a_record_of_acknowledgements_only_takes_no_sequence_number() {
        let ack = RecordAck {
            subscription_id: 3,
            position: 7,
        };
        let buf = encode(8, &WriteBatch::new(), &[ack], Compression::Snappy);
        let rec = decode_record(&buf, 3).map_err(|e| e.1);
        assert_eq!(rec.map(|r| (r.first_seqno, r.last_seqno())), Ok((8, 7)));
        let empty = encode(8, &WriteBatch::new(), &[], Compression::Snappy);
        assert!(decode_record(&empty, 3).is_err());
        let marker = decode_record(&empty, 4).map_err(|e| e.1);
        assert_eq!(
            marker.map(|r| (r.is_seal_marker(), r.last_seqno())),
            Ok((true, 7))
        );
    }
}
