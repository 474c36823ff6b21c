//! The change feed: the commit log read back, in commit order, as whole batches.
//!
//! - [`Cursor`] (`cursor.rs`): an in-process reader of the feed from a [`Start`], with an
//!   optional key filter. It never reads past the visible sequence number, and at the end of
//!   the log it waits for the next commit, woken by the commit path (no polling).
//! - [`Subscription`] (`subscriptions.rs`): a named cursor whose position (the last sequence
//!   number processed) is durable and holds back the deletion of log files.
//! - retention (`retention.rs`): which flushed log files are kept, and the bound past which a
//!   stalled subscription is cut off.
//! - [`Follower`] (`follower.rs`): a reader of a live database's commit log from another
//!   process, without taking its lock.
//!
//! `ARCHITECTURE.md`, "Change feed", explains the design; `FORMAT.md`, "Subscriptions", the
//! bytes of positions.
//!
//! # Concurrency
//! `FeedState::logs` (the log file index) and `FeedState::subs` (the subscription table) are
//! mutexes. Lock order: `versions` → `subs` → `logs`; the commit path takes `subs` under the
//! log mutex (`log` → `subs`). Nothing holding `subs` or `logs` takes `log` or `versions`.

mod cursor;
mod follower;
mod index;
mod retention;
mod subscriptions;

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

pub use cursor::{Blocking, Cursor};
pub use follower::Follower;
pub(crate) use index::LogIndex;
pub(crate) use retention::{apply_retention, retained};
pub(crate) use subscriptions::{resolve_acks, subscription_stats, SubscriptionTable};
pub use subscriptions::{Subscription, SubscriptionInfo, SubscriptionStats, SUBSCRIPTION_NAME_MAX};

use crate::batch::Op;
use crate::db::Inner;
use crate::key::SeqNo;

/// Where a cursor starts reading the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest batch still retained.
    Beginning,
    /// The batch holding this sequence number (the whole batch, even if the number is not its
    /// first). A number older than what is retained is [`Error::FeedTruncated`](crate::Error).
    SeqNo(SeqNo),
    /// The next batch to be committed: nothing already committed.
    Now,
    /// The first batch whose commit time is at or after this time (commit times come from the
    /// wall clock of the committing process and are not guaranteed to be monotonic; the search
    /// goes by log order).
    Time(SystemTime),
}

/// One batch of the change feed: whole, never split, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Sequence number of the batch's first operation.
    pub first_seqno: SeqNo,
    /// Sequence number of the batch's last operation. Acknowledge this one after processing
    /// the batch.
    pub last_seqno: SeqNo,
    /// Commit time, microseconds since the Unix epoch, from the committing process's clock.
    pub commit_time_us: u64,
    /// The operations with their sequence numbers, in batch order. With a key filter, only the
    /// operations that match it.
    pub ops: Vec<(SeqNo, Op)>,
}

/// Which operations a cursor hands out.
///
/// A batch none of whose operations match is skipped, and the cursor's position still moves
/// past it; a batch with some matching operations is handed out with only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyFilter {
    /// Every operation.
    #[default]
    All,
    /// Operations on keys starting with the prefix.
    Prefix(Vec<u8>),
    /// Operations on keys in `[start, end)`; `None` is unbounded.
    Range {
        /// The smallest key included.
        start: Option<Vec<u8>>,
        /// The first key excluded.
        end: Option<Vec<u8>>,
    },
}

impl KeyFilter {
    /// True when `key` passes the filter.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeyFilter::All => true,
            KeyFilter::Prefix(p) => key.starts_with(p),
            KeyFilter::Range { start, end } => {
                start.as_deref().is_none_or(|s| key >= s) && end.as_deref().is_none_or(|e| key < e)
            }
        }
    }
}

/// The change feed's shared state, one per open database.
#[derive(Debug, Default)]
pub(crate) struct FeedState {
    /// Every log file on disk, oldest first, with its first sequence number.
    pub logs: Mutex<LogIndex>,
    /// Live subscriptions and their positions.
    pub subs: Mutex<SubscriptionTable>,
    /// Log files numbered below this hold only flushed data (the manifest's `log_number`).
    pub flushed_log_number: AtomicU64,
    waiters: AtomicUsize,
    wake_lock: Mutex<()>,
    wake: Condvar,
}

impl FeedState {
    /// A feed over `logs` with `subs`, whose log files below `log_number` are flushed.
    pub fn new(logs: LogIndex, subs: SubscriptionTable, log_number: u64) -> Self {
        FeedState {
            logs: Mutex::new(logs),
            subs: Mutex::new(subs),
            flushed_log_number: AtomicU64::new(log_number),
            ..FeedState::default()
        }
    }

    /// Wakes waiting cursors after the visible sequence number moved (or the database closed).
    ///
    /// Cheap when nobody waits: one fence and one load. The fence pairs with the one in
    /// [`FeedState::wait_until`], so either the waiter sees the new visible sequence number or
    /// this sees the waiter.
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _guard = self.wake_lock.lock();
            self.wake.notify_all();
        }
    }

    /// Sleeps until `ready()` holds or `deadline` passes; returns `ready()`.
    pub fn wait_until(&self, deadline: Instant, ready: impl Fn() -> bool) -> bool {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let mut guard = self.wake_lock.lock();
        while !ready() && Instant::now() < deadline {
            self.wake.wait_until(&mut guard, deadline);
        }
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        ready()
    }
}

impl Inner {
    /// The newest sequence number readers may see.
    pub(crate) fn visible(&self) -> SeqNo {
        self.visible_seqno.load(Ordering::Acquire)
    }
}
