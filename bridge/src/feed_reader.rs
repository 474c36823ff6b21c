//! Reads the change feed on a thread of its own and hands the publisher bounded chunks of
//! changes, so the async publisher never blocks on the database and memory stays bounded
//! (`CHANNEL_CHUNKS` chunks of at most `CHUNK_OPS` operations, plus the one being published).

use std::thread::JoinHandle;
use std::time::Duration;

use alluvium::{Db, Op, SeqNo, Start};
use tokio::sync::mpsc;

use crate::wire;

/// Operations per chunk, at most.
pub const CHUNK_OPS: usize = 256;
/// Chunks waiting in the channel, at most.
pub const CHANNEL_CHUNKS: usize = 8;

/// One operation to publish.
#[derive(Debug, Clone)]
pub struct Change {
    /// Its sequence number.
    pub seqno: SeqNo,
    /// The operation.
    pub op: Op,
    /// True for the last published operation of its batch.
    pub batch_end: bool,
    /// Its batch's commit time, microseconds since the Unix epoch.
    pub commit_time_us: u64,
}

/// Consecutive changes; once all are published, the feed position is `through` (which may lie
/// past the last change: operations on reserved keys are not published).
#[derive(Debug)]
pub struct Chunk {
    /// The changes, in commit order.
    pub changes: Vec<Change>,
    /// The feed position after this chunk.
    pub through: SeqNo,
    /// The commit time of the batch `through` belongs to.
    pub commit_time_us: u64,
}

/// Starts a thread reading the feed from sequence number `next` (operations of the batch
/// holding `next` that come before it are left out). A read error, [`FeedTruncated`]
/// included, is the last item; dropping the receiver stops the thread.
///
/// [`FeedTruncated`]: alluvium::Error::FeedTruncated
pub fn spawn(
    db: Db,
    next: SeqNo,
) -> (
    JoinHandle<()>,
    mpsc::Receiver<Result<Chunk, alluvium::Error>>,
) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let handle = std::thread::spawn(move || {
        if let Err(e) = read(&db, next, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    (handle, rx)
}

type Sender = mpsc::Sender<Result<Chunk, alluvium::Error>>;

fn read(db: &Db, next: SeqNo, tx: &Sender) -> Result<(), alluvium::Error> {
    let mut cursor = db.changes(Start::SeqNo(next))?;
    while !tx.is_closed() {
        let Some(batch) = cursor.next_timeout(Duration::from_millis(100))? else {
            continue;
        };
        let time = batch.commit_time_us;
        let mut changes: Vec<Change> = batch
            .ops
            .into_iter()
            .filter(|(seqno, op)| *seqno >= next && !wire::is_reserved(op.key()))
            .map(|(seqno, op)| Change {
                seqno,
                op,
                batch_end: false,
                commit_time_us: time,
            })
            .collect();
        if let Some(last) = changes.last_mut() {
            last.batch_end = true;
        }
        if !send_batch(tx, changes, batch.last_seqno, time) {
            return Ok(());
        }
    }
    Ok(())
}

/// Sends one batch's changes as chunks; false when the receiver is gone.
fn send_batch(tx: &Sender, mut changes: Vec<Change>, last_seqno: SeqNo, time: u64) -> bool {
    loop {
        let rest = changes.split_off(changes.len().min(CHUNK_OPS));
        let through = match rest.is_empty() {
            true => last_seqno,
            false => changes.last().map_or(last_seqno, |c| c.seqno),
        };
        let chunk = Chunk {
            changes,
            through,
            commit_time_us: time,
        };
        if tx.blocking_send(Ok(chunk)).is_err() {
            return false;
        }
        if rest.is_empty() {
            return true;
        }
        changes = rest;
    }
}
