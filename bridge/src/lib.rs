//! # alluvium-bridge
//!
//! Bridges between alluvium's change feed and the message brokers people already run, in
//! both directions, exactly once:
//!
//! - **publish** ([`nats::publish`]): a durable subscription reads the feed and every change
//!   becomes one JetStream message, in commit order, keyed by its user key;
//! - **ingest** ([`nats::ingest`]): a database whose writes come from a JetStream stream, the
//!   stream sequence stored in the same batch as the data;
//! - the same for Kafka (`kafka`, cargo feature `kafka`): an idempotent producer partitioning by
//!   key, the sequence number in a record header, partition offsets stored with the data.
//!
//! The library `alluvium` stays free of any async runtime; this crate brings tokio and the
//! broker clients. The `alluvium` tool's `feed publish` and `feed ingest` commands are
//! [`cli`]. `ARCHITECTURE.md`, "Bridges", explains the design; `FORMAT.md`, "Wire format of
//! the bridges", the messages.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
mod error;
pub mod feed_reader;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod nats;
pub mod progress;
pub mod wire;

pub use error::{BridgeError, Result};
pub use progress::{Progress, Report};
