//! Ingest: a JetStream stream into a database, each message a write, exactly once.
//!
//! # Exactly once
//! The stream sequence of the last message applied is stored under a reserved key
//! ([`wire::nats_position_key`]) in the **same** [`WriteBatch`] as the writes of the messages
//! up to it. After any crash the database holds both or neither, and the next run starts an
//! ordered consumer right after the stored sequence: no message is applied twice or skipped.
//! Messages of one source batch (up to the one marked `Alluvium-Batch-End`) are written in
//! one batch, so the copy never shows half a source batch either.

use std::time::{Duration, Instant};

use alluvium::{Db, WriteBatch, WriteOptions};
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Message;
use futures::StreamExt;

use crate::error::{broker, BridgeError, Result};
use crate::progress::{age_s, Backoff, Progress, Report};
use crate::wire;

/// What [`ingest`] does.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// The JetStream stream to read.
    pub stream: String,
    /// Only messages on `<subject_prefix>.>` are read; the rest of the subject is the key.
    pub subject_prefix: String,
    /// Messages per write, at least (a write ends at a source batch's end).
    pub batch_max: usize,
    /// Return once every message the stream held when `ingest` started is applied.
    pub exit_at_end: bool,
    /// How often to report progress.
    pub progress_interval: Duration,
}

