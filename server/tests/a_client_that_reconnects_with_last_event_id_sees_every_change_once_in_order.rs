//! The main promise of `GET /feed`: a client that disconnects at arbitrary points and
//! reconnects with `Last-Event-ID` (and the URL's `from=0`, which the header overrides) sees
//! every operation exactly once, in commit order, while a writer keeps writing and the
//! memtable is flushed and the commit log rotated under it.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alluvium::{Db, Options, WriteBatch, WriteOptions};
use alluvium_server::ServerConfig;
use common::{connect, ops, serve, Fallible, FeedOp, TestResult};

const BATCHES: u64 = 5_000;
const TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_last_event_id_sees_every_change_once_in_order() -> TestResult
{
    let opts = Options::default()
        .memtable_size_bytes(64 << 10)
        .feed_retention_bytes_min(64 << 20);
    let server = serve(opts, ServerConfig::default()).await?;
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, done) = (server.db.clone(), done.clone());
        std::thread::spawn(move || write_batches(&db, &done))
    };
    let url = format!("{}/feed?from=0", server.url);
    let (seen, connections) = follow_with_reconnects(&url, &done).await?;
    let written = writer.join().map_err(|_| "writer panicked")??;
    assert!(connections.during_writes >= 5, "{connections:?}");
    assert!(
        server.db.stats().flushes >= 2,
        "no flush happened during the test"
    );
    assert_eq!(seen.len(), written.len(), "operations seen vs written");
    assert!(seen == written, "the feed differs from what was written");
    println!("{} operations, {connections:?}", seen.len());
    Ok(())
}

/// Follows the feed, hanging up after a varying number of events and resuming with the last
/// id seen, until it has seen the writer's last sequence number.
async fn follow_with_reconnects(
    url: &str,
    done: &AtomicU64,
) -> Fallible<(Vec<FeedOp>, Connections)> {
    let (mut seen, mut last_id) = (Vec::<FeedOp>::new(), None);
    let mut connections = Connections::default();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    loop {
        let mut client = connect(url, last_id.as_deref(), None).await?;
        connections.total += 1;
        connections.during_writes += u32::from(done.load(Ordering::Acquire) == 0);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        for _ in 0..(1 + rng % 400) {
            let last = seen.last().map_or(0, |op| op.0);
            if last != 0 && last == done.load(Ordering::Acquire) {
                return Ok((seen, connections));
            }
            let event = client.next_data(TIMEOUT).await?.ok_or("the feed ended")?;
            for op in ops(&event.data)? {
                // Checked as it arrives, so a duplicate or a gap fails at once with its place.
                let expected = seen.last().map_or(1, |op| op.0 + 1);
                if op.0 != expected {
                    return Err(
                        format!("got sequence number {} after {}", op.0, expected - 1).into(),
                    );
                }
                seen.push(op);
            }
        }
        last_id = client.last_id.clone();
    } // the client drops here: the connection closes mid-stream
}

/// How many connections the client made, and how many of them while the writer was writing.
#[derive(Debug, Default)]
struct Connections {
    total: u32,
    during_writes: u32,
}

/// Writes batches of 1 to 3 operations (puts with text and binary values, and deletes),
/// pausing now and then so the client reconnects while writes go on; returns every
/// operation with its sequence number, and stores the last sequence number in `done`.
fn write_batches(db: &Db, done: &AtomicU64) -> Fallible<Vec<FeedOp>> {
    let mut written = Vec::new();
    for i in 0..BATCHES {
        let (mut batch, mut ops) = (WriteBatch::new(), Vec::new());
        for j in 0..=(i % 3) {
            let key = format!("key:{:04}:{j}", i % 1000).into_bytes();
            let value = match j {
                0 => Some(format!("value {i}").into_bytes()),
                1 => Some(vec![0xff, (i % 251) as u8, 0]),
                _ => None,
            };
            match &value {
                Some(v) => batch.put(&key, v),
                None => batch.delete(&key),
            };
            let kind = if value.is_some() { "put" } else { "delete" };
            ops.push((kind.to_owned(), key, value));
        }
        let first = db.write(batch, &WriteOptions::default())?;
        let numbered = ops.into_iter().zip(first..);
        written.extend(numbered.map(|((kind, key, value), seqno)| (seqno, kind, key, value)));
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    done.store(written.last().map_or(0, |op| op.0), Ordering::Release);
    Ok(written)
}
