//! `Follower`: reading the change feed of a live database from another process.
//!
//! A follower never takes the database's `LOCK` and never writes. It lists the log files,
//! reads them in number order and treats an unfinished frame at the end of the newest file as
//! "not yet": the writer is still appending it. It notices rotation when a newer log file
//! appears (and re-reads the old one once, since the last append may have landed between its
//! read and the listing). It polls the disk with a backoff, which is acceptable across
//! processes where the commit path cannot wake it.
//!
//! # What it sees
//! A follower hands out every record that is complete in a log file, which can be slightly
//! before the writing process publishes it to its own readers, and, for unsynced writes, before
//! it is durable. If the writer's host loses power, unsynced records a follower has seen can
//! be lost (`WriteOptions::sync` controls that), and so can records dropped by point-in-time
//! recovery.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::cursor::to_change_batch;
use super::{ChangeBatch, KeyFilter, Start};
use crate::commit_log::{LogFileReader, LogRecord, NextRecord, RecordWindow};
use crate::error::{Error, Result};
use crate::files;
use crate::key::SeqNo;

/// The longest a follower sleeps between two looks at the disk.
const POLL_MAX: Duration = Duration::from_millis(5);

/// Reads the commit log of a database that another process has open (see the module docs).
///
/// ```no_run
/// # fn main() -> alluvium::Result<()> {
/// use alluvium::{Follower, Start};
/// use std::time::Duration;
/// let mut follower = Follower::open("/var/lib/app/db", Start::Beginning)?;
/// while let Some(batch) = follower.next_timeout(Duration::from_secs(1))? {
///     println!("{} ops at {}", batch.ops.len(), batch.first_seqno);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    /// The next sequence number to hand out; `None` until the first record fixes it.
    next_seqno: Option<SeqNo>,
    reader: Option<(u64, LogFileReader)>,
    /// Records committed before this time (microseconds) are skipped ([`Start::Time`]).
    skip_before_us: Option<u64>,
    filter: KeyFilter,
}

