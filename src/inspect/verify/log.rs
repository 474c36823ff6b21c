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

/// Checks one log file: its header, every frame and every record. `newest` decides whether
/// a torn end is a warning (open drops it) or an error.
pub(super) fn check(c: &mut Checker<'_>, path: &Path, newest: bool, seq: &mut SeqCheck) {
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

/// A torn end: normal in the newest log file, lost data in any other.
fn torn(c: &mut Checker<'_>, path: &Path, offset: u64, newest: bool, what: &str) {
    if newest {
        let detail = format!("{what} at the end of the newest log file (a write a crash interrupted, or one in progress); open drops it");
        c.warn(path, offset, detail);
    } else {
        let detail = format!("{what} at the end of a log file that is not the newest (only the newest can be torn by a crash): data was lost");
        c.error(path, offset, detail);
    }
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
}

impl SeqCheck {
    /// Forgets what came before, after a log file could not be read.
    fn lose_track(&mut self) {
        self.previous_last = None;
        self.linked = true;
    }

    fn record(&mut self, c: &mut Checker<'_>, path: &Path, offset: u64, record: &LogRecord) {
        if let Some(prev) = self.previous_last {
            if record.first_seqno != prev + 1 {
                let detail = format!(
                    "record starts at sequence number {}; the record before it ended at {prev}",
                    record.first_seqno
                );
                c.error(path, offset, detail);
            }
        }
        self.check_link(c, path, offset, record.first_seqno);
        self.previous_last = Some(record.last_seqno());
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
