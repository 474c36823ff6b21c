//! Retention: which flushed log files stay for the change feed, and the bound past which a
//! stalled subscription is cut off.
//!
//! # Invariants
//! - A log file whose records are not all flushed (numbered at or above the manifest's
//!   `log_number`) is never deleted here.
//! - Files are deleted oldest first, so the retained log is always contiguous: a reader never
//!   finds a hole, only an oldest available sequence number that moved up.
//! - A flushed log file is kept while a subscription's position is before its last sequence
//!   number, or while it is among the newest flushed files that fit in
//!   `feed_retention_bytes_min`; but never once the flushed files kept exceed
//!   `feed_retention_bytes_max` (the oldest goes first) or it was last written more than
//!   `feed_retention_age_max` ago. A subscription whose position + 1 is then older than the
//!   oldest retained sequence number is cut off: its next read is `Error::FeedTruncated`, and
//!   it holds back nothing any more (the files it would need are gone).
//!
//! Retention runs after every flush, after a subscription is deleted, and at open.

use std::time::{Duration, SystemTime};

use super::index::LogIndex;
use crate::db::Inner;
use crate::error::Result;
use crate::files;
use crate::key::SeqNo;

/// Size and age of one flushed log file.
#[derive(Debug, Clone, Copy)]
struct FileFacts {
    size_bytes: u64,
    age: Duration,
}

/// Deletes the flushed log files the policy no longer keeps (module docs).
pub(crate) fn apply_retention(inner: &Inner) -> Result<()> {
    let doomed = {
        let subs = inner.feed.subs.lock();
        let positions: Vec<SeqNo> = subs.positions().collect();
        let mut logs = inner.feed.logs.lock();
        let n = deletable_prefix(inner, &logs, &positions);
        let doomed = logs.remove_oldest(n);
        warn_cut_off(&positions, logs.oldest_seqno(), n);
        doomed
    };
    for entry in doomed {
        inner.unsynced_logs.forget(entry.number);
        files::remove_if_exists(
            &**inner.opts.file_system_value(),
            &files::log_path(&inner.dir, entry.number),
        )?;
    }
    Ok(())
}

/// How many of the oldest log files may be deleted.
fn deletable_prefix(inner: &Inner, logs: &LogIndex, positions: &[SeqNo]) -> usize {
    let flushed_below = inner
        .feed
        .flushed_log_number
        .load(std::sync::atomic::Ordering::Acquire);
    let flushed = logs
        .files()
        .iter()
        .take_while(|f| f.number < flushed_below)
        .count()
        .min(logs.files().len().saturating_sub(1)); // never the newest file
    let facts: Vec<FileFacts> = logs.files()[..flushed]
        .iter()
        .map(|f| file_facts(inner, f.number))
        .collect();
    let opts = &inner.opts;
    let min_start = newest_within(&facts, opts.feed_retention_bytes_min);
    let mut kept_bytes: u64 = facts.iter().map(|f| f.size_bytes).sum();
    let mut n = 0;
    while n < flushed {
        let wanted = needed(logs, n, positions) || n >= min_start;
        let over = kept_bytes > opts.feed_retention_bytes_max;
        let old = facts[n].age > opts.feed_retention_age_max;
        if wanted && !over && !old {
            break;
        }
        kept_bytes -= facts[n].size_bytes;
        n += 1;
    }
    n
}

/// True when a subscription that is not cut off needs file `n`, the oldest file kept if the
/// files before it go: its position + 1 is at or after the file's first sequence number
/// (anything older is gone) and before the file's last.
fn needed(logs: &LogIndex, n: usize, positions: &[SeqNo]) -> bool {
    let files = logs.files();
    let (Some(file), Some(last)) = (files.get(n), logs.last_seqno_of(n)) else {
        return true;
    };
    positions
        .iter()
        .any(|&p| p + 1 >= file.first_seqno && p < last)
}

/// The index of the first of the newest files whose sizes add up to at most `bytes`.
fn newest_within(facts: &[FileFacts], bytes: u64) -> usize {
    let mut total = 0u64;
    let mut start = facts.len();
    while start > 0 {
        total = total.saturating_add(facts[start - 1].size_bytes);
        if total > bytes {
            break;
        }
        start -= 1;
    }
    start
}

fn file_facts(inner: &Inner, number: u64) -> FileFacts {
    let meta = std::fs::metadata(files::log_path(&inner.dir, number)).ok();
    let age = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    FileFacts {
        size_bytes: meta.map_or(0, |m| m.len()),
        age,
    }
}

fn warn_cut_off(positions: &[SeqNo], oldest: SeqNo, deleted: usize) {
    if deleted == 0 {
        return;
    }
    let cut = positions.iter().filter(|&&p| p + 1 < oldest).count();
    if cut > 0 {
        log::warn!(
            "alluvium retention deleted {deleted} log file(s); {cut} subscription(s) are cut off \
             (oldest available sequence number is now {oldest})"
        );
    }
}

/// Bytes and number of the flushed log files retained for the change feed.
pub(crate) fn retained(inner: &Inner) -> (u64, usize) {
    let flushed_below = inner
        .feed
        .flushed_log_number
        .load(std::sync::atomic::Ordering::Acquire);
    let numbers: Vec<u64> = inner
        .feed
        .logs
        .lock()
        .files()
        .iter()
        .map(|f| f.number)
        .filter(|&n| n < flushed_below)
        .collect();
    let bytes = numbers
        .iter()
        .map(|&n| file_facts(inner, n).size_bytes)
        .sum();
    (bytes, numbers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_window_counts_the_newest_files_that_fit() {
        let f = |size_bytes| FileFacts {
            size_bytes,
            age: Duration::ZERO,
        };
        let facts = [f(10), f(20), f(30)];
        assert_eq!(newest_within(&facts, 0), 3);
        assert_eq!(newest_within(&facts, 30), 2);
        assert_eq!(newest_within(&facts, 55), 1);
        assert_eq!(newest_within(&facts, 60), 0);
    }
}
