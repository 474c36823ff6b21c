//! A database's changes are published into a stream; a second database ingests the stream
//! with the ingester (a child process) SIGKILLed at random points and restarted, again and
//! again. The second database then holds exactly the first one's data, and its own change
//! feed holds every source operation exactly once, in order: nothing applied twice, nothing
//! skipped, no source batch split.

mod common;

use alluvium::{Db, Start};
use alluvium_bridge::nats::{ingest, publish};
use common::{NatsServer, Result, Rng};

const CHANGES: u64 = 100_000;
const KILLS: u32 = 8;

#[test]
fn ingesting_with_the_ingester_killed_at_random_points_applies_every_message_once_and_reproduces_the_source(
) -> Result {
    let Some(nats) = NatsServer::start()? else {
        return Ok(());
    };
    let mut rng = Rng::from_env_or_time();
    let source_dir = tempfile::tempdir()?;
    let source = Db::open(source_dir.path(), common::options())?;
    common::write_changes(&source, CHANGES, &mut rng)?;
    let mut config = publish::PublishConfig::new(&nats.url, "SOURCE");
    config.exit_at_end = true;
    common::runtime()?.block_on(publish::publish(&source, &config, &mut |_| {}))?;

    let copy_dir = tempfile::tempdir()?;
    {
        // A subscription keeps the copy's whole feed, to check it operation by operation.
        let copy = Db::open(copy_dir.path(), common::options())?;
        copy.create_subscription("audit", Start::Beginning)?;
        copy.close()?;
    }
    let args: Vec<String> = vec![
        "ingest".into(),
        common::path_arg(copy_dir.path()),
        "--from".into(),
        nats.url.clone(),
        "--stream".into(),
        "SOURCE".into(),
        "--batch".into(),
        "200".into(),
    ];
    common::run_killed_repeatedly(&args, KILLS, 400, &mut rng)?;

    let copy = Db::open(copy_dir.path(), common::options())?;
    let source_ops: Vec<_> = common::feed_ops(&source)?
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    let copy_ops: Vec<_> = common::feed_ops(&copy)?
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    assert_eq!(copy_ops.len(), source_ops.len(), "operations applied");
    assert!(
        copy_ops == source_ops,
        "the copy's operations differ from the source's"
    );
    let source_ends: std::collections::HashSet<_> =
        common::feed_batch_ends(&source)?.into_iter().collect();
    for end in common::feed_batch_ends(&copy)? {
        assert!(
            source_ends.contains(&end),
            "a copy batch ends inside a source batch (after {end} operations)"
        );
    }
    assert!(
        common::user_data(&copy)? == common::user_data(&source)?,
        "the copy's data differs from the source's"
    );
    assert_eq!(
        ingest::stored_position(&copy, "SOURCE")?,
        CHANGES,
        "stored stream sequence"
    );
    copy.close()?;
    source.close()?;
    Ok(())
}