impl IngestConfig {
    /// Defaults for `stream`: subjects prefixed with the stream name, 1000 messages a write.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> Self {
        let stream = stream.into();
        IngestConfig {
            url: url.into(),
            subject_prefix: stream.clone(),
            stream,
            batch_max: 1000,
            exit_at_end: false,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// The stream sequence `db` has applied from `stream` (0: none).
///
/// # Errors
/// [`BridgeError::Message`] when the reserved key holds something else than a number.
pub fn stored_position(db: &Db, stream: &str) -> Result<u64> {
    let Some(value) = db.get(wire::nats_position_key(stream))? else {
        return Ok(0);
    };
    std::str::from_utf8(&value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            BridgeError::Message(format!(
                "the stored position of {stream} is not a number: {value:?}"
            ))
        })
}

/// Applies the stream's messages to `db` until an error retrying cannot cure (or, with
/// `exit_at_end`, until caught up). Broker errors are retried with exponential backoff.
pub async fn ingest(
    db: &Db,
    config: &IngestConfig,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<Progress> {
    wire::check_subject_prefix(&config.subject_prefix)?;
    let mut state = State {
        progress: Progress {
            verb: "ingested",
            position: stored_position(db, &config.stream)?,
            ..Progress::default()
        },
        target: None,
        stream_last: 0,
        newest_time_us: None,
        last_report: Instant::now(),
        count_at_report: 0,
    };
    let mut backoff = Backoff::default();
    loop {
        let before = state.progress.count;
        match run(db, config, &mut state, report).await {
            Ok(()) => {
                state.report_now(report);
                return Ok(state.progress);
            }
            Err(e) => {
                let delay = backoff.after_failure(e, state.progress.count > before, report)?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

struct State {
    progress: Progress,
    /// With `exit_at_end`, the stream sequence to reach.
    target: Option<u64>,
    /// The stream's last sequence when last asked.
    stream_last: u64,
    newest_time_us: Option<u64>,
    last_report: Instant,
    count_at_report: u64,
}

impl State {
    fn done(&self) -> bool {
        self.target.is_some_and(|t| self.progress.position >= t)
    }

    fn maybe_report(&mut self, every: Duration, report: &mut dyn FnMut(Report<'_>)) {
        if self.last_report.elapsed() >= every {
            self.report_now(report);
        }
    }

    fn report_now(&mut self, report: &mut dyn FnMut(Report<'_>)) {
        let elapsed = self.last_report.elapsed();
        let p = &mut self.progress;
        p.rate_per_s = (p.count - self.count_at_report) as f64 / elapsed.as_secs_f64().max(1e-9);
        p.lag_records = self.stream_last.saturating_sub(p.position);
        p.lag_s = self
            .newest_time_us
            .map(|t| if p.lag_records == 0 { 0.0 } else { age_s(t) });
        self.count_at_report = p.count;
        self.last_report = Instant::now();
        report(Report::Progress(&self.progress));
    }
}

/// Messages decoded and not yet written.
#[derive(Default)]
struct Pending {
    batch: WriteBatch,
    /// Stream sequence of the last message in `batch`.
    last_sequence: u64,
    messages: u64,
    /// True when the last message ended its source batch (or carried no batch header).
    at_batch_end: bool,
    newest_time_us: Option<u64>,
}

async fn run(
    db: &Db,
    config: &IngestConfig,
    state: &mut State,
    report: &mut dyn FnMut(Report<'_>),
) -> Result<()> {
    let js = super::connect(&config.url, 1).await?;
    let mut stream = js
        .get_stream(&config.stream)
        .await
        .map_err(|e| broker(&format!("opening stream {}", config.stream), e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| broker("reading stream info", e))?;
    state.stream_last = info.state.last_sequence;
    if config.exit_at_end && state.target.is_none() {
        state.target = Some(state.stream_last);
    }
    if state.done() {
        return Ok(());
    }
    let start = state.progress.position + 1;
    report(Report::Note(format!(
        "stream {}: applied up to stream sequence {}; reading from {start}",
        config.stream, state.progress.position
    )));
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{}.>", config.subject_prefix),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| broker("creating an ordered consumer", e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| broker("reading messages", e))?;
    let mut pending = Pending::default();
    loop {
        state.maybe_report(config.progress_interval, report);
        let next = tokio::time::timeout(Duration::from_millis(50), messages.next()).await;
        match next {
            Ok(Some(Ok(message))) => {
                add(&mut pending, &message, config, state.progress.position)?;
                if pending.messages as usize >= config.batch_max && pending.at_batch_end {
                    write(db, config, &mut pending, state)?;
                }
            }
            Ok(Some(Err(e))) => return Err(broker("reading messages", e)),
            Ok(None) => return Err(BridgeError::Broker("the consumer ended".into())),
            Err(_idle) => {
                let at_target = state.target.is_some_and(|t| pending.last_sequence >= t);
                if pending.messages > 0 && (pending.at_batch_end || at_target) {
                    write(db, config, &mut pending, state)?;
                }
                if state.done() {
                    return Ok(());
                }
                state.stream_last = state.stream_last.max(pending.last_sequence);
            }
        }
    }
}

/// Decodes one message into `pending`; a message at or below `applied` is skipped (the
/// ordered consumer should never send one).
fn add(
    pending: &mut Pending,
    message: &Message,
    config: &IngestConfig,
    applied: u64,
) -> Result<()> {
    let sequence = message
        .info()
        .map_err(|e| BridgeError::Message(format!("a message without JetStream metadata: {e}")))?
        .stream_sequence;
    if sequence <= applied.max(pending.last_sequence) {
        return Ok(());
    }
    let key = key_of(&message.subject, &config.subject_prefix)?;
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    match header(wire::HEADER_OP).as_deref() {
        Some("delete") => pending.batch.delete(&key),
        Some("put") | None => pending.batch.put(&key, &message.payload),
        Some(other) => {
            return Err(BridgeError::Message(format!(
                "stream sequence {sequence}: unknown {} {other:?}",
                wire::HEADER_OP
            )))
        }
    };
    pending.last_sequence = sequence;
    pending.messages += 1;
    pending.at_batch_end =
        header(wire::HEADER_SEQNO).is_none() || header(wire::HEADER_BATCH_END).is_some();
    if let Some(t) = header(wire::HEADER_COMMIT_TIME_US).and_then(|t| t.parse().ok()) {
        pending.newest_time_us = Some(t);
    }
    Ok(())
}

/// The key a subject names: the token after `<prefix>.`, decoded.
fn key_of(subject: &str, prefix: &str) -> Result<Vec<u8>> {
    let token = subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or_else(|| BridgeError::Message(format!("subject {subject} is not under {prefix}.")))?;
    let key = wire::decode_key(token)?;
    if wire::is_reserved(&key) {
        return Err(BridgeError::Message(format!(
            "subject {subject} names a key under the bridges' reserved prefix"
        )));
    }
    Ok(key)
}

/// Writes the pending messages and the new stream sequence in one batch.
fn write(db: &Db, config: &IngestConfig, pending: &mut Pending, state: &mut State) -> Result<()> {
    let mut taken = std::mem::take(pending);
    let key = wire::nats_position_key(&config.stream);
    taken.batch.put(key, taken.last_sequence.to_string());
    db.write(taken.batch, &WriteOptions::default())?;
    state.progress.position = taken.last_sequence;
    state.progress.count += taken.messages;
    state.newest_time_us = taken.newest_time_us.or(state.newest_time_us);
    Ok(())
}
