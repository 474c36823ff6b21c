//! The thread behind one feed connection: it waits on a [`Cursor`] (which blocks) and hands
//! SSE text to the connection through a bounded channel, so the async runtime never blocks.
//!
//! # Concurrency
//! One thread per connection, started by [`spawn`] and holding one of the server's feed
//! permits until it ends. It ends when the client goes away (the channel closes; noticed
//! within [`WAIT_SLICE_MAX`] when idle, at the next send otherwise), when the database
//! closes, or after sending an `event: error`.

use std::time::{Duration, Instant};

use alluvium::{ChangeBatch, Cursor, Db, KeyFilter, SeqNo, Start};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::encoding::{BatchJson, Encoding};
use crate::error::ApiError;
use crate::sse;

/// A chunk grows to about this size when batches are waiting (catching up), so the
/// connection writes large chunks instead of one per batch.
const CHUNK_BYTES: usize = 64 * 1024;

/// The longest an idle feeder waits before checking that its client is still there.
const WAIT_SLICE_MAX: Duration = Duration::from_millis(500);

/// What a client asked for.
#[derive(Debug, Clone)]
pub(crate) struct FeedRequest {
    pub start: Start,
    /// Operations numbered below this are left out (strict resume inside a batch).
    pub min_seqno: SeqNo,
    pub filter: KeyFilter,
    pub encoding: Encoding,
}

/// Everything the thread needs.
pub(crate) struct Job {
    pub db: Db,
    pub request: FeedRequest,
    pub keep_alive: Duration,
    pub chunks: mpsc::Sender<Bytes>,
    /// Told once whether the cursor opened, before anything is streamed.
    pub opened: oneshot::Sender<Result<(), ApiError>>,
    pub permit: OwnedSemaphorePermit,
}

/// Starts the thread for `job`.
pub(crate) fn spawn(job: Job) -> Result<(), ApiError> {
    std::thread::Builder::new()
        .name("alluvium-feed".into())
        .stack_size(512 * 1024)
        .spawn(move || run(job))
        .map(drop)
        .map_err(|e| ApiError::Unavailable(format!("cannot start a feed thread: {e}")))
}

fn run(job: Job) {
    let cursor = match open(&job.db, &job.request) {
        Ok(cursor) => cursor,
        Err(e) => {
            let _ = job.opened.send(Err(e));
            return;
        }
    };
    let _ = job.opened.send(Ok(()));
    let resumed_after = job.request.min_seqno.saturating_sub(1);
    let feeder = Feeder {
        sent_id: cursor.position().max(resumed_after),
        cursor,
        chunks: job.chunks,
        min_seqno: job.request.min_seqno,
        encoding: job.request.encoding,
        keep_alive: job.keep_alive,
    };
    feeder.run();
    drop(job.permit);
}

/// The cursor for `request`; a position past the end is refused rather than waited for (it
/// comes from another database, or one recreated since).
fn open(db: &Db, request: &FeedRequest) -> Result<Cursor, ApiError> {
    let latest = db.latest_seqno();
    if let Start::SeqNo(n) = request.start {
        if n > latest.saturating_add(1) {
            return Err(ApiError::BadRequest(format!(
                "sequence number {n} is past the end of the feed (the latest is {latest}): \
                 is this the same database?"
            )));
        }
    }
    Ok(db
        .changes(request.start)?
        .with_filter(request.filter.clone()))
}

struct Feeder {
    cursor: Cursor,
    chunks: mpsc::Sender<Bytes>,
    min_seqno: SeqNo,
    encoding: Encoding,
    keep_alive: Duration,
    /// The last `id:` the client was sent.
    sent_id: SeqNo,
}

impl Feeder {
    fn run(mut self) {
        let mut buf = String::new();
        sse::comment(&mut buf, "alluvium change feed");
        sse::position(&mut buf, self.sent_id);
        let mut quiet_since = Instant::now();
        let slice = self.keep_alive.min(WAIT_SLICE_MAX);
        loop {
            if !buf.is_empty() {
                if !self.send(&mut buf) {
                    return;
                }
                quiet_since = Instant::now();
            }
            let step = match self.cursor.next_timeout(slice) {
                Ok(Some(batch)) => self.fill(&mut buf, &batch),
                Ok(None) if self.chunks.is_closed() => return,
                Ok(None) if quiet_since.elapsed() >= self.keep_alive => {
                    self.ping(&mut buf);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = step {
                return self.fail(buf, &e);
            }
        }
    }

    /// Appends `first` and the batches right behind it, up to about [`CHUNK_BYTES`].
    fn fill(&mut self, buf: &mut String, first: &ChangeBatch) -> Result<(), ApiError> {
        self.append(buf, first)?;
        while buf.len() < CHUNK_BYTES {
            match self.cursor.try_next()? {
                Some(batch) => self.append(buf, &batch)?,
                None => break,
            }
        }
        Ok(())
    }

    fn append(&mut self, buf: &mut String, batch: &ChangeBatch) -> Result<(), ApiError> {
        let json = BatchJson::new(batch, self.min_seqno, self.encoding);
        if json.ops.is_empty() {
            return Ok(()); // every operation is at or before the resume point
        }
        let text = serde_json::to_string(&json)
            .map_err(|e| ApiError::Internal(format!("cannot encode a batch: {e}")))?;
        sse::batch(buf, batch.last_seqno, &text);
        self.sent_id = batch.last_seqno;
        Ok(())
    }

    /// A keep-alive comment, and the cursor's position when its filter skipped batches since
    /// the last id sent, so a client that reconnects does not read them again.
    fn ping(&mut self, buf: &mut String) {
        sse::comment(buf, "keep-alive");
        let position = self.cursor.position();
        match position > self.sent_id {
            true => sse::position(buf, position),
            false => buf.push('\n'),
        }
        self.sent_id = self.sent_id.max(position);
    }

    /// Sends what `buf` holds; false once the client is gone.
    fn send(&self, buf: &mut String) -> bool {
        let chunk = Bytes::from(std::mem::take(buf));
        self.chunks.blocking_send(chunk).is_ok()
    }

    /// Ends the stream after what `buf` holds: quietly when the database closed (the server
    /// is stopping; the client reconnects later), with an `event: error` otherwise.
    fn fail(&self, mut buf: String, e: &ApiError) {
        match e {
            ApiError::Unavailable(_) => sse::comment(&mut buf, "the server is stopping\n"),
            _ => {
                let json = serde_json::to_string(&e.to_json()).unwrap_or_default();
                sse::error(&mut buf, &json);
            }
        }
        let _ = self.send(&mut buf);
    }
}
