//! `GET /feed`: the change feed as Server-Sent Events.
//!
//! One event per batch (whole, in commit order), `id:` = the batch's last sequence number. A
//! reconnecting client sends `Last-Event-ID: N` and gets exactly the operations numbered
//! `N + 1` and up. See `server/README.md` for the format.

use std::convert::Infallible;
use std::sync::Arc;

use alluvium::{KeyFilter, SeqNo, Start};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::encoding::Encoding;
use crate::error::ApiError;
use crate::feeder::{self, FeedRequest};
use crate::query::Query;
use crate::App;

/// Chunks of SSE text waiting for a slow client; the feeder thread waits when it is full, so
/// a slow client costs bounded memory (each chunk is at most about 64 KiB plus one batch).
const CHUNKS_QUEUED_MAX: usize = 16;

/// The handler: validates, starts the feeder thread, and answers 200 with the stream once
/// the cursor is open, or with the error (410 for a position retention discarded).
pub(crate) async fn feed(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = parse(&Query::parse(raw.as_deref())?, &headers)?;
    let permit = app.feed_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(format!(
            "{} feed connections are open; that is the most this server serves",
            app.config.feeds_max
        ))
    })?;
    let (chunks, rx) = mpsc::channel(CHUNKS_QUEUED_MAX);
    let (opened, opened_rx) = oneshot::channel();
    let job = feeder::Job {
        app: app.clone(),
        request,
        chunks,
        opened,
        permit,
    };
    feeder::spawn(job)?;
    opened_rx
        .await
        .map_err(|_| ApiError::Internal("the feed thread stopped".into()))??;
    Ok(stream_response(rx))
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, Infallible>(c), rx))
    });
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // Tells nginx not to buffer the stream.
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, Body::from_stream(chunks)).into_response()
}

/// The query and the `Last-Event-ID` header as a feed request.
fn parse(query: &Query, headers: &HeaderMap) -> Result<FeedRequest, ApiError> {
    query.only(&["from", "prefix", "start", "end", "encoding"])?;
    let (start, min_seqno) = match last_event_id(headers)? {
        Some(id) => resume_after(id)?,
        None => from(query.text("from")?)?,
    };
    let encoding = query.text("encoding")?.map(Encoding::parse).transpose()?;
    Ok(FeedRequest {
        start,
        min_seqno,
        filter: filter(query)?,
        encoding: encoding.unwrap_or_default(),
    })
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<SeqNo>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest("Last-Event-ID must be a sequence number".into());
    let text = value.to_str().map_err(|_| bad())?.trim();
    text.parse().map(Some).map_err(|_| bad())
}

/// Strictly after `id`: the batch holding `id + 1`, without operations numbered `id` or less.
fn resume_after(id: SeqNo) -> Result<(Start, SeqNo), ApiError> {
    let next = id
        .checked_add(1)
        .ok_or_else(|| ApiError::BadRequest("Last-Event-ID is too large".into()))?;
    Ok((Start::SeqNo(next), next))
}

/// `from`: absent or `now` = only what is committed from now on; `0` or `beginning` = the
/// oldest retained batch; `N` = operations numbered `N` and up.
fn from(text: Option<&str>) -> Result<(Start, SeqNo), ApiError> {
    match text {
        None | Some("now") => Ok((Start::Now, 0)),
        Some("0") | Some("beginning") => Ok((Start::Beginning, 0)),
        Some(n) => match n.parse::<SeqNo>() {
            Ok(n) => Ok((Start::SeqNo(n), n)),
            Err(_) => Err(ApiError::BadRequest(format!(
                "from must be a sequence number, beginning or now, not {n:?}"
            ))),
        },
    }
}

fn filter(query: &Query) -> Result<KeyFilter, ApiError> {
    let (prefix, start, end) = (
        query.bytes("prefix"),
        query.bytes("start"),
        query.bytes("end"),
    );
    match (prefix, start.is_some() || end.is_some()) {
        (Some(_), true) => Err(ApiError::BadRequest(
            "prefix and start/end do not go together".into(),
        )),
        (Some(p), false) => Ok(KeyFilter::Prefix(p.to_vec())),
        (None, true) => Ok(KeyFilter::Range {
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
        }),
        (None, false) => Ok(KeyFilter::All),
    }
}
