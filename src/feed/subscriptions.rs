//! Durable subscriptions: named cursors whose position survives crashes and holds back the
//! deletion of log files.
//!
//! A position changes in two ways, both through the crash-safe paths that data takes:
//! - **create and delete** write a version edit to the manifest before they return;
//! - **acknowledgements** ride in a commit log record (`WriteBatch::ack`), atomically with the
//!   batch that carries them. Recovery replays them with the rest of the log, and every flush
//!   writes the positions acknowledged by the flushed batches into its version edit, so the
//!   log files holding those acknowledgements can go.
//!
//! `FORMAT.md`, "Subscriptions", documents the bytes; `ARCHITECTURE.md`, "Change feed", why.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::cursor::resolve_start;
use super::{ChangeBatch, Cursor, KeyFilter, Start};
use crate::batch::WriteBatch;
use crate::commit_log::RecordAck;
use crate::db::{Db, Inner, Snapshot};
use crate::error::{Error, Result};
use crate::key::SeqNo;
use crate::manifest::{SubscriptionChange, VersionEdit};
use crate::options::WriteOptions;

/// The longest subscription name, in bytes.
pub const SUBSCRIPTION_NAME_MAX: usize = 255;

/// One subscription's state in memory.
#[derive(Debug, Clone)]
struct SubState {
    name: String,
    /// The newest acknowledged position (committed, maybe not yet flushed).
    position: SeqNo,
    /// The position the manifest holds.
    flushed: SeqNo,
    /// Acknowledgements not yet in the manifest: (the sequence number they were committed
    /// after, position), oldest first.
    pending: VecDeque<(SeqNo, SeqNo)>,
}

/// Live subscriptions by id.
///
/// # Invariants
/// Ids are never reused (they come from the file-number counter), so an acknowledgement of a
/// deleted subscription can never move a newer one with the same name.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubscriptionTable {
    subs: BTreeMap<u64, SubState>,
}

impl SubscriptionTable {
    /// The table the manifest describes.
    pub fn from_manifest(subs: &BTreeMap<u64, (String, SeqNo)>) -> Self {
        let subs = subs
            .iter()
            .map(|(&id, (name, position))| (id, SubState::new(name.clone(), *position)))
            .collect();
        SubscriptionTable { subs }
    }

    /// The id of the subscription named `name`.
    pub fn id_of(&self, name: &str) -> Option<u64> {
        self.subs
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(&id, _)| id)
    }

    /// The position of subscription `id`.
    pub fn position(&self, id: u64) -> Option<SeqNo> {
        self.subs.get(&id).map(|s| s.position)
    }

    fn insert(&mut self, id: u64, name: String, position: SeqNo) {
        self.subs.insert(id, SubState::new(name, position));
    }

    fn remove(&mut self, id: u64) {
        self.subs.remove(&id);
    }

    /// Applies the acknowledgements of a record committed after sequence number `after`.
    /// Acknowledgements of unknown (deleted) subscriptions are ignored.
    pub fn apply_acks(&mut self, after: SeqNo, acks: &[RecordAck]) {
        for ack in acks {
            if let Some(s) = self.subs.get_mut(&ack.subscription_id) {
                s.position = ack.position;
                s.pending.push_back((after, ack.position));
            }
        }
    }

    /// The manifest changes for the acknowledgements of batches up to `flushed_seqno`, which a
    /// flush is about to make durable in a segment; marks them flushed.
    pub fn take_flushed(&mut self, flushed_seqno: SeqNo) -> Vec<SubscriptionChange> {
        let mut changes = Vec::new();
        for (&id, s) in &mut self.subs {
            let before = s.flushed;
            while let Some(&(_, position)) = s.pending.front().filter(|p| p.0 <= flushed_seqno) {
                s.flushed = position;
                s.pending.pop_front();
            }
            if s.flushed != before {
                changes.push(SubscriptionChange::Set {
                    id,
                    name: s.name.clone(),
                    position: s.flushed,
                });
            }
        }
        changes
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Every subscription's current position.
    pub fn positions(&self) -> impl Iterator<Item = SeqNo> + '_ {
        self.subs.values().map(|s| s.position)
    }

    /// (id, name, position) of every subscription, by name.
    pub fn list(&self) -> Vec<(u64, String, SeqNo)> {
        let mut out: Vec<_> = self
            .subs
            .iter()
            .map(|(&id, s)| (id, s.name.clone(), s.position))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }
}

impl SubState {
    fn new(name: String, position: SeqNo) -> Self {
        SubState {
            name,
            position,
            flushed: position,
            pending: VecDeque::new(),
        }
    }
}

