//! Version edits: the records of the manifest.

use crate::coding::{put_bytes, put_varint, Reader};
use crate::files::FILE_NUMBER_MAX;
use crate::key::{SeqNo, SEQNO_MAX};
use crate::segment::{SegmentId, SegmentMeta};

const TAG_LOG_NUMBER: u8 = 1;
const TAG_NEXT_FILE_NUMBER: u8 = 2;
const TAG_LAST_SEQNO: u8 = 3;
const TAG_ADD_SEGMENT: u8 = 4;
const TAG_DELETE_SEGMENT: u8 = 5;
const TAG_SUBSCRIPTION: u8 = 6;
const TAG_SUBSCRIPTION_DELETED: u8 = 7;

/// The longest subscription name a version edit may carry, in bytes.
const SUBSCRIPTION_NAME_MAX: usize = 255;

/// A change to a change-feed subscription, recorded by a version edit (`FORMAT.md`,
/// "Subscriptions").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// Subscription `id` exists, is named `name` and has processed up to `position`: creates
    /// it or moves it.
    Set {
        /// The subscription's id, never reused.
        id: u64,
        /// Its name, 1 to 255 bytes of UTF-8.
        name: String,
        /// The last sequence number it has processed.
        position: SeqNo,
    },
    /// Subscription `id` was deleted.
    Delete {
        /// The subscription's id.
        id: u64,
    },
}

/// A segment a version edit adds to a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedSegment {
    /// The level, 0 for flushed segments.
    pub level: u32,
    /// The segment's file number.
    pub id: SegmentId,
    /// Its size, key range and sequence number range.
    pub meta: SegmentMeta,
}

/// A change to the set of live files and counters, appended to the manifest as one frame.
///
/// Payload layout: a sequence of fields, each a tag byte followed by its body (`FORMAT.md`,
/// "Manifest"). Absent fields leave the value unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// Log files numbered below this hold only flushed data.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file_number: Option<u64>,
    /// The largest sequence number stored in segments.
    pub last_seqno: Option<SeqNo>,
    /// Segments added.
    pub added: Vec<AddedSegment>,
    /// Segments removed, as (level, id).
    pub deleted: Vec<(u32, SegmentId)>,
    /// Subscriptions created, moved or deleted, in order.
    pub subscriptions: Vec<SubscriptionChange>,
}

impl VersionEdit {
    /// Encodes the edit as a frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fields = [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQNO, self.last_seqno),
        ];
        for (tag, v) in fields {
            if let Some(v) = v {
                out.push(tag);
                put_varint(&mut out, v);
            }
        }
        self.added.iter().for_each(|a| encode_added(&mut out, a));
        for (level, id) in &self.deleted {
            out.push(TAG_DELETE_SEGMENT);
            put_varint(&mut out, u64::from(*level));
            put_varint(&mut out, *id);
        }
        self.subscriptions
            .iter()
            .for_each(|c| encode_subscription(&mut out, c));
        out
    }

    /// Decodes a payload; `Err` carries the offset in the payload and what is wrong.
    pub fn decode(payload: &[u8]) -> Result<VersionEdit, (usize, String)> {
        let mut r = Reader::new(payload);
        let mut edit = VersionEdit::default();
        while !r.is_empty() {
            let at = r.pos();
            let tag = r.u8().unwrap_or(0);
            decode_field(&mut r, tag, &mut edit)
                .ok_or_else(|| (at, format!("malformed field with tag {tag}")))?;
        }
        Ok(edit)
    }
}

fn encode_subscription(out: &mut Vec<u8>, change: &SubscriptionChange) {
    match change {
        SubscriptionChange::Set { id, name, position } => {
            out.push(TAG_SUBSCRIPTION);
            put_varint(out, *id);
            put_bytes(out, name.as_bytes());
            put_varint(out, *position);
        }
        SubscriptionChange::Delete { id } => {
            out.push(TAG_SUBSCRIPTION_DELETED);
            put_varint(out, *id);
        }
    }
}

