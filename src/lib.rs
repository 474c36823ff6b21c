//! # alluvium
//!
//! An embedded LSM-tree key-value database whose commit log is a first-class change feed.
//!
//! Every write is a [`WriteBatch`] that takes contiguous sequence numbers, is appended to the
//! commit log (many concurrent writers share one append and one `fdatasync`), then inserted
//! into a skiplist memtable. Full memtables are flushed to immutable sorted *segment* files.
//! Reads merge the memtables and segments as of one sequence number.
//!
//! ## A tour
//! - Write path: [`Db::write`] -> `write` (group commit) -> [`commit_log`] -> [`memtable`]
//!   -> [`flush`] -> [`segment`].
//! - Manifest: [`manifest`] records which segments are live; `CURRENT` names it.
//! - Read path: [`Db::get`], [`Db::range`], [`Db::prefix`], [`Db::snapshot`] -> [`read`].
//! - Recovery: [`recovery`] replays the commit log after the last flush.
//!
//! ## Example
//! ```
//! # fn main() -> alluvium::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
//! use alluvium::{Db, Options, WriteBatch, WriteOptions};
//!
//! let db = Db::open(dir.path(), Options::default())?;
//! db.put(b"user:1", b"ada")?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"user:2", b"grace").delete(b"user:1");
//! db.write(batch, &WriteOptions { sync: true })?;
//!
//! let users: Vec<_> = db.prefix(b"user:").collect::<alluvium::Result<_>>()?;
//! assert_eq!(users, vec![(b"user:2".to_vec(), b"grace".to_vec())]);
//! db.close()?;
//!
//! let db = Db::open(dir.path(), Options::default())?; // recovers from the commit log
//! assert_eq!(db.get(b"user:2")?, Some(b"grace".to_vec()));
//! # Ok(()) }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod batch;
pub mod coding;
pub mod commit_log;
pub mod compaction;
pub mod db;
pub mod error;
pub mod feed;
pub mod files;
pub mod flush;
pub mod frame;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
mod group_commit;
pub mod identity;
pub mod inspect;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod options;
pub mod read;
pub mod recovery;
pub mod segment;
pub mod stats;
mod sync;
mod write;

pub use batch::{Op, WriteBatch};
pub use db::{Db, Snapshot};
pub use error::{Error, Result};
pub use feed::{
    ChangeBatch, Cursor, Follower, KeyFilter, Start, Subscription, SubscriptionInfo,
    SubscriptionStats,
};
pub use key::{SeqNo, ValueKind};
pub use options::{
    CompactionFailPoint, CompactionOptions, Compression, Options, RecoveryMode, WriteOptions,
};
pub use read::DbIter;
pub use recovery::{DroppedTail, RecoveryReport};
pub use segment::BlockCache;
pub use stats::{LevelStats, Stats};
