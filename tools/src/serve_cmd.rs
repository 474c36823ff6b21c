//! `alluvium serve DIR`: the change feed over HTTP (Server-Sent Events) and a read-only key
//! API. The server is the `alluvium-server` crate; this only parses arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alluvium_server::{RunOptions, ServerConfig};

use crate::CmdResult;

#[derive(clap::Args)]
#[command(
    after_help = "Opens the database itself (it takes its lock). When another process \
has it open, serves that process's change feed only (read from the log files without the lock) \
and key reads answer 503. Listens on loopback unless told otherwise; a non-loopback address \
needs --token or --token-file (or --allow-no-token).\n\nExamples:\n  \
    alluvium serve db/ --listen 127.0.0.1:8080\n  \
    curl -N 'http://127.0.0.1:8080/feed?from=0'\n  \
    curl -N -H 'Last-Event-ID: 41' 'http://127.0.0.1:8080/feed?prefix=user:'\n  \
    curl 'http://127.0.0.1:8080/keys/user:1'\n  \
    curl 'http://127.0.0.1:8080/keys?prefix=user:&limit=10'"
)]
pub struct ServeArgs {
    /// The database directory.
    dir: PathBuf,
    /// The address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Every request must carry `Authorization: Bearer TOKEN` (visible in `ps`: prefer
    /// --token-file).
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// Reads the token from the first line of this file.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve a non-loopback address without a token.
    #[arg(long)]
    allow_no_token: bool,
    /// Seconds between keep-alive comments on an idle feed.
    #[arg(long, default_value_t = 15)]
    keep_alive_secs: u64,
    /// Feed connections served at once (each has a thread); one more gets 503.
    #[arg(long, default_value_t = 128)]
    feeds_max: usize,
    /// Flushed commit log kept so that feed clients can reconnect after a flush, in bytes
    /// (the library's default is 0). Applies when serve opens the database itself.
    #[arg(long, default_value_t = 256 << 20)]
    feed_retention_bytes_min: u64,
}

pub fn run(args: &ServeArgs) -> CmdResult {
    let config = ServerConfig {
        token: token(args)?,
        keep_alive: Duration::from_secs(args.keep_alive_secs.max(1)),
        feeds_max: args.feeds_max,
        ..ServerConfig::default()
    };
    alluvium_server::run(RunOptions {
        dir: args.dir.clone(),
        listen: args.listen,
        allow_no_token: args.allow_no_token,
        feed_retention_bytes_min: args.feed_retention_bytes_min,
        config,
    })?;
    Ok(())
}

fn token(args: &ServeArgs) -> Result<Option<String>, String> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        None => args.token.clone().unwrap_or_default(),
    };
    match (
        token.is_empty(),
        args.token.is_some() || args.token_file.is_some(),
    ) {
        (true, true) => Err("the token is empty".into()),
        (true, false) => Ok(None),
        (false, _) => Ok(Some(token)),
    }
}
