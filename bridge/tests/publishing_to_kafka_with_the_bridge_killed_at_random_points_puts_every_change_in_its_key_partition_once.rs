//! Kafka (cargo feature `kafka`, run by `scripts/kafka_test.sh`): 100,000 changes published to
//! a 3-partition topic by a bridge SIGKILLed at random points and restarted; then every change
//! is in its key's partition exactly once, each partition in commit order.
#![cfg(feature = "kafka")]

mod common;

use std::time::Duration;

use alluvium::Db;
use alluvium_bridge::kafka;
use common::{Result, Rng};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const CHANGES: u64 = 100_000;
const PARTITIONS: i32 = 3;

/// Every record of every partition: (partition, seqno, key, op, value).
type Record = (i32, u64, Vec<u8>, String, Option<Vec<u8>>);

fn read_topic(url: &str, topic: &str) -> Result<Vec<Record>> {
    let consumer = kafka::consumer(url)?;
    let highs = kafka::high_watermarks(&consumer, topic, PARTITIONS)?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let total: i64 = highs.iter().sum();
    let mut out = Vec::new();
    // Until 3 s without a record: the high watermarks only say how many to expect.
    let mut idle_since = std::time::Instant::now();
    while idle_since.elapsed() < Duration::from_secs(3) {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        idle_since = std::time::Instant::now();
        let m = m?;
        let seqno = kafka::header(&m, kafka::HEADER_SEQNO)
            .ok_or("no seqno")?
            .parse()?;
        let op = kafka::header(&m, kafka::HEADER_OP).ok_or("no op")?;
        out.push((
            m.partition(),
            seqno,
            m.key().unwrap_or_default().to_vec(),
            op,
            m.payload().map(<[u8]>::to_vec),
        ));
    }
    let again = kafka::high_watermarks(&consumer, topic, PARTITIONS)?;
    eprintln!(
        "high watermarks {highs:?} (sum {total}), again {again:?}; read {} records",
        out.len()
    );
    Ok(out)
}

#[test]
fn publishing_to_kafka_with_the_bridge_killed_at_random_points_puts_every_change_in_its_key_partition_once(
) -> Result {
    let Some(url) = common::kafka_url() else {
        return Ok(());
    };
    let mut rng = Rng::from_env_or_time();
    let topic = common::unique_name("changes");
    common::create_kafka_topic(&url, &topic, PARTITIONS)?;
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), common::options())?;
    common::write_changes(&db, CHANGES, &mut rng)?;
    let ops = common::feed_ops(&db)?;
    db.close()?;

    let args: Vec<String> = [
        "publish",
        &common::path_arg(dir.path()),
        "--to",
        &url,
        "--topic",
        &topic,
    ]
    .map(String::from)
    .to_vec();
    common::run_killed_repeatedly(&args, 8, 400, &mut rng)?;

    let records = read_topic(&url, &topic)?;
    assert_eq!(
        records.len(),
        ops.len(),
        "records in the topic (duplicates or losses)"
    );
    let mut last = [0u64; PARTITIONS as usize];
    let mut seen = std::collections::BTreeMap::new();
    for (p, seqno, key, op, value) in records {
        assert_eq!(
            p,
            kafka::partition_of(&key, PARTITIONS),
            "the partition of change {seqno}"
        );
        assert!(
            seqno > last[p as usize],
            "partition {p}: {seqno} after {}",
            last[p as usize]
        );
        last[p as usize] = seqno;
        seen.insert(seqno, (key, op, value));
    }
    for (seqno, op) in &ops {
        let (key, kind, value) = seen
            .get(seqno)
            .ok_or(format!("change {seqno} is missing"))?;
        assert_eq!(key.as_slice(), op.key(), "key of {seqno}");
        match op {
            alluvium::Op::Put { value: v, .. } => assert_eq!(
                (kind.as_str(), value.as_deref()),
                ("put", Some(v.as_slice()))
            ),
            alluvium::Op::Delete { .. } => {
                assert_eq!((kind.as_str(), value.as_deref()), ("delete", None))
            }
        }
    }
    Ok(())
}
