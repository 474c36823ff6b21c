//! The feed never skips silently. A start position that retention already discarded is
//! HTTP 410 with the oldest available sequence number; a client too slow for retention
//! (its next log file deleted while it was not reading) gets `event: error` with
//! `feed_truncated` and the oldest available position, and the stream ends.

mod common;

use std::time::Duration;

use alluvium::{Compression, Options, WriteBatch, WriteOptions};
use alluvium_server::ServerConfig;
use common::{connect, serve, TestResult};
use reqwest::StatusCode;

const TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_retention_discarded_is_410_before_streaming_and_an_error_event_during_it(
) -> TestResult {
    // Small memtables, and no retention beyond what subscriptions need (there are none):
    // every flushed log file is deleted.
    let opts = Options::default()
        .memtable_size_bytes(1 << 20)
        .compression(Compression::None); // the test's time is the writes, in debug builds
    let server = serve(opts, ServerConfig::default()).await?;
    let db = server.db.clone();
    db.put("first", "1")?;

    // A client that reads its first event and then stops reading.
    let mut slow = connect(&format!("{}/feed?from=0", server.url), None, None).await?;
    slow.next_data(TIMEOUT).await?.ok_or("ended")?;
    let value = vec![b'x'; 10_000];
    tokio::task::spawn_blocking(move || -> alluvium::Result<()> {
        for i in 0..4_000u32 {
            let mut batch = WriteBatch::new();
            batch.put(i.to_be_bytes(), &value);
            db.write(batch, &WriteOptions::default())?;
        }
        db.flush()
    })
    .await??;
    let oldest = server.db.stats().feed_oldest_seqno;
    assert!(
        oldest > 2_000,
        "retention kept too much: oldest is {oldest}"
    );

    // Before streaming: 410 with the oldest position, for `from` and for `Last-Event-ID`.
    let http = reqwest::Client::new();
    for request in [
        http.get(format!("{}/feed?from=1", server.url)),
        http.get(format!("{}/feed", server.url))
            .header("Last-Event-ID", "0"),
    ] {
        let answer = request.send().await?;
        assert_eq!(answer.status(), StatusCode::GONE);
        let body: serde_json::Value = answer.json().await?;
        assert_eq!(body["error"], "feed_truncated");
        assert_eq!(body["oldest_available"], oldest);
    }

    // While streaming: the slow client reads on and meets an error event, then the end.
    loop {
        let event = slow
            .next_data(TIMEOUT)
            .await?
            .ok_or("ended without an error event")?;
        if event.event.as_deref() == Some("error") {
            let body: serde_json::Value = serde_json::from_str(&event.data)?;
            assert_eq!(body["error"], "feed_truncated", "{body}");
            let requested = body["requested"].as_u64().ok_or("no requested")?;
            // As of when the feeder met the gap, which may be before the writes ended.
            assert!(
                body["oldest_available"].as_u64() > Some(requested),
                "{body}"
            );
            assert_eq!(
                slow.last_id,
                Some((requested - 1).to_string()),
                "ids stop right before the gap"
            );
            break;
        }
    }
    assert!(
        slow.next_event(TIMEOUT).await?.is_none(),
        "the stream goes on after the error"
    );
    Ok(())
}
