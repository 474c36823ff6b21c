//! alluvium's change feed over HTTP, and a read-only key API.
//!
//! `alluvium serve DIR --listen 127.0.0.1:PORT` runs this crate's [`run`]. The routes (the
//! full reference with examples is `server/README.md`):
//!
//! | route | what it returns |
//! |---|---|
//! | `GET /feed?from=&prefix=&start=&end=&encoding=` | the change feed as Server-Sent Events, one event per batch, `id:` = the batch's last sequence number; resume with `Last-Event-ID` |
//! | `GET /keys/{key}` | a key's value bytes (`?format=json` for JSON), 404 when absent |
//! | `GET /keys?start=&end=&prefix=&limit=&encoding=` | a range scan as JSON, with a continuation marker |
//! | `GET /status` | the newest and the oldest sequence numbers the feed can hand out |
//!
//! There is no write endpoint: every other method is 405. With a token, every request needs
//! `Authorization: Bearer TOKEN` (401 otherwise).
//!
//! The library stays runtime-free: each feed client gets a thread of its own that waits on
//! an [`alluvium::Cursor`] and hands ready-made SSE bytes to the connection through a bounded
//! channel, and key reads run on tokio's blocking pool. Nothing blocks the async runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use alluvium::{Db, Options};
//! use alluvium_server::{router, ServerConfig};
//! let db = Db::open("/tmp/db", Options::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, router(db, ServerConfig::default())).await?;
//! # Ok(()) }
//! ```

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]

mod auth;
mod encoding;
mod error;
mod feed;
mod feeder;
mod keys;
mod query;
mod run;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use alluvium::Db;
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

pub use encoding::Encoding;
pub use error::ServeError;
pub use run::{check_listen_address, run, RunOptions};

/// What the server allows and how it paces the feed.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// When set, every request needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// A feed with nothing to send writes a comment this often (default 15 s), so proxies and
    /// clients see a live connection.
    pub keep_alive: Duration,
    /// Feed connections served at once (default 128); one more gets 503.
    pub feeds_max: usize,
    /// Entries a scan returns when `limit` is not given (default 100).
    pub scan_limit_default: usize,
    /// The largest `limit` a scan accepts (default 10,000); a larger one is 400.
    pub scan_limit_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            keep_alive: Duration::from_secs(15),
            feeds_max: 128,
            scan_limit_default: 100,
            scan_limit_max: 10_000,
        }
    }
}

/// What every handler shares.
pub(crate) struct App {
    pub db: Db,
    pub config: ServerConfig,
    /// One permit per feed connection (each holds a thread).
    pub feed_slots: Arc<Semaphore>,
}

/// The routes over `db`: `/feed`, `/keys/{key}`, `/keys`, `/status`; read-only.
pub fn router(db: Db, config: ServerConfig) -> Router {
    let app = Arc::new(App {
        feed_slots: Arc::new(Semaphore::new(config.feeds_max)),
        db,
        config,
    });
    Router::new()
        .route("/feed", get(feed::feed))
        .route("/keys", get(keys::scan))
        .route("/keys/{*key}", get(keys::lookup))
        .route("/status", get(keys::status))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ))
        .with_state(app)
}
