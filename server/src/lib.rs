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
//! `Authorization: Bearer TOKEN` (401 otherwise). A [`Server`] reads a database this process
//! has open, or follows the commit log of one another process has open ([`Backend`]).
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// What the server reads.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A database this process has open: the feed (woken by the commit path) and key reads.
    Open(Db),
    /// The directory of a database another process has open: its change feed only, read
    /// without the lock by an [`alluvium::Follower`] (which polls the files); key reads
    /// answer 503.
    Follow(PathBuf),
}

/// What every handler shares.
pub(crate) struct App {
    pub backend: Backend,
    pub config: ServerConfig,
    /// One permit per feed connection (each holds a thread).
    pub feed_slots: Arc<Semaphore>,
    /// Set when the server stops: every feed ends.
    pub stopping: AtomicBool,
}

/// A server over a [`Backend`]: its routes, and a way to end every feed when stopping.
#[derive(Clone)]
pub struct Server {
    app: Arc<App>,
}

impl Server {
    /// A server over `backend` with `config`.
    pub fn new(backend: Backend, config: ServerConfig) -> Server {
        let app = App {
            feed_slots: Arc::new(Semaphore::new(config.feeds_max)),
            backend,
            config,
            stopping: AtomicBool::new(false),
        };
        Server { app: Arc::new(app) }
    }

    /// The routes: `/feed`, `/keys/{key}`, `/keys`, `/status`; read-only.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/feed", get(feed::feed))
            .route("/keys", get(keys::scan))
            .route("/keys/{*key}", get(keys::lookup))
            .route("/status", get(keys::status))
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                auth::require_token,
            ))
            .with_state(self.app.clone())
    }

    /// Ends every feed (each within half a second, with the comment `: the server is
    /// stopping`), so a graceful shutdown does not wait for clients that never hang up.
    pub fn stop_feeds(&self) {
        self.app.stopping.store(true, Ordering::Release);
    }
}

/// The routes over `db`, which this process has open: `Server::new(Backend::Open(db),
/// config).router()`.
pub fn router(db: Db, config: ServerConfig) -> Router {
    Server::new(Backend::Open(db), config).router()
}
