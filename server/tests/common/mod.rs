//! What the server tests share: a server on an in-process database, and a small SSE client
//! over `reqwest` that parses events the way a browser's `EventSource` does.

#![allow(dead_code, reason = "each test file uses the helpers it needs")]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use alluvium::{Db, Options};
use alluvium_server::{router, ServerConfig};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A database in a temporary directory, served on a free loopback port.
pub struct TestServer {
    pub url: String,
    pub db: Db,
    _dir: TempDir,
}

/// Serves a new database opened with `opts` and `config`; the server runs on the test's
/// runtime until the test ends.
pub async fn serve(opts: Options, config: ServerConfig) -> Fallible<TestServer> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), opts)?;
    let url = listen(router(db.clone(), config)).await?;
    Ok(TestServer { url, db, _dir: dir })
}

/// Serves `app` on a free loopback port until the test ends; returns its base URL.
pub async fn listen(app: axum::Router) -> Fallible<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// One Server-Sent Event: `data` is empty for an event that only sets the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    /// The comment lines of the block, without the colon.
    pub comments: Vec<String>,
}

/// An open `GET /feed` response, read event by event.
pub struct SseClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
    /// The last id seen, as `EventSource` keeps it for `Last-Event-ID`.
    pub last_id: Option<String>,
}

/// Opens `url` with an optional `Last-Event-ID` and token; fails unless the status is 200.
pub async fn connect(
    url: &str,
    last_event_id: Option<&str>,
    token: Option<&str>,
) -> Fallible<SseClient> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(format!("{url}: {status}: {}", response.text().await?).into());
    }
    Ok(SseClient {
        body: Box::pin(response.bytes_stream()),
        buf: String::new(),
        last_id: last_event_id.map(str::to_owned),
    })
}

impl SseClient {
    /// The next event or comment block; `None` when the server ended the stream; an error
    /// after `timeout` without one.
    pub async fn next_event(&mut self, timeout: Duration) -> Fallible<Option<SseEvent>> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Ok(Some(self.parse(&block)));
            }
            match tokio::time::timeout(timeout, self.body.next()).await {
                Err(_) => return Err(format!("no event within {timeout:?}").into()),
                Ok(None) => return Ok(None),
                Ok(Some(chunk)) => self.buf.push_str(std::str::from_utf8(&chunk?)?),
            }
        }
    }

    fn parse(&mut self, block: &str) -> SseEvent {
        let mut event = SseEvent {
            id: None,
            event: None,
            data: String::new(),
            comments: Vec::new(),
        };
        for line in block.lines().filter(|l| !l.is_empty()) {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "" => event.comments.push(value.to_owned()),
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => event.data.push_str(value),
                _ => {}
            }
        }
        if event.id.is_some() {
            self.last_id = event.id.clone();
        }
        event
    }

    /// The next event carrying data (batches and errors), skipping comments and id-only
    /// events.
    pub async fn next_data(&mut self, timeout: Duration) -> Fallible<Option<SseEvent>> {
        while let Some(event) = self.next_event(timeout).await? {
            if !event.data.is_empty() {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}

/// One operation of a batch event, decoded: (seqno, kind, key, value).
pub type FeedOp = (u64, String, Vec<u8>, Option<Vec<u8>>);

/// The operations of a batch event's JSON, keys and values decoded to bytes.
pub fn ops(data: &str) -> Fallible<Vec<FeedOp>> {
    let batch: serde_json::Value = serde_json::from_str(data)?;
    let ops = batch["ops"].as_array().ok_or("no ops")?;
    ops.iter().map(op).collect()
}

fn op(op: &serde_json::Value) -> Fallible<FeedOp> {
    let seqno = op["seqno"].as_u64().ok_or("no seqno")?;
    let kind = op["kind"].as_str().ok_or("no kind")?.to_owned();
    let key = decode(&op["key"], &op["key_encoding"])?.ok_or("no key")?;
    let value = decode(&op["value"], &op["value_encoding"])?;
    Ok((seqno, kind, key, value))
}

/// A JSON string in the named encoding, as bytes; `None` for null.
pub fn decode(text: &serde_json::Value, encoding: &serde_json::Value) -> Fallible<Option<Vec<u8>>> {
    use base64::Engine;
    let Some(text) = text.as_str() else {
        return Ok(None);
    };
    Ok(Some(match encoding.as_str() {
        Some("utf8") => text.as_bytes().to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(text)?,
        other => return Err(format!("unexpected encoding {other:?}").into()),
    }))
}

/// Every key and value of `db`, in key order.
pub fn contents(db: &Db) -> Fallible<BTreeMap<Vec<u8>, Vec<u8>>> {
    Ok(db.iter().collect::<alluvium::Result<_>>()?)
}
