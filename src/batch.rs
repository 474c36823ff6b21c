//! `WriteBatch`: the unit of atomicity and of the change feed.
//!
//! A batch of n operations takes n contiguous sequence numbers, is written to the commit log as
//! one record, and after any crash is visible either whole or not at all. A batch may also carry
//! subscription acknowledgements ([`WriteBatch::ack`]): they take no sequence number and commit
//! atomically with the operations, which is what gives exactly-once to views kept inside the
//! database.

use crate::error::{Error, Result};
use crate::key::{SeqNo, ValueKind};
use crate::options::{BATCH_OPS_MAX, BATCH_SIZE_MAX, KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The user key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Delete `key`.
    Delete {
        /// The user key.
        key: Vec<u8>,
    },
}

impl Op {
    /// The key this operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }

    /// The value for a put; empty for a delete.
    pub fn value(&self) -> &[u8] {
        match self {
            Op::Put { value, .. } => value,
            Op::Delete { .. } => &[],
        }
    }

    /// Put or delete.
    pub fn kind(&self) -> ValueKind {
        match self {
            Op::Put { .. } => ValueKind::Put,
            Op::Delete { .. } => ValueKind::Delete,
        }
    }
}

/// An ordered group of puts and deletes applied atomically.
///
/// ```
/// # fn main() -> alluvium::Result<()> {
/// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
/// use alluvium::{Db, Options, WriteBatch, WriteOptions};
/// let db = Db::open(dir.path(), Options::default())?;
/// let mut batch = WriteBatch::new();
/// batch.put(b"a", b"1").put(b"b", b"2").delete(b"c");
/// let first = db.write(batch, &WriteOptions::default())?;
/// assert_eq!(db.latest_seqno(), first + 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<Op>,
    size_bytes: usize,
    acks: Vec<(String, SeqNo)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        self.size_bytes += key.len() + value.len();
        self.ops.push(Op::Put { key, value });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref().to_vec();
        self.size_bytes += key.len();
        self.ops.push(Op::Delete { key });
        self
    }

    /// Records that subscription `name` has processed the change feed up to and including
    /// `position`, atomically with this batch's operations.
    ///
    /// A consumer that writes its derived data into the database and acknowledges in the same
    /// batch can never apply a change twice or lose one: after a crash either both the data
    /// and the new position are there, or neither is. An acknowledgement takes no sequence
    /// number; a batch of acknowledgements only is allowed. [`Db::write`](crate::Db::write)
    /// fails with [`Error::InvalidArgument`] for an unknown subscription or a position past
    /// the newest sequence number. A later acknowledgement for the same name in one batch wins.
    pub fn ack(&mut self, name: impl Into<String>, position: SeqNo) -> &mut Self {
        self.acks.push((name.into(), position));
        self
    }

    /// The acknowledgements, in the order they were added.
    pub fn acks(&self) -> &[(String, SeqNo)] {
        &self.acks
    }

    /// Number of operations (and of sequence numbers the batch takes).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation and no acknowledgement: writing it does nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.acks.is_empty()
    }

    /// Sum of key and value lengths.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The operations in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.acks.clear();
        self.size_bytes = 0;
    }

    /// Moves the operations out, leaving the acknowledgements (the change feed hands out
    /// operations without copying them).
    pub(crate) fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    pub(crate) fn from_ops(ops: Vec<Op>) -> Self {
        let size_bytes = ops.iter().map(|o| o.key().len() + o.value().len()).sum();
        WriteBatch {
            ops,
            size_bytes,
            acks: Vec::new(),
        }
    }

    /// Checks the documented limits: keys up to 64 KiB, values up to 256 MiB, a batch up to
    /// 512 MiB and 2^24 operations.
    pub fn validate(&self) -> Result<()> {
        if self.ops.len() > BATCH_OPS_MAX {
            return Err(invalid(format!(
                "batch has {} operations; the limit is {BATCH_OPS_MAX}",
                self.ops.len()
            )));
        }
        if self.size_bytes > BATCH_SIZE_MAX {
            return Err(invalid(format!(
                "batch is {} bytes; the limit is {BATCH_SIZE_MAX}",
                self.size_bytes
            )));
        }
        self.ops.iter().try_for_each(validate_op)
    }
}

fn validate_op(op: &Op) -> Result<()> {
    if op.key().len() > KEY_SIZE_MAX {
        return Err(invalid(format!(
            "key is {} bytes; the limit is {KEY_SIZE_MAX}",
            op.key().len()
        )));
    }
    if op.value().len() > VALUE_SIZE_MAX {
        return Err(invalid(format!(
            "value is {} bytes; the limit is {VALUE_SIZE_MAX}",
            op.value().len()
        )));
    }
    Ok(())
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}
