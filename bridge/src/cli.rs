//! `alluvium feed publish` and `alluvium feed ingest`: arguments and the runtime, shared by the
//! `alluvium` tool and the `alluvium-bridge` binary (which the tests kill and restart).

use std::io::Write;
use std::path::PathBuf;

use alluvium::{Db, Options};

use crate::error::{BridgeError, Result};
use crate::nats::{ingest::IngestConfig, publish::PublishConfig};
use crate::progress::Report;

const PUBLISH_EXAMPLES: &str = "Subjects are <prefix>.<key>, the key percent-encoded into one \
token (FORMAT.md). The command opens the database and takes its lock; to publish a database \
an application has open, run alluvium_bridge::nats::publish in that application.\n\nExamples:\n  \
alluvium feed publish db/ --to nats://127.0.0.1:4222 --stream ORDERS\n  \
alluvium feed publish db/ --to nats://127.0.0.1:4222 --stream ORDERS --subject-prefix orders.changes --batch 1024";

const INGEST_EXAMPLES: &str = "The stream sequence of the last message applied is stored under \
the reserved key \\xff\\xffalluvium/ingest/nats/<stream>, in the same batch as the data.\n\n\
Examples:\n  alluvium feed ingest copy/ --from nats://127.0.0.1:4222 --stream ORDERS\n  \
alluvium feed ingest copy/ --from nats://127.0.0.1:4222 --stream ORDERS --exit-at-end";

/// `feed publish`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = PUBLISH_EXAMPLES)]
pub struct PublishArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// The broker: nats://HOST:PORT (kafka://HOST:PORT with the `kafka` feature).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The JetStream stream (created with subjects <prefix>.> if missing); nats:// only.
    #[arg(long, required_unless_present = "topic")]
    pub stream: Option<String>,
    /// The Kafka topic; kafka:// only.
    #[arg(long, conflicts_with = "stream")]
    pub topic: Option<String>,
    /// Subject prefix [default: the stream name].
    #[arg(long, value_name = "P")]
    pub subject_prefix: Option<String>,
    /// The durable subscription the bridge reads through [default: bridge.nats.<stream>].
    #[arg(long, value_name = "NAME")]
    pub subscription: Option<String>,
    /// Messages in flight (published, not yet acknowledged), at most.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub batch: usize,
    /// Stop once every change committed before the start is published.
    #[arg(long)]
    pub exit_at_end: bool,
}

/// `feed ingest`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = INGEST_EXAMPLES)]
pub struct IngestArgs {
    /// The database directory (created if missing).
    pub dir: PathBuf,
    /// The broker: nats://HOST:PORT (kafka://HOST:PORT with the `kafka` feature).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The JetStream stream to read; nats:// only.
    #[arg(long, required_unless_present = "topic")]
    pub stream: Option<String>,
    /// The Kafka topic to read (every partition); kafka:// only.
    #[arg(long, conflicts_with = "stream")]
    pub topic: Option<String>,
    /// Only subjects <prefix>.> are read [default: the stream name].
    #[arg(long, value_name = "P")]
    pub subject_prefix: Option<String>,
    /// Messages per write, at least (a write always ends at a source batch's end).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch: usize,
    /// Stop once every message the stream held at the start is applied.
    #[arg(long)]
    pub exit_at_end: bool,
}

impl PublishArgs {
    /// The bridge configuration these arguments give.
    pub fn config(&self) -> Result<PublishConfig> {
        let url = nats_url(&self.to)?;
        let mut config = PublishConfig::new(url, need(&self.stream, "--stream")?);
        config.subject_prefix = self.subject_prefix.clone().unwrap_or(config.subject_prefix);
        config.subscription = self.subscription.clone().unwrap_or(config.subscription);
        config.in_flight_max = self.batch.max(1);
        config.exit_at_end = self.exit_at_end;
        Ok(config)
    }
}

