//! Whole-file tests: write a segment, open it, read it back, damage it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::error::{Error, Result};
use crate::key::{compare_internal, internal_key, ValueKind};
use crate::options::{Compression, Options};

type Entry = (Vec<u8>, Vec<u8>);

/// A small deterministic generator so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn user_key(i: u64) -> Vec<u8> {
    format!("user-{i:06}").into_bytes()
}

/// `n` user keys with even indexes only (odd ones are "missing"); every 7th key has three
/// versions, every 5th version is a tombstone. Sorted by internal key.
fn model(n: u64) -> Vec<Entry> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let mut seqno = 1;
    for i in (0..n).map(|i| i * 2) {
        let versions = if i % 7 == 0 { 3 } else { 1 };
        let mut group = Vec::new();
        for _ in 0..versions {
            seqno += 1;
            let kind = if seqno % 5 == 0 {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let value = match kind {
                ValueKind::Delete => Vec::new(),
                ValueKind::Put => value_for(&mut rng, seqno),
            };
            group.push((internal_key(&user_key(i), seqno, kind), value));
        }
        group.reverse(); // newest version first
        out.extend(group);
    }
    out
}

fn value_for(rng: &mut XorShift, seqno: u64) -> Vec<u8> {
    let len = (rng.next() % 100) as usize;
    // Half text (compressible), half noise, so some blocks compress and some do not.
    let mut v = format!("value-{seqno}-").repeat(1 + len / 10).into_bytes();
    v.extend((0..len).map(|_| rng.next() as u8));
    v
}

fn opts(compression: Compression) -> Options {
    Options::default()
        .block_size_bytes(512)
        .block_restart_interval(4)
        .compression(compression)
}

fn write(path: &Path, opts: &Options, entries: &[Entry]) -> Result<SegmentMeta> {
    let mut w = SegmentWriter::create(path, opts)?;
    for (k, v) in entries {
        w.add(k, v)?;
    }
    assert_eq!(w.entry_count(), entries.len() as u64);
    w.finish()
}

fn write_and_open(dir: &Path, opts: &Options, entries: &[Entry]) -> (PathBuf, Arc<Segment>) {
    let path = dir.join("000001.seg");
    write(&path, opts, entries).expect("write");
    let seg = Segment::open(&path, 1).expect("open");
    (path, Arc::new(seg))
}

fn collect(iter: impl Iterator<Item = Result<Entry>>) -> Vec<Entry> {
    iter.map(|e| e.expect("entry")).collect()
}

#[test]
fn thousands_of_entries_round_trip_across_many_blocks_with_each_compression() {
    let entries = model(3000);
    for compression in [Compression::None, Compression::Snappy] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.seg");
        let meta = write(&path, &opts(compression), &entries).unwrap();
        let seg = Arc::new(Segment::open(&path, 1).unwrap());
        assert!(seg.data_block_handles().len() > 50);
        assert_eq!(
            collect(seg.range(Bound::Unbounded, Bound::Unbounded)),
            entries
        );
        assert_eq!(seg.meta(), meta);
        assert_eq!(meta.size_bytes, std::fs::metadata(&path).unwrap().len());
        let p = seg.properties();
        assert_eq!(p.entry_count, entries.len() as u64);
        assert_eq!(
            p.tombstone_count,
            entries.iter().filter(|e| e.0[e.0.len() - 8] == 0).count() as u64
        );
        assert_eq!(p.data_block_count, seg.data_block_handles().len() as u64);
        assert_eq!(
            (p.smallest.as_slice(), p.compression),
            (entries[0].0.as_slice(), compression)
        );
        let blocks: Vec<Entry> = seg
            .data_block_handles()
            .into_iter()
            .flat_map(|h| seg.read_block_entries(h).unwrap())
            .collect();
        assert_eq!(blocks, entries);
    }
}

#[test]
fn snappy_shrinks_compressible_data_blocks() {
    let entries = model(3000);
    let dir = tempfile::tempdir().unwrap();
    let (_, raw) = write_and_open(dir.path(), &opts(Compression::None), &entries);
    let dir2 = tempfile::tempdir().unwrap();
    let (_, snappy) = write_and_open(dir2.path(), &opts(Compression::Snappy), &entries);
    assert!(snappy.properties().data_bytes < raw.properties().data_bytes);
}

