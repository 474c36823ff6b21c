//! `alluvium serve` on a database another process has open (its lock is taken) does not
//! fail: it follows that process's commit log from the files and serves the change feed, with
//! the same events, ids and resume; key reads answer 503 and `/status` says `follow`. Stopping
//! the server ends every feed with a comment.

mod common;

use std::time::Duration;

use alluvium::{Db, Options};
use alluvium_server::{Backend, Server, ServerConfig};
use common::{connect, listen, ops, TestResult};
use reqwest::StatusCode;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_another_process_has_open_is_followed_and_its_feed_served() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Db::open(dir.path(), Options::default())?; // holds the lock
    writer.put("a", "1")?;
    writer.put("b", "2")?;
    let backend = Backend::open(dir.path(), 0)?;
    assert!(matches!(backend, Backend::Follow(_)), "{backend:?}");
    let server = Server::new(backend, ServerConfig::default());
    let url = listen(server.router()).await?;

    let mut feed = connect(&format!("{url}/feed?from=0"), None, None).await?;
    let first = feed.next_data(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(
        (first.id.as_deref(), ops(&first.data)?[0].2.as_slice()),
        (Some("1"), &b"a"[..])
    );
    writer.put("c", "3")?; // committed after the client connected: the follower polls for it
    let mut resumed = connect(&format!("{url}/feed?from=0"), Some("2"), None).await?;
    let next = resumed.next_data(TIMEOUT).await?.ok_or("ended")?;
    assert_eq!(
        (next.id.as_deref(), ops(&next.data)?[0].2.as_slice()),
        (Some("3"), &b"c"[..])
    );

    let http = reqwest::Client::new();
    let lookup = http.get(format!("{url}/keys/a")).send().await?;
    assert_eq!(lookup.status(), StatusCode::SERVICE_UNAVAILABLE);
    let status: serde_json::Value = http
        .get(format!("{url}/status"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (&status["mode"], &status["latest_seqno"]),
        (&"follow".into(), &3.into())
    );

    server.stop_feeds();
    loop {
        match resumed.next_event(TIMEOUT).await? {
            Some(event) if event.comments.iter().any(|c| c == "the server is stopping") => break,
            Some(_) => continue,
            None => return Err("ended without the stopping comment".into()),
        }
    }
    assert!(resumed.next_event(TIMEOUT).await?.is_none());
    writer.close()?;
    Ok(())
}
