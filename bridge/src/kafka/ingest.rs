//! Ingest: a Kafka topic into a database. For each partition, the offset of the last record
//! applied and the highest sequence number applied from it are stored under a reserved key
//! (`\xff\xffalluvium/ingest/kafka/<topic>/<partition>`, value `<offset> <seqno>`) in the same
//! batch as the data; a record whose `alluvium-seqno` is not above the stored one (a duplicate
//! a publisher crash produced) is skipped, its offset still stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alluvium::{Db, WriteBatch, WriteOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{header, high_watermarks, partition_count, HEADER_OP, HEADER_SEQNO};
use crate::error::{broker, BridgeError, Result};
use crate::progress::{Backoff, Progress, Report};
use crate::wire;

/// What [`ingest`] does.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// `kafka://HOST:PORT`.
    pub url: String,
    /// The topic to read, every partition.
    pub topic: String,
    /// Records per write, at most.
    pub batch_max: usize,
    /// Return once every record the topic held when `ingest` started is applied.
    pub exit_at_end: bool,
    /// How often to report progress.
    pub progress_interval: Duration,
}

impl IngestConfig {
    /// Defaults: 1000 records a write.
    pub fn new(url: impl Into<String>, topic: impl Into<String>) -> Self {
        IngestConfig {
            url: url.into(),
            topic: topic.into(),
            batch_max: 1000,
            exit_at_end: false,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// The reserved key of `partition` of `topic`.
pub fn position_key(topic: &str, partition: i32) -> Vec<u8> {
    [
        wire::RESERVED_PREFIX,
        format!("ingest/kafka/{topic}/{partition}").as_bytes(),
    ]
    .concat()
}

/// What is stored for one partition: (offset of the last record applied, or -1; highest
/// sequence number applied, or 0).
pub fn stored_position(db: &Db, topic: &str, partition: i32) -> Result<(i64, u64)> {
    let Some(value) = db.get(position_key(topic, partition))? else {
        return Ok((-1, 0));
    };
    let text = String::from_utf8_lossy(&value);
    let mut parts = text.split(' ').map(|s| s.parse::<i64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(offset), Some(seqno)) if seqno >= 0 => Ok((offset, seqno as u64)),
        _ => Err(BridgeError::Message(format!(
            "the stored position of {topic}/{partition} is not '<offset> <seqno>': {text:?}"
        ))),
    }
}

/// Applies the topic's records to `db`; broker errors are retried with backoff. Blocking.
pub fn ingest(
    db: &Db,
    config: &IngestConfig,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Progress> {
    let mut progress = Progress {
        verb: "ingested",
        ..Progress::default()
    };
    let mut backoff = Backoff::default();
    let mut target: Option<Vec<i64>> = None;
    loop {
        let before = progress.count;
        match run(db, config, &mut progress, &mut target, report) {
            Ok(()) => {
                report(Report::Progress(&progress));
                return Ok(progress);
            }
            Err(e) => {
                let delay = backoff.after_failure(e, progress.count > before, report)?;
                std::thread::sleep(delay);
            }
        }
    }
}

fn run(
    db: &Db,
    config: &IngestConfig,
    progress: &mut Progress,
    target: &mut Option<Vec<i64>>,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<()> {
    let consumer = super::consumer(&config.url)?;
    let partitions = partition_count(&consumer, &config.topic)?;
    let mut stored: Vec<(i64, u64)> = (0..partitions)
        .map(|p| stored_position(db, &config.topic, p))
        .collect::<Result<_>>()?;
    if config.exit_at_end && target.is_none() {
        *target = Some(high_watermarks(&consumer, &config.topic, partitions)?);
    }
    let done = |stored: &[(i64, u64)]| {
        target.as_ref().is_some_and(|t| {
            t.iter()
                .zip(stored)
                .all(|(&high, &(offset, _))| offset + 1 >= high)
        })
    };
    if done(&stored) {
        return Ok(());
    }
    assign(&consumer, &config.topic, &stored)?;
    report(Report::Note(format!(
        "topic {}: applied up to offsets {:?}; reading from there",
        config.topic,
        stored.iter().map(|s| s.0).collect::<Vec<_>>()
    )));
    let mut batch = WriteBatch::new();
    let mut touched: BTreeMap<i32, (i64, u64)> = BTreeMap::new();
    let mut quiet_since = Instant::now();
    let (mut pending, mut reported_at, mut reported_count) = (0, Instant::now(), progress.count);
    loop {
        if reported_at.elapsed() >= config.progress_interval {
            progress.rate_per_s =
                (progress.count - reported_count) as f64 / reported_at.elapsed().as_secs_f64();
            report(Report::Progress(progress));
            (reported_at, reported_count) = (Instant::now(), progress.count);
        }
        let polled = consumer.poll(Duration::from_millis(50));
        let idle = polled.is_none();
        if !idle {
            quiet_since = Instant::now();
        }
        if let Some(message) = polled {
            let message = message.map_err(|e| broker("reading records", e))?;
            let p = message.partition();
            let (offset, seqno) = touched.get(&p).copied().unwrap_or(stored[p as usize]);
            let record_seqno = header(&message, HEADER_SEQNO).and_then(|s| s.parse::<u64>().ok());
            // A record of this bridge is judged by its sequence number alone: a broker may give
            // two records one offset (TESTING.md, "Bridges"). Others by their offset.
            if message.offset() < offset || (message.offset() == offset && record_seqno.is_none()) {
                continue;
            }
            let fresh = record_seqno.is_none_or(|s| s > seqno);
            if fresh {
                apply(&mut batch, &message)?;
                pending += 1;
            }
            touched.insert(
                p,
                (message.offset(), record_seqno.unwrap_or(seqno).max(seqno)),
            );
        }
        if !touched.is_empty() && (pending >= config.batch_max || idle) {
            for (&p, &(offset, seqno)) in &touched {
                batch.put(position_key(&config.topic, p), format!("{offset} {seqno}"));
                stored[p as usize] = (offset, seqno);
            }
            db.write(std::mem::take(&mut batch), &WriteOptions::default())?;
            progress.count += pending as u64;
            progress.position = stored.iter().map(|s| (s.0 + 1).max(0) as u64).sum();
            (pending, touched) = (0, BTreeMap::new());
        }
        // A broker may report a high watermark below its last record (tansu 0.6.0 does), so
        // the end is also a second without records.
        if idle && done(&stored) && quiet_since.elapsed() >= Duration::from_secs(1) {
            return Ok(());
        }
    }
}

fn assign(consumer: &BaseConsumer, topic: &str, stored: &[(i64, u64)]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for (p, &(offset, _)) in stored.iter().enumerate() {
        let start = if offset < 0 {
            Offset::Beginning
        } else {
            Offset::Offset(offset + 1)
        };
        list.add_partition_offset(topic, p as i32, start)
            .map_err(|e| broker("assigning partitions", e))?;
    }
    consumer
        .assign(&list)
        .map_err(|e| broker("assigning partitions", e))
}

fn apply<M: Message>(batch: &mut WriteBatch, message: &M) -> Result<()> {
    let key = message.key().unwrap_or_default();
    if wire::is_reserved(key) {
        return Err(BridgeError::Message(format!(
            "offset {} holds a key under the reserved prefix",
            message.offset()
        )));
    }
    match (header(message, HEADER_OP).as_deref(), message.payload()) {
        (Some("delete"), _) | (None, None) => batch.delete(key),
        (Some("put") | None, value) => batch.put(key, value.unwrap_or_default()),
        (Some(other), _) => {
            return Err(BridgeError::Message(format!(
                "unknown alluvium-op {other:?}"
            )))
        }
    };
    Ok(())
}