/// The model's answer to `get(user_key, snapshot)`.
fn model_get(entries: &[Entry], user: &[u8], snapshot: u64) -> Option<(u64, ValueKind, Vec<u8>)> {
    entries.iter().find_map(|(k, v)| {
        let p = crate::key::parse_internal_key(k)?;
        (p.user_key == user && p.seqno <= snapshot).then(|| (p.seqno, p.kind, v.clone()))
    })
}

#[test]
fn get_returns_the_newest_version_visible_at_each_snapshot() {
    let entries = model(500);
    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let seqno_max = seg.properties().seqno_max;
    let mut checked_older = 0;
    for i in (0..500).map(|i| i * 2) {
        let uk = user_key(i);
        for snapshot in [0, 1, seqno_max / 3, seqno_max / 2, seqno_max, u64::MAX] {
            let want = model_get(&entries, &uk, snapshot);
            assert_eq!(
                seg.get(&uk, snapshot).unwrap(),
                want,
                "key {i} at {snapshot}"
            );
        }
        // Every version of a multi-version key is reachable with a snapshot at its seqno.
        for (k, v) in entries
            .iter()
            .filter(|(k, _)| crate::key::user_key(k) == uk)
        {
            let p = crate::key::parse_internal_key(k).unwrap();
            assert_eq!(
                seg.get(&uk, p.seqno).unwrap(),
                Some((p.seqno, p.kind, v.clone()))
            );
            checked_older += 1;
        }
    }
    assert!(checked_older > 500);
}

#[test]
fn get_on_missing_keys_returns_none_with_and_without_a_filter() {
    let entries = model(500);
    for bits in [0, 10] {
        let dir = tempfile::tempdir().unwrap();
        let (_, seg) = write_and_open(
            dir.path(),
            &opts(Compression::None).bloom_bits_per_key(bits),
            &entries,
        );
        for missing in [
            b"".to_vec(),
            b"a".to_vec(),
            user_key(1),
            user_key(499),
            user_key(999_999),
            b"zzz".to_vec(),
        ] {
            assert_eq!(seg.get(&missing, u64::MAX).unwrap(), None);
        }
        assert!(seg.get(&user_key(0), u64::MAX).unwrap().is_some());
    }
}

#[test]
fn bloom_false_positive_rate_is_at_most_two_percent_at_ten_bits_per_key() {
    let entries = model(5000);
    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    assert!((0..5000).all(|i| seg.may_contain(&user_key(i * 2))));
    let absent = (0..5000)
        .filter(|i| seg.may_contain(&user_key(i * 2 + 1)))
        .count();
    assert!(absent <= 100, "{absent} false positives out of 5000");
}

#[test]
fn a_disabled_filter_may_contain_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = write_and_open(
        dir.path(),
        &opts(Compression::None).bloom_bits_per_key(0),
        &model(50),
    );
    assert!((0..100).all(|i| seg.may_contain(&user_key(i))));
}

fn in_range(k: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let above_lower = match lower {
        Bound::Included(b) => compare_internal(k, b).is_ge(),
        Bound::Excluded(b) => compare_internal(k, b).is_gt(),
        Bound::Unbounded => true,
    };
    let below_upper = match upper {
        Bound::Included(b) => compare_internal(k, b).is_le(),
        Bound::Excluded(b) => compare_internal(k, b).is_lt(),
        Bound::Unbounded => true,
    };
    above_lower && below_upper
}

/// Bound keys: present entries, keys between entries, and keys beyond both ends.
fn bound_keys(entries: &[Entry]) -> Vec<Vec<u8>> {
    let mut keys = vec![
        internal_key(b"", 0, ValueKind::Delete),
        internal_key(b"zzz", 1, ValueKind::Put),
    ];
    for i in [0, 1, 2, 57, 58, 300, entries.len() - 2, entries.len() - 1] {
        keys.push(entries[i].0.clone());
    }
    for i in [0, 13, 200, 399, 401] {
        keys.push(internal_key(&user_key(i), 5, ValueKind::Put));
    }
    keys
}

