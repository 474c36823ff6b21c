//! The message format the bridges write and read: subject encoding of keys, header names, and
//! the reserved keys that hold an ingester's external position.
//!
//! `FORMAT.md`, "Wire format of the bridges", documents all of it; a change here changes that
//! section.

use crate::error::{BridgeError, Result};

/// JetStream's deduplication header: `<database id>:<seqno>`.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// The change's sequence number, decimal.
pub const HEADER_SEQNO: &str = "Alluvium-Seqno";
/// `put` or `delete`.
pub const HEADER_OP: &str = "Alluvium-Op";
/// Present (value `1`) on the last published operation of a batch.
pub const HEADER_BATCH_END: &str = "Alluvium-Batch-End";
/// The batch's commit time, microseconds since the Unix epoch, decimal.
pub const HEADER_COMMIT_TIME_US: &str = "Alluvium-Commit-Time-Us";

/// Keys under this prefix are the bridges' own: an ingester stores its external position
/// there, in the same batch as the data. Ingest refuses a message with such a key and publish
/// does not publish them, so they never travel between databases.
pub const RESERVED_PREFIX: &[u8] = b"\xff\xffalluvium/";

/// The longest subject the publisher sends, in bytes. A NATS server refuses a protocol line
/// longer than its `max_control_line` (4096 bytes by default); the rest of the line (reply
/// subject, sizes) takes under 100 bytes.
pub const SUBJECT_BYTES_MAX: usize = 3900;

/// True for keys under [`RESERVED_PREFIX`].
pub fn is_reserved(key: &[u8]) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// The reserved key holding the last stream sequence ingested from JetStream stream `stream`.
pub fn nats_position_key(stream: &str) -> Vec<u8> {
    [RESERVED_PREFIX, b"ingest/nats/", stream.as_bytes()].concat()
}

/// Bytes a key keeps as they are in a subject token; every other byte is `%XX`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b':' | b'=' | b'@')
}

/// Encodes `key` as one NATS subject token: letters, digits and `- _ ~ : = @` stay, every
/// other byte becomes `%` and two uppercase hex digits, and the empty key is `%` alone. The
/// token never holds `.`, `*`, `>` or whitespace, so it is a valid token and matches no
/// wildcard by accident.
pub fn encode_key(key: &[u8]) -> String {
    if key.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(key.len());
    for &b in key {
        match is_plain(b) {
            true => out.push(char::from(b)),
            false => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a token written by [`encode_key`].
///
/// # Errors
/// [`BridgeError::Message`] for a byte no encoding produces or a bad `%XX` escape.
pub fn decode_key(token: &str) -> Result<Vec<u8>> {
    if token == "%" {
        return Ok(Vec::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = token.get(i + 1..i + 3).ok_or_else(|| bad_token(token))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad_token(token))?);
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return Err(bad_token(token)),
        }
    }
    Ok(out)
}

fn bad_token(token: &str) -> BridgeError {
    BridgeError::Message(format!("subject token {token:?} is not an encoded key"))
}

/// Checks that `prefix` is one or more valid subject tokens (no wildcard, no whitespace, no
/// empty token).
pub fn check_subject_prefix(prefix: &str) -> Result<()> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && !t
                .bytes()
                .any(|b| b.is_ascii_whitespace() || matches!(b, b'*' | b'>'))
    };
    match prefix.split('.').all(token_ok) {
        true => Ok(()),
        false => Err(BridgeError::Config(format!(
            "subject prefix {prefix:?} is not a valid NATS subject (tokens separated by '.', \
             no empty token, no '*', '>' or whitespace)"
        ))),
    }
}

/// `<database id>:<seqno>`, the deduplication id of a change.
pub fn msg_id(db_id: &str, seqno: u64) -> String {
    format!("{db_id}:{seqno}")
}

/// Splits a deduplication id into database id and sequence number.
pub fn parse_msg_id(id: &str) -> Option<(&str, u64)> {
    let (db, seqno) = id.rsplit_once(':')?;
    Some((db, seqno.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_a_valid_token() {
        let keys: [&[u8]; 7] = [
            b"",
            b"user:1",
            b"a.b",
            b"*>",
            b"%",
            b"\x00\xff sp",
            RESERVED_PREFIX,
        ];
        for key in keys {
            let token = encode_key(key);
            assert!(!token.is_empty());
            assert!(!token.contains(['.', '*', '>', ' ']), "{token}");
            assert_eq!(decode_key(&token).unwrap(), key, "{token}");
        }
        assert_eq!(encode_key(b"user:1"), "user:1");
        assert_eq!(encode_key(b"a.b"), "a%2Eb");
        assert!(decode_key("a.b").is_err());
        assert!(decode_key("%4").is_err());
    }

    #[test]
    fn prefixes_and_msg_ids() {
        assert!(check_subject_prefix("orders.changes").is_ok());
        for bad in ["", "a..b", "a.>", "a b", "a."] {
            assert!(check_subject_prefix(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_msg_id(&msg_id("ab12", 7)), Some(("ab12", 7)));
    }
}
