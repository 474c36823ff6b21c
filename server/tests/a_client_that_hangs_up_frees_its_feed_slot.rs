//! Each feed holds a thread and one of `feeds_max` slots: one more feed than that is 503,
//! and a client that hangs up gives its slot back (its thread ends), also while idle.

mod common;

use std::time::{Duration, Instant};

use alluvium::Options;
use alluvium_server::ServerConfig;
use common::{connect, serve, TestResult};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_frees_its_feed_slot() -> TestResult {
    let config = ServerConfig {
        feeds_max: 2,
        ..ServerConfig::default()
    };
    let server = serve(Options::default(), config).await?;
    let url = format!("{}/feed", server.url);
    let first = connect(&url, None, None).await?;
    let _second = connect(&url, None, None).await?;
    let third = reqwest::get(&url).await?;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(first); // idle: its thread notices within half a second
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect(&url, None, None).await {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(format!("the slot was not given back: {e}").into()),
        }
    }
}
