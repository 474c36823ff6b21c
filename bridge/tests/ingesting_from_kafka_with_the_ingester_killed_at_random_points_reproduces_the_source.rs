//! Kafka (cargo feature `kafka`, run by `scripts/kafka_test.sh`): a database's changes are
//! published to a 3-partition topic; a second database ingests it with the ingester SIGKILLed
//! at random points and restarted. The copy then holds the source's data, and its change feed
//! holds exactly as many operations as the source's (none applied twice, none skipped).
#![cfg(feature = "kafka")]

mod common;

use alluvium::{Db, Start};
use alluvium_bridge::kafka;
use common::{Result, Rng};

const CHANGES: u64 = 100_000;

#[test]
fn ingesting_from_kafka_with_the_ingester_killed_at_random_points_reproduces_the_source() -> Result
{
    let Some(url) = common::kafka_url() else {
        return Ok(());
    };
    let mut rng = Rng::from_env_or_time();
    let topic = common::unique_name("source");
    common::create_kafka_topic(&url, &topic, 3)?;
    let runtime = common::runtime()?;
    let source_dir = tempfile::tempdir()?;
    let source = Db::open(source_dir.path(), common::options())?;
    common::write_changes(&source, CHANGES, &mut rng)?;
    let mut config = kafka::publish::PublishConfig::new(&url, &topic);
    config.exit_at_end = true;
    runtime.block_on(kafka::publish::publish(&source, &config, &mut |_| {}))?;

    let copy_dir = tempfile::tempdir()?;
    {
        let copy = Db::open(copy_dir.path(), common::options())?;
        copy.create_subscription("audit", Start::Beginning)?;
        copy.close()?;
    }
    let args: Vec<String> = [
        "ingest",
        &common::path_arg(copy_dir.path()),
        "--from",
        &url,
        "--topic",
        &topic,
        "--batch",
        "200",
    ]
    .map(String::from)
    .to_vec();
    // A restarted ingester may wait 2 s for a fetch that returns nothing before it rewinds
    // (tansu, see `kafka::resume`), and a consumer takes a few hundred milliseconds to join:
    // kill later than the NATS tests do, so that the killed runs do real work.
    common::run_killed_repeatedly(&args, 16, 1500, &mut rng)?;

    let copy = Db::open(copy_dir.path(), common::options())?;
    assert_eq!(
        common::feed_ops(&copy)?.len(),
        common::feed_ops(&source)?.len(),
        "operations applied"
    );
    assert!(
        common::user_data(&copy)? == common::user_data(&source)?,
        "the copy's data differ"
    );
    copy.close()?;
    source.close()?;
    Ok(())
}
