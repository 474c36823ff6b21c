//! `alluvium serve`: open the database (or follow it), listen, serve until SIGINT or SIGTERM.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alluvium::{Db, Error, Options};
use tokio::net::TcpListener;

use crate::error::ServeError;
use crate::{Backend, Server, ServerConfig};

/// After a stop signal, connections get this long to finish before the server exits anyway
/// (a feed whose client stopped reading would otherwise hold it forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What `alluvium serve` was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The database directory; it must hold a database.
    pub dir: PathBuf,
    /// The address to listen on (port 0 picks a free port; the address is printed).
    pub listen: SocketAddr,
    /// Serve on a non-loopback address without a token.
    pub allow_no_token: bool,
    /// Flushed log bytes kept for feed clients that reconnect (see
    /// [`Options::feed_retention_bytes_min`]).
    pub feed_retention_bytes_min: u64,
    /// Token, keep-alive and limits.
    pub config: ServerConfig,
}

/// Refuses a non-loopback address without a token (unless `allow_no_token`): the API has no
/// write endpoint, but it reads every key and every change.
///
/// # Errors
/// [`ServeError::Refused`] naming the flags that would allow it.
pub fn check_listen_address(
    listen: SocketAddr,
    has_token: bool,
    allow_no_token: bool,
) -> Result<(), ServeError> {
    match listen.ip().is_loopback() || has_token || allow_no_token {
        true => Ok(()),
        false => Err(ServeError::Refused(format!(
            "{listen} is not a loopback address: anyone who reaches it could read every key \
             and change; give --token (or --token-file), or --allow-no-token to serve it anyway"
        ))),
    }
}

/// Serves `options.dir` until SIGINT or SIGTERM, printing the address once listening.
///
/// It opens the database (taking its lock) to serve the feed and key reads. When another
/// process has it open, it follows that process's commit log instead and serves the feed
/// only; key reads answer 503.
///
/// # Errors
/// When the address is refused or cannot be bound, or the directory holds no database or
/// one that cannot be opened.
pub fn run(options: RunOptions) -> Result<(), ServeError> {
    check_listen_address(
        options.listen,
        options.config.token.is_some(),
        options.allow_no_token,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::io("cannot start the runtime", e))?;
    let backend = Backend::open(&options.dir, options.feed_retention_bytes_min)?;
    let served = runtime.block_on(serve(backend.clone(), options, stop_signal()));
    if let Backend::Open(db) = backend {
        db.close()?;
    }
    served
}

impl Backend {
    /// Opens the database in `dir` (keeping `feed_retention_bytes_min` of flushed log for
    /// clients that reconnect), or follows it when another process has it open.
    ///
    /// # Errors
    /// When `dir` holds no database or it cannot be opened.
    pub fn open(dir: &Path, feed_retention_bytes_min: u64) -> Result<Backend, ServeError> {
        if !dir.join("CURRENT").is_file() {
            return Err(ServeError::Refused(format!(
                "{}: no alluvium database here (no CURRENT file)",
                dir.display()
            )));
        }
        let opts = Options::default()
            .create_if_missing(false)
            .feed_retention_bytes_min(feed_retention_bytes_min);
        match Db::open(dir, opts) {
            Ok(db) => Ok(Backend::Open(db)),
            Err(Error::Locked { .. }) => Ok(Backend::Follow(dir.to_path_buf())),
            Err(other) => Err(other.into()),
        }
    }
}

async fn serve(
    backend: Backend,
    options: RunOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| ServeError::io(format!("cannot listen on {}", options.listen), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::io("cannot read the listening address", e))?;
    announce(&options, &backend, local);
    let server = Server::new(backend, options.config);
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = server.clone();
    let shutdown = async move {
        stop.await;
        stopping.stop_feeds();
        let _ = stopped_tx.send(());
    };
    let serving = axum::serve(listener, server.router()).with_graceful_shutdown(shutdown);
    let drained = async move {
        let _ = stopped.await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        served = serving => served.map_err(|e| ServeError::io("serving failed", e)),
        () = drained => Ok(()),
    }
}

/// One line on stdout once listening (port 0 resolved), flushed for scripts that wait on it.
fn announce(options: &RunOptions, backend: &Backend, local: SocketAddr) {
    let auth = match options.config.token {
        Some(_) => "bearer token required",
        None => "no token",
    };
    let what = match backend {
        Backend::Open(_) => "change feed and keys",
        Backend::Follow(_) => {
            "another process has it open: its change feed only (followed from the log files), \
             key reads answer 503"
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "alluvium: serving {} on http://{local} ({what}; {auth}); stop with Ctrl-C",
        options.dir.display()
    );
    let _ = out.flush();
}

/// Completes at SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_needs_a_token_or_the_explicit_flag() {
        let public: SocketAddr = ([0, 0, 0, 0], 8080).into();
        let loopback: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let v6_loopback: SocketAddr = "[::1]:8080".parse().unwrap_or(loopback);
        assert!(check_listen_address(public, false, false).is_err());
        assert!(check_listen_address(public, true, false).is_ok());
        assert!(check_listen_address(public, false, true).is_ok());
        assert!(check_listen_address(loopback, false, false).is_ok());
        assert!(check_listen_address(v6_loopback, false, false).is_ok());
    }
}
