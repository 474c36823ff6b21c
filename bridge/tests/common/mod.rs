//! What the bridge tests share: a real `nats-server -js` on a free loopback port, a random
//! workload, the bridge binary run as a child process and killed, and readers of the results.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alluvium::{Db, Op, Options, SeqNo, Start, WriteBatch, WriteOptions};
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::StreamExt;

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A `nats-server -js` child process with its own store directory; killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one, or returns `None` (after a loud message) when `nats-server` is not
    /// installed and `ALLUVIUM_REQUIRE_NATS=1` is not set; with it set, that is an error.
    pub fn start() -> Result<Option<NatsServer>> {
        let Some(binary) = find_nats_server() else {
            let required = std::env::var("ALLUVIUM_REQUIRE_NATS").is_ok_and(|v| v == "1");
            if required {
                return Err("nats-server is not installed and ALLUVIUM_REQUIRE_NATS=1".into());
            }
            eprintln!("\n!!!!!!!! nats-server NOT FOUND: this NATS test did NOT run !!!!!!!!");
            eprintln!("!!!!!!!! install it (apt-get install -y nats-server) !!!!!!!!\n");
            return Ok(None);
        };
        let store = tempfile::tempdir()?;
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("nats-server did not start listening within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(server))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A small xorshift generator; the seed is printed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_time() -> Rng {
        let seed = std::env::var("ALLUVIUM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("seed {seed} (ALLUVIUM_TEST_SEED={seed} replays it)");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `ops` operations in batches of 1 to 20: puts of 16-byte keys (from 5,000 distinct
/// ones, so keys are overwritten) with 100-byte values, one in ten a delete, a few keys with
/// bytes a subject cannot hold as they are.
pub fn write_changes(db: &Db, ops: u64, rng: &mut Rng) -> Result {
    let mut written = 0;
    while written < ops {
        let n = (1 + rng.below(20)).min(ops - written);
        let mut batch = WriteBatch::new();
        for _ in 0..n {
            let k = rng.below(5000);
            let key = match k % 97 {
                0 => format!("odd.key *>{k:05}\x00").into_bytes(),
                _ => format!("key:{k:012}").into_bytes(),
            };
            match rng.below(10) {
                0 => batch.delete(&key),
                _ => batch.put(&key, format!("{:0>100}", rng.next()).as_bytes()),
            };
        }
        db.write(batch, &WriteOptions::default())?;
        written += n;
    }
    Ok(())
}

/// Every operation of the database's change feed (reserved keys left out), in commit order.
pub fn feed_ops(db: &Db) -> Result<Vec<(SeqNo, Op)>> {
    let mut cursor = db.changes(Start::Beginning)?;
    let mut out = Vec::new();
    while let Some(batch) = cursor.try_next()? {
        out.extend(
            batch
                .ops
                .into_iter()
                .filter(|(_, op)| !alluvium_bridge::wire::is_reserved(op.key())),
        );
    }
    Ok(out)
}

/// Every key and value outside the bridges' reserved keys.
pub fn user_data(db: &Db) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let all: Vec<_> = db.iter().collect::<alluvium::Result<_>>()?;
    Ok(all
        .into_iter()
        .filter(|(k, _)| !alluvium_bridge::wire::is_reserved(k))
        .collect())
}

/// Options that keep every log file for the feed reads the tests make.
pub fn options() -> Options {
    Options::default()
}

/// Runs the bridge binary with `args` and SIGKILLs it at a random point of its work (0 to
/// `within_ms` after it said where it resumes), `kills` times; then once more with
/// `--exit-at-end` until it finishes. Prints where each round resumed.
pub fn run_killed_repeatedly(args: &[String], kills: u32, within_ms: u64, rng: &mut Rng) -> Result {
    for round in 0..kills {
        let mut child = bridge(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let resumed = loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(" from ") => break line,
                Ok(_) => continue,
                Err(e) => return Err(format!("round {round}: no resume line: {e}").into()),
            }
        };
        eprintln!("round {round}: {resumed}");
        std::thread::sleep(Duration::from_millis(rng.below(within_ms)));
        if let Some(status) = child.try_wait()? {
            return Err(format!("round {round}: the bridge exited early: {status}").into());
        }
        child.kill()?; // SIGKILL
        child.wait()?;
    }
    let mut last: Vec<String> = args.to_vec();
    last.push("--exit-at-end".into());
    let output = bridge(&last).stderr(Stdio::inherit()).output()?;
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    if !output.status.success() {
        return Err(format!("the final bridge run failed: {}", output.status).into());
    }
    Ok(())
}

fn bridge(args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alluvium-bridge"));
    command.args(args);
    command
}

/// One message of a stream, as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMsg {
    pub subject: String,
    pub msg_id: String,
    pub seqno: SeqNo,
    pub op: String,
    pub payload: Vec<u8>,
}