fn all_bounds(keys: &[Vec<u8>]) -> Vec<Bound<Vec<u8>>> {
    let mut out = vec![Bound::Unbounded];
    for k in keys {
        out.push(Bound::Included(k.clone()));
        out.push(Bound::Excluded(k.clone()));
    }
    out
}

#[test]
fn range_matches_a_model_forward_and_reverse_for_every_bound_kind() {
    let entries = model(400);
    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let bounds = all_bounds(&bound_keys(&entries));
    let mut nonempty = 0;
    for lower in &bounds {
        for upper in &bounds {
            let want: Vec<Entry> = entries
                .iter()
                .filter(|(k, _)| in_range(k, lower, upper))
                .cloned()
                .collect();
            let forward = collect(seg.range(lower.clone(), upper.clone()));
            assert_eq!(forward, want, "forward {lower:?}..{upper:?}");
            let mut reverse = collect(seg.range(lower.clone(), upper.clone()).rev());
            reverse.reverse();
            assert_eq!(reverse, want, "reverse {lower:?}..{upper:?}");
            nonempty += usize::from(!want.is_empty());
        }
    }
    assert!(nonempty > 100);
}

#[test]
fn front_and_back_cursors_each_walk_the_whole_range_independently() {
    let entries = model(200);
    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = write_and_open(dir.path(), &opts(Compression::None), &entries);
    let lower = Bound::Included(entries[10].0.clone());
    let upper = Bound::Excluded(entries[150].0.clone());
    let want = &entries[10..150];
    let mut iter = seg.range(lower, upper);
    let mut front = Vec::new();
    let mut back = Vec::new();
    loop {
        let f = iter.next().map(|e| e.unwrap());
        let b = iter.next_back().map(|e| e.unwrap());
        if f.is_none() && b.is_none() {
            break;
        }
        front.extend(f);
        back.extend(b);
    }
    back.reverse();
    assert_eq!((front.as_slice(), back.as_slice()), (want, want));
}

#[test]
fn keys_out_of_order_or_duplicated_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(&dir.path().join("1.seg"), &Options::default()).unwrap();
    w.add(&internal_key(b"b", 5, ValueKind::Put), b"v").unwrap();
    for bad in [
        internal_key(b"a", 9, ValueKind::Put),
        internal_key(b"b", 5, ValueKind::Put),
        internal_key(b"b", 6, ValueKind::Put),
    ] {
        assert!(matches!(w.add(&bad, b"v"), Err(Error::InvalidArgument(_))));
    }
    assert!(matches!(
        w.add(b"short", b"v"),
        Err(Error::InvalidArgument(_))
    ));
    w.add(&internal_key(b"b", 4, ValueKind::Delete), b"")
        .unwrap();
    assert_eq!(w.finish().unwrap().tombstone_count, 1);
}

#[test]
fn finishing_an_empty_segment_fails_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.seg");
    let w = SegmentWriter::create(&path, &Options::default()).unwrap();
    assert!(matches!(w.finish(), Err(Error::InvalidArgument(_))));
    assert!(!path.exists());
}

#[test]
fn create_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.seg");
    std::fs::write(&path, b"x").unwrap();
    assert!(matches!(
        SegmentWriter::create(&path, &Options::default()),
        Err(Error::Io { .. })
    ));
}

/// Writes a fresh segment, applies `damage` to its bytes and returns the path.
fn damaged(dir: &Path, damage: impl FnOnce(&mut Vec<u8>, &Segment)) -> PathBuf {
    let (path, seg) = write_and_open(dir, &opts(Compression::None), &model(300));
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes, &seg);
    drop(seg);
    let out = dir.join("damaged.seg");
    std::fs::write(&out, bytes).unwrap();
    out
}

