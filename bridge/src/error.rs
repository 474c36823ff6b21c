//! The bridge's error type.

/// What a bridge can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The database failed (including [`alluvium::Error::FeedTruncated`], see
    /// [`BridgeError::CutOff`] for the publisher's own wording).
    #[error(transparent)]
    Db(#[from] alluvium::Error),

    /// The publisher's subscription was cut off by the feed's retention bound: changes after
    /// its position are gone and can never be published.
    #[error(
        "subscription {subscription:?} was cut off by the feed's retention bound: change \
         {requested} is no longer retained (oldest available: {oldest_available}); changes \
         {requested}..{oldest_available} were never published. Raise \
         feed_retention_bytes_max/feed_retention_age_max, rebuild the stream from a snapshot, \
         and recreate the subscription"
    )]
    CutOff {
        /// The publisher's subscription.
        subscription: String,
        /// The first sequence number not yet published.
        requested: u64,
        /// The oldest sequence number the feed still holds.
        oldest_available: u64,
    },

    /// The broker failed or is unreachable; the bridge retries these with backoff.
    #[error("{0}")]
    Broker(String),

    /// The stream or topic holds something this bridge did not write, or for another database.
    #[error("{0}")]
    Foreign(String),

    /// A message that cannot be turned into a change, or a change that cannot be a message.
    #[error("{0}")]
    Message(String),

    /// Bad arguments.
    #[error("{0}")]
    Config(String),
}

impl BridgeError {
    /// True for errors the bridge retries (the broker is down or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, BridgeError::Broker(_))
    }
}

/// Shorthand for results with [`BridgeError`].
pub type Result<T, E = BridgeError> = std::result::Result<T, E>;

/// A [`BridgeError::Broker`] saying what was being done.
pub(crate) fn broker(what: &str, e: impl std::fmt::Display) -> BridgeError {
    BridgeError::Broker(format!("{what}: {e}"))
}
