//! `alluvium feed follow|subscriptions|publish|ingest DIR`. The bridges (`publish`, `ingest`)
//! live in the `alluvium-bridge` crate; this file only dispatches to them.

use std::path::PathBuf;
use std::time::Duration;

use alluvium::inspect::{self, SubscriptionView};
use alluvium::{ChangeBatch, Follower, KeyFilter, Start};
use clap::Subcommand;
use serde::Serialize;

use crate::json::EntryJson;
use crate::output::{decode, utc_time, Align, Out, OutputArgs, Table};
use crate::CmdResult;

#[derive(Subcommand)]
pub enum FeedCommand {
    /// Prints the change feed of a database as it grows: one JSON object per batch and line,
    /// flushed per line. Takes no lock: the database may be open in another process.
    #[command(
        after_help = "Starts at the end (only batches committed from now on) unless \
--from-beginning or --from says otherwise.\n\nExamples:\n  \
    alluvium feed follow db/ --from-beginning --exit-at-end\n  \
    alluvium feed follow db/ --from 1000 --prefix user: | jq .ops"
    )]
    Follow(FollowArgs),
    /// Prints every subscription: name, position, lag. Takes no lock.
    #[command(after_help = "Example:\n  alluvium feed subscriptions db/")]
    Subscriptions(SubscriptionsArgs),
    /// Publishes every change, in commit order and exactly once, to a NATS JetStream stream
    /// (or, built with `--features kafka`, a Kafka topic), through a durable subscription;
    /// runs until stopped. Opens the database (takes its lock).
    Publish(alluvium_bridge::cli::PublishArgs),
    /// Applies a NATS JetStream stream's messages (or a Kafka topic's records) to a database,
    /// exactly once (the stream sequence or partition offsets are stored in the same batch as
    /// the data); runs until stopped.
    Ingest(alluvium_bridge::cli::IngestArgs),
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("start").args(["from_beginning", "from", "from_end"]))]
pub struct FollowArgs {
    /// The database directory.
    dir: PathBuf,
    /// Start at the oldest batch the commit log still holds.
    #[arg(long)]
    from_beginning: bool,
    /// Start at the batch holding this sequence number.
    #[arg(long, value_name = "SEQNO")]
    from: Option<u64>,
    /// Start after the last batch committed so far (the default).
    #[arg(long)]
    from_end: bool,
    /// Only operations on keys starting with this prefix (in --key-encoding).
    #[arg(long)]
    prefix: Option<String>,
    /// Stop once every batch committed so far is printed, instead of waiting for more.
    #[arg(long)]
    exit_at_end: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
pub struct SubscriptionsArgs {
    /// The database directory.
    dir: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(command: &FeedCommand) -> CmdResult {
    match command {
        FeedCommand::Follow(args) => follow(args),
        FeedCommand::Subscriptions(args) => subscriptions(args),
        FeedCommand::Publish(args) => Ok(alluvium_bridge::cli::publish(args)?),
        FeedCommand::Ingest(args) => Ok(alluvium_bridge::cli::ingest(args)?),
    }
}

fn start(args: &FollowArgs) -> Start {
    match (args.from_beginning, args.from) {
        (true, _) => Start::Beginning,
        (_, Some(seqno)) => Start::SeqNo(seqno),
        _ => Start::Now,
    }
}

fn follow(args: &FollowArgs) -> CmdResult {
    crate::require_database(&args.dir)?;
    let filter = match &args.prefix {
        Some(p) => KeyFilter::Prefix(decode(p, args.out.key_encoding)?),
        None => KeyFilter::All,
    };
    let mut follower = Follower::open(&args.dir, start(args))?.with_filter(filter);
    let mut out = Out::line_flushed();
    loop {
        let next = match args.exit_at_end {
            true => follower.try_next()?,
            false => follower.next_timeout(Duration::from_secs(1))?,
        };
        match next {
            Some(batch) => out.json(&BatchJson::new(&batch, &args.out))?,
            None if args.exit_at_end => return Ok(out.finish()?),
            None => {}
        }
    }
}

/// One batch of the change feed.
#[derive(Serialize)]
struct BatchJson {
    first_seqno: u64,
    last_seqno: u64,
    commit_time_us: u64,
    commit_time: String,
    ops: Vec<EntryJson>,
}

impl BatchJson {
    fn new(batch: &ChangeBatch, args: &OutputArgs) -> Self {
        let op = |(seqno, op): &(u64, alluvium::Op)| {
            EntryJson::new(op.key(), *seqno, op.kind(), op.value(), args)
        };
        BatchJson {
            first_seqno: batch.first_seqno,
            last_seqno: batch.last_seqno,
            commit_time_us: batch.commit_time_us,
            commit_time: utc_time(batch.commit_time_us),
            ops: batch.ops.iter().map(op).collect(),
        }
    }
}

#[derive(Serialize)]
struct SubscriptionJson<'a> {
    name: &'a str,
    id: u64,
    position: u64,
    lag_seqnos: u64,
    cut_off: bool,
}

impl<'a> From<&'a SubscriptionView> for SubscriptionJson<'a> {
    fn from(s: &'a SubscriptionView) -> Self {
        SubscriptionJson {
            name: &s.name,
            id: s.id,
            position: s.position,
            lag_seqnos: s.lag_seqnos,
            cut_off: s.cut_off,
        }
    }
}

fn subscriptions(args: &SubscriptionsArgs) -> CmdResult {
    crate::require_database(&args.dir)?;
    let found = inspect::subscriptions(&args.dir)?;
    let mut out = Out::new();
    if args.out.json {
        for s in &found.subscriptions {
            out.json(&SubscriptionJson::from(s))?;
        }
        return Ok(out.finish()?);
    }
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("POSITION", Align::Right),
        ("LAG", Align::Right),
        ("STATE", Align::Left),
    ]);
    for s in &found.subscriptions {
        let state = if s.cut_off {
            "cut off: its next read fails"
        } else {
            "ok"
        };
        let cells = vec![
            s.name.clone(),
            s.position.to_string(),
            s.lag_seqnos.to_string(),
            state.into(),
        ];
        table.row(&mut out, cells)?;
    }
    table.finish(&mut out)?;
    out.line(&format!(
        "{} subscription(s); the commit log holds sequence numbers {}..={}",
        found.subscriptions.len(),
        found.oldest_seqno,
        found.latest_seqno
    ))?;
    Ok(out.finish()?)
}
