//! `Cursor`: reading the change feed in process, from any start, waiting at its end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::{ChangeBatch, KeyFilter, Start};
use crate::commit_log::{LogFileReader, LogRecord, NextRecord, RecordWindow};
use crate::db::{Db, Inner};
use crate::error::{Error, Result};
use crate::files;
use crate::key::SeqNo;

/// A reader's place in the change feed.
///
/// A cursor hands out whole batches ([`ChangeBatch`]) in commit order, each exactly once,
/// starting from a [`Start`]. It reads the log files on disk in large chunks and never hands
/// out a batch before readers of the database can see it. At the end of the log,
/// [`Cursor::next_timeout`] and [`Cursor::blocking`] sleep until the commit path wakes them.
///
/// A cursor does not hold back the deletion of log files; a [`Subscription`](super::Subscription)
/// does. If the file holding the cursor's next position is deleted before the cursor opens
/// it, the cursor reports [`Error::FeedTruncated`] instead of skipping anything. A file it has
/// already opened stays readable until the cursor moves past it.
///
/// ```
/// # fn main() -> alluvium::Result<()> {
/// # let dir = tempfile::tempdir().map_err(|e| alluvium::Error::io("tmp", e))?;
/// use alluvium::{Db, Options, Start};
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put("user:1", "ada")?;
/// let mut cursor = db.changes(Start::Beginning)?;
/// let batch = cursor.try_next()?.expect("one batch");
/// assert_eq!(batch.first_seqno, 1);
/// assert_eq!(cursor.try_next()?, None); // nothing more yet
/// # Ok(()) }
/// ```
///
/// # Concurrency
/// A cursor is `Send` and is used by one thread at a time; any number of cursors read
/// concurrently with writers.
pub struct Cursor {
    inner: Arc<Inner>,
    next_seqno: SeqNo,
    reader: Option<(u64, LogFileReader)>,
    filter: KeyFilter,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("next_seqno", &self.next_seqno)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// A cursor over the change feed from `start`.
    ///
    /// # Errors
    /// [`Error::FeedTruncated`] when `start` is older than the oldest retained sequence number.
    pub fn changes(&self, start: Start) -> Result<Cursor> {
        let inner = self.inner().clone();
        let next_seqno = resolve_start(&inner, start)?;
        Ok(Cursor::at(inner, next_seqno))
    }
}

/// The first sequence number a cursor starting at `start` reads.
pub(crate) fn resolve_start(inner: &Arc<Inner>, start: Start) -> Result<SeqNo> {
    let oldest = inner.feed.logs.lock().oldest_seqno();
    match start {
        Start::Beginning => Ok(oldest),
        Start::Now => Ok(inner.visible() + 1),
        Start::SeqNo(n) if n < oldest => Err(Error::FeedTruncated {
            requested: n,
            oldest_available: oldest,
        }),
        Start::SeqNo(n) => Ok(n),
        Start::Time(t) => {
            let us = t
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            first_at_or_after(inner, us)
        }
    }
}

/// The first sequence number of the first batch committed at or after `time_us`.
fn first_at_or_after(inner: &Arc<Inner>, time_us: u64) -> Result<SeqNo> {
    let end = inner.visible() + 1;
    let mut cursor = Cursor::at(inner.clone(), start_file_for_time(inner, time_us)?);
    while let Some(batch) = cursor.next_record()? {
        if batch.commit_time_us >= time_us {
            return Ok(batch.first_seqno);
        }
        if batch.last_seqno() + 1 >= end {
            break;
        }
    }
    Ok(end)
}

/// The first sequence number of the newest log file whose first record is older than
/// `time_us` (the oldest retained one if none is): batches at or after the time start there
/// or later.
fn start_file_for_time(inner: &Inner, time_us: u64) -> Result<SeqNo> {
    let files = inner.feed.logs.lock().files().to_vec();
    for entry in files.iter().rev() {
        let path = files::log_path(&inner.dir, entry.number);
        let Some(mut reader) = LogFileReader::open(&path)? else {
            break;
        };
        if let NextRecord::Record(item) = reader.next_record(RecordWindow::ALL)? {
            if item.record.commit_time_us < time_us {
                return Ok(entry.first_seqno);
            }
        }
    }
    Ok(files.first().map_or(1, |f| f.first_seqno))
}

impl Cursor {
    pub(crate) fn at(inner: Arc<Inner>, next_seqno: SeqNo) -> Cursor {
        Cursor {
            inner,
            next_seqno,
            reader: None,
            filter: KeyFilter::All,
        }
    }

    /// Hands out only operations on keys starting with `prefix` (see [`KeyFilter`]).
    #[must_use]
    pub fn with_prefix(self, prefix: impl AsRef<[u8]>) -> Cursor {
        self.with_filter(KeyFilter::Prefix(prefix.as_ref().to_vec()))
    }

