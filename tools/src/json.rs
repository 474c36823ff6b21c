//! The JSON records every command prints with `--json`, one object per line. Field names are
//! stable and documented in the README ("JSON output").

use alluvium::inspect::DecodedKey;
use alluvium::ValueKind;
use serde::Serialize;

use crate::output::OutputArgs;

/// `put` or `delete`.
pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Put => "put",
        ValueKind::Delete => "delete",
    }
}

/// An internal key: user key, sequence number, kind.
#[derive(Serialize)]
pub struct KeyJson {
    pub key: String,
    pub seqno: u64,
    pub kind: &'static str,
}

impl KeyJson {
    /// The parts of an encoded internal key; `None` if it does not decode.
    pub fn from_internal(ikey: &[u8], out: &OutputArgs) -> Option<KeyJson> {
        let parsed = DecodedKey::parse(ikey)?;
        Some(KeyJson {
            key: out.key(&parsed.user_key),
            seqno: parsed.seqno,
            kind: kind_name(parsed.kind),
        })
    }
}

/// One entry, of a segment or of a commit log record: `value` is null for a delete.
#[derive(Serialize)]
pub struct EntryJson {
    pub key: String,
    pub seqno: u64,
    pub kind: &'static str,
    pub value: Option<String>,
}

impl EntryJson {
    pub fn new(key: &[u8], seqno: u64, kind: ValueKind, value: &[u8], out: &OutputArgs) -> Self {
        EntryJson {
            key: out.key(key),
            seqno,
            kind: kind_name(kind),
            value: (kind == ValueKind::Put).then(|| out.value(value)),
        }
    }
}

/// A key and its value, as `get` and `scan` print them.
#[derive(Serialize)]
pub struct KeyValueJson {
    pub key: String,
    pub value: Option<String>,
}
