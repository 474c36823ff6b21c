//! The log file index: which log files exist and which sequence numbers each one holds.
//!
//! Records are contiguous across files, so the first sequence number of every file is enough:
//! file `i` holds `[first_i, first_{i+1} - 1]`, and the newest file holds `first` up to the
//! newest sequence number. A file without records has the first sequence number of the next
//! file (it holds an empty range). The index is built at open from the first record of each
//! file and extended at every memtable rotation, so a cursor finds the file holding a sequence
//! number without reading any other.

use std::path::Path;

use crate::commit_log::{LogFileReader, NextRecord, RecordWindow};
use crate::error::Result;
use crate::files;
use crate::key::SeqNo;

/// One log file of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogEntry {
    /// The file number (`NNNNNN.log`).
    pub number: u64,
    /// The first sequence number a record of this file carries.
    pub first_seqno: SeqNo,
}

/// Every log file on disk, oldest first.
///
/// # Invariants
/// Numbers and first sequence numbers both ascend (the latter not strictly: files without
/// records share the next file's). Files leave only from the front (retention), and join only
/// at the back (rotation).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogIndex {
    files: Vec<LogEntry>,
}

impl LogIndex {
    /// Builds the index of the log files in `dir` at open, after replay. `next_seqno` is the
    /// first sequence number of the log file open is about to create (numbered `new_log`).
    pub fn build(dir: &Path, new_log: u64, next_seqno: SeqNo) -> Result<LogIndex> {
        let mut numbers = files::log_numbers(dir)?;
        numbers.retain(|&n| n != new_log);
        let mut files = Vec::with_capacity(numbers.len() + 1);
        let mut next = next_seqno;
        for &number in numbers.iter().rev() {
            next = first_seqno_of(dir, number)?.unwrap_or(next).min(next);
            files.push(LogEntry {
                number,
                first_seqno: next,
            });
        }
        files.reverse();
        files.push(LogEntry {
            number: new_log,
            first_seqno: next_seqno,
        });
        Ok(LogIndex { files })
    }

    /// Adds the log file rotation just created.
    pub fn push(&mut self, number: u64, first_seqno: SeqNo) {
        self.files.push(LogEntry {
            number,
            first_seqno,
        });
    }

    /// Every file, oldest first.
    pub fn files(&self) -> &[LogEntry] {
        &self.files
    }

    /// The oldest sequence number still readable.
    pub fn oldest_seqno(&self) -> SeqNo {
        self.files.first().map_or(1, |f| f.first_seqno)
    }

    /// The file holding `seqno`: the newest file whose first sequence number is at most it.
    pub fn locate(&self, seqno: SeqNo) -> Option<LogEntry> {
        let i = self.files.partition_point(|f| f.first_seqno <= seqno);
        i.checked_sub(1).and_then(|i| self.files.get(i)).copied()
    }

    /// The file after `number`, if any.
    pub fn after(&self, number: u64) -> Option<LogEntry> {
        let i = self.files.partition_point(|f| f.number <= number);
        self.files.get(i).copied()
    }

    /// The last sequence number of file `i` (not meaningful for the newest file).
    pub fn last_seqno_of(&self, i: usize) -> Option<SeqNo> {
        let next = self.files.get(i + 1)?;
        Some(next.first_seqno - 1)
    }

    /// Removes the oldest `n` files from the index and returns them.
    pub fn remove_oldest(&mut self, n: usize) -> Vec<LogEntry> {
        self.files.drain(..n.min(self.files.len())).collect()
    }
}

/// The first sequence number of the first record of log file `number`; `None` when it has no
/// record.
fn first_seqno_of(dir: &Path, number: u64) -> Result<Option<SeqNo>> {
    let Some(mut reader) = LogFileReader::open(&files::log_path(dir, number))? else {
        return Ok(None);
    };
    match reader.next_record(RecordWindow::ALL)? {
        NextRecord::Record(item) => Ok(Some(item.record.first_seqno)),
        NextRecord::Pending { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_picks_the_newest_file_starting_at_or_before_the_sequence_number() {
        let mut index = LogIndex::default();
        index.push(3, 1);
        index.push(5, 11);
        index.push(6, 11); // no records of its own before 7 took over
        index.push(7, 11);
        index.push(9, 40);
        assert_eq!(index.locate(0), None);
        assert_eq!(index.locate(1).map(|f| f.number), Some(3));
        assert_eq!(index.locate(10).map(|f| f.number), Some(3));
        assert_eq!(index.locate(11).map(|f| f.number), Some(7));
        assert_eq!(index.locate(1000).map(|f| f.number), Some(9));
        assert_eq!(index.after(5).map(|f| f.number), Some(6));
        assert_eq!(index.last_seqno_of(0), Some(10));
        assert_eq!(index.remove_oldest(2).len(), 2);
        assert_eq!(index.oldest_seqno(), 11);
    }
}
