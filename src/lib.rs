//! alluvium: an embedded LSM-tree key-value database whose commit log is a change feed.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]

pub mod coding;
pub mod error;
pub mod key;
pub mod options;
pub mod segment;

pub use error::{Error, Result};
pub use key::{SeqNo, ValueKind};
pub use options::{Compression, Options, ReadOptions, RecoveryMode, WriteOptions};
