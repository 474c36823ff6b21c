//! Without `from`, the feed starts after the latest commit, and its first (data-less) event
//! already carries that position as its id, so a client that reconnects before any change
//! arrived misses nothing. `Last-Event-ID` in the middle of a batch resumes strictly after
//! it: the rest of that batch, not the whole batch again. An idle feed sends keep-alives.

mod common;

use std::time::Duration;

use alluvium::{Options, WriteBatch, WriteOptions};
use alluvium_server::ServerConfig;
use common::{connect, ops, serve, TestResult};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_from_now_starts_after_the_latest_commit_and_resumes_strictly_after_any_id(
) -> TestResult {
    let config = ServerConfig {
        keep_alive: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let server = serve(Options::default(), config).await?;
    let db = &server.db;
    db.put("old", "before the client")?; // 1
    let url = format!("{}/feed", server.url);
    let mut client = connect(&url, None, None).await?;
    let opening = client.next_event(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(
        (opening.id.as_deref(), opening.data.as_str()),
        (Some("1"), "")
    );
    let idle = client.next_event(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(idle.comments, ["keep-alive"]);
    drop(client);

    let mut batch = WriteBatch::new();
    batch.put("a", "2").put("b", "3").put("c", "4");
    db.write(batch, &WriteOptions::default())?; // 2..=4, committed while disconnected
    let mut resumed = connect(&url, Some("1"), None).await?;
    let event = resumed.next_data(TIMEOUT).await?.ok_or("ended")?;
    let seqnos: Vec<u64> = ops(&event.data)?.iter().map(|op| op.0).collect();
    assert_eq!((event.id.as_deref(), seqnos), (Some("4"), vec![2, 3, 4]));

    let mut mid_batch = connect(&url, Some("2"), None).await?;
    let opening = mid_batch.next_event(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(
        opening.id.as_deref(),
        Some("2"),
        "the opening id never moves back"
    );
    let event = mid_batch.next_data(TIMEOUT).await?.ok_or("ended")?;
    let seqnos: Vec<u64> = ops(&event.data)?.iter().map(|op| op.0).collect();
    assert_eq!(seqnos, [3, 4]);
    Ok(())
}
