//! `GET /feed?prefix=P`: only operations on keys starting with P, whole batches cut down to
//! them, batches with none skipped; while idle, a keep-alive carries the position past the
//! skipped batches, so a client that reconnects does not read them again.

mod common;

use std::time::Duration;

use alluvium::{Options, WriteBatch, WriteOptions};
use alluvium_server::ServerConfig;
use common::{connect, ops, serve, TestResult};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_filter_hands_out_only_matching_operations_and_moves_the_id_past_skipped_batches(
) -> TestResult {
    let config = ServerConfig {
        keep_alive: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = serve(Options::default(), config).await?;
    let db = &server.db;
    let mut mixed = WriteBatch::new();
    mixed.put("a:1", "x").put("b:1", "y").delete("a:2");
    db.write(mixed, &WriteOptions::default())?; // 1..=3
    db.put("b:2", "skipped")?; // 4
    db.put("a:3", "z")?; // 5
    let url = format!("{}/feed?from=0&prefix=a:", server.url);
    let mut client = connect(&url, None, None).await?;
    let first = client.next_data(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(first.id.as_deref(), Some("3"));
    let keys: Vec<_> = ops(&first.data)?
        .into_iter()
        .map(|op| (op.0, op.2))
        .collect();
    assert_eq!(keys, [(1, b"a:1".to_vec()), (3, b"a:2".to_vec())]);
    let second = client.next_data(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(
        (second.id.as_deref(), ops(&second.data)?.len()),
        (Some("5"), 1)
    );

    // Only skipped batches from here on: the next keep-alive moves the id to their end.
    for i in 0..10 {
        db.put(format!("b:{i}"), "skipped")?;
    }
    let latest = db.latest_seqno().to_string();
    while client.last_id.as_deref() != Some(latest.as_str()) {
        let event = client.next_event(TIMEOUT).await?.ok_or("ended")?;
        assert!(event.data.is_empty(), "a skipped batch was sent: {event:?}");
    }
    db.put("a:4", "after")?;
    let resumed = connect(&url, client.last_id.as_deref(), None).await;
    let event = resumed?.next_data(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(ops(&event.data)?[0].2, b"a:4");
    Ok(())
}
