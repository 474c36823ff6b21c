//! The one error type of the crate.
//!
//! Corruption is its own variant and always names the file and the byte offset where the
//! problem was found, so an operator can go and look at it with the `alluvium` tool.

use std::path::{Path, PathBuf};

use crate::key::SeqNo;

/// Every fallible operation in alluvium returns this error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it happened on when there is one.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file's contents are not what alluvium wrote: a checksum mismatch, an impossible length,
    /// a missing file the manifest names, a foreign file.
    #[error("corruption in {} at offset {offset}: {detail}", path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset in that file where the problem was detected.
        offset: u64,
        /// What is wrong.
        detail: String,
    },

    /// The caller passed something alluvium does not accept: an oversize key or value, an
    /// invalid option, a missing directory with `create_if_missing(false)`.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Another `Db` (in this process or another one) holds the directory's `LOCK` file.
    #[error("database directory {} is locked by another open Db", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },

    /// The database was closed, or a background job failed and stopped accepting writes.
    #[error("database is closed: {0}")]
    Closed(String),

    /// A change-feed position that the retention policy has already discarded.
    #[error("change feed position {requested} is no longer retained; oldest available is {oldest_available}")]
    FeedTruncated {
        /// The sequence number asked for.
        requested: SeqNo,
        /// The oldest sequence number still readable.
        oldest_available: SeqNo,
    },
}

/// Shorthand for `std::result::Result<T, alluvium::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Corruption`].
    pub fn corruption(path: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// True for an I/O error saying the disk (or a quota) is full: the operation failed
    /// cleanly and may succeed once space is freed.
    pub fn is_no_space(&self) -> bool {
        use std::io::ErrorKind;
        matches!(self, Error::Io { source, .. }
            if matches!(source.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Converts an I/O error into [`Error::Io`] naming `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
