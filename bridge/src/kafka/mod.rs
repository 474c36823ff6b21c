//! Kafka bridges (cargo feature `kafka`, librdkafka through `rdkafka`): [`publish`] the change
//! feed into a topic, partitioned by key, and [`ingest`] a topic into a database.
//!
//! Kafka has no deduplication by message id, so exactly-once is argued differently than for
//! NATS (ARCHITECTURE.md, "Bridges"): the idempotent producer keeps each partition a gap-free,
//! duplicate-free prefix within a producer session; every record carries its sequence number
//! (`alluvium-seqno`) and database (`alluvium-db`) in headers; a restarted publisher reads each
//! partition's last record and skips the changes that partition already holds; and a consumer
//! (ingest does) drops any record whose sequence number is not above the last one it applied
//! from that partition.

pub mod ingest;
pub mod publish;
pub mod resume;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{broker, BridgeError, Result};

/// Header: the database id.
pub const HEADER_DB: &str = "alluvium-db";
/// Header: the sequence number, decimal.
pub const HEADER_SEQNO: &str = "alluvium-seqno";
/// Header: `put` or `delete` (a delete's value is null, a Kafka tombstone).
pub const HEADER_OP: &str = "alluvium-op";
/// Header: the batch's commit time, microseconds since the Unix epoch, decimal.
pub const HEADER_COMMIT_TIME_US: &str = "alluvium-commit-time-us";
/// Header: `1` on the last published operation of a batch.
pub const HEADER_BATCH_END: &str = "alluvium-batch-end";

/// How long a metadata or watermark request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `kafka://HOST:PORT[,HOST:PORT]` to librdkafka's `bootstrap.servers`.
pub fn bootstrap_servers(url: &str) -> String {
    url.strip_prefix("kafka://").unwrap_or(url).to_string()
}

/// Kafka's default partitioner (murmur2 of the key, as the Java client): the partition of
/// `key` among `partitions`.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions.max(1)
}

/// The Java client's `Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// A consumer that reads by assignment only (no group offsets are committed).
pub fn consumer(url: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers(url))
        .set("group.id", "alluvium-bridge")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| broker("creating a Kafka consumer", e))
}

/// The number of partitions of `topic`.
pub fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| broker("reading topic metadata", e))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    match count {
        0 => Err(BridgeError::Broker(format!(
            "topic {topic} has no partitions (yet)"
        ))),
        n => Ok(n as i32),
    }
}

/// Each partition's high watermark (the offset the next record will get).
pub fn high_watermarks(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<Vec<i64>> {
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .map(|(_, high)| high)
                .map_err(|e| broker("reading watermarks", e))
        })
        .collect()
}

/// The sequence number of each partition's last record (0 for an empty partition).
///
/// # Errors
/// [`BridgeError::Foreign`] for a last record of another database or without the headers.
pub fn last_seqnos(url: &str, topic: &str, partitions: i32, db_id: &str) -> Result<Vec<u64>> {
    let consumer = consumer(url)?;
    let highs = high_watermarks(&consumer, topic, partitions)?;
    let mut out = vec![0; partitions as usize];
    for (p, &high) in highs.iter().enumerate() {
        let (low, _) = consumer
            .fetch_watermarks(topic, p as i32, REQUEST_TIMEOUT)
            .map_err(|e| broker("reading watermarks", e))?;
        if high <= low {
            continue;
        }
        out[p] = last_seqno(&consumer, topic, p as i32, high - 1, db_id)?;
    }
    Ok(out)
}

/// The highest sequence number from `offset` to the end of partition `p`: it reads on until
/// the partition stays quiet for a second, because a broker may report a high watermark below
/// its last record (tansu 0.6.0 does; TESTING.md, "Bridges").
fn last_seqno(
    consumer: &BaseConsumer,
    topic: &str,
    p: i32,
    offset: i64,
    db_id: &str,
) -> Result<u64> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, p, Offset::Offset(offset))
        .map_err(|e| broker("assigning a partition", e))?;
    consumer
        .assign(&list)
        .map_err(|e| broker("assigning a partition", e))?;
    let mut last = None;
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        quiet_since = std::time::Instant::now();
        let message = message.map_err(|e| broker("reading a partition's last record", e))?;
        let db = header(&message, HEADER_DB);
        let seqno = header(&message, HEADER_SEQNO).and_then(|s| s.parse::<u64>().ok());
        match (db.as_deref() == Some(db_id), seqno) {
            (true, Some(seqno)) => last = Some(last.unwrap_or(0).max(seqno)),
            _ => {
                return Err(BridgeError::Foreign(format!(
                    "{topic}/{p} at offset {} holds a record that is not a change of database \
                     {db_id} (alluvium-db {db:?}): a topic takes the changes of one database",
                    message.offset()
                )))
            }
        }
    }
    last.ok_or_else(|| {
        BridgeError::Broker(format!("no record at {topic}/{p} from offset {offset}"))
    })
}

/// A header's value as text.
pub fn header<M: Message>(message: &M, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 3] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key) as i32, expected, "{key:?}");
        }
    }
}
