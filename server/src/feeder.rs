//! The thread behind one feed connection: it waits on a [`Cursor`] (which blocks) and hands
//! SSE text to the connection through a bounded channel, so the async runtime never blocks.
//!
//! # Concurrency
//! One thread per connection, started by [`spawn`] and holding one of the server's feed
//! permits until it ends. It ends when the client goes away (the channel closes; noticed
//! within [`WAIT_SLICE_MAX`] when idle, at the next send otherwise), when the database
//! closes, or after sending an `event: error`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alluvium::{ChangeBatch, Cursor, Db, Follower, KeyFilter, SeqNo, Start};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::encoding::{BatchJson, Encoding};
use crate::error::ApiError;
use crate::{sse, App, Backend};

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
    pub app: Arc<App>,
    pub request: FeedRequest,
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
    let source = match open(&job.app.backend, &job.request) {
        Ok(source) => source,
        Err(e) => {
            let _ = job.opened.send(Err(e));
            return;
        }
    };
    let _ = job.opened.send(Ok(()));
    let resumed_after = job.request.min_seqno.checked_sub(1);
    let feeder = Feeder {
        sent_id: source.position().max(resumed_after),
        source,
        chunks: job.chunks,
        min_seqno: job.request.min_seqno,
        encoding: job.request.encoding,
        app: job.app.clone(),
    };
    feeder.run();
    drop(job.permit);
}

/// Where a feed reads from.
enum Source {
    /// This process's database: woken by the commit path.
    Cursor(Cursor),
    /// Another process's database: polls its log files.
    Follower(Follower),
}

impl Source {
    fn try_next(&mut self) -> alluvium::Result<Option<ChangeBatch>> {
        match self {
            Source::Cursor(c) => c.try_next(),
            Source::Follower(f) => f.try_next(),
        }
    }

    fn next_timeout(&mut self, timeout: Duration) -> alluvium::Result<Option<ChangeBatch>> {
        match self {
            Source::Cursor(c) => c.next_timeout(timeout),
            Source::Follower(f) => f.next_timeout(timeout),
        }
    }

    /// The last sequence number handed out or skipped; `None` while unknown (a follower
    /// before its first record).
    fn position(&self) -> Option<SeqNo> {
        match self {
            Source::Cursor(c) => Some(c.position()),
            Source::Follower(f) => f.position(),
        }
    }
}

fn open(backend: &Backend, request: &FeedRequest) -> Result<Source, ApiError> {
    let filter = request.filter.clone();
    match backend {
        Backend::Open(db) => Ok(Source::Cursor(
            open_cursor(db, request)?.with_filter(filter),
        )),
        Backend::Follow(dir) => Ok(Source::Follower(
            Follower::open(dir, request.start)?.with_filter(filter),
        )),
    }
}

/// The cursor for `request`; a position past the end is refused rather than waited for (it
/// comes from another database, or one recreated since).
fn open_cursor(db: &Db, request: &FeedRequest) -> Result<Cursor, ApiError> {
    let latest = db.latest_seqno();
    if let Start::SeqNo(n) = request.start {
        if n > latest.saturating_add(1) {
            return Err(ApiError::BadRequest(format!(
                "sequence number {n} is past the end of the feed (the latest is {latest}): \
                 is this the same database?"
            )));
        }
    }
    Ok(db.changes(request.start)?)
}

struct Feeder {
    source: Source,
    chunks: mpsc::Sender<Bytes>,
    min_seqno: SeqNo,
    encoding: Encoding,
    app: Arc<App>,
    /// The last `id:` the client was sent.
    sent_id: Option<SeqNo>,
}

impl Feeder {
    fn run(mut self) {
        let mut buf = String::new();
        sse::comment(&mut buf, "alluvium change feed");
        match self.sent_id {
            Some(id) => sse::position(&mut buf, id),
            None => buf.push('\n'),
        }
        let mut quiet_since = Instant::now();
        let keep_alive = self.app.config.keep_alive;
        let slice = keep_alive.min(WAIT_SLICE_MAX);
        loop {
            if !buf.is_empty() {
                if !self.send(&mut buf) {
                    return;
                }
                quiet_since = Instant::now();
            }
            if self.app.stopping.load(Ordering::Acquire) {
                return self.fail(buf, &ApiError::Unavailable("stopping".into()));
            }
            let step = match self.source.next_timeout(slice) {
                Ok(Some(batch)) => self.fill(&mut buf, &batch),
                Ok(None) if self.chunks.is_closed() => return,
                Ok(None) if quiet_since.elapsed() >= keep_alive => {
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
            match self.source.try_next()? {
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
        self.sent_id = Some(batch.last_seqno);
        Ok(())
    }

    /// A keep-alive comment, and the cursor's position when its filter skipped batches since
    /// the last id sent, so a client that reconnects does not read them again.
    fn ping(&mut self, buf: &mut String) {
        sse::comment(buf, "keep-alive");
        match self.source.position() {
            Some(position) if Some(position) > self.sent_id => {
                sse::position(buf, position);
                self.sent_id = Some(position);
            }
            _ => buf.push('\n'),
        }
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
