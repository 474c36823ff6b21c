//! Publish: the change feed into a JetStream stream, every change exactly once, in commit
//! order.
//!
//! # Exactly once
//! - The feed is read through a durable subscription, whose position moves only after
//!   JetStream acknowledged (PubAck) every message up to it.
//! - Every message carries `Nats-Msg-Id: <database id>:<seqno>`: a message re-sent within the
//!   stream's duplicate window is dropped by the server.
//! - Every message carries `Nats-Expected-Last-Sequence`: the server stores it only right
//!   after the message before it, so the stream is always a gap-free prefix of the feed (a
//!   failed publish fails every later one of the run).
//! - Each run (start, and every retry) reads the stream's last message first and resumes at
//!   `max(subscription position, its seqno) + 1`, so a crash followed by an outage longer
//!   than the duplicate window still publishes nothing twice.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use alluvium::{Db, Op, SeqNo, WriteOptions};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream::Stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::{broker, BridgeError, Result};
use crate::feed_reader::{self, Change, Chunk};
use crate::progress::{age_s, Backoff, Progress, Report};
use crate::wire;

/// What [`publish`] does.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// The JetStream stream; created with subjects `<subject_prefix>.>` if missing.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<encoded key>`.
    pub subject_prefix: String,
    /// The durable subscription the bridge reads through; created at the oldest retained
    /// change if missing.
    pub subscription: String,
    /// Messages published and not yet acknowledged, at most.
    pub in_flight_max: usize,
    /// Return once every change committed when `publish` started is published.
    pub exit_at_end: bool,
    /// How often to report progress.
    pub progress_interval: Duration,
}