    /// Hands out only operations on keys in `[start, end)` (see [`KeyFilter`]).
    #[must_use]
    pub fn with_range(self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Cursor {
        self.with_filter(KeyFilter::Range {
            start: Some(start.as_ref().to_vec()),
            end: Some(end.as_ref().to_vec()),
        })
    }

    /// Hands out only operations that pass `filter`.
    #[must_use]
    pub fn with_filter(mut self, filter: KeyFilter) -> Cursor {
        self.filter = filter;
        self
    }

    /// The last sequence number this cursor has moved past (batches skipped by the filter
    /// included): the position to acknowledge once everything handed out is processed.
    pub fn position(&self) -> SeqNo {
        self.next_seqno - 1
    }

    /// The next batch if one is visible now, without waiting.
    ///
    /// # Errors
    /// [`Error::FeedTruncated`] when the next position was deleted by retention,
    /// [`Error::Corruption`] for a damaged log file.
    pub fn try_next(&mut self) -> Result<Option<ChangeBatch>> {
        while let Some(record) = self.next_record()? {
            if let Some(batch) = to_change_batch(record, &self.filter) {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// The next batch, waiting up to `timeout` for one to be committed.
    ///
    /// # Errors
    /// As [`Cursor::try_next`], and [`Error::Closed`] once the database is closed.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ChangeBatch>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(batch) = self.try_next()? {
                return Ok(Some(batch));
            }
            self.check_open()?;
            let (inner, next) = (&self.inner, self.next_seqno);
            let closed = || inner.closed.load(Ordering::Acquire);
            if !inner
                .feed
                .wait_until(deadline, || inner.visible() >= next || closed())
            {
                return Ok(None);
            }
        }
    }

    /// An iterator that waits for every next batch; it ends after yielding an error (for
    /// example [`Error::Closed`] when the database closes).
    pub fn blocking(&mut self) -> Blocking<'_> {
        Blocking {
            cursor: self,
            done: false,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the database was closed".into()));
        }
        Ok(())
    }

    /// The next visible record at or after the position, unfiltered.
    pub(crate) fn next_record(&mut self) -> Result<Option<LogRecord>> {
        loop {
            let visible = self.inner.visible();
            if self.next_seqno > visible {
                return Ok(None);
            }
            let window = RecordWindow {
                min_seqno: self.next_seqno,
                max_first_seqno: visible,
            };
            let (number, reader) = self.reader()?;
            match reader.next_record(window)? {
                NextRecord::Record(item) => return Ok(Some(self.advance(item.record)?)),
                NextRecord::Pending { .. } => self.next_file(number)?,
            }
        }
    }

    fn advance(&mut self, record: LogRecord) -> Result<LogRecord> {
        if record.first_seqno > self.next_seqno {
            let path = self.reader.as_ref().map(|(_, r)| r.path().to_path_buf());
            let detail = format!(
                "record starts at sequence number {}; expected {}",
                record.first_seqno, self.next_seqno
            );
            return Err(Error::corruption(path.unwrap_or_default(), 0, detail));
        }
        self.next_seqno = record.last_seqno() + 1;
        Ok(record)
    }

    /// The open reader, opening the file holding the position if needed.
    fn reader(&mut self) -> Result<(u64, &mut LogFileReader)> {
        if self.reader.is_none() {
            self.reader = Some(self.open_file_for(self.next_seqno)?);
        }
        match self.reader.as_mut() {
            Some((n, r)) => Ok((*n, r)),
            None => Err(Error::Closed("no log file".into())),
        }
    }

    fn open_file_for(&self, seqno: SeqNo) -> Result<(u64, LogFileReader)> {
        let (entry, oldest) = {
            let logs = self.inner.feed.logs.lock();
            (logs.locate(seqno), logs.oldest_seqno())
        };
        let truncated = Error::FeedTruncated {
            requested: seqno,
            oldest_available: oldest,
        };
        let Some(entry) = entry.filter(|_| seqno >= oldest) else {
            return Err(truncated);
        };
        match LogFileReader::open(&files::log_path(&self.inner.dir, entry.number))? {
            Some(reader) => Ok((entry.number, reader)),
            None => Err(self.truncated_now(seqno)),
        }
    }

    /// The error for a position whose file was deleted since it was located.
    fn truncated_now(&self, seqno: SeqNo) -> Error {
        Error::FeedTruncated {
            requested: seqno,
            oldest_available: self.inner.feed.logs.lock().oldest_seqno(),
        }
    }

    /// Moves to the log file after `number`: this one holds nothing more that is visible.
    fn next_file(&mut self, number: u64) -> Result<()> {
        let next = self.inner.feed.logs.lock().after(number);
        let Some(next) = next else {
            // Not reached while the position is visible: the file holding it is indexed
            // before any record of it is appended.
            return Err(Error::corruption(
                files::log_path(&self.inner.dir, number),
                0,
                format!("sequence number {} is in no log file", self.next_seqno),
            ));
        };
        if next.first_seqno > self.next_seqno {
            // Retention deleted the files between while this one was being read.
            return Err(self.truncated_now(self.next_seqno));
        }
        let path = files::log_path(&self.inner.dir, next.number);
        match LogFileReader::open(&path)? {
            Some(reader) => self.reader = Some((next.number, reader)),
            None => return Err(self.truncated_now(self.next_seqno)),
        }
        Ok(())
    }
}

/// The handed-out form of `record`: `None` when the filter leaves no operation.
pub(crate) fn to_change_batch(record: LogRecord, filter: &KeyFilter) -> Option<ChangeBatch> {
    let first = record.first_seqno;
    let last_seqno = record.last_seqno();
    let ops: Vec<_> = (first..)
        .zip(record.batch.into_ops())
        .filter(|(_, op)| filter.matches(op.key()))
        .collect();
    (!ops.is_empty()).then_some(ChangeBatch {
        first_seqno: first,
        last_seqno,
        commit_time_us: record.commit_time_us,
        ops,
    })
}

/// The iterator of [`Cursor::blocking`].
#[derive(Debug)]
pub struct Blocking<'a> {
    cursor: &'a mut Cursor,
    done: bool,
}

impl Iterator for Blocking<'_> {
    type Item = Result<ChangeBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.cursor.next_timeout(Duration::from_secs(3600)) {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
