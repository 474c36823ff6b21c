//! Damage to a segment, the manifest or `CURRENT` is reported as `Error::Corruption` naming the
//! damaged file, never as a panic, a wrong answer or a silent success.
//!
//! A segment's metadata (filter, index, properties, footer) is checked when it is opened, so
//! damage there fails `Db::open`; data blocks are checked when they are read, so damage there
//! fails the read that touches the block.
use std::path::{Path, PathBuf};

use alluvium::files::{self, FileKind};
use alluvium::segment::format::{BlockHandle, Footer, BLOCK_TRAILER_LEN, FOOTER_LEN};
use alluvium::segment::Segment;
use alluvium::{Db, Error, Options, Result};

const KEYS: usize = 600;

fn key(i: usize) -> String {
    format!("key{i:04}")
}

fn value(i: usize) -> String {
    format!("value {i} {}", "x".repeat(i % 40))
}

/// A database whose data all sits in one segment; the commit log holds nothing.
fn flushed_db() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for i in 0..KEYS {
        db.put(key(i), value(i))?;
    }
    db.flush()?;
    assert_eq!(db.stats().levels[0].segments, 1);
    db.close()?;
    Ok(dir)
}

fn only_segment(dir: &Path) -> Result<(u64, PathBuf)> {
    let segments: Vec<u64> = files::list(dir)?
        .into_iter()
        .filter_map(|k| match k {
            FileKind::Segment(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    Ok((segments[0], files::segment_path(dir, segments[0])))
}

fn manifest(dir: &Path) -> Result<PathBuf> {
    alluvium::manifest::read_current(dir)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write")
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x10;
    out
}

fn is_corruption_of(e: &Error, expected: &Path) -> bool {
    matches!(e, Error::Corruption { path, .. } if path == expected)
}

fn assert_open_fails_naming(dir: &Path, expected: &Path, what: &str) {
    match Db::open(dir, Options::default()) {
        Err(e) => assert!(
            is_corruption_of(&e, expected),
            "{what}: expected corruption of {}, got {e:?}",
            expected.display()
        ),
        Ok(_) => panic!("{what}: open succeeded"),
    }
}

fn check_all_data(db: &Db) -> Result<()> {
    let all: Vec<_> = db.iter().collect::<Result<_>>()?;
    let expected: Vec<_> = (0..KEYS)
        .map(|i| (key(i).into_bytes(), value(i).into_bytes()))
        .collect();
    assert_eq!(all, expected);
    Ok(())
}

/// The byte ranges of a segment file: each data block with its trailer, then the metadata.
struct Layout {
    data_blocks: Vec<std::ops::Range<usize>>,
    metadata: Vec<std::ops::Range<usize>>,
    /// The user keys stored in each data block.
    keys_per_block: Vec<Vec<Vec<u8>>>,
}

fn with_trailer(h: BlockHandle) -> std::ops::Range<usize> {
    h.offset as usize..(h.offset + h.size_bytes) as usize + BLOCK_TRAILER_LEN
}

fn layout(id: u64, path: &Path) -> Result<Layout> {
    let segment = Segment::open(path, id)?;
    let handles = segment.data_block_handles();
    let mut keys_per_block = Vec::new();
    for &h in &handles {
        let entries = segment.read_block_entries(h)?;
        keys_per_block.push(
            entries
                .iter()
                .map(|(ikey, _)| ikey[..ikey.len() - 8].to_vec())
                .collect(),
        );
    }
    let bytes = read(path);
    let footer_at = bytes.len() - FOOTER_LEN;
    let raw: &[u8; FOOTER_LEN] = bytes[footer_at..].try_into().expect("footer length");
    let footer = Footer::decode(raw).expect("pristine footer decodes");
    let mut metadata: Vec<_> = [footer.filter, footer.index, footer.properties]
        .into_iter()
        .filter(|h| h.size_bytes > 0)
        .map(with_trailer)
        .collect();
    metadata.push(footer_at..bytes.len());
    let data_blocks: Vec<_> = handles.into_iter().map(with_trailer).collect();
    let mut all: Vec<_> = data_blocks.iter().chain(&metadata).cloned().collect();
    all.sort_by_key(|r| r.start);
    let mut end = 0;
    for r in &all {
        assert_eq!(
            r.start, end,
            "the blocks of a segment leave no gap: {all:?}"
        );
        end = r.end;
    }
    assert_eq!(end, bytes.len());
    Ok(Layout {
        data_blocks,
        metadata,
        keys_per_block,
    })
}

#[test]
fn a_damaged_data_block_fails_the_reads_that_touch_it() -> Result<()> {
    let dir = flushed_db()?;
    let (id, seg) = only_segment(dir.path())?;
    let layout = layout(id, &seg)?;
    assert!(layout.data_blocks.len() >= 4, "{:?}", layout.data_blocks);
    let pristine = read(&seg);

    for (block, range) in layout.data_blocks.iter().enumerate() {
        let inside = [range.start, (range.start + range.end) / 2, range.end - 1];
        for at in inside {
            write(&seg, &flipped(&pristine, at));
            let db = Db::open(dir.path(), Options::default())?;
            let what = format!("byte {at} of data block {block}");
            for k in &layout.keys_per_block[block] {
                let e = db.get(k).expect_err(&what);
                assert!(is_corruption_of(&e, &seg), "{what}: get: {e:?}");
            }
            let other = (block + 1) % layout.data_blocks.len();
            let k = &layout.keys_per_block[other][0];
            assert!(db.get(k)?.is_some(), "{what}: other blocks still read");
            let forward = db.iter().collect::<Result<Vec<_>>>().expect_err(&what);
            assert!(is_corruption_of(&forward, &seg), "{what}: {forward:?}");
            let backward = db.iter().rev().collect::<Result<Vec<_>>>();
            let backward = backward.expect_err(&what);
            assert!(is_corruption_of(&backward, &seg), "{what}: {backward:?}");
            db.close()?;
        }
    }
    write(&seg, &pristine);
    check_all_data(&Db::open(dir.path(), Options::default())?)
}

#[test]
fn every_damaged_metadata_byte_of_a_segment_fails_open() -> Result<()> {
    let dir = flushed_db()?;
    let (id, seg) = only_segment(dir.path())?;
    let layout = layout(id, &seg)?;
    let pristine = read(&seg);
    for range in &layout.metadata {
        for at in range.clone() {
            write(&seg, &flipped(&pristine, at));
            assert_open_fails_naming(dir.path(), &seg, &format!("segment byte {at}"));
        }
    }
    write(&seg, &pristine);
    check_all_data(&Db::open(dir.path(), Options::default())?)
}

#[test]
fn a_zeroed_short_or_foreign_segment_fails_open() -> Result<()> {
    let dir = flushed_db()?;
    let (_, seg) = only_segment(dir.path())?;
    let pristine = read(&seg);
    let len = pristine.len();

    let mut zeroed = pristine.clone();
    zeroed[len - FOOTER_LEN..].fill(0);
    write(&seg, &zeroed);
    assert_open_fails_naming(dir.path(), &seg, "zeroed footer");

    write(&seg, &pristine[..len - 1]);
    assert_open_fails_naming(dir.path(), &seg, "one byte short");

    write(&seg, &pristine[..FOOTER_LEN - 1]);
    assert_open_fails_naming(dir.path(), &seg, "shorter than a footer");

    write(&seg, &[]);
    assert_open_fails_naming(dir.path(), &seg, "empty");

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    write(&seg, &random(len));
    assert_open_fails_naming(dir.path(), &seg, "random bytes of the same length");
    write(&seg, &random(3 * len + 17));
    assert_open_fails_naming(dir.path(), &seg, "random bytes of another length");

    // Random bytes that end with a valid footer: the footer is authentic but the blocks it
    // points at are not.
    let mut forged = random(len);
    forged[len - FOOTER_LEN..].copy_from_slice(&pristine[len - FOOTER_LEN..]);
    write(&seg, &forged);
    assert_open_fails_naming(dir.path(), &seg, "random bytes under a valid footer");

    write(&seg, &pristine);
    check_all_data(&Db::open(dir.path(), Options::default())?)
}

#[test]
fn a_missing_segment_fails_open_naming_it() -> Result<()> {
    let dir = flushed_db()?;
    let (_, seg) = only_segment(dir.path())?;
    std::fs::remove_file(&seg).expect("remove segment");
    assert_open_fails_naming(dir.path(), &seg, "missing segment");
    Ok(())
}

#[test]
fn every_damaged_manifest_byte_fails_open_naming_the_manifest() -> Result<()> {
    let dir = flushed_db()?;
    let manifest = manifest(dir.path())?;
    let pristine = read(&manifest);
    for at in 0..pristine.len() {
        write(&manifest, &flipped(&pristine, at));
        assert_open_fails_naming(dir.path(), &manifest, &format!("manifest byte {at}"));
    }
    write(&manifest, &pristine[..16]);
    assert_open_fails_naming(dir.path(), &manifest, "manifest with a header only");
    // The first edit describes the whole state; a manifest that holds no complete edit
    // describes nothing. (A cut *last* edit is a torn append that was never acknowledged,
    // which recovery tolerates by design.)
    let first_len = u32::from_le_bytes(pristine[16..20].try_into().expect("4 bytes")) as usize;
    let first_end = 16 + 12 + first_len;
    assert!(first_end <= pristine.len());
    for cut in [17, 16 + 11, 16 + 12, first_end - 1] {
        write(&manifest, &pristine[..cut]);
        assert_open_fails_naming(dir.path(), &manifest, &format!("first edit cut at {cut}"));
    }
    write(&manifest, &[]);
    assert_open_fails_naming(dir.path(), &manifest, "empty manifest");
    write(&manifest, &pristine);
    check_all_data(&Db::open(dir.path(), Options::default())?)
}

#[test]
fn a_damaged_or_missing_current_fails_open() -> Result<()> {
    let dir = flushed_db()?;
    let current = dir.path().join(files::CURRENT);
    let pristine = read(&current);
    let manifest = manifest(dir.path())?;

    for garbage in [
        &b""[..],
        b"\n",
        b"MANIFEST-",
        b"000001.seg\n",
        b"\xff\xfe\n",
    ] {
        write(&current, garbage);
        assert_open_fails_naming(dir.path(), &current, &format!("CURRENT = {garbage:?}"));
    }
    let mut cut = pristine.clone();
    cut.pop();
    write(&current, &cut);
    assert_open_fails_naming(dir.path(), &current, "CURRENT without its newline");

    std::fs::remove_file(&current).expect("remove CURRENT");
    assert_open_fails_naming(dir.path(), &current, "missing CURRENT");

    write(&current, &pristine);
    assert_eq!(alluvium::manifest::read_current(dir.path())?, manifest);
    check_all_data(&Db::open(dir.path(), Options::default())?)
}

#[test]
fn current_naming_a_missing_manifest_is_corruption() -> Result<()> {
    let dir = flushed_db()?;
    let current = dir.path().join(files::CURRENT);
    let manifest = manifest(dir.path())?;
    std::fs::remove_file(&manifest).expect("remove manifest");
    match Db::open(dir.path(), Options::default()) {
        Err(e) => assert!(
            is_corruption_of(&e, &manifest) || is_corruption_of(&e, &current),
            "CURRENT naming a missing manifest: expected corruption, got {e:?}"
        ),
        Ok(_) => panic!("CURRENT naming a missing manifest: open succeeded"),
    }
    Ok(())
}