impl Follower {
    /// Starts following the database in `dir` from `start`.
    ///
    /// # Errors
    /// [`Error::FeedTruncated`] for a [`Start::SeqNo`] older than the oldest log file.
    pub fn open(dir: impl AsRef<Path>, start: Start) -> Result<Follower> {
        let mut f = Follower {
            dir: dir.as_ref().to_path_buf(),
            next_seqno: None,
            reader: None,
            skip_before_us: None,
            filter: KeyFilter::All,
        };
        match start {
            Start::Beginning => f.open_nth(0)?,
            Start::SeqNo(n) => f.seek_seqno(n)?,
            Start::Now => f.skip_to_end()?,
            Start::Time(t) => {
                let us = t
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64);
                f.seek_time(us)?;
            }
        }
        Ok(f)
    }

    /// Hands out only operations that pass `filter` (see [`KeyFilter`]).
    #[must_use]
    pub fn with_filter(mut self, filter: KeyFilter) -> Follower {
        self.filter = filter;
        self
    }

    /// The last sequence number handed out or skipped; `None` before the first record.
    pub fn position(&self) -> Option<SeqNo> {
        self.next_seqno.map(|n| n - 1)
    }

    /// The next batch if one is complete on disk now.
    ///
    /// # Errors
    /// [`Error::FeedTruncated`] when a log file it needs was deleted, [`Error::Corruption`]
    /// for damage.
    pub fn try_next(&mut self) -> Result<Option<ChangeBatch>> {
        while let Some(record) = self.next_record()? {
            if self
                .skip_before_us
                .is_some_and(|t| record.commit_time_us < t)
            {
                continue;
            }
            self.skip_before_us = None;
            if let Some(batch) = to_change_batch(record, &self.filter) {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// The next batch, polling the disk for up to `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ChangeBatch>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(batch) = self.try_next()? {
                return Ok(Some(batch));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    fn next_record(&mut self) -> Result<Option<LogRecord>> {
        loop {
            if self.reader.is_none() && !self.reopen()? {
                return Ok(None);
            }
            if let Some(record) = self.read_current()? {
                return self.accept(record).map(Some);
            }
            let current = self.reader.as_ref().map_or(0, |(n, _)| *n);
            let Some(newer) = files::log_numbers(&self.dir)?
                .into_iter()
                .find(|&n| n > current)
            else {
                return Ok(None); // the newest file ends here: not yet
            };
            // The last append to the current file may have landed after our read and before
            // the listing showed the newer file: read it once more before leaving it.
            if let Some(record) = self.read_current()? {
                return self.accept(record).map(Some);
            }
            self.open_number(newer)?;
        }
    }

    fn read_current(&mut self) -> Result<Option<LogRecord>> {
        let window = RecordWindow {
            min_seqno: self.next_seqno.unwrap_or(0),
            max_first_seqno: SeqNo::MAX,
        };
        let Some((_, reader)) = self.reader.as_mut() else {
            return Ok(None);
        };
        match reader.next_record(window)? {
            NextRecord::Record(item) => Ok(Some(item.record)),
            NextRecord::Pending { .. } => Ok(None),
        }
    }

    /// Checks `record` continues the feed without a gap and moves the position past it.
    fn accept(&mut self, record: LogRecord) -> Result<LogRecord> {
        if let Some(next) = self.next_seqno.filter(|&n| record.first_seqno > n) {
            return Err(Error::FeedTruncated {
                requested: next,
                oldest_available: record.first_seqno,
            });
        }
        self.next_seqno = Some(record.last_seqno() + 1);
        Ok(record)
    }

    /// Opens the file holding the position again (after a deletion); false if none exists.
    fn reopen(&mut self) -> Result<bool> {
        match self.next_seqno {
            Some(n) => self.seek_seqno(n)?,
            None => self.open_nth(0)?,
        }
        Ok(self.reader.is_some())
    }

    fn open_number(&mut self, number: u64) -> Result<()> {
        let path = files::log_path(&self.dir, number);
        self.reader = LogFileReader::open(&path)?.map(|r| (number, r));
        if self.reader.is_none() && self.next_seqno.is_some() {
            // Deleted between the listing and the open: find the position again.
            self.reopen()?;
        }
        Ok(())
    }

    fn open_nth(&mut self, i: usize) -> Result<()> {
        match files::log_numbers(&self.dir)?.get(i) {
            Some(&n) => self.open_number(n),
            None => Ok(()),
        }
    }

    /// Positions the follower at the file holding `seqno`.
    fn seek_seqno(&mut self, seqno: SeqNo) -> Result<()> {
        self.next_seqno = Some(seqno);
        let firsts = first_seqnos(&self.dir)?;
        let oldest = firsts.iter().find_map(|(_, f)| *f);
        if let Some(oldest) = oldest.filter(|&o| o > seqno) {
            return Err(Error::FeedTruncated {
                requested: seqno,
                oldest_available: oldest,
            });
        }
        let holder = firsts
            .iter()
            .rev()
            .find(|(_, f)| f.is_some_and(|f| f <= seqno))
            .or(firsts.last());
        self.reader = None;
        if let Some(&(n, _)) = holder {
            let path = files::log_path(&self.dir, n);
            self.reader = LogFileReader::open(&path)?.map(|r| (n, r));
        }
        Ok(())
    }

    /// Positions the follower after the last complete record.
    fn skip_to_end(&mut self) -> Result<()> {
        let newest = files::log_numbers(&self.dir)?.last().copied();
        if let Some(n) = newest {
            self.open_number(n)?;
            while let Some(record) = self.read_current()? {
                self.accept(record)?;
            }
        }
        Ok(())
    }

    /// Positions the follower at the newest file whose first record is older than `time_us`;
    /// records before that time are then skipped.
    fn seek_time(&mut self, time_us: u64) -> Result<()> {
        let numbers = files::log_numbers(&self.dir)?;
        let mut start = numbers.first().copied();
        for &n in numbers.iter().rev() {
            if first_record(&self.dir, n)?.is_some_and(|r| r.commit_time_us < time_us) {
                start = Some(n);
                break;
            }
        }
        self.skip_before_us = Some(time_us);
        match start {
            Some(n) => self.open_number(n),
            None => Ok(()),
        }
    }
}

/// Every log file with the first sequence number of its first record, if it has one.
fn first_seqnos(dir: &Path) -> Result<Vec<(u64, Option<SeqNo>)>> {
    files::log_numbers(dir)?
        .into_iter()
        .map(|n| Ok((n, first_record(dir, n)?.map(|r| r.first_seqno))))
        .collect()
}

fn first_record(dir: &Path, number: u64) -> Result<Option<LogRecord>> {
    let Some(mut reader) = LogFileReader::open(&files::log_path(dir, number))? else {
        return Ok(None);
    };
    match reader.next_record(RecordWindow::ALL)? {
        NextRecord::Record(item) => Ok(Some(item.record)),
        NextRecord::Pending { .. } => Ok(None),
    }
}
