//! Keys and values in JSON: lossless, with the encoding named beside each string.
//!
//! `auto` (the default) writes bytes that are valid UTF-8 as the string itself
//! (`"key_encoding": "utf8"`) and anything else as standard padded base64 (`"base64"`);
//! `?encoding=base64` or `?encoding=hex` write every key and value that way. Field names are
//! those of the CLI's JSON output (`key`, `seqno`, `kind`, `value`, null for a delete).

use alluvium::{ChangeBatch, Op, SeqNo, ValueKind};
use base64::Engine;
use serde::Serialize;

use crate::error::ApiError;

/// How keys and values are written into JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text when the bytes are valid UTF-8, base64 otherwise.
    #[default]
    Auto,
    /// Always standard padded base64.
    Base64,
    /// Always lowercase hex.
    Hex,
}

impl Encoding {
    /// Parses `auto`, `base64` or `hex`.
    pub(crate) fn parse(text: &str) -> Result<Encoding, ApiError> {
        match text {
            "auto" => Ok(Encoding::Auto),
            "base64" => Ok(Encoding::Base64),
            "hex" => Ok(Encoding::Hex),
            other => Err(ApiError::BadRequest(format!(
                "encoding must be auto, base64 or hex, not {other:?}"
            ))),
        }
    }

    /// `bytes` as a string, and the name of the encoding used (`utf8`, `base64`, `hex`).
    pub fn encode(self, bytes: &[u8]) -> (String, &'static str) {
        match (self, std::str::from_utf8(bytes)) {
            (Encoding::Auto, Ok(text)) => (text.to_owned(), "utf8"),
            (Encoding::Hex, _) => (hex(bytes), "hex"),
            _ => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                "base64",
            ),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A key and its value (null when absent or deleted), each with its encoding.
#[derive(Serialize)]
pub(crate) struct KeyValueJson {
    pub key: String,
    pub key_encoding: &'static str,
    pub value: Option<String>,
    pub value_encoding: Option<&'static str>,
}

impl KeyValueJson {
    pub fn new(key: &[u8], value: Option<&[u8]>, enc: Encoding) -> Self {
        let (key, key_encoding) = enc.encode(key);
        let (value, value_encoding) = value.map(|v| enc.encode(v)).unzip();
        KeyValueJson {
            key,
            key_encoding,
            value,
            value_encoding,
        }
    }
}

/// One operation of a batch.
#[derive(Serialize)]
pub(crate) struct OpJson {
    pub seqno: SeqNo,
    pub kind: &'static str,
    #[serde(flatten)]
    pub entry: KeyValueJson,
}

/// One batch of the change feed: the `data:` of one SSE event.
#[derive(Serialize)]
pub(crate) struct BatchJson {
    pub first_seqno: SeqNo,
    pub last_seqno: SeqNo,
    pub commit_time_us: u64,
    pub commit_time: String,
    pub ops: Vec<OpJson>,
}

impl BatchJson {
    /// The batch's operations numbered `min_seqno` or more (all of them past a resume point).
    pub fn new(batch: &ChangeBatch, min_seqno: SeqNo, enc: Encoding) -> Self {
        let ops = batch
            .ops
            .iter()
            .filter(|(seqno, _)| *seqno >= min_seqno)
            .map(|(seqno, op)| op_json(*seqno, op, enc))
            .collect();
        BatchJson {
            first_seqno: batch.first_seqno,
            last_seqno: batch.last_seqno,
            commit_time_us: batch.commit_time_us,
            commit_time: alluvium::inspect::utc_time(batch.commit_time_us),
            ops,
        }
    }
}

fn op_json(seqno: SeqNo, op: &Op, enc: Encoding) -> OpJson {
    let (kind, value) = match op.kind() {
        ValueKind::Put => ("put", Some(op.value())),
        ValueKind::Delete => ("delete", None),
    };
    OpJson {
        seqno,
        kind,
        entry: KeyValueJson::new(op.key(), value, enc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_text_for_utf8_and_base64_otherwise() {
        assert_eq!(Encoding::Auto.encode(b"user:1"), ("user:1".into(), "utf8"));
        assert_eq!(
            Encoding::Auto.encode(b"\xff\x00"),
            ("/wA=".into(), "base64")
        );
        assert_eq!(Encoding::Hex.encode(b"\xff\x00"), ("ff00".into(), "hex"));
        assert_eq!(Encoding::Base64.encode(b"a"), ("YQ==".into(), "base64"));
    }
}
