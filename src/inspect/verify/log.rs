//! Verifying commit log files: frames, records, and sequence numbers across files.

use std::path::Path;

use super::Checker;
use crate::commit_log::{
    decode_record, LogRecord, LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_OLDEST, LOG_HEADER_LEN,
    LOG_MAGIC,
};
use crate::files::{self, FileKind};
use crate::frame::{read_file_header, FRAME_HEADER_LEN};
use crate::inspect::frames::{self, FrameEvent};
use crate::key::SeqNo;
use crate::manifest::ManifestState;

/// Checks every log file of a directory, oldest first, carrying the sequence number check
/// from one file to the next.
pub(super) fn check_all(
    c: &mut Checker<'_>,
    dir: &Path,
    listing: &[FileKind],
    state: Option<&ManifestState>,
) {
    let logs: Vec<u64> = listing
        .iter()
        .filter_map(|k| match k {
            FileKind::Log(n) => Some(*n),
            _ => None,
        })
        .collect();
    let mut seq = SeqCheck {
        flushed: state.map(|s| (s.log_number, s.last_seqno)),
        ..SeqCheck::default()
    };
    for (i, &n) in logs.iter().enumerate() {
        let path = files::log_path(dir, n);
        seq.log_number = n;
        check(c, &path, i + 1 == logs.len(), &mut seq);
        c.done(&path);
    }
}

/// Checks one log file: its header, every frame and every record. `newest` only changes
/// how a torn end is described (a warning either way: open drops it).
pub(super) fn check(c: &mut Checker<'_>, path: &Path, newest: bool, seq: &mut SeqCheck) {
    seq.at_file_start = true;
    let Some(data) = c.read(path) else {
        // Unreadable, or deleted by a live database's flush since the listing: the sequence
        // numbers that follow cannot be judged against what came before.
        return seq.lose_track();
    };
    let versions = LOG_FORMAT_VERSION_OLDEST..=LOG_FORMAT_VERSION;
    let version = match read_file_header(path, &data, LOG_MAGIC, versions, "commit log") {
        Ok(Some(version)) => version,
        Ok(None) => return torn(c, path, 0, newest, "incomplete file header"),
        Err(e) => return c.absorb(path, e),
    };
    for event in frames::walk(&data, LOG_HEADER_LEN, true) {
        match event {
            FrameEvent::Record { offset, payload } => match decode_record(payload, version) {
                Ok(record) => seq.record(c, path, offset, &record),
                Err((at, detail)) => c.error(path, offset + (FRAME_HEADER_LEN + at) as u64, detail),
            },
            FrameEvent::Incomplete { offset } => torn(c, path, offset, newest, "incomplete record"),
            FrameEvent::Corrupt {
                offset,
                detail,
                at_tail: true,
            } => torn(c, path, offset, newest, &detail),
            FrameEvent::Corrupt { offset, detail, .. } => c.error(path, offset, detail),
        }
    }
}

/// A torn end: a write a crash interrupted in the newest log file, or in an older one the
/// end of a file a rotation sealed without syncing that a power loss cut. Open drops it (and
/// every later log file); no synced write was lost (a synced write syncs older files first).
fn torn(c: &mut Checker<'_>, path: &Path, offset: u64, newest: bool, what: &str) {
    let detail = if newest {
        format!("{what} at the end of the newest log file (a write a crash interrupted, or one in progress); open drops it")
    } else {
        format!("{what} at the end of a log file that is not the newest (sealed unsynced, then cut by a power loss); open drops it and every later log file")
    };
    c.warn(path, offset, detail);
}

/// Sequence numbers are contiguous from record to record, within a log file and across log
/// files, and the first record the next open replays follows the manifest's `last_seqno`.
#[derive(Debug, Default)]
pub(super) struct SeqCheck {
    /// The manifest's `log_number` and `last_seqno`, when known.
    flushed: Option<(u64, SeqNo)>,
    /// The number of the log file being checked.
    log_number: u64,
    previous_last: Option<SeqNo>,
    linked: bool,
    /// No record of the current file has been checked yet.
    at_file_start: bool,
    /// The last record checked is a seal marker.
    sealed: bool,
}

impl SeqCheck {
    /// Forgets what came before, after a log file could not be read.
    fn lose_track(&mut self) {
        self.previous_last = None;
        self.linked = true;
    }

    fn record(&mut self, c: &mut Checker<'_>, path: &Path, offset: u64, record: &LogRecord) {
        if let Some(prev) = self.previous_last {
            if record.first_seqno > prev + 1 && self.at_file_start && !self.sealed {
                let detail = format!(
                    "the file starts at sequence number {}, but the log file before it ends at \
                     {prev} without its seal marker: that one was sealed unsynced and cut by a \
                     power loss; open drops this file and every later one",
                    record.first_seqno
                );
                c.warn(path, offset, detail);
            } else if record.first_seqno != prev + 1 {
                let detail = format!(
                    "record starts at sequence number {}; the record before it ended at {prev}",
                    record.first_seqno
                );
                c.error(path, offset, detail);
            }
        }
        self.check_link(c, path, offset, record.first_seqno);
        self.previous_last = Some(record.last_seqno());
        self.at_file_start = false;
        self.sealed = record.is_seal_marker();
    }

    /// The first record of the log files open replays must not leave a gap after what the
    /// segments hold.
    fn check_link(&mut self, c: &mut Checker<'_>, path: &Path, offset: u64, first: SeqNo) {
        let Some((log_number, flushed)) = self.flushed else {
            return;
        };
        if self.linked || self.log_number < log_number {
            return;
        }
        self.linked = true;
        if first > flushed + 1 {
            let detail = format!(
                "sequence numbers {}..={} are in no segment and no log file",
                flushed + 1,
                first - 1
            );
            c.error(path, offset, detail);
        }
    }
}