fn assert_corruption_naming(err: Error, path: &Path, words: &str) {
    match &err {
        Error::Corruption {
            path: p, detail, ..
        } => {
            assert_eq!(p, path);
            assert!(
                detail.contains(words),
                "{detail:?} should mention {words:?}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

fn footer_of(bytes: &[u8]) -> format::Footer {
    let raw: [u8; format::FOOTER_LEN] = bytes[bytes.len() - format::FOOTER_LEN..]
        .try_into()
        .unwrap();
    format::Footer::decode(&raw).unwrap()
}

/// A segment whose fourth data block has a flipped byte: its path, that block's handle and
/// the first internal key stored in it.
fn with_damaged_data_block(dir: &Path) -> (PathBuf, BlockHandle, Vec<u8>) {
    let mut target = BlockHandle::default();
    let mut key_in_block = Vec::new();
    let path = damaged(dir, |bytes, seg| {
        target = seg.data_block_handles()[3];
        key_in_block = seg.read_block_entries(target).unwrap()[0].0.clone();
        bytes[(target.offset + target.size_bytes / 2) as usize] ^= 0x10;
    });
    (path, target, key_in_block)
}

#[test]
fn a_flipped_byte_in_a_data_block_is_corruption_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, target, key_in_block) = with_damaged_data_block(dir.path());
    let seg = Arc::new(Segment::open(&path, 1).unwrap());
    let err = seg.read_block_entries(target).unwrap_err();
    assert!(matches!(err, Error::Corruption { offset, .. } if offset == target.offset));
    assert_corruption_naming(err, &path, "checksum");
    let results: Vec<_> = seg.range(Bound::Unbounded, Bound::Unbounded).collect();
    let err = results
        .into_iter()
        .find_map(|r| r.err())
        .expect("iteration reports the damage");
    assert_corruption_naming(err, &path, "checksum");
    // A get that lands in the damaged block fails rather than silently missing the key.
    let err = seg
        .get(crate::key::user_key(&key_in_block), u64::MAX)
        .unwrap_err();
    assert_corruption_naming(err, &path, "checksum");
}

#[test]
fn a_flipped_byte_in_the_index_is_corruption_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = damaged(dir.path(), |bytes, _| {
        let index = footer_of(bytes).index;
        bytes[(index.offset + 7) as usize] ^= 0x01;
    });
    assert_corruption_naming(Segment::open(&path, 1).unwrap_err(), &path, "checksum");
}

#[test]
fn a_flipped_byte_in_the_footer_is_corruption_on_open() {
    for at in [1, 20, 49, 53] {
        let dir = tempfile::tempdir().unwrap();
        let path = damaged(dir.path(), |bytes, _| {
            let n = bytes.len();
            bytes[n - format::FOOTER_LEN + at] ^= 0x40;
        });
        assert_corruption_naming(Segment::open(&path, 1).unwrap_err(), &path, "checksum");
    }
}

#[test]
fn flipped_bytes_anywhere_in_the_metadata_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, seg) = write_and_open(dir.path(), &opts(Compression::Snappy), &model(30));
    drop(seg);
    let clean = std::fs::read(&path).unwrap();
    let meta_start = footer_of(&clean).filter.offset as usize;
    for at in meta_start..clean.len() {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x04;
        let out = dir.path().join(format!("flip-{at}.seg"));
        std::fs::write(&out, &bytes).unwrap();
        let err = Segment::open(&out, 1).expect_err("every metadata byte is checksummed");
        assert!(err.is_corruption(), "byte {at}: {err:?}");
    }
}

#[test]
fn a_truncated_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (path, seg) = write_and_open(dir.path(), &opts(Compression::None), &model(100));
    drop(seg);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [0, 10, 63, 64, bytes.len() / 2, bytes.len() - 1] {
        let out = dir.path().join(format!("cut-{keep}.seg"));
        std::fs::write(&out, &bytes[..keep]).unwrap();
        let err = Segment::open(&out, 1).unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { path, .. } if path == &out),
            "{keep}: {err:?}"
        );
    }
}

#[test]
fn a_foreign_file_is_corruption_mentioning_the_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.seg");
    let mut rng = XorShift(42);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    assert_corruption_naming(Segment::open(&path, 1).unwrap_err(), &path, "magic");
}

#[test]
fn a_newer_format_version_is_corruption_naming_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = damaged(dir.path(), |bytes, _| {
        let n = bytes.len();
        let mut footer = footer_of(bytes);
        footer.format_version = 2;
        bytes[n - format::FOOTER_LEN..].copy_from_slice(&footer.encode());
    });
    assert_corruption_naming(Segment::open(&path, 1).unwrap_err(), &path, "version 2");
}

