//! The payload of one commit log frame: a whole batch.
//! Format: FORMAT.md, "Commit log files", "Record payload".

use crate::batch::{Op, WriteBatch};
use crate::coding::{put_bytes, put_u32, put_u64, Reader};
use crate::key::{SeqNo, ValueKind};

/// One batch as the commit log stores it.
///
/// Payload layout: `first_seqno u64, count u32, commit_time_us u64`, then `count` operations,
/// each `kind u8, key (varint length + bytes)` and for a put `value (varint length + bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number of the first operation; operation i has `first_seqno + i`.
    pub first_seqno: SeqNo,
    /// Commit time in microseconds since the Unix epoch.
    pub commit_time_us: u64,
    /// The operations, in order.
    pub batch: WriteBatch,
}

impl LogRecord {
    /// Sequence number of the last operation.
    pub fn last_seqno(&self) -> SeqNo {
        self.first_seqno + self.batch.len() as u64 - 1
    }
}

/// Appends the payload of a record for `batch` to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    first_seqno: SeqNo,
    commit_time_us: u64,
    batch: &WriteBatch,
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
}

/// Decodes a record payload; `Err` carries the offset within the payload and what is wrong.
pub fn decode_record(payload: &[u8]) -> Result<LogRecord, (usize, String)> {
    let mut r = Reader::new(payload);
    let short = |r: &Reader| (r.pos(), "record header is truncated".to_string());
    let first_seqno = r.u64().ok_or_else(|| short(&r))?;
    let count = r.u32().ok_or_else(|| short(&r))?;
    let commit_time_us = r.u64().ok_or_else(|| short(&r))?;
    if count == 0 || first_seqno == 0 {
        return Err((
            0,
            format!("record has {count} operations at sequence number {first_seqno}"),
        ));
    }
    let mut ops = Vec::with_capacity((count as usize).min(payload.len()));
    for i in 0..count {
        ops.push(
            decode_op(&mut r).ok_or_else(|| (r.pos(), format!("operation {i} is malformed")))?,
        );
    }
    if !r.is_empty() {
        return Err((
            r.pos(),
            format!("{} bytes after the last operation", r.remaining()),
        ));
    }
    let batch = WriteBatch::from_ops(ops);
    Ok(LogRecord {
        first_seqno,
        commit_time_us,
        batch,
    })
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
        encode_record(&mut buf, 42, 1_700_000_000_000_000, &batch);
        let rec = decode_record(&buf).map_err(|e| e.1);
        assert_eq!(
            rec.as_ref().map(|r| (r.first_seqno, r.last_seqno())),
            Ok((42, 44))
        );
        assert_eq!(rec.map(|r| r.batch), Ok(batch));
        buf.push(0);
        assert!(decode_record(&buf).is_err());
        assert!(decode_record(&buf[..buf.len() - 10]).is_err());
    }
}
