//! `alluvium demo`: the README's main job.

use std::path::PathBuf;

use alluvium::{Db, Options, Start, WriteBatch, WriteOptions};
use serde::Serialize;

use crate::output::Out;
use crate::CmdResult;

/// Arguments of `alluvium demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Database directory; a fresh temporary directory when omitted.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of keys to write.
    #[arg(long, default_value_t = 100_000)]
    keys: u32,
    /// Print one JSON object per step instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// What the demo did at one step; printed as a sentence or, with `--json`, as an object whose
/// `step` field names the variant.
#[derive(Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    Open {
        dir: String,
    },
    Write {
        keys: u32,
        deleted_seqno: u64,
        synced_seqno: u64,
        elapsed_ms: f64,
    },
    Read {
        probe: String,
        value: Option<String>,
        deleted_value: Option<String>,
        first_keys: Vec<String>,
        last_keys_reverse: Vec<String>,
        prefix_count: usize,
    },
    Reopen {
        logs_replayed: usize,
        batches_replayed: u64,
        latest_seqno: u64,
        torn_tails_dropped: usize,
    },
    Feed {
        subscription: String,
        batches: u64,
        changes: u64,
        first_seqno: u64,
        last_seqno: u64,
        acknowledged: u64,
        tailed_seqno: u64,
        tail_wakeup_us: f64,
    },
    Flush {
        level0_segments: usize,
        level0_bytes: u64,
    },
    Done,
}

impl Step {
    fn sentence(&self) -> String {
        match self {
            Step::Open { dir } => format!("opening a default database in {dir}"),
            Step::Write { keys, deleted_seqno, synced_seqno, elapsed_ms } => format!(
                "wrote {keys} keys in batches of 100, deleted user:00000000 (sequence number \
                 {deleted_seqno}), synced a marker at sequence number {synced_seqno} in {elapsed_ms:.1}ms"
            ),
            Step::Read { probe, value, deleted_value, first_keys, last_keys_reverse, prefix_count } => format!(
                "get {probe} -> {}\nget user:00000000 -> {deleted_value:?} (deleted)\n\
                 first keys: {first_keys:?}; last keys (reverse): {last_keys_reverse:?}\n\
                 prefix user: holds {prefix_count} keys",
                value.as_deref().unwrap_or("(none)")
            ),
            Step::Reopen { logs_replayed, batches_replayed, latest_seqno, torn_tails_dropped } => format!(
                "closing (the memtable stays in the commit log) and reopening...\n\
                 recovered: {logs_replayed} log file(s), {batches_replayed} batch(es) replayed, \
                 latest sequence number {latest_seqno}, {torn_tails_dropped} torn tail(s) dropped"
            ),
            Step::Feed {
                subscription,
                batches,
                changes,
                first_seqno,
                last_seqno,
                acknowledged,
                tailed_seqno,
                tail_wakeup_us,
            } => format!(
                "change feed: subscription {subscription:?} read {batches} batch(es), {changes} \
                 change(s), sequence numbers {first_seqno}..={last_seqno}, across the restart, \
                 and acknowledged {acknowledged}\n\
                 a cursor waiting at the end of the log got the next put (sequence number \
                 {tailed_seqno}) {tail_wakeup_us:.0}us after the write began"
            ),
            Step::Flush { level0_segments, level0_bytes } => {
                format!("flushed: level 0 holds {level0_segments} segment(s), {level0_bytes} bytes")
            }
            Step::Done => "done".to_string(),
        }
    }
}

/// Prints each step as it happens (a closed pipe ends the demo quietly).
struct Steps {
    out: Out,
    json: bool,
}

impl Steps {
    fn say(&mut self, step: Step) -> std::io::Result<()> {
        match self.json {
            true => self.out.json(&step),
            false => self.out.line(&step.sentence()),
        }
    }
}