/// Turns the named acknowledgements of `batch` into record acknowledgements (by id).
///
/// # Errors
/// [`Error::InvalidArgument`] for an unknown subscription or a position past the newest
/// visible sequence number.
pub(crate) fn resolve_acks(inner: &Inner, batch: &WriteBatch) -> Result<Vec<RecordAck>> {
    if batch.acks().is_empty() {
        return Ok(Vec::new());
    }
    let visible = inner.visible();
    let subs = inner.feed.subs.lock();
    let mut out = Vec::with_capacity(batch.acks().len());
    for (name, position) in batch.acks() {
        let id = subs
            .id_of(name)
            .ok_or_else(|| invalid(format!("no subscription named {name:?}")))?;
        if *position > visible {
            return Err(invalid(format!(
                "acknowledged position {position} is past the newest sequence number {visible}"
            )));
        }
        out.push(RecordAck {
            subscription_id: id,
            position: *position,
        });
    }
    Ok(out)
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > SUBSCRIPTION_NAME_MAX {
        return Err(invalid(format!(
            "a subscription name is 1 to {SUBSCRIPTION_NAME_MAX} bytes; {name:?} is {}",
            name.len()
        )));
    }
    Ok(())
}

/// What [`Db::subscriptions`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// The subscription's name.
    pub name: String,
    /// The last sequence number it has processed (acknowledged).
    pub position: SeqNo,
}

/// A named, durable cursor.
///
/// Reading moves only the in-memory cursor; the durable position moves when the consumer
/// acknowledges: [`Subscription::ack`], or [`WriteBatch::ack`] in the batch that stores what
/// the consumer derived, for exactly-once. After a crash, [`Db::open_subscription`] resumes
/// at the acknowledged position + 1.
///
/// While it is not cut off, a subscription keeps every log file holding sequence numbers after
/// its position, up to the retention bound (`Options::feed_retention_bytes_max`,
/// `Options::feed_retention_age_max`). Past the bound it is cut off: its next read fails with
/// [`Error::FeedTruncated`] and [`Stats`](crate::Stats) says so.
#[derive(Debug)]
pub struct Subscription {
    db: Db,
    name: String,
    cursor: Cursor,
}

impl Db {
    /// Creates subscription `name`, positioned just before `start`, durably.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it exists or the name is empty or longer than 255 bytes;
    /// [`Error::FeedTruncated`] if `start` is no longer retained.
    pub fn create_subscription(&self, name: &str, start: Start) -> Result<Subscription> {
        let inner = self.inner();
        self.create_with(name, |_| Ok(resolve_start(inner, start)? - 1))?;
        self.open_subscription(name)
    }

    /// Creates subscription `name` at a consistent snapshot: the subscription's position is
    /// the snapshot's sequence number S, so a view built from the snapshot and then from the
    /// subscription (S + 1 on) sees every change exactly once, whatever writers do meanwhile.
    pub fn create_subscription_at_snapshot(&self, name: &str) -> Result<(Snapshot, Subscription)> {
        let mut snapshot = None;
        self.create_with(name, |db| {
            let s = db.snapshot();
            let seqno = s.seqno();
            snapshot = Some(s);
            Ok(seqno)
        })?;
        let snapshot = snapshot.ok_or_else(|| Error::Closed("no snapshot".into()))?;
        Ok((snapshot, self.open_subscription(name)?))
    }

    /// Registers `name` at the position `position_of` picks, then makes it durable.
    ///
    /// The subscription joins the table before the position is picked is released, under the
    /// version set's lock, so no retention pass or flush edit can run between the two.
    fn create_with(
        &self,
        name: &str,
        position_of: impl FnOnce(&Db) -> Result<SeqNo>,
    ) -> Result<()> {
        check_name(name)?;
        let inner = self.inner();
        inner.check_open()?;
        let mut versions = inner.versions.lock();
        let mut subs = inner.feed.subs.lock();
        if subs.id_of(name).is_some() {
            return Err(invalid(format!("subscription {name:?} exists")));
        }
        let position = position_of(self)?;
        let id = versions.new_file_number();
        subs.insert(id, name.to_string(), position);
        drop(subs);
        // The subscription may start in a flushed log file no flush synced (none kept logs
        // for the feed until now). From here on every flush syncs its logs; a flush that
        // decided not to before this insert has its files still unsynced or already deleted,
        // and it waits on `versions` to name them flushed: make them durable now.
        let change = SubscriptionChange::Set {
            id,
            name: name.to_string(),
            position,
        };
        let result = inner
            .unsynced_logs
            .sync_all()
            .and_then(|()| log_subscription_change(&mut versions, change));
        if result.is_err() {
            inner.feed.subs.lock().remove(id);
        }
        result
    }