fn decode_subscription(r: &mut Reader) -> Option<SubscriptionChange> {
    let id = file_number(r)?;
    let name = std::str::from_utf8(r.length_prefixed()?).ok()?.to_string();
    if name.is_empty() || name.len() > SUBSCRIPTION_NAME_MAX {
        return None;
    }
    let position = seqno(r)?;
    Some(SubscriptionChange::Set { id, name, position })
}

fn encode_added(out: &mut Vec<u8>, a: &AddedSegment) {
    out.push(TAG_ADD_SEGMENT);
    put_varint(out, u64::from(a.level));
    put_varint(out, a.id);
    let m = &a.meta;
    for v in [
        m.size_bytes,
        m.seqno_min,
        m.seqno_max,
        m.entry_count,
        m.tombstone_count,
    ] {
        put_varint(out, v);
    }
    put_bytes(out, &m.smallest);
    put_bytes(out, &m.largest);
}

/// A file number (also a segment id or a subscription id, which come from the same counter):
/// at most [`FILE_NUMBER_MAX`], so that counting on from it cannot overflow.
fn file_number(r: &mut Reader) -> Option<u64> {
    r.varint().filter(|&n| n <= FILE_NUMBER_MAX)
}

/// A sequence number: at most [`SEQNO_MAX`], like every sequence number alluvium assigns.
fn seqno(r: &mut Reader) -> Option<SeqNo> {
    r.varint().filter(|&s| s <= SEQNO_MAX)
}

fn decode_field(r: &mut Reader, tag: u8, edit: &mut VersionEdit) -> Option<()> {
    match tag {
        TAG_LOG_NUMBER => edit.log_number = Some(file_number(r)?),
        TAG_NEXT_FILE_NUMBER => edit.next_file_number = Some(file_number(r)?),
        TAG_LAST_SEQNO => edit.last_seqno = Some(seqno(r)?),
        TAG_ADD_SEGMENT => edit.added.push(decode_added(r)?),
        TAG_DELETE_SEGMENT => edit.deleted.push((level(r)?, file_number(r)?)),
        TAG_SUBSCRIPTION => edit.subscriptions.push(decode_subscription(r)?),
        TAG_SUBSCRIPTION_DELETED => edit.subscriptions.push(SubscriptionChange::Delete {
            id: file_number(r)?,
        }),
        _ => return None,
    }
    Some(())
}

fn level(r: &mut Reader) -> Option<u32> {
    let l = u32::try_from(r.varint()?).ok()?;
    ((l as usize) < crate::manifest::LEVELS).then_some(l)
}

fn decode_added(r: &mut Reader) -> Option<AddedSegment> {
    let level = level(r)?;
    let id = file_number(r)?;
    let meta = SegmentMeta {
        size_bytes: r.varint()?,
        seqno_min: seqno(r)?,
        seqno_max: seqno(r)?,
        entry_count: r.varint()?,
        tombstone_count: r.varint()?,
        smallest: r.length_prefixed()?.to_vec(),
        largest: r.length_prefixed()?.to_vec(),
    };
    Some(AddedSegment { level, id, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip_and_unknown_tags_are_rejected() {
        let meta = SegmentMeta {
            size_bytes: 4096,
            smallest: b"a\x01\0\0\0\0\0\0\0".to_vec(),
            largest: b"z\x01\x02\0\0\0\0\0\0".to_vec(),
            seqno_min: 1,
            seqno_max: 2,
            entry_count: 2,
            tombstone_count: 0,
        };
        let edit = VersionEdit {
            log_number: Some(3),
            next_file_number: Some(9),
            last_seqno: Some(2),
            added: vec![AddedSegment {
                level: 0,
                id: 7,
                meta,
            }],
            deleted: vec![(1, 4)],
            subscriptions: vec![
                SubscriptionChange::Set {
                    id: 12,
                    name: "search-index".into(),
                    position: 41,
                },
                SubscriptionChange::Delete { id: 10 },
            ],
        };
        let bytes = edit.encode();
        assert_eq!(VersionEdit::decode(&bytes), Ok(edit));
        let mut bad = bytes.clone();
        bad[0] = 99;
        assert!(VersionEdit::decode(&bad).is_err());
        assert!(VersionEdit::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
