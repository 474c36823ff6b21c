//! Commit log files as records.

use std::path::{Path, PathBuf};

use crate::commit_log::{LogFile, LogItem, TailState, LOG_HEADER_LEN};
use crate::error::{Error, Result};
use crate::files::{self, FileKind};

/// Everything readable in one commit log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDump {
    /// The file.
    pub path: PathBuf,
    /// Its length.
    pub len_bytes: u64,
    /// Every valid record before the first damage, in order, with the offset of its frame.
    pub items: Vec<LogItem>,
    /// How the file ends: cleanly, with an incomplete record (a torn write, or for a live file
    /// an append in progress), or at a damaged record.
    pub tail: TailState,
}

/// The commit log files of a database directory, oldest first.
pub fn log_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let logs = files::list(dir)?.into_iter().filter_map(|kind| match kind {
        FileKind::Log(n) => Some(files::log_path(dir, n)),
        _ => None,
    });
    Ok(logs.collect())
}

/// Reads one commit log file.
///
/// A record that fails to decode although its checksums match ends the dump like a damaged
/// frame does: it becomes [`TailState::Corrupt`] at its offset, after the records before it.
/// A bad file header (not a commit log, a newer format) is [`Error::Corruption`].
pub fn read_log(path: &Path) -> Result<LogDump> {
    let file = LogFile::read(path)?;
    let mut items = Vec::new();
    let tail = match file.scan(|item| {
        items.push(item);
        Ok(())
    }) {
        Ok(tail) => tail,
        Err(Error::Corruption {
            path: p,
            offset,
            detail,
        }) if p == path && offset >= LOG_HEADER_LEN as u64 => TailState::Corrupt {
            offset,
            detail,
            at_tail: false,
        },
        Err(e) => return Err(e),
    };
    Ok(LogDump {
        path: path.to_path_buf(),
        len_bytes: file.len_bytes(),
        items,
        tail,
    })
}