impl PublishConfig {
    /// Defaults for `stream`: subjects prefixed with the stream name, subscription
    /// `bridge.nats.<stream>`, 512 messages in flight, progress every second.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> Self {
        let stream = stream.into();
        PublishConfig {
            url: url.into(),
            subject_prefix: stream.clone(),
            subscription: format!("bridge.nats.{stream}"),
            stream,
            in_flight_max: 512,
            exit_at_end: false,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// Publishes the change feed of `db` into JetStream until an error that retrying cannot cure
/// (or, with `exit_at_end`, until caught up). Broker errors are retried with exponential
/// backoff, and memory stays bounded meanwhile: the feed is not read ahead of what is in
/// flight. The feed's retention bound still applies: a subscription cut off while the broker
/// was down ends the bridge with [`BridgeError::CutOff`].
pub async fn publish(
    db: &Db,
    config: &PublishConfig,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Progress> {
    wire::check_subject_prefix(&config.subject_prefix)?;
    let mut state = State::new(db, config)?;
    let mut backoff = Backoff::default();
    loop {
        let before = state.progress.count;
        match run(db, config, &mut state, report).await {
            Ok(()) => {
                let elapsed = state.last_report.elapsed();
                state.refresh(db, elapsed);
                report(Report::Progress(&state.progress));
                return Ok(state.progress);
            }
            Err(e) => {
                let delay = backoff.after_failure(e, state.progress.count > before, report)?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What outlives one run.
struct State {
    progress: Progress,
    /// With `exit_at_end`, the position to reach.
    target: Option<SeqNo>,
    /// Commit time of the newest change acknowledged.
    acked_time_us: Option<u64>,
    last_report: Instant,
    count_at_report: u64,
}

impl State {
    fn new(db: &Db, config: &PublishConfig) -> Result<Self> {
        Ok(State {
            progress: Progress::of_publisher(db, &config.subscription)?,
            target: config.exit_at_end.then(|| db.latest_seqno()),
            acked_time_us: None,
            last_report: Instant::now(),
            count_at_report: 0,
        })
    }

    fn done(&self) -> bool {
        self.target.is_some_and(|t| self.progress.position >= t)
    }

    fn maybe_report(&mut self, db: &Db, every: Duration, report: &mut dyn FnMut(Report<'_>)) {
        let elapsed = self.last_report.elapsed();
        if elapsed < every {
            return;
        }
        self.refresh(db, elapsed);
        report(Report::Progress(&self.progress));
    }

    fn refresh(&mut self, db: &Db, elapsed: Duration) {
        let p = &mut self.progress;
        p.rate_per_s = (p.count - self.count_at_report) as f64 / elapsed.as_secs_f64().max(1e-9);
        p.lag_records = db.latest_seqno().saturating_sub(p.position);
        p.lag_s = self
            .acked_time_us
            .map(|t| if p.lag_records == 0 { 0.0 } else { age_s(t) });
        self.count_at_report = p.count;
        self.last_report = Instant::now();
    }
}

/// One connection's worth of publishing: resume point, then the pipeline.
async fn run(
    db: &Db,
    config: &PublishConfig,
    state: &mut State,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<()> {
    let js = super::connect(&config.url, config.in_flight_max).await?;
    let stream = super::ensure_stream(&js, &config.stream, &config.subject_prefix).await?;
    let (stream_last, published) = last_published(&stream, db).await?;
    let sub = db.open_subscription(&config.subscription)?;
    let position = sub.position()?;
    if published > position {
        sub.ack(published, &WriteOptions::default())?;
    }
    state.progress.position = position.max(published);
    if state.done() {
        return Ok(());
    }
    let next = state.progress.position + 1;
    report(Report::Note(format!(
        "stream {} holds changes up to {published} (stream sequence {stream_last}); \
         subscription {} at {position}; publishing from {next}",
        config.stream, config.subscription
    )));
    let (reader, chunks) = feed_reader::spawn(db.clone(), next);
    let mut pipeline = Pipeline {
        db,
        config,
        js: &js,
        expected_last: stream_last,
        in_flight: VecDeque::new(),
        acked_at: Instant::now(),
    };
    let result = pipeline.run(chunks, state, report).await;
    drop(pipeline);
    let _ = reader.join();
    result
}

/// The stream's last sequence, and the last change it holds (0 for none).
///
/// # Errors
/// [`BridgeError::Foreign`] when the last message is not a change of this database, or is
/// ahead of it (a database restored from an older copy).
async fn last_published(stream: &Stream, db: &Db) -> Result<(u64, SeqNo)> {
    let info = stream
        .get_info()
        .await
        .map_err(|e| broker("reading stream info", e))?;
    let last = info.state.last_sequence;
    if last == 0 || info.state.messages == 0 {
        return Ok((last, 0));
    }
    let message = stream
        .get_raw_message(last)
        .await
        .map_err(|e| broker(&format!("reading stream message {last}"), e))?;
    let id = message.headers.get(wire::HEADER_MSG_ID).map(|v| v.as_str());
    let seqno = match id.and_then(wire::parse_msg_id) {
        Some((db_id, seqno)) if db_id == db.id() => seqno,
        _ => {
            return Err(BridgeError::Foreign(format!(
                "stream {}'s last message (sequence {last}, Nats-Msg-Id {id:?}) is not a change \
                 of database {}: a stream takes the changes of one database, from one bridge",
                info.config.name,
                db.id()
            )))
        }
    };
    if seqno > db.latest_seqno() {
        return Err(BridgeError::Foreign(format!(
            "stream {} holds change {seqno}, past this database's latest {}: \
             was the database restored from an older copy?",
            info.config.name,
            db.latest_seqno()
        )));
    }
    Ok((last, seqno))
}

/// A message (or, for a chunk with nothing to publish, a marker) awaiting its acknowledgement.
struct InFlight {
    ack: Option<PublishAckFuture>,
    /// The feed position once acknowledged.
    position: SeqNo,
    commit_time_us: u64,
}

struct Pipeline<'a> {
    db: &'a Db,
    config: &'a PublishConfig,
    js: &'a jetstream::Context,
    /// The stream sequence the next message must follow.
    expected_last: u64,
    in_flight: VecDeque<InFlight>,
    acked_at: Instant,
}

type Chunks = mpsc::Receiver<Result<Chunk, alluvium::Error>>;

impl Pipeline<'_> {
    async fn run(
        &mut self,
        mut chunks: Chunks,
        state: &mut State,
        report: &mut dyn FnMut(Report<'_>),
    ) -> Result<()> {
        loop {
            state.maybe_report(self.db, self.config.progress_interval, report);
            if self.in_flight.len() < self.config.in_flight_max {
                match chunks.try_recv() {
                    Ok(chunk) => {
                        self.send(self.chunk(chunk)?, state).await?;
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        return Err(BridgeError::Message("the feed reader stopped".into()))
                    }
                }
            }
            if let Some(front) = self.in_flight.pop_front() {
                self.complete(front, state).await?;
                continue;
            }
            self.ack(state, true)?;
            if state.done() {
                return Ok(());
            }
            let wait = tokio::time::timeout(Duration::from_millis(100), chunks.recv()).await;
            if let Ok(Some(chunk)) = wait {
                self.send(self.chunk(chunk)?, state).await?;
            }
        }
    }

    /// A chunk from the reader, its feed error turned into the bridge's.
    fn chunk(&self, chunk: Result<Chunk, alluvium::Error>) -> Result<Chunk> {
        chunk.map_err(|e| match e {
            alluvium::Error::FeedTruncated {
                requested,
                oldest_available,
            } => BridgeError::CutOff {
                subscription: self.config.subscription.clone(),
                requested,
                oldest_available,
            },
            e => BridgeError::Db(e),
        })
    }

    /// Publishes a chunk's changes (or queues a marker for a chunk without any), never more
    /// than `in_flight_max` unacknowledged: the client holds an acknowledgement permit per
    /// message until its future is awaited, so going past its limit would wait forever.
    async fn send(&mut self, chunk: Chunk, state: &mut State) -> Result<()> {
        let count = chunk.changes.len();
        for (i, change) in chunk.changes.into_iter().enumerate() {
            while self.in_flight.len() >= self.config.in_flight_max {
                if let Some(front) = self.in_flight.pop_front() {
                    self.complete(front, state).await?;
                }
            }
            let position = if i + 1 == count {
                chunk.through
            } else {
                change.seqno
            };
            let commit_time_us = change.commit_time_us;
            let ack = self.publish_one(change).await?;
            self.in_flight.push_back(InFlight {
                ack: Some(ack),
                position,
                commit_time_us,
            });
        }
        if count == 0 {
            self.in_flight.push_back(InFlight {
                ack: None,
                position: chunk.through,
                commit_time_us: chunk.commit_time_us,
            });
        }
        Ok(())
    }

    async fn publish_one(&mut self, change: Change) -> Result<PublishAckFuture> {
        let subject = format!(
            "{}.{}",
            self.config.subject_prefix,
            wire::encode_key(change.op.key())
        );
        if subject.len() > wire::SUBJECT_BYTES_MAX {
            return Err(BridgeError::Message(format!(
                "change {}: its key makes a subject of {} bytes, past the {} a NATS server takes",
                change.seqno,
                subject.len(),
                wire::SUBJECT_BYTES_MAX
            )));
        }
        let message = PublishMessage::build()
            .headers(headers(&change))
            .message_id(wire::msg_id(self.db.id(), change.seqno))
            .expected_last_sequence(self.expected_last)
            .payload(payload(change.op));
        self.expected_last += 1;
        self.js
            .send_publish(subject, message)
            .await
            .map_err(|e| match e.kind() {
                async_nats::jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
                    BridgeError::Message(format!("change {}: {e}", change.seqno))
                }
                _ => broker(&format!("publishing change {}", change.seqno), e),
            })
    }

    /// Waits for the oldest message's acknowledgement and moves the position past it.
    async fn complete(&mut self, front: InFlight, state: &mut State) -> Result<()> {
        if let Some(ack) = front.ack {
            let ack = ack
                .await
                .map_err(|e| broker(&format!("JetStream refused change {}", front.position), e))?;
            state.progress.count += 1;
            state.progress.duplicates += u64::from(ack.duplicate);
        }
        state.progress.position = front.position;
        state.acked_time_us = Some(front.commit_time_us);
        self.ack(state, false)
    }

    /// Acknowledges the position in the subscription, at most every 100 ms unless `now`.
    fn ack(&mut self, state: &State, now: bool) -> Result<()> {
        if !now && self.acked_at.elapsed() < Duration::from_millis(100) {
            return Ok(());
        }
        let sub = self.db.open_subscription(&self.config.subscription)?;
        if state.progress.position > sub.position()? {
            sub.ack(state.progress.position, &WriteOptions::default())?;
        }
        self.acked_at = Instant::now();
        Ok(())
    }
}

fn headers(change: &Change) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(wire::HEADER_SEQNO, change.seqno.to_string().as_str());
    let op = match change.op {
        Op::Put { .. } => "put",
        Op::Delete { .. } => "delete",
    };
    h.insert(wire::HEADER_OP, op);
    h.insert(
        wire::HEADER_COMMIT_TIME_US,
        change.commit_time_us.to_string().as_str(),
    );
    if change.batch_end {
        h.insert(wire::HEADER_BATCH_END, "1");
    }
    h
}

fn payload(op: Op) -> Bytes {
    match op {
        Op::Put { value, .. } => Bytes::from(value),
        Op::Delete { .. } => Bytes::new(),
    }
}
