//! Change-feed subscriptions as a database's files record them, read without the lock.

use std::collections::BTreeMap;
use std::path::Path;

use super::{file_number, levels, log_files, read_log, LogDump};
use crate::error::{Error, Result};
use crate::key::SeqNo;

/// One subscription: its durable position and how far behind the commit log it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// The subscription's id (never reused).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The last sequence number it acknowledged.
    pub position: SeqNo,
    /// Sequence numbers committed after the position.
    pub lag_seqnos: u64,
    /// True when the log files holding the sequence numbers after its position are gone: its
    /// next read fails with [`Error::FeedTruncated`].
    pub cut_off: bool,
}

/// The subscriptions of a database and the span of its commit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriptions {
    /// The newest sequence number in a segment or a complete log record.
    pub latest_seqno: SeqNo,
    /// The oldest sequence number the commit log still holds (`latest_seqno + 1` when it holds
    /// none).
    pub oldest_seqno: SeqNo,
    /// Every subscription, by name.
    pub subscriptions: Vec<SubscriptionView>,
}

/// Reads the subscriptions of the database in `dir` the way open rebuilds them: the positions
/// the manifest records, moved by the acknowledgements in the log files open replays. No lock
/// is taken, so this works while another process has the database open (a log file a flush
/// deletes meanwhile is skipped).
pub fn subscriptions(dir: &Path) -> Result<Subscriptions> {
    let state = levels(dir)?.state;
    let mut positions = state.subscriptions.clone();
    let mut span = Span {
        latest: state.last_seqno,
        oldest: None,
    };
    for path in log_files(dir)? {
        let Some(dump) = read_if_present(&path)? else {
            continue;
        };
        let replayed = file_number(&path) >= state.log_number;
        span.add(&dump, replayed.then_some(&mut positions));
    }
    let oldest = span.oldest.unwrap_or(span.latest + 1);
    let mut subscriptions: Vec<_> = positions
        .into_iter()
        .map(|(id, (name, position))| SubscriptionView {
            id,
            name,
            position,
            lag_seqnos: span.latest.saturating_sub(position),
            cut_off: position + 1 < oldest,
        })
        .collect();
    subscriptions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Subscriptions {
        latest_seqno: span.latest,
        oldest_seqno: oldest,
        subscriptions,
    })
}

/// The sequence numbers the log files hold.
struct Span {
    latest: SeqNo,
    oldest: Option<SeqNo>,
}

impl Span {
    /// Takes in one log file's records, applying their acknowledgements to `positions`.
    fn add(&mut self, dump: &LogDump, mut positions: Option<&mut BTreeMap<u64, (String, SeqNo)>>) {
        for item in &dump.items {
            let record = &item.record;
            self.oldest.get_or_insert(record.first_seqno);
            self.latest = self.latest.max(record.last_seqno());
            for ack in &record.acks {
                let sub = positions
                    .as_mut()
                    .and_then(|p| p.get_mut(&ack.subscription_id));
                if let Some((_, position)) = sub {
                    *position = ack.position;
                }
            }
        }
    }
}

fn read_if_present(path: &Path) -> Result<Option<LogDump>> {
    match read_log(path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}
