//! How fast a client catches up on the change feed over SSE: writes `--changes` changes (one
//! put per batch unless `--batch N`), serves the database on a loopback port, and reads
//! `GET /feed?from=0` with `reqwest` until the last sequence number, splitting the stream
//! into events (the JSON is not decoded). Prints events/s, changes/s and MB/s.
//!
//! ```sh
//! cargo run --release -p alluvium-server --example feed_catchup -- --changes 200000
//! ```

use std::error::Error;
use std::time::Instant;

use alluvium::{Db, Options, WriteBatch, WriteOptions};
use alluvium_server::{router, ServerConfig};
use futures_util::StreamExt;

type Fallible<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    changes: u64,
    batch: u64,
    value_bytes: usize,
}

fn args() -> Fallible<Args> {
    let mut args = Args {
        changes: 200_000,
        batch: 1,
        value_bytes: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--changes" => args.changes = value.parse()?,
            "--batch" => args.batch = value.parse()?,
            "--value-bytes" => args.value_bytes = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(args)
}

/// Writes the changes; the log is kept (retention) so the feed starts at 1.
fn fill(db: &Db, args: &Args) -> Fallible<()> {
    let value = vec![b'v'; args.value_bytes];
    for first in (0..args.changes).step_by(args.batch as usize) {
        let mut batch = WriteBatch::new();
        for i in first..(first + args.batch).min(args.changes) {
            batch.put(format!("key:{i:012}"), &value);
        }
        db.write(batch, &WriteOptions::default())?;
    }
    Ok(())
}

/// Reads the feed from the beginning until an event with id `last`; returns (events, bytes).
async fn catch_up(url: &str, last: u64) -> Fallible<(u64, u64)> {
    let response = reqwest::get(format!("{url}/feed?from=0")).await?;
    let mut body = response.bytes_stream();
    let (mut events, mut bytes, mut pending) = (0u64, 0u64, Vec::<u8>::new());
    let end = format!("id: {last}\n");
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        let Some(cut) = pending.windows(2).rposition(|w| w == b"\n\n") else {
            continue;
        };
        let complete = std::str::from_utf8(&pending[..cut + 2])?;
        events += complete.matches("\ndata: ").count() as u64;
        let done = complete.contains(&end);
        pending.drain(..cut + 2);
        if done {
            return Ok((events, bytes));
        }
    }
    Err("the feed ended early".into())
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let opts = Options::default().feed_retention_bytes_min(1 << 30);
    let db = Db::open(dir.path(), opts)?;
    fill(&db, &args)?;
    db.flush()?; // the feed reads flushed log files, as a client that was away would
    let last = db.latest_seqno();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = router(db.clone(), ServerConfig::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let (events, bytes) = catch_up(&url, last).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "feed_catchup: {events} events, {last} changes, {:.1} MB in {secs:.2} s: {:.0} events/s, \
         {:.0} changes/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        events as f64 / secs,
        last as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