/// Every message of `stream`, in stream order.
pub async fn read_stream(url: &str, stream: &str) -> Result<Vec<StreamMsg>> {
    let client = async_nats::connect(url.trim_start_matches("nats://")).await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await?;
    let total = stream.info().await?.state.messages;
    let consumer = stream.create_consumer(OrderedConfig::default()).await?;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await?
            .ok_or("the consumer ended")??;
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map_or(String::new(), |v| v.as_str().to_string())
        };
        out.push(StreamMsg {
            subject: message.subject.to_string(),
            msg_id: header("Nats-Msg-Id"),
            seqno: header("Alluvium-Seqno").parse()?,
            op: header("Alluvium-Op"),
            payload: message.payload.to_vec(),
        });
    }
    Ok(out)
}

/// The message publish must send for `op` at `seqno`.
pub fn expected_msg(db_id: &str, prefix: &str, seqno: SeqNo, op: &Op) -> StreamMsg {
    let (kind, payload) = match op {
        Op::Put { value, .. } => ("put", value.clone()),
        Op::Delete { .. } => ("delete", Vec::new()),
    };
    StreamMsg {
        subject: format!("{prefix}.{}", alluvium_bridge::wire::encode_key(op.key())),
        msg_id: format!("{db_id}:{seqno}"),
        seqno,
        op: kind.into(),
        payload,
    }
}

/// A current-thread tokio runtime for the test's own async reads.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// After each batch of the feed holding user operations: how many user operations the feed
/// held up to its end. A copy that never splits a source batch has a subset of the source's.
pub fn feed_batch_ends(db: &Db) -> Result<Vec<usize>> {
    let mut cursor = db.changes(Start::Beginning)?;
    let (mut total, mut out) = (0, Vec::new());
    while let Some(batch) = cursor.try_next()? {
        let user = batch
            .ops
            .iter()
            .filter(|(_, op)| !alluvium_bridge::wire::is_reserved(op.key()))
            .count();
        if user > 0 {
            total += user;
            out.push(total);
        }
    }
    Ok(out)
}

/// The Kafka broker `scripts/kafka_test.sh` started (`ALLUVIUM_KAFKA_URL`), or `None` after a
/// loud message.
pub fn kafka_url() -> Option<String> {
    let url = std::env::var("ALLUVIUM_KAFKA_URL").ok();
    if url.is_none() {
        eprintln!("\n!!!!!!!! ALLUVIUM_KAFKA_URL is not set: this Kafka test did NOT run !!!!!!!!");
        eprintln!("!!!!!!!! scripts/kafka_test.sh starts a broker and runs it !!!!!!!!\n");
    }
    url
}

/// A topic name no earlier run used.
/// Creates `topic` with `partitions` partitions (one replica) on the broker at `url`.
#[cfg(feature = "kafka")]
pub fn create_kafka_topic(url: &str, topic: &str, partitions: i32) -> Result {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set(
            "bootstrap.servers",
            alluvium_bridge::kafka::bootstrap_servers(url),
        )
        .create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for r in runtime()?.block_on(admin.create_topics([&new], &AdminOptions::new()))? {
        r.map_err(|(t, e)| format!("creating {t}: {e}"))?;
    }
    Ok(())
}

pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{nanos}")
}