    /// Opens subscription `name`: a cursor at its position + 1.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it does not exist. [`Error::FeedTruncated`] comes from the
    /// first read if the subscription was cut off.
    pub fn open_subscription(&self, name: &str) -> Result<Subscription> {
        let position = {
            let subs = self.inner().feed.subs.lock();
            subs.id_of(name).and_then(|id| subs.position(id))
        };
        let position =
            position.ok_or_else(|| invalid(format!("no subscription named {name:?}")))?;
        Ok(Subscription {
            db: self.clone(),
            name: name.to_string(),
            cursor: Cursor::at(self.inner().clone(), position + 1),
        })
    }

    /// Deletes subscription `name` durably; the log files it held back may go.
    pub fn delete_subscription(&self, name: &str) -> Result<()> {
        let inner = self.inner();
        inner.check_open()?;
        {
            let mut versions = inner.versions.lock();
            let id = inner.feed.subs.lock().id_of(name);
            let id = id.ok_or_else(|| invalid(format!("no subscription named {name:?}")))?;
            log_subscription_change(&mut versions, SubscriptionChange::Delete { id })?;
            inner.feed.subs.lock().remove(id);
        }
        super::apply_retention(inner)
    }

    /// Every subscription with its position, by name.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let subs = self.inner().feed.subs.lock().list();
        subs.into_iter()
            .map(|(_, name, position)| SubscriptionInfo { name, position })
            .collect()
    }
}

fn log_subscription_change(
    versions: &mut crate::manifest::VersionSet,
    change: SubscriptionChange,
) -> Result<()> {
    let edit = VersionEdit {
        subscriptions: vec![change],
        ..VersionEdit::default()
    };
    versions.log_and_apply(edit, &[]).map(drop)
}

impl Subscription {
    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restricts the operations handed out (see [`KeyFilter`]); skipped batches still move
    /// [`Subscription::cursor_position`].
    #[must_use]
    pub fn with_filter(mut self, filter: KeyFilter) -> Subscription {
        self.cursor = self.cursor.with_filter(filter);
        self
    }

    /// The next batch after the cursor, if one is visible now.
    pub fn try_next(&mut self) -> Result<Option<ChangeBatch>> {
        self.cursor.try_next()
    }

    /// The next batch, waiting up to `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ChangeBatch>> {
        self.cursor.next_timeout(timeout)
    }

    /// The underlying cursor, e.g. for [`Cursor::blocking`].
    pub fn cursor(&mut self) -> &mut Cursor {
        &mut self.cursor
    }

    /// The last sequence number the cursor has moved past (not yet acknowledged, maybe).
    pub fn cursor_position(&self) -> SeqNo {
        self.cursor.position()
    }

    /// The durable, acknowledged position.
    pub fn position(&self) -> Result<SeqNo> {
        let inner = self.db.inner();
        let subs = inner.feed.subs.lock();
        subs.id_of(&self.name)
            .and_then(|id| subs.position(id))
            .ok_or_else(|| invalid(format!("subscription {:?} was deleted", self.name)))
    }

    /// Acknowledges everything up to and including `position` in a batch of its own, with
    /// `opts` (pass [`WriteOptions::synced`] to survive power failure). To store derived data
    /// and the position atomically, use [`WriteBatch::ack`] instead.
    pub fn ack(&self, position: SeqNo, opts: &WriteOptions) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.ack(self.name.clone(), position);
        self.db.write(batch, opts).map(drop)
    }

    /// The database this subscription reads.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// One subscription in [`Stats`](crate::Stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// The subscription's name.
    pub name: String,
    /// Its acknowledged position.
    pub position: SeqNo,
    /// Sequence numbers (operations) committed after the position: how far behind it is.
    pub lag_seqnos: u64,
    /// Bytes of the log files holding sequence numbers after the position (an upper bound of
    /// what is left to read: the file holding position + 1 counts whole).
    pub lag_bytes: u64,
    /// True when retention deleted log files it had not read: its next read is
    /// [`Error::FeedTruncated`].
    pub cut_off: bool,
}

/// Position, lag and cut-off state of every subscription.
pub(crate) fn subscription_stats(inner: &Inner) -> Vec<SubscriptionStats> {
    let subs = inner.feed.subs.lock().list();
    let visible = inner.visible();
    let logs = inner.feed.logs.lock().clone();
    let size =
        |n: u64| std::fs::metadata(crate::files::log_path(&inner.dir, n)).map_or(0, |m| m.len());
    subs.into_iter()
        .map(|(_, name, position)| {
            let from = logs.locate(position + 1).map_or(0, |f| f.number);
            let lag_bytes = logs
                .files()
                .iter()
                .filter(|f| f.number >= from)
                .map(|f| size(f.number))
                .sum();
            SubscriptionStats {
                name,
                position,
                lag_seqnos: visible.saturating_sub(position),
                lag_bytes: if position >= visible { 0 } else { lag_bytes },
                cut_off: position + 1 < logs.oldest_seqno(),
            }
        })
        .collect()
}