/// Prints the worked example of `FORMAT.md`:
/// `cargo test --lib segment::tests::print_worked_example -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000007.seg");
    let entries = vec![
        (internal_key(b"apple", 2, ValueKind::Put), b"red".to_vec()),
        (internal_key(b"apricot", 1, ValueKind::Delete), Vec::new()),
    ];
    write(
        &path,
        &Options::default()
            .compression(Compression::None)
            .bloom_bits_per_key(10),
        &entries,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        println!("{:08x}  {:<47}  |{text}|", i * 16, hex.join(" "));
    }
    println!("{:?}", footer_of(&bytes));
}

/// Resident KiB of this process's mapping of `path` (`Rss:` in `/proc/self/smaps`).
fn mapped_rss_kib(path: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut lines = smaps.lines().skip_while(|l| !l.ends_with(name));
    lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .map(|v| v.trim().trim_end_matches(" kB").parse().unwrap())
        .expect("the segment is mapped")
}

#[test]
#[cfg(target_os = "linux")]
fn reading_every_block_leaves_almost_none_of_the_file_resident() {
    let entries = model(40_000);
    let dir = tempfile::tempdir().unwrap();
    let (path, seg) = write_and_open(dir.path(), &opts(Compression::None), &entries);
    let file_kib = std::fs::metadata(&path).unwrap().len() / 1024;
    assert!(file_kib > 3 * 1024, "{file_kib} KiB is too small to show");

    // Open verified the filter, index, properties and footer, then released them.
    let opened = mapped_rss_kib(&path);
    assert!(opened <= 128, "open left {opened} KiB mapped");
    // Data blocks are read with pread, not through the map: a full scan and a lookup of
    // every key leave no more mapped than the filter they probe.
    assert_eq!(
        collect(seg.range(Bound::Unbounded, Bound::Unbounded)),
        entries
    );
    for (ikey, _) in entries.iter().step_by(7) {
        let user_key = crate::key::user_key(ikey);
        let got = seg.get(user_key, crate::key::SEQNO_MAX).unwrap();
        assert_eq!(got, model_get(&entries, user_key, crate::key::SEQNO_MAX));
    }
    // The filter: about 10 bits a key, 50 KB here, plus what fault-around maps beside it.
    let after = mapped_rss_kib(&path);
    assert!(
        after <= opened + 192,
        "reads left {after} KiB of a {file_kib} KiB file mapped"
    );
}

fn cached(path: &Path, id: u64, cache: &Arc<BlockCache>) -> Arc<Segment> {
    Arc::new(Segment::open_cached(path, id, Some(Arc::clone(cache))).unwrap())
}

/// Every read a user makes of a segment: a forward and a reverse scan and a lookup of every
/// third key, present or not.
fn read_everything(seg: &Arc<Segment>, entries: &[Entry]) {
    assert_eq!(
        collect(seg.range(Bound::Unbounded, Bound::Unbounded)),
        entries
    );
    let mut reversed = entries.to_vec();
    reversed.reverse();
    assert_eq!(
        collect(seg.range(Bound::Unbounded, Bound::Unbounded).rev()),
        reversed
    );
    for i in (0..entries.len() as u64 * 2).step_by(3) {
        let user = user_key(i);
        let got = seg.get(&user, crate::key::SEQNO_MAX).unwrap();
        assert_eq!(got, model_get(entries, &user, crate::key::SEQNO_MAX), "{i}");
    }
}

#[test]
fn a_cached_segment_reads_what_an_uncached_one_does_and_hits_once_blocks_are_admitted() {
    let entries = model(3000);
    for compression in [Compression::None, Compression::Snappy] {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_and_open(dir.path(), &opts(compression), &entries);
        let cache = Arc::new(BlockCache::new(64 << 20));
        let seg = cached(&path, 1, &cache);
        let blocks = seg.data_block_handles().len() as u64;

        // The forward scan misses every block once; the reverse scan misses each again and
        // so admits it (the doorkeeper in cache.rs); the lookups hit.
        read_everything(&seg, &entries);
        let misses = cache.misses();
        assert!(
            misses > blocks && misses <= 2 * blocks,
            "{misses} misses, {blocks} blocks"
        );
        assert!(cache.used_bytes() > 0);
        let hits = cache.hits();
        read_everything(&seg, &entries);
        assert_eq!(
            cache.misses(),
            misses,
            "the second pass reads no block from the file"
        );
        assert!(cache.hits() > hits + 2 * blocks);
    }
}

