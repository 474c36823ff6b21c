//! Ingest: a Kafka topic into a database. For each partition, the offset of the last record
//! applied and the highest sequence number applied from it are stored under a reserved key
//! (`\xff\xffalluvium/ingest/kafka/<topic>/<partition>`, value `<offset> <seqno>`) in the same
//! batch as the data; a record whose `alluvium-seqno` is not above the stored one (a duplicate
//! a publisher crash produced) is skipped, its offset still stored. A restart fetches each
//! partition from the last record applied and applies nothing from it until that record came
//! back, rewinding if the broker skipped it ([`super::resume`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use alluvium::{Db, WriteBatch, WriteOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::resume::{PartitionRead, Verdict};
use super::{header, high_watermarks, partition_count, HEADER_OP, HEADER_SEQNO, REQUEST_TIMEOUT};
use crate::error::{broker, BridgeError, Result};
use crate::progress::{Backoff, Progress, Report};
use crate::wire;

/// How long a partition not yet covered may give nothing before it is rewound
/// ([`super::resume`]).
const SILENCE_BEFORE_REWIND: Duration = Duration::from_secs(2);

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
    let reads: Vec<PartitionRead> = (0..partitions)
        .map(|p| stored_position(db, &config.topic, p).map(PartitionRead::new))
        .collect::<Result<_>>()?;
    if config.exit_at_end && target.is_none() {
        *target = Some(high_watermarks(&consumer, &config.topic, partitions)?);
    }
    assign(&consumer, &config.topic, &reads)?;
    report(Report::Note(format!(
        "topic {}: applied up to offsets {:?}; reading from there",
        config.topic,
        reads.iter().map(|r| r.stored.0).collect::<Vec<_>>()
    )));
    let mut run = Run {
        db,
        config,
        consumer: &consumer,
        target: target.as_deref(),
        silent_since: vec![Instant::now(); reads.len()],
        reads,
        batch: WriteBatch::new(),
        touched: BTreeSet::new(),
        pending: 0,
    };
    run.consume(progress, report)
}

/// One run of ingest: the consumer, each partition's read, and the batch being filled.
struct Run<'a> {
    db: &'a Db,
    config: &'a IngestConfig,
    consumer: &'a BaseConsumer,
    /// Each partition's high watermark when ingest started (with `--exit-at-end`).
    target: Option<&'a [i64]>,
    reads: Vec<PartitionRead>,
    /// When each partition last gave a record or was sought.
    silent_since: Vec<Instant>,
    batch: WriteBatch,
    /// Partitions whose position moved since the last write.
    touched: BTreeSet<i32>,
    /// Records in `batch`.
    pending: usize,
}

impl Run<'_> {
    fn consume(
        &mut self,
        progress: &mut Progress,
        report: &mut dyn FnMut(Report<'_>),
    ) -> Result<()> {
        let mut quiet_since = Instant::now();
        let (mut reported_at, mut reported_count) = (Instant::now(), progress.count);
        loop {
            if reported_at.elapsed() >= self.config.progress_interval {
                progress.rate_per_s =
                    (progress.count - reported_count) as f64 / reported_at.elapsed().as_secs_f64();
                report(Report::Progress(progress));
                (reported_at, reported_count) = (Instant::now(), progress.count);
            }
            let polled = self.consumer.poll(Duration::from_millis(50));
            let idle = polled.is_none();
            if let Some(message) = polled {
                quiet_since = Instant::now();
                self.take(&message.map_err(|e| broker("reading records", e))?, report)?;
            }
            self.rewind_silent(report)?;
            if !self.touched.is_empty() && (self.pending >= self.config.batch_max || idle) {
                self.write(progress)?;
            }
            // A broker may report a high watermark below its last record (tansu 0.6.0 does), so
            // the end is also a second without records.
            if idle && self.done() && quiet_since.elapsed() >= Duration::from_secs(1) {
                return Ok(());
            }
        }
    }

    /// Judges one record and adds it to the batch, or rewinds its partition.
    fn take<M: Message>(&mut self, message: &M, report: &mut dyn FnMut(Report<'_>)) -> Result<()> {
        let p = message.partition();
        let Some(read) = usize::try_from(p).ok().and_then(|i| self.reads.get_mut(i)) else {
            return Ok(());
        };
        self.silent_since[p as usize] = Instant::now();
        let seqno = header(message, HEADER_SEQNO).and_then(|s| s.parse::<u64>().ok());
        match read.judge(message.offset(), seqno) {
            Verdict::Apply => {
                apply(&mut self.batch, message)?;
                self.pending += 1;
                self.touched.insert(p);
            }
            Verdict::SkipDuplicate => {
                self.touched.insert(p);
            }
            Verdict::SkipReread => {}
            Verdict::Rewind(to) => {
                let why = format!("the first record came at offset {}", message.offset());
                self.seek(p, to, &why, report)?;
            }
        }
        Ok(())
    }

    /// Rewinds the partitions not yet covered that gave nothing for 2 seconds.
    fn rewind_silent(&mut self, report: &mut dyn FnMut(Report<'_>)) -> Result<()> {
        for p in 0..self.reads.len() {
            if self.silent_since[p].elapsed() < SILENCE_BEFORE_REWIND {
                continue;
            }
            self.silent_since[p] = Instant::now();
            if let Some(to) = self.reads[p].silent() {
                self.seek(p as i32, to, "nothing came for 2 s", report)?;
            }
        }
        Ok(())
    }

    fn seek(
        &mut self,
        p: i32,
        to: Option<i64>,
        why: &str,
        report: &mut dyn FnMut(Report<'_>),
    ) -> Result<()> {
        let stored = self.reads[p as usize].stored.0;
        report(Report::Note(format!(
            "{}/{p}: fetched from offset {stored}, {why}; fetching from {} (TESTING.md, Bridges)",
            self.config.topic,
            to.map_or("the beginning".to_string(), |o| format!("offset {o}"))
        )));
        self.silent_since[p as usize] = Instant::now();
        let offset = to.map_or(Offset::Beginning, Offset::Offset);
        self.consumer
            .seek(&self.config.topic, p, offset, REQUEST_TIMEOUT)
            .map_err(|e| broker("seeking a partition", e))
    }

    /// Writes the batch with the position of every partition it moved.
    fn write(&mut self, progress: &mut Progress) -> Result<()> {
        for &p in &self.touched {
            let (offset, seqno) = self.reads[p as usize].stored;
            self.batch.put(
                position_key(&self.config.topic, p),
                format!("{offset} {seqno}"),
            );
        }
        self.db
            .write(std::mem::take(&mut self.batch), &WriteOptions::default())?;
        progress.count += self.pending as u64;
        progress.position = self
            .reads
            .iter()
            .map(|r| (r.stored.0 + 1).max(0) as u64)
            .sum();
        (self.pending, self.touched) = (0, BTreeSet::new());
        Ok(())
    }

    /// Whether every partition is covered and at its target (with `--exit-at-end`).
    fn done(&self) -> bool {
        self.target.is_some_and(|t| {
            t.iter()
                .zip(&self.reads)
                .all(|(&high, r)| r.is_covered() && r.stored.0 + 1 >= high)
        })
    }
}

fn assign(consumer: &BaseConsumer, topic: &str, reads: &[PartitionRead]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for (p, read) in reads.iter().enumerate() {
        let start = read.from().map_or(Offset::Beginning, Offset::Offset);
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
