//! `GET /keys/{key}`, `GET /keys` (a range scan) and `GET /status`: reads only, each on
//! tokio's blocking pool.

use std::ops::Bound;
use std::sync::Arc;

use alluvium::{Db, SeqNo};
use axum::extract::{RawQuery, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::encoding::{Encoding, KeyValueJson};
use crate::error::ApiError;
use crate::query::{self, Query};
use crate::{App, Backend};

/// `GET /keys/{key}`: the value's bytes as `application/octet-stream`, or with
/// `?format=json` a JSON object; 404 when the key is absent.
pub(crate) async fn lookup(
    State(app): State<Arc<App>>,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref())?;
    query.only(&["format", "encoding"])?;
    let json = match query.text("format")? {
        None | Some("raw") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be raw or json, not {other:?}"
            )))
        }
    };
    let encoding = encoding(&query)?;
    // The raw path, not axum's decoded one: a key is any bytes, not only UTF-8.
    let key = query::decode(uri.path().strip_prefix("/keys/").unwrap_or_default());
    let db = open_db(&app)?;
    let (key, value) =
        tokio::task::spawn_blocking(move || db.get(&key).map(|v| (key, v))).await??;
    let value = value.ok_or(ApiError::NotFound)?;
    Ok(match json {
        true => Json(KeyValueJson::new(&key, Some(&value), encoding)).into_response(),
        false => ([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response(),
    })
}

/// The open database; 503 when the server follows another process's database.
fn open_db(app: &App) -> Result<Db, ApiError> {
    match &app.backend {
        Backend::Open(db) => Ok(db.clone()),
        Backend::Follow(_) => Err(ApiError::Unavailable(
            "another process has the database open: this server follows its change feed \
             only, and key reads need the database"
                .into(),
        )),
    }
}

fn encoding(query: &Query) -> Result<Encoding, ApiError> {
    let parsed = query.text("encoding")?.map(Encoding::parse).transpose()?;
    Ok(parsed.unwrap_or_default())
}

/// A scan's bounds and size.
#[derive(Debug)]
struct ScanRequest {
    start: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
    prefix: Option<Vec<u8>>,
    limit: usize,
    encoding: Encoding,
}

/// One page of a scan.
#[derive(Serialize)]
pub(crate) struct ScanPage {
    /// The sequence number of the snapshot the page was read at.
    seqno: SeqNo,
    entries: Vec<KeyValueJson>,
    /// The next page's `start` (percent-encoded, ready for the URL), or null at the end.
    next: Option<String>,
}

/// `GET /keys?start=&end=&prefix=&limit=&encoding=`: keys in `[start, end)` (and starting with
/// `prefix`), in key order, at most `limit`, from one snapshot.
pub(crate) async fn scan(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ScanPage>, ApiError> {
    let request = scan_request(&Query::parse(raw.as_deref())?, &app)?;
    let db = open_db(&app)?;
    let page = tokio::task::spawn_blocking(move || read_page(&db, &request)).await??;
    Ok(Json(page))
}

fn scan_request(query: &Query, app: &App) -> Result<ScanRequest, ApiError> {
    query.only(&["start", "end", "prefix", "limit", "encoding"])?;
    let (default, max) = (app.config.scan_limit_default, app.config.scan_limit_max);
    let limit = query.number("limit")?.map_or(default, |n| n as usize);
    if limit == 0 || limit > max {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {max}")));
    }
    Ok(ScanRequest {
        start: query.bytes("start").map(<[u8]>::to_vec),
        end: query.bytes("end").map(<[u8]>::to_vec),
        prefix: query.bytes("prefix").map(<[u8]>::to_vec),
        limit,
        encoding: encoding(query)?,
    })
}

fn read_page(db: &Db, request: &ScanRequest) -> Result<ScanPage, ApiError> {
    let snapshot = db.snapshot();
    let prefix = request.prefix.as_deref().unwrap_or_default();
    // The scan starts at the larger of `start` and `prefix` and stops at `end` or at the
    // first key without the prefix.
    let lower = request
        .start
        .as_deref()
        .unwrap_or_default()
        .max(prefix)
        .to_vec();
    let upper = request
        .end
        .clone()
        .map_or(Bound::Unbounded, Bound::Excluded);
    let mut entries = Vec::new();
    for entry in snapshot.range::<Vec<u8>, _>((Bound::Included(lower), upper)) {
        let (key, value) = entry?;
        if !key.starts_with(prefix) {
            break;
        }
        if entries.len() == request.limit {
            return Ok(page(snapshot.seqno(), entries, Some(query::encode(&key))));
        }
        entries.push(KeyValueJson::new(&key, Some(&value), request.encoding));
    }
    Ok(page(snapshot.seqno(), entries, None))
}

fn page(seqno: SeqNo, entries: Vec<KeyValueJson>, next: Option<String>) -> ScanPage {
    ScanPage {
        seqno,
        entries,
        next,
    }
}

/// The feed's extent.
#[derive(Serialize)]
pub(crate) struct Status {
    /// The newest committed sequence number.
    latest_seqno: SeqNo,
    /// The oldest sequence number `GET /feed` can still start at.
    oldest_seqno: SeqNo,
    /// `open` (this process has the database open) or `follow` (another process has).
    mode: &'static str,
}

/// `GET /status`.
pub(crate) async fn status(State(app): State<Arc<App>>) -> Result<Json<Status>, ApiError> {
    let backend = app.backend.clone();
    let status = tokio::task::spawn_blocking(move || read_status(&backend)).await??;
    Ok(Json(status))
}

fn read_status(backend: &Backend) -> Result<Status, ApiError> {
    Ok(match backend {
        Backend::Open(db) => {
            let stats = db.stats();
            Status {
                latest_seqno: stats.latest_seqno,
                oldest_seqno: stats.feed_oldest_seqno,
                mode: "open",
            }
        }
        Backend::Follow(dir) => {
            // Reads the log files, as `alluvium feed subscriptions` does.
            let found = alluvium::inspect::subscriptions(dir)?;
            Status {
                latest_seqno: found.latest_seqno,
                oldest_seqno: found.oldest_seqno,
                mode: "follow",
            }
        }
    })
}
