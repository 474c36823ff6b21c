//! Length- and checksum-framed records, shared by the commit log and the manifest.
//!
//! A frame is a 12-byte header followed by the payload (see `FORMAT.md`, "Frames"):
//!
//! ```text
//! +----------------+-----------------+-----------------+-------------------+
//! | length: u32 LE | payload crc u32 | header crc u32  | payload (length)  |
//! +----------------+-----------------+-----------------+-------------------+
//! ```
//!
//! The header has its own checksum so that a damaged length is never trusted: without it a
//! flipped bit in a length could make a reader take every later record for a torn tail.

use std::path::Path;

use crate::coding::{crc32, put_u32, u32_at, Reader};
use crate::error::{Error, Result};

/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 12;

/// The longest payload a frame may carry (a batch of the maximum size plus its headers).
pub const FRAME_PAYLOAD_MAX: usize = 1 << 30;

/// Appends one frame carrying `payload` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8]) {
    encode_frame_parts(out, &[payload]);
}

/// Appends one frame whose payload is the concatenation of `parts` (no copy into a buffer
/// first).
pub fn encode_frame_parts(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= FRAME_PAYLOAD_MAX);
    let start = out.len();
    put_u32(out, len as u32);
    put_u32(out, crc32(parts));
    let header_crc = crc32(&[&out[start..start + 8]]);
    put_u32(out, header_crc);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// What a reader finds at a position of a framed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame whose checksums match.
    Record {
        /// Offset of the frame header in the buffer.
        offset: usize,
        /// The payload.
        payload: &'a [u8],
    },
    /// The buffer ends exactly at a frame boundary.
    End,
    /// The bytes from `offset` to the end are a prefix of a frame, or all zero: a write that
    /// did not complete (after a crash: a torn tail; while following a live file: not yet).
    Incomplete {
        /// Where the incomplete frame starts.
        offset: usize,
    },
    /// A checksum or length does not match.
    Corrupt {
        /// Where the damaged frame starts.
        offset: usize,
        /// What is wrong.
        detail: String,
        /// True when the damaged frame's declared length reaches exactly the end of the buffer,
        /// so it may be the last write, torn by a crash.
        at_tail: bool,
    },
}

/// Reads frames one after another from a buffer.
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    buf: &'a [u8],
    pos: usize,
    zero_length_ends: bool,
}

impl<'a> FrameReader<'a> {
    /// Starts at `pos` in `buf`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        FrameReader {
            buf,
            pos,
            zero_length_ends: false,
        }
    }

    /// For commit log files, whose frames are never empty: a frame whose length field is zero
    /// is where the written part ends (`Incomplete`), whatever follows. A log file is written
    /// through a memory map into zeros, and each append copies its first four bytes (the
    /// first frame's length) last, so an append cut short by a crash leaves a zero length
    /// where it starts (`FORMAT.md`, "What a reader finds").
    pub fn zero_length_ends(mut self, on: bool) -> Self {
        self.zero_length_ends = on;
        self
    }

    /// Offset of the next frame.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Decodes the frame at the current position and, if it is a valid record, moves past it.
    pub fn next_frame(&mut self) -> Frame<'a> {
        let offset = self.pos;
        let rest = self.buf.get(offset..).unwrap_or_default();
        if rest.is_empty() {
            return Frame::End;
        }
        if rest.len() < FRAME_HEADER_LEN || rest.iter().all(|&b| b == 0) {
            return Frame::Incomplete { offset };
        }
        if self.zero_length_ends && rest[..4] == [0; 4] {
            return Frame::Incomplete { offset };
        }
        let frame = decode_at(rest, offset);
        if let Frame::Record { payload, .. } = frame {
            self.pos += FRAME_HEADER_LEN + payload.len();
        }
        frame
    }
}

fn decode_at(rest: &[u8], offset: usize) -> Frame<'_> {
    let mut r = Reader::new(rest);
    let (len, payload_crc, header_crc) = match (r.u32(), r.u32(), r.u32()) {
        (Some(a), Some(b), Some(c)) => (a as usize, b, c),
        _ => return Frame::Incomplete { offset },
    };
    if crc32(&[&rest[..8]]) != header_crc {
        let detail = "frame header checksum mismatch".to_string();
        return Frame::Corrupt {
            offset,
            detail,
            at_tail: false,
        };
    }
    if len > FRAME_PAYLOAD_MAX {
        let detail = format!("frame length {len} exceeds the limit {FRAME_PAYLOAD_MAX}");
        return Frame::Corrupt {
            offset,
            detail,
            at_tail: false,
        };
    }
    let Some(payload) = r.bytes(len) else {
        return Frame::Incomplete { offset };
    };
    if crc32(&[payload]) != payload_crc {
        let detail = format!("payload checksum mismatch in a {len}-byte frame");
        return Frame::Corrupt {
            offset,
            detail,
            at_tail: r.is_empty(),
        };
    }
    Frame::Record { offset, payload }
}

