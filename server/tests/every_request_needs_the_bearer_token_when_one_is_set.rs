//! With a token configured, every route answers 401 (with `WWW-Authenticate: Bearer`) to a
//! request without `Authorization: Bearer TOKEN` or with a wrong one, and serves it otherwise.

mod common;

use alluvium::Options;
use alluvium_server::ServerConfig;
use common::{connect, serve, TestResult};
use reqwest::StatusCode;

const TOKEN: &str = "s3cret-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_needs_the_bearer_token_when_one_is_set() -> TestResult {
    let config = ServerConfig {
        token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    let server = serve(Options::default(), config).await?;
    server.db.put("k", "v")?;
    let client = reqwest::Client::new();
    for path in ["/keys/k", "/keys", "/feed?from=0", "/status", "/nowhere"] {
        let url = format!("{}{path}", server.url);
        let none = client.get(&url).send().await?;
        assert_eq!(
            none.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a token"
        );
        assert_eq!(
            none.headers()["www-authenticate"],
            "Bearer realm=\"alluvium\""
        );
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            TOKEN,
        ] {
            let answer = client
                .get(&url)
                .header("authorization", wrong)
                .send()
                .await?;
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{path} with {wrong:?}"
            );
        }
    }
    let lookup = client.get(format!("{}/keys/k", server.url));
    let found = lookup
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await?;
    assert_eq!(
        found.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    assert_eq!(found.bytes().await?, "v");
    let write = client
        .put(format!("{}/keys/k", server.url))
        .bearer_auth(TOKEN);
    assert_eq!(write.send().await?.status(), StatusCode::METHOD_NOT_ALLOWED);
    let feed = connect(&format!("{}/feed?from=0", server.url), None, Some(TOKEN)).await;
    let event = feed?.next_data(std::time::Duration::from_secs(10)).await?;
    assert_eq!(event.and_then(|e| e.id).as_deref(), Some("1"));
    Ok(())
}
