//! Publish: the change feed into a Kafka topic, one record per operation, partitioned by key
//! (Kafka's murmur2 partitioner, computed here so a restart knows where each change went).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use alluvium::{Db, Op, SeqNo, WriteOptions};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::DeliveryFuture;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::{
    partition_count, HEADER_BATCH_END, HEADER_COMMIT_TIME_US, HEADER_DB, HEADER_OP, HEADER_SEQNO,
};
use crate::error::{broker, BridgeError, Result};
use crate::feed_reader::{self, Change, Chunk};
use crate::progress::{age_s, Backoff, Progress, Report};

/// What [`publish`] does.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// `kafka://HOST:PORT`.
    pub url: String,
    /// The topic (it must exist, or the broker must create topics on use).
    pub topic: String,
    /// The durable subscription the bridge reads through.
    pub subscription: String,
    /// Records sent and not yet acknowledged, at most.
    pub in_flight_max: usize,
    /// Return once every change committed when `publish` started is published.
    pub exit_at_end: bool,
    /// How often to report progress.
    pub progress_interval: Duration,
}

impl PublishConfig {
    /// Defaults: subscription `bridge.kafka.<topic>`, 1024 records in flight.
    pub fn new(url: impl Into<String>, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        PublishConfig {
            url: url.into(),
            subscription: format!("bridge.kafka.{topic}"),
            topic,
            in_flight_max: 1024,
            exit_at_end: false,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// Publishes the change feed of `db` into the topic, retrying broker errors with backoff.
pub async fn publish(
    db: &Db,
    config: &PublishConfig,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Progress> {
    let mut progress = Progress::of_publisher(db, &config.subscription)?;
    let target = config.exit_at_end.then(|| db.latest_seqno());
    let mut backoff = Backoff::default();
    loop {
        let before = progress.count;
        match run(db, config, &mut progress, target, report).await {
            Ok(()) => {
                progress.lag_records = db.latest_seqno().saturating_sub(progress.position);
                report(Report::Progress(&progress));
                return Ok(progress);
            }
            Err(e) => {
                let delay = backoff.after_failure(e, progress.count > before, report)?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

struct InFlight {
    delivery: Option<DeliveryFuture>,
    position: SeqNo,
    commit_time_us: u64,
}

async fn run(
    db: &Db,
    config: &PublishConfig,
    progress: &mut Progress,
    target: Option<SeqNo>,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", super::bootstrap_servers(&config.url))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(|e| broker("creating the Kafka producer", e))?;
    let partitions = partition_count(&super::consumer(&config.url)?, &config.topic)?;
    let held = super::last_seqnos(&config.url, &config.topic, partitions, db.id())?;
    let sub = db.open_subscription(&config.subscription)?;
    progress.position = sub.position()?;
    if target.is_some_and(|t| progress.position >= t) {
        return Ok(());
    }
    let next = progress.position + 1;
    report(Report::Note(format!(
        "topic {} ({partitions} partitions) holds changes up to {held:?} per partition; \
         subscription {} at {}; publishing from {next}",
        config.topic, config.subscription, progress.position
    )));
    let (reader, chunks) = feed_reader::spawn(db.clone(), next);
    let mut pipeline = Pipeline {
        db,
        config,
        producer: &producer,
        partitions,
        held,
        in_flight: VecDeque::new(),
        acked_at: Instant::now(),
        acked_time_us: None,
        reported_at: Instant::now(),
        reported_count: progress.count,
    };
    let result = pipeline.run(chunks, progress, target, report).await;
    drop(pipeline);
    let _ = reader.join();
    result
}

type Chunks = tokio::sync::mpsc::Receiver<Result<Chunk, alluvium::Error>>;

struct Pipeline<'a> {
    db: &'a Db,
    config: &'a PublishConfig,
    producer: &'a FutureProducer,
    partitions: i32,
    /// Each partition's last sequence number when the run started.
    held: Vec<u64>,
    in_flight: VecDeque<InFlight>,
    acked_at: Instant,
    acked_time_us: Option<u64>,
    reported_at: Instant,
    reported_count: u64,
}

impl Pipeline<'_> {
    async fn run(
        &mut self,
        mut chunks: Chunks,
        progress: &mut Progress,
        target: Option<SeqNo>,
        report: &mut dyn FnMut(Report<'_>),
    ) -> Result<()> {
        loop {
            self.maybe_report(progress, report);
            if self.in_flight.len() < self.config.in_flight_max {
                if let Ok(chunk) = chunks.try_recv() {
                    self.send_chunk(chunk.map_err(|e| cut_off(e, self.config))?)?;
                    continue;
                }
            }
            if let Some(front) = self.in_flight.pop_front() {
                self.complete(front, progress).await?;
                continue;
            }
            self.ack(progress, true)?;
            if target.is_some_and(|t| progress.position >= t) {
                return Ok(());
            }
            let wait = tokio::time::timeout(Duration::from_millis(100), chunks.recv()).await;
            if let Ok(Some(chunk)) = wait {
                self.send_chunk(chunk.map_err(|e| cut_off(e, self.config))?)?;
            }
        }
    }

    fn maybe_report(&mut self, progress: &mut Progress, report: &mut dyn FnMut(Report<'_>)) {
        let elapsed = self.reported_at.elapsed();
        if elapsed < self.config.progress_interval {
            return;
        }
        progress.rate_per_s = (progress.count - self.reported_count) as f64 / elapsed.as_secs_f64();
        progress.lag_records = self.db.latest_seqno().saturating_sub(progress.position);
        let lagging = progress.lag_records > 0;
        progress.lag_s = self
            .acked_time_us
            .map(|t| if lagging { age_s(t) } else { 0.0 });
        report(Report::Progress(progress));
        (self.reported_at, self.reported_count) = (Instant::now(), progress.count);
    }

    /// Waits for the oldest record's delivery and moves the position past it.
    async fn complete(&mut self, front: InFlight, progress: &mut Progress) -> Result<()> {
        if let Some(delivery) = front.delivery {
            match delivery.await {
                Ok(Ok(_)) => progress.count += 1,
                Ok(Err((e, _))) => {
                    return Err(broker(
                        &format!("Kafka refused change {}", front.position),
                        e,
                    ))
                }
                Err(_) => return Err(BridgeError::Broker("the producer went away".into())),
            }
        }
        progress.position = front.position;
        self.acked_time_us = Some(front.commit_time_us);
        self.ack(progress, false)
    }

    /// Acknowledges the position in the subscription, at most every 100 ms unless `now`.
    fn ack(&mut self, progress: &Progress, now: bool) -> Result<()> {
        if !now && self.acked_at.elapsed() < Duration::from_millis(100) {
            return Ok(());
        }
        let sub = self.db.open_subscription(&self.config.subscription)?;
        if progress.position > sub.position()? {
            sub.ack(progress.position, &WriteOptions::default())?;
        }
        self.acked_at = Instant::now();
        Ok(())
    }

    /// Sends a chunk's changes, skipping those whose partition already holds them.
    fn send_chunk(&mut self, chunk: Chunk) -> Result<()> {
        let count = chunk.changes.len();
        for (i, change) in chunk.changes.into_iter().enumerate() {
            let position = if i + 1 == count {
                chunk.through
            } else {
                change.seqno
            };
            let partition = super::partition_of(change.op.key(), self.partitions);
            let held = self
                .held
                .get(partition as usize)
                .is_some_and(|&h| change.seqno <= h);
            let delivery = match held {
                true => None,
                false => Some(send_one(
                    self.producer,
                    self.config,
                    self.db.id(),
                    partition,
                    &change,
                )?),
            };
            let commit_time_us = change.commit_time_us;
            self.in_flight.push_back(InFlight {
                delivery,
                position,
                commit_time_us,
            });
        }
        if count == 0 {
            let (position, commit_time_us) = (chunk.through, chunk.commit_time_us);
            self.in_flight.push_back(InFlight {
                delivery: None,
                position,
                commit_time_us,
            });
        }
        Ok(())
    }
}

fn cut_off(e: alluvium::Error, config: &PublishConfig) -> BridgeError {
    match e {
        alluvium::Error::FeedTruncated {
            requested,
            oldest_available,
        } => BridgeError::CutOff {
            subscription: config.subscription.clone(),
            requested,
            oldest_available,
        },
        e => BridgeError::Db(e),
    }
}

fn send_one(
    producer: &FutureProducer,
    config: &PublishConfig,
    db_id: &str,
    partition: i32,
    change: &Change,
) -> Result<DeliveryFuture> {
    let seqno = change.seqno.to_string();
    let time = change.commit_time_us.to_string();
    let (op, value) = match &change.op {
        Op::Put { value, .. } => ("put", Some(value.as_slice())),
        Op::Delete { .. } => ("delete", None),
    };
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: HEADER_DB,
            value: Some(db_id),
        })
        .insert(Header {
            key: HEADER_SEQNO,
            value: Some(&seqno),
        })
        .insert(Header {
            key: HEADER_OP,
            value: Some(op),
        })
        .insert(Header {
            key: HEADER_COMMIT_TIME_US,
            value: Some(&time),
        });
    if change.batch_end {
        headers = headers.insert(Header {
            key: HEADER_BATCH_END,
            value: Some("1"),
        });
    }
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&config.topic)
        .partition(partition)
        .key(change.op.key())
        .headers(headers);
    if let Some(value) = value {
        record = record.payload(value);
    }
    match producer.send_result(record) {
        Ok(delivery) => Ok(delivery),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
            Err(BridgeError::Broker("the producer's queue is full".into()))
        }
        Err((e, _)) => Err(BridgeError::Message(format!(
            "change {}: {e}",
            change.seqno
        ))),
    }
}