/// Bytes of the header that starts every framed file: magic, format version, checksum.
pub const FILE_HEADER_LEN: usize = 16;

/// The 16-byte file header: 8-byte magic, format version u32, CRC-32 of those 12 bytes.
pub fn file_header(magic: [u8; 8], version: u32) -> Vec<u8> {
    let mut h = magic.to_vec();
    put_u32(&mut h, version);
    let crc = crc32(&[&h]);
    put_u32(&mut h, crc);
    h
}

/// Checks the file header of a framed file of kind `what` at `path`, accepting only `version`.
///
/// Returns `Ok(true)` when `data` is too short to hold a header but is a prefix of a valid one
/// (or zeros): a file whose creation a crash interrupted. A wrong magic, another version or a
/// checksum mismatch is [`Error::Corruption`].
pub fn check_file_header(
    path: &Path,
    data: &[u8],
    magic: [u8; 8],
    version: u32,
    what: &str,
) -> Result<bool> {
    Ok(read_file_header(path, data, magic, version..=version, what)?.is_none())
}

/// Checks the file header of a framed file of kind `what` and returns its format version, one
/// of `versions`; `Ok(None)` when `data` is a prefix of a valid header or zeros (a torn
/// creation). A wrong magic, a version outside `versions` or a checksum mismatch is
/// [`Error::Corruption`].
pub fn read_file_header(
    path: &Path,
    data: &[u8],
    magic: [u8; 8],
    versions: std::ops::RangeInclusive<u32>,
    what: &str,
) -> Result<Option<u32>> {
    let newest = *versions.end();
    let prefix_of_any = versions
        .clone()
        .any(|v| file_header(magic, v).starts_with(data));
    if data.len() < FILE_HEADER_LEN && (prefix_of_any || data.iter().all(|&b| b == 0)) {
        return Ok(None);
    }
    if !data.starts_with(&magic) {
        return Err(Error::corruption(
            path,
            0,
            format!("not an alluvium {what} (bad magic)"),
        ));
    }
    let found = u32_at(data, 8).unwrap_or(0);
    if found > newest {
        let detail = format!(
            "{what} format version {found} is newer than {newest}, the newest this build reads"
        );
        return Err(Error::corruption(path, 8, detail));
    }
    if !versions.contains(&found) {
        let detail = format!("{what} format version {found} is not one this build reads");
        return Err(Error::corruption(path, 8, detail));
    }
    if data.get(..FILE_HEADER_LEN) != Some(&file_header(magic, found)[..]) {
        return Err(Error::corruption(
            path,
            12,
            format!("{what} file header checksum mismatch"),
        ));
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_frames() -> Vec<u8> {
        let mut buf = Vec::new();
        encode_frame(&mut buf, b"first payload");
        encode_frame(&mut buf, b"second");
        buf
    }

    #[test]
    fn frames_round_trip() {
        let buf = two_frames();
        let mut r = FrameReader::new(&buf, 0);
        assert_eq!(
            r.next_frame(),
            Frame::Record {
                offset: 0,
                payload: b"first payload"
            }
        );
        assert_eq!(
            r.next_frame(),
            Frame::Record {
                offset: 25,
                payload: b"second"
            }
        );
        assert_eq!(r.next_frame(), Frame::End);
    }

    #[test]
    fn every_truncation_of_the_last_frame_is_incomplete() {
        let buf = two_frames();
        for cut in 26..buf.len() {
            let mut r = FrameReader::new(&buf[..cut], 25);
            assert_eq!(
                r.next_frame(),
                Frame::Incomplete { offset: 25 },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_is_corrupt_and_only_the_last_frame_is_at_tail() {
        let buf = two_frames();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let mut r = FrameReader::new(&bad, 0);
            let outcome = if i < 25 {
                r.next_frame()
            } else {
                r.next_frame();
                r.next_frame()
            };
            match outcome {
                Frame::Corrupt { at_tail, .. } => assert_eq!(at_tail, i >= 25 + 12, "byte {i}"),
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }
}
