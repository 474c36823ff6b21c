//! 100,000 changes; the publish bridge (a child process) is SIGKILLed at random points and
//! restarted, again and again; then the stream holds every change exactly once, in commit
//! order, each message as FORMAT.md ("Wire format of the bridges") says.

mod common;

use alluvium::Db;
use common::{NatsServer, Result, Rng};

const CHANGES: u64 = 100_000;
const KILLS: u32 = 8;

#[test]
fn publishing_with_the_bridge_killed_at_random_points_puts_every_change_in_the_stream_once_in_commit_order(
) -> Result {
    let Some(nats) = NatsServer::start()? else {
        return Ok(());
    };
    let mut rng = Rng::from_env_or_time();
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), common::options())?;
    common::write_changes(&db, CHANGES, &mut rng)?;
    let ops = common::feed_ops(&db)?;
    let db_id = db.id().to_string();
    db.close()?;
    assert_eq!(ops.len() as u64, CHANGES);

    let args: Vec<String> = vec![
        "publish".into(),
        common::path_arg(dir.path()),
        "--to".into(),
        nats.url.clone(),
        "--stream".into(),
        "CHANGES".into(),
        "--subject-prefix".into(),
        "db.changes".into(),
    ];
    common::run_killed_repeatedly(&args, KILLS, 400, &mut rng)?;

    let got = common::runtime()?.block_on(common::read_stream(&nats.url, "CHANGES"))?;
    let expected: Vec<_> = ops
        .iter()
        .map(|(seqno, op)| common::expected_msg(&db_id, "db.changes", *seqno, op))
        .collect();
    assert_eq!(got.len(), expected.len(), "messages in the stream");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "stream message {} (sequence {})", i, i + 1);
    }
    let db = Db::open(dir.path(), common::options())?;
    let position = db.subscriptions()[0].position;
    assert_eq!(position, db.latest_seqno(), "the subscription's position");
    db.close()?;
    Ok(())
}
