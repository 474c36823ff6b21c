//! The Server-Sent Events wire format (the WHATWG HTML standard, "Server-sent events").
//!
//! Every event ends with a blank line. `data:` is one line of compact JSON (serde_json never
//! writes a raw newline). An event with an `id:` and no `data:` is not delivered to the
//! application, but it does set the client's last event id: the feed uses that to move a
//! client's resume position past batches its filter skipped.

use std::fmt::Write;

/// Appends a batch event: `id:` is the batch's last sequence number.
pub(crate) fn batch(buf: &mut String, last_seqno: u64, json: &str) {
    let _ = write!(buf, "id: {last_seqno}\ndata: {json}\n\n");
}

/// Appends an `event: error` whose data is `json`.
pub(crate) fn error(buf: &mut String, json: &str) {
    let _ = write!(buf, "event: error\ndata: {json}\n\n");
}

/// Appends a comment line, which clients ignore (a keep-alive, or a note for people).
pub(crate) fn comment(buf: &mut String, text: &str) {
    let _ = writeln!(buf, ": {text}");
}

/// Appends an event that only moves the client's last event id to `position`.
pub(crate) fn position(buf: &mut String, position: u64) {
    let _ = write!(buf, "id: {position}\n\n");
}
