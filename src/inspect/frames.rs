//! Walking the frames of a commit log file or a manifest, past damaged payloads.
//! Format: FORMAT.md, "Framed files".

use crate::coding::{crc32, u32_at};
use crate::frame::{Frame, FrameReader, FRAME_HEADER_LEN, FRAME_PAYLOAD_MAX};

/// What the walk finds at one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FrameEvent<'a> {
    /// A frame whose checksums match.
    Record { offset: u64, payload: &'a [u8] },
    /// A prefix of a frame, or zeros, up to the end of the file. The walk ends here.
    Incomplete { offset: u64 },
    /// A damaged frame; `at_tail` when it ends exactly at the end of the file.
    Corrupt {
        offset: u64,
        detail: String,
        at_tail: bool,
    },
}

/// Every frame of `data` from `start`, in order.
///
/// A payload checksum mismatch leaves the frame header trustworthy (its own checksum matched),
/// so the walk goes on with the next frame and can find every damaged payload in one pass.
/// After any other damage the length cannot be trusted and the walk ends.
///
/// `log` applies the commit log's rule that a zero length field ends the written part
/// ([`FrameReader::zero_length_ends`]).
pub(super) fn walk(data: &[u8], start: usize, log: bool) -> Vec<FrameEvent<'_>> {
    let mut events = Vec::new();
    let reader_at = |pos| FrameReader::new(data, pos).zero_length_ends(log);
    let mut reader = reader_at(start);
    loop {
        match reader.next_frame() {
            Frame::Record { offset, payload } => events.push(FrameEvent::Record {
                offset: offset as u64,
                payload,
            }),
            Frame::End => return events,
            Frame::Incomplete { offset } => {
                events.push(FrameEvent::Incomplete {
                    offset: offset as u64,
                });
                return events;
            }
            Frame::Corrupt {
                offset,
                detail,
                at_tail,
            } => {
                events.push(FrameEvent::Corrupt {
                    offset: offset as u64,
                    detail,
                    at_tail,
                });
                let Some(next) = trusted_end(data, offset) else {
                    return events;
                };
                reader = reader_at(next);
            }
        }
    }
}

/// Where the frame at `offset` ends, if its header checks out (only its payload is damaged).
fn trusted_end(data: &[u8], offset: usize) -> Option<usize> {
    let header = data.get(offset..offset.checked_add(FRAME_HEADER_LEN)?)?;
    let len = u32_at(header, 0)? as usize;
    let header_ok = crc32(&[header.get(..8)?]) == u32_at(header, 8)?;
    let end = offset + FRAME_HEADER_LEN + len;
    (header_ok && len <= FRAME_PAYLOAD_MAX && end <= data.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;

    #[test]
    fn the_walk_continues_past_a_damaged_payload_but_not_past_a_damaged_header() {
        let mut buf = Vec::new();
        for p in [&b"one"[..], b"two", b"three"] {
            encode_frame(&mut buf, p);
        }
        let mut bad_payload = buf.clone();
        bad_payload[FRAME_HEADER_LEN] ^= 1; // "one" -> "nne"
        let events = walk(&bad_payload, 0, false);
        assert_eq!(events.len(), 3);
        assert!(matches!(events[0], FrameEvent::Corrupt { offset: 0, .. }));
        assert!(matches!(
            events[2],
            FrameEvent::Record {
                payload: b"three",
                ..
            }
        ));
        let mut bad_header = buf.clone();
        bad_header[0] ^= 1;
        let events = walk(&bad_header, 0, false);
        assert_eq!(events.len(), 1);
    }
}
