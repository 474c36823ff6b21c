//! The payload of one commit log frame: a whole batch.
//! Format: FORMAT.md, "Commit log files", "Record payload".

use crate::batch::{Op, WriteBatch};
use crate::coding::{put_bytes, put_u32, put_u64, put_varint, Reader};
use crate::key::{SeqNo, ValueKind, SEQNO_MAX};

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
/// Payload layout: `first_seqno u64, count u32, commit_time_us u64`, then `count` operations,
/// each `kind u8, key (varint length + bytes)` and for a put `value (varint length + bytes)`;
/// from format version 2 on, then `ack_count varint` and that many `(subscription id varint,
/// position varint)` pairs.
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
}

/// Appends the payload of a record (format version 2) for `batch` and `acks` to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    first_seqno: SeqNo,
    commit_time_us: u64,
    batch: &WriteBatch,
    acks: &[RecordAck],
) {
    put_u64(out, first_seqno);
    put_u32(out, batch.len() as u32);
    put_u64(out, commit_time_us);
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

/// Decodes a record payload of log format `version` (1 or 2); `Err` carries the offset within
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
    let ops = decode_ops(&mut r, count, payload.len())?;
    let acks = if version >= 2 {
        decode_acks(&mut r)?
    } else {
        Vec::new()
    };
    if ops.is_empty() && acks.is_empty() {
        return Err((
            0,
            "record has neither operations nor acknowledgements".into(),
        ));
    }
    if !r.is_empty() {
        return Err((
            r.pos(),
            format!("{} bytes after the last field", r.remaining()),
        ));
    }
    Ok(LogRecord {
        first_seqno,
        commit_time_us,
        batch: WriteBatch::from_ops(ops),
        acks,
    })
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

    #[test]
    fn records_round_trip_and_reject_trailing_bytes() {
        let mut batch = WriteBatch::new();
        batch.put(b"k1", b"v1").delete(b"").put(b"", vec![7u8; 300]);
        let mut buf = Vec::new();
        let acks = [RecordAck {
            subscription_id: 9,
            position: 41,
        }];
        encode_record(&mut buf, 42, 1_700_000_000_000_000, &batch, &acks);
        let rec = decode_record(&buf, 2).map_err(|e| e.1);
        assert_eq!(
            rec.as_ref().map(|r| (r.first_seqno, r.last_seqno())),
            Ok((42, 44))
        );
        assert_eq!(rec.as_ref().map(|r| r.acks.clone()), Ok(acks.to_vec()));
        assert_eq!(rec.map(|r| r.batch), Ok(batch));
        assert!(
            decode_record(&buf, 1).is_err(),
            "version 1 has no ack section"
        );
        buf.push(0);
        assert!(decode_record(&buf, 2).is_err());
        assert!(decode_record(&buf[..buf.len() - 10], 2).is_err());
    }

    #[test]
    fn a_record_of_acknowledgements_only_takes_no_sequence_number() {
        let mut buf = Vec::new();
        let ack = RecordAck {
            subscription_id: 3,
            position: 7,
        };
        encode_record(&mut buf, 8, 0, &WriteBatch::new(), &[ack]);
        let rec = decode_record(&buf, 2).map_err(|e| e.1);
        assert_eq!(rec.map(|r| (r.first_seqno, r.last_seqno())), Ok((8, 7)));
        let mut empty = Vec::new();
        encode_record(&mut empty, 8, 0, &WriteBatch::new(), &[]);
        assert!(decode_record(&empty, 2).is_err());
    }
}