#[test]
fn a_block_is_cached_on_its_second_miss_not_its_first() {
    let entries = model(2000);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let seg = cached(&path, 1, &cache);
    let blocks = seg.data_block_handles().len() as u64;
    let scan = || collect(seg.range(Bound::Unbounded, Bound::Unbounded));
    assert_eq!(scan(), entries);
    // A few doorkeeper false positives at most: the bits of about 500 blocks among 64K
    // (under 1% of the blocks expected; the keys depend on the order tests open files in).
    let admitted_early = cache.used_bytes();
    assert_eq!(scan(), entries);
    let full = cache.used_bytes();
    assert!(full > blocks * 256, "every block cached after two reads");
    assert!(
        admitted_early * 20 < full,
        "{admitted_early} of {full} bytes cached after one read"
    );
    let hits = cache.hits();
    assert_eq!(scan(), entries);
    assert_eq!(cache.hits(), hits + blocks);
}

#[test]
fn an_iterator_that_does_not_fill_the_cache_uses_it_but_adds_nothing() {
    let entries = model(2000);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let seg = cached(&path, 1, &cache);
    let all = || {
        seg.range(Bound::Unbounded, Bound::Unbounded)
            .fill_cache(false)
    };
    assert_eq!(collect(all()), entries);
    assert_eq!((cache.used_bytes(), cache.hits()), (0, 0));
    // Blocks a reader cached are used by the compaction-style iterator too.
    let first = seg.data_block_handles()[0];
    let key = seg.read_block_entries(first).unwrap()[0].0.clone();
    for _ in 0..2 {
        seg.get(crate::key::user_key(&key), crate::key::SEQNO_MAX)
            .unwrap();
    }
    let held = cache.used_bytes();
    assert!(held > 0);
    assert_eq!(collect(all()), entries);
    assert_eq!((cache.used_bytes(), cache.hits()), (held, 1));
}

#[test]
fn a_dropped_segment_takes_its_blocks_out_of_the_cache() {
    let entries = model(2000);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let seg = cached(&path, 1, &cache);
    read_everything(&seg, &entries);
    assert!(cache.used_bytes() > 0);
    drop(seg);
    assert_eq!(cache.used_bytes(), 0);
}

#[test]
fn two_files_with_the_same_id_in_one_cache_never_see_each_others_blocks() {
    // Two databases sharing a cache both have a segment 1; so does a file reopened after it
    // was rewritten. Blocks are keyed by the opening, not by the id.
    let (a, b) = (model(2000), model(2100));
    let b: Vec<Entry> = b
        .into_iter()
        .map(|(k, v)| (k, [&v[..], b"-b"].concat()))
        .collect();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (path_a, _) = write_and_open(dir_a.path(), &opts(Compression::Snappy), &a);
    let (path_b, _) = write_and_open(dir_b.path(), &opts(Compression::Snappy), &b);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let (seg_a, seg_b) = (cached(&path_a, 1, &cache), cached(&path_b, 1, &cache));
    for _ in 0..2 {
        read_everything(&seg_a, &a);
        read_everything(&seg_b, &b);
    }
    assert!(cache.hits() > 0);
}

#[test]
fn a_small_cache_stays_within_its_capacity_and_still_reads_correctly() {
    let entries = model(6000);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_and_open(dir.path(), &opts(Compression::Snappy), &entries);
    let cache = Arc::new(BlockCache::new(16 << 10));
    let seg = cached(&path, 1, &cache);
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(
        file > 8 * (16 << 10),
        "the file must be much larger than the cache"
    );
    read_everything(&seg, &entries);
    assert!(
        cache.used_bytes() <= 16 << 10,
        "{} bytes held",
        cache.used_bytes()
    );
}

#[test]
fn a_damaged_block_is_never_cached_and_fails_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, key_in_block) = with_damaged_data_block(dir.path());
    let cache = Arc::new(BlockCache::new(64 << 20));
    let seg = cached(&path, 1, &cache);
    for _ in 0..2 {
        let err = seg
            .get(crate::key::user_key(&key_in_block), u64::MAX)
            .unwrap_err();
        assert_corruption_naming(err, &path, "checksum");
        assert_eq!(cache.used_bytes(), 0);
    }
}
