//! NATS JetStream bridges: [`publish`](publish::publish) the change feed into a stream, and
//! [`ingest`](ingest::ingest) a stream into a database.
//!
//! `ARCHITECTURE.md`, "Bridges", argues why each is exactly-once; `FORMAT.md`, "Wire format of
//! the bridges", gives the messages.

pub mod ingest;
pub mod publish;

use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};

use crate::error::{broker, Result};

/// How long a JetStream request or a publish acknowledgement may take before it counts as
/// failed (and the run restarts after a backoff).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `nats://HOST:PORT` (or `HOST:PORT`) to what `async_nats::connect` takes.
pub fn server_address(url: &str) -> String {
    url.strip_prefix("nats://").unwrap_or(url).to_string()
}

/// Connects and builds a JetStream context allowing `in_flight_max` unacknowledged publishes.
pub async fn connect(url: &str, in_flight_max: usize) -> Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(REQUEST_TIMEOUT)
        .connect(server_address(url))
        .await
        .map_err(|e| broker(&format!("connecting to {url}"), e))?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .max_ack_inflight(in_flight_max.max(1) + 1)
        .build(client))
}

/// The stream `name`, created with subjects `<prefix>.>` if it does not exist.
pub async fn ensure_stream(js: &jetstream::Context, name: &str, prefix: &str) -> Result<Stream> {
    let config = jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| broker(&format!("opening stream {name}"), e))
}