impl IngestArgs {
    /// The bridge configuration these arguments give.
    pub fn config(&self) -> Result<IngestConfig> {
        let url = nats_url(&self.from)?;
        let mut config = IngestConfig::new(url, need(&self.stream, "--stream")?);
        config.subject_prefix = self.subject_prefix.clone().unwrap_or(config.subject_prefix);
        config.batch_max = self.batch.max(1);
        config.exit_at_end = self.exit_at_end;
        Ok(config)
    }
}

fn need<'a>(value: &'a Option<String>, flag: &str) -> Result<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| BridgeError::Config(format!("this broker needs {flag}")))
}

#[cfg(feature = "kafka")]
fn is_kafka(url: &str) -> bool {
    url.starts_with("kafka://")
}

fn nats_url(url: &str) -> Result<String> {
    match url.split_once("://") {
        Some(("nats", _)) => Ok(url.to_string()),
        Some(("kafka", _)) => Err(BridgeError::Config(
            "kafka:// needs the `kafka` feature (cargo build -p alluvium-cli --features kafka)"
                .into(),
        )),
        _ => Err(BridgeError::Config(format!(
            "{url:?}: expected nats://HOST:PORT"
        ))),
    }
}

/// Runs `feed publish` until it stops; prints progress on stdout, notes on stderr.
pub fn publish(args: &PublishArgs) -> Result<()> {
    #[cfg(feature = "kafka")]
    if is_kafka(&args.to) {
        return kafka_publish(args);
    }
    let config = args.config()?;
    let db = open_existing(&args.dir)?;
    let result = runtime()?.block_on(crate::nats::publish::publish(&db, &config, &mut print));
    db.close()?;
    result.map(drop)
}

/// Runs `feed ingest` until it stops; prints progress on stdout, notes on stderr.
pub fn ingest(args: &IngestArgs) -> Result<()> {
    #[cfg(feature = "kafka")]
    if is_kafka(&args.from) {
        return kafka_ingest(args);
    }
    let config = args.config()?;
    let db = Db::open(&args.dir, Options::default())?;
    let result = runtime()?.block_on(crate::nats::ingest::ingest(&db, &config, &mut print));
    db.close()?;
    result.map(drop)
}

fn open_existing(dir: &std::path::Path) -> Result<Db> {
    if !dir.join("CURRENT").is_file() {
        return Err(BridgeError::Config(format!(
            "{}: no alluvium database here (no CURRENT file)",
            dir.display()
        )));
    }
    Ok(Db::open(dir, Options::default())?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BridgeError::Config(format!("starting the async runtime: {e}")))
}

/// Progress on stdout, notes on stderr, one line each, never panicking on a closed pipe.
pub fn print(report: Report<'_>) {
    let _ = match report {
        Report::Progress(p) => writeln!(std::io::stdout(), "{p}"),
        Report::Note(n) => writeln!(std::io::stderr(), "alluvium: {n}"),
    };
}

#[cfg(feature = "kafka")]
fn kafka_publish(args: &PublishArgs) -> Result<()> {
    let mut config =
        crate::kafka::publish::PublishConfig::new(&args.to, need(&args.topic, "--topic")?);
    config.subscription = args.subscription.clone().unwrap_or(config.subscription);
    config.in_flight_max = args.batch.max(1);
    config.exit_at_end = args.exit_at_end;
    let db = open_existing(&args.dir)?;
    let result = runtime()?.block_on(crate::kafka::publish::publish(&db, &config, &mut print));
    db.close()?;
    result.map(drop)
}

#[cfg(feature = "kafka")]
fn kafka_ingest(args: &IngestArgs) -> Result<()> {
    let mut config =
        crate::kafka::ingest::IngestConfig::new(&args.from, need(&args.topic, "--topic")?);
    config.batch_max = args.batch.max(1);
    config.exit_at_end = args.exit_at_end;
    let db = Db::open(&args.dir, Options::default())?;
    let result = crate::kafka::ingest::ingest(&db, &config, &mut print);
    db.close()?;
    result.map(drop)
}
