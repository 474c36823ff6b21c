//! `GET /keys/{key}` returns a value's exact bytes (any key bytes, percent-encoded in the
//! path), 404 when absent; `GET /keys` pages through a range or a prefix with `limit` and the
//! `next` marker and returns exactly what the database holds; there is no write method.

mod common;

use std::collections::BTreeMap;

use alluvium::Options;
use alluvium_server::ServerConfig;
use common::{contents, decode, serve, Fallible, TestResult};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lookups_and_scans_return_exact_bytes_and_pages_end_to_end() -> TestResult {
    let server = serve(Options::default(), ServerConfig::default()).await?;
    let db = &server.db;
    for i in 0..250u32 {
        db.put(format!("user:{i:03}"), format!("name {i}"))?;
        db.put(format!("item/{i}"), i.to_be_bytes())?;
    }
    db.put(b"bin\x00\xff key+ /", b"\x00\x01\xfe")?;
    db.delete("user:007")?;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();

    let raw = get("/keys/bin%00%FF%20key%2B%20%2F").await?;
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert_eq!(raw.bytes().await?, &b"\x00\x01\xfe"[..]);
    assert_eq!(
        get("/keys/item/5").await?.bytes().await?,
        &5u32.to_be_bytes()[..]
    );
    let json: serde_json::Value = get("/keys/user:001?format=json").await?.json().await?;
    assert_eq!(
        (&json["key"], &json["value"]),
        (&"user:001".into(), &"name 1".into())
    );
    assert_eq!(get("/keys/user:007").await?.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get("/keys?limit=0").await?.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get("/keys?limt=3").await?.status(), StatusCode::BAD_REQUEST);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = http.request(method, format!("{}/keys/user:001", server.url));
        assert_eq!(
            answer.send().await?.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    let all = contents(db)?;
    assert_eq!(scan_all(&http, &server.url, "limit=7", None).await?, all);
    let users: BTreeMap<_, _> = all
        .clone()
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"user:"))
        .collect();
    assert_eq!(
        scan_all(&http, &server.url, "prefix=user:&limit=10", None).await?,
        users
    );
    let range: BTreeMap<_, _> = all
        .into_iter()
        .filter(|(k, _)| k.as_slice() >= &b"item/2"[..] && k.as_slice() < &b"user:1"[..])
        .collect();
    assert_eq!(
        scan_all(
            &http,
            &server.url,
            "end=user:1&limit=33&encoding=base64",
            Some("item/2")
        )
        .await?,
        range
    );
    Ok(())
}

/// Every page of a scan with `params` from `start`, following `next`, as one map.
async fn scan_all(
    http: &reqwest::Client,
    url: &str,
    params: &str,
    start: Option<&str>,
) -> Fallible<BTreeMap<Vec<u8>, Vec<u8>>> {
    let (mut found, mut start) = (BTreeMap::new(), start.map(str::to_owned));
    loop {
        let start_param = start
            .as_ref()
            .map(|s| format!("&start={s}"))
            .unwrap_or_default();
        let page: serde_json::Value = http
            .get(format!("{url}/keys?{params}{start_param}"))
            .send()
            .await?
            .json()
            .await?;
        for entry in page["entries"].as_array().ok_or("no entries")? {
            let key = decode(&entry["key"], &entry["key_encoding"])?.ok_or("no key")?;
            let value = decode(&entry["value"], &entry["value_encoding"])?.ok_or("no value")?;
            assert!(found.insert(key, value).is_none(), "a key came twice");
        }
        match page["next"].as_str() {
            Some(next) => start = Some(next.to_owned()),
            None => return Ok(found),
        }
    }
}