pub fn run(args: &DemoArgs) -> CmdResult {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("db")
        }
    };
    let mut steps = Steps {
        out: Out::line_flushed(),
        json: args.json,
    };
    steps.say(Step::Open {
        dir: dir.display().to_string(),
    })?;
    let db = Db::open(&dir, Options::default())?;
    db.create_subscription(SUBSCRIPTION, Start::Beginning)?;
    steps.say(write_phase(&db, args.keys)?)?;
    steps.say(read_phase(&db, args.keys)?)?;
    db.close()?;
    drop(db);
    let db = Db::open(&dir, Options::default())?;
    let report = db.recovery_report();
    steps.say(Step::Reopen {
        logs_replayed: report.logs_replayed,
        batches_replayed: report.records_replayed,
        latest_seqno: db.latest_seqno(),
        torn_tails_dropped: report.dropped.len(),
    })?;
    steps.say(read_phase(&db, args.keys)?)?;
    steps.say(feed_phase(&db)?)?;
    db.flush()?;
    let stats = db.stats();
    steps.say(Step::Flush {
        level0_segments: stats.levels[0].segments,
        level0_bytes: stats.levels[0].bytes,
    })?;
    db.close()?;
    steps.say(Step::Done)?;
    Ok(steps.out.finish()?)
}

fn write_phase(db: &Db, keys: u32) -> alluvium::Result<Step> {
    let started = std::time::Instant::now();
    let mut batch = WriteBatch::new();
    for i in 0..keys {
        batch.put(
            format!("user:{i:08}"),
            format!("{{\"id\":{i},\"name\":\"user {i}\"}}"),
        );
        if batch.len() == 100 {
            db.write(std::mem::take(&mut batch), &WriteOptions::default())?;
        }
    }
    db.write(batch, &WriteOptions::default())?;
    let deleted_seqno = db.delete(format!("user:{:08}", 0))?;
    let synced_seqno = db.write(single_put("demo:last-run", "ok"), &WriteOptions::synced())?;
    Ok(Step::Write {
        keys,
        deleted_seqno,
        synced_seqno,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The subscription the demo creates before writing and reads after the restart.
const SUBSCRIPTION: &str = "demo-indexer";

/// Reads everything the subscription has not processed (all of it, across the restart) and
/// acknowledges it; then shows a cursor at the end of the log woken by the next commit.
fn feed_phase(db: &Db) -> alluvium::Result<Step> {
    let mut sub = db.open_subscription(SUBSCRIPTION)?;
    let (mut batches, mut changes, mut first_seqno, mut last_seqno) = (0, 0, 0, 0);
    while let Some(batch) = sub.try_next()? {
        if batches == 0 {
            first_seqno = batch.first_seqno;
        }
        (batches, changes, last_seqno) = (
            batches + 1,
            changes + batch.ops.len() as u64,
            batch.last_seqno,
        );
    }
    sub.ack(last_seqno, &WriteOptions::synced())?;
    let mut cursor = db.changes(Start::Now)?;
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || (std::time::Instant::now(), db.put("demo:tailed", "1")))
    };
    let batch = cursor.next_timeout(std::time::Duration::from_secs(10))?;
    let woken = std::time::Instant::now();
    let (written, seqno) = writer
        .join()
        .map_err(|_| alluvium::Error::Closed("writer panicked".into()))?;
    Ok(Step::Feed {
        subscription: SUBSCRIPTION.to_string(),
        batches,
        changes,
        first_seqno,
        last_seqno,
        acknowledged: sub.position()?,
        tailed_seqno: batch.map_or(seqno?, |b| b.first_seqno),
        tail_wakeup_us: woken.saturating_duration_since(written).as_secs_f64() * 1e6,
    })
}

fn single_put(k: &str, v: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(k, v);
    b
}

fn read_phase(db: &Db, keys: u32) -> alluvium::Result<Step> {
    let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    let probe = format!("user:{:08}", keys / 2);
    let value = db.get(&probe)?.map(text);
    let deleted_value = db.get("user:00000000")?.map(text);
    let first: Vec<_> = db
        .prefix("user:")
        .take(3)
        .collect::<alluvium::Result<_>>()?;
    let last: Vec<_> = db
        .prefix("user:")
        .rev()
        .take(2)
        .collect::<alluvium::Result<_>>()?;
    let names = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| text(k)).collect();
    Ok(Step::Read {
        probe,
        value,
        deleted_value,
        first_keys: names(first),
        last_keys_reverse: names(last),
        prefix_count: db.prefix("user:").count(),
    })
}
