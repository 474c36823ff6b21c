//! One flipped bit in a data block, the filter, the index, the properties or the footer of a
//! segment is `Error::Corruption` naming the segment and the offset of the damaged block (the
//! footer's offset for the footer), whether the bit is in the block's stored bytes or in its
//! checksum trailer. Metadata is checked at open, so open fails; a data block is checked when
//! it is read, so the reads that touch it fail and the other blocks still read.
use std::path::{Path, PathBuf};

use alluvium::files::{self, FileKind};
use alluvium::segment::format::{BlockHandle, Footer, FOOTER_LEN};
use alluvium::segment::Segment;
use alluvium::{Db, Error, Options, Result};

fn key(i: usize) -> String {
    format!("key{i:05}")
}

/// A closed database whose 2000 keys sit in one segment of many data blocks.
fn flushed_db() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for i in 0..2000 {
        db.put(key(i), format!("value {i}"))?;
    }
    db.flush()?;
    db.close()?;
    let segment = files::list(dir.path())?.into_iter().find_map(|k| match k {
        FileKind::Segment(n) => Some(files::segment_path(dir.path(), n)),
        _ => None,
    });
    Ok((dir, segment.expect("one segment")))
}

fn footer(bytes: &[u8]) -> Footer {
    let raw: &[u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..]
        .try_into()
        .expect("64 bytes");
    Footer::decode(raw).expect("a pristine footer")
}

fn flip(path: &Path, pristine: &[u8], at: u64) {
    let mut bytes = pristine.to_vec();
    bytes[at as usize] ^= 0x08;
    std::fs::write(path, bytes).expect("write");
}

fn assert_corruption<T: std::fmt::Debug>(got: Result<T>, seg: &Path, at: u64, what: &str) {
    match got {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!((path.as_path(), offset), (seg, at), "{what}");
        }
        other => panic!("{what}: expected corruption at {at}, got {other:?}"),
    }
}

/// A byte in the middle of the block's stored bytes and the last byte of its checksum.
fn bytes_of(h: BlockHandle) -> [u64; 2] {
    [h.offset + h.size_bytes / 2, h.offset + h.size_bytes + 4]
}

#[test]
fn a_bit_flip_in_any_segment_block_is_corruption_at_that_block() -> Result<()> {
    let (dir, seg) = flushed_db()?;
    let pristine = std::fs::read(&seg).expect("read");
    let footer = footer(&pristine);
    assert!(footer.filter.size_bytes > 0, "the segment has a filter");
    let metadata = [
        ("filter", footer.filter),
        ("index", footer.index),
        ("properties", footer.properties),
    ];
    for (what, handle) in metadata {
        for at in bytes_of(handle) {
            flip(&seg, &pristine, at);
            let opened = Db::open(dir.path(), Options::default());
            assert_corruption(opened, &seg, handle.offset, &format!("{what} byte {at}"));
        }
    }
    let footer_at = (pristine.len() - FOOTER_LEN) as u64;
    for at in [footer_at, footer_at + 20, footer_at + 48, footer_at + 53] {
        flip(&seg, &pristine, at);
        let opened = Db::open(dir.path(), Options::default());
        assert_corruption(opened, &seg, footer_at, &format!("footer byte {at}"));
    }

    std::fs::write(&seg, &pristine).expect("write");
    let blocks = Segment::open(&seg, 1)?.data_block_handles();
    assert!(blocks.len() > 4, "{} data blocks", blocks.len());
    let first_key_of_block = |b: usize| {
        let s = Segment::open(&seg, 1).expect("pristine segment");
        let entries = s.read_block_entries(blocks[b]).expect("pristine block");
        entries[0].0[..entries[0].0.len() - 8].to_vec()
    };
    for b in [0, blocks.len() / 2, blocks.len() - 1] {
        let k = first_key_of_block(b);
        let other = first_key_of_block((b + 1) % blocks.len());
        for at in bytes_of(blocks[b]) {
            flip(&seg, &pristine, at);
            let db = Db::open(dir.path(), Options::default())?;
            let what = format!("data block {b}, byte {at}");
            assert_corruption(db.get(&k), &seg, blocks[b].offset, &what);
            let scan = db.iter().collect::<Result<Vec<_>>>();
            assert_corruption(scan, &seg, blocks[b].offset, &what);
            assert!(db.get(&other)?.is_some(), "{what}: other blocks still read");
            db.close()?;
        }
    }

    std::fs::write(&seg, &pristine).expect("write");
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.iter().count(), 2000, "the pristine segment reads whole");
    db.close()
}
