//! Verifying segments: every block, every entry, the properties, and the manifest's record.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::Checker;
use crate::error::Error;
use crate::files::{self, FileKind};
use crate::key::{self, SeqNo, ValueKind};
use crate::manifest::ManifestState;
use crate::segment::format::{Footer, FOOTER_LEN};
use crate::segment::{Segment, SegmentMeta};

/// Checks every segment of a directory. With the manifest's state, a segment it names must
/// exist and match its record, and a segment it does not name is a leftover open removes.
pub(super) fn check_all(
    c: &mut Checker<'_>,
    dir: &Path,
    listing: &[FileKind],
    state: Option<&ManifestState>,
) {
    let named: BTreeMap<u64, &SegmentMeta> = state
        .into_iter()
        .flat_map(|s| s.levels.iter().flatten())
        .map(|a| (a.id, &a.meta))
        .collect();
    for &id in named.keys() {
        let path = files::segment_path(dir, id);
        // A live database may have flushed it after the directory was listed.
        if !listing.contains(&FileKind::Segment(id)) && !path.exists() {
            c.error(&path, 0, "segment named by the manifest is missing");
        }
    }
    for &kind in listing {
        let FileKind::Segment(id) = kind else {
            continue;
        };
        let path = files::segment_path(dir, id);
        match (state, named.get(&id)) {
            (Some(_), None) => c.warn(&path, 0, "segment not named by the manifest (a flush or compaction that did not finish); the next open removes it"),
            (_, recorded) => {
                let found = check(c, &path);
                if let (Some(found), Some(recorded)) = (found, recorded) {
                    compare_with_manifest(c, &path, &found, recorded);
                }
            }
        }
        c.done(&path);
    }
}

/// Checks one segment: footer, properties, index and filter (by opening it), then every data
/// block and entry, then the properties against what the entries add up to. Returns the
/// segment's metadata when it opens.
pub(super) fn check(c: &mut Checker<'_>, path: &Path) -> Option<SegmentMeta> {
    let segment = Segment::open(path, 0).map_err(|e| c.absorb(path, e)).ok()?;
    let mut walk = EntryWalk::new();
    let handles = segment.data_block_handles();
    for &handle in &handles {
        match segment.read_block_entries(handle) {
            Ok(entries) => walk.block(c, &segment, handle.offset, &entries),
            Err(e) => {
                walk.complete = false;
                c.absorb(path, e);
            }
        }
    }
    if walk.complete {
        let data_bytes = crate::inspect::segment::data_bytes(&handles);
        walk.compare(c, &segment, data_bytes);
    }
    Some(segment.meta())
}

fn compare_with_manifest(
    c: &mut Checker<'_>,
    path: &Path,
    found: &SegmentMeta,
    recorded: &SegmentMeta,
) {
    if found.size_bytes != recorded.size_bytes {
        let detail = format!(
            "segment is {} bytes; the manifest says {}",
            found.size_bytes, recorded.size_bytes
        );
        c.error(path, 0, detail);
    } else if found != recorded {
        c.error(
            path,
            0,
            "the properties disagree with the manifest's record of this segment",
        );
    }
}

/// What the entries of a segment add up to, checked against its properties at the end.
struct EntryWalk {
    /// False once a block could not be read: the totals are then partial.
    complete: bool,
    first: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
    entries: u64,
    tombstones: u64,
    key_bytes: u64,
    value_bytes: u64,
    seqno_min: SeqNo,
    seqno_max: SeqNo,
}

impl EntryWalk {
    fn new() -> Self {
        EntryWalk {
            complete: true,
            first: None,
            last: None,
            entries: 0,
            tombstones: 0,
            key_bytes: 0,
            value_bytes: 0,
            seqno_min: SeqNo::MAX,
            seqno_max: 0,
        }
    }

    /// Checks the entries of one block, stopping at the block's first bad entry.
    fn block(
        &mut self,
        c: &mut Checker<'_>,
        seg: &Segment,
        offset: u64,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) {
        for (ikey, value) in entries {
            if let Err(detail) = self.entry(seg, ikey, value) {
                self.complete = false;
                return c.error(seg.path(), offset, detail);
            }
        }
    }

    fn entry(&mut self, seg: &Segment, ikey: &[u8], value: &[u8]) -> Result<(), String> {
        let parsed =
            key::parse_internal_key(ikey).ok_or("entry key is not a valid internal key")?;
        let ordered = self
            .last
            .as_deref()
            .is_none_or(|prev| key::compare_internal(prev, ikey).is_lt());
        if !ordered {
            return Err("entries are not in strictly increasing key order".to_string());
        }
        if parsed.kind == ValueKind::Delete && !value.is_empty() {
            return Err("a tombstone carries a value".to_string());
        }
        if !seg.may_contain(parsed.user_key) {
            return Err("the bloom filter does not contain a key the segment holds".to_string());
        }
        self.entries += 1;
        self.tombstones += u64::from(parsed.kind == ValueKind::Delete);
        self.key_bytes += ikey.len() as u64;
        self.value_bytes += value.len() as u64;
        self.seqno_min = self.seqno_min.min(parsed.seqno);
        self.seqno_max = self.seqno_max.max(parsed.seqno);
        self.first.get_or_insert_with(|| ikey.to_vec());
        self.last = Some(ikey.to_vec());
        Ok(())
    }

    /// The properties must be what the entries add up to.
    fn compare(&self, c: &mut Checker<'_>, seg: &Segment, data_bytes: u64) {
        let p = seg.properties();
        let numbers = [
            ("entry_count", p.entry_count, self.entries),
            ("tombstone_count", p.tombstone_count, self.tombstones),
            ("raw_key_bytes", p.raw_key_bytes, self.key_bytes),
            ("raw_value_bytes", p.raw_value_bytes, self.value_bytes),
            ("seqno_min", p.seqno_min, self.seqno_min),
            ("seqno_max", p.seqno_max, self.seqno_max),
            ("data_bytes", p.data_bytes, data_bytes),
        ];
        let offset = properties_offset(seg.path());
        for (name, recorded, found) in numbers {
            if recorded != found {
                let detail =
                    format!("properties say {name} {recorded}; the data blocks hold {found}");
                c.error(seg.path(), offset, detail);
            }
        }
        if self.first.as_ref() != Some(&p.smallest) || self.last.as_ref() != Some(&p.largest) {
            c.error(
                seg.path(),
                offset,
                "properties' smallest or largest key is not the first or last entry",
            );
        }
    }
}

/// Where the properties block starts (0 if the footer cannot be read again).
fn properties_offset(path: &Path) -> u64 {
    read_footer(path).map_or(0, |f| f.properties.offset)
}

fn read_footer(path: &Path) -> Result<Footer, Error> {
    let mut raw = [0u8; FOOTER_LEN];
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::End(-(FOOTER_LEN as i64)))
        .and_then(|_| file.read_exact(&mut raw))
        .map_err(|e| Error::io(path, e))?;
    Footer::decode(&raw).map_err(|detail| Error::corruption(path, 0, detail))
}
