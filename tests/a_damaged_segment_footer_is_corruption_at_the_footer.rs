//! A segment footer that is zeroed, cut, from version 0, or checksummed but pointing outside
//! the file fails `Db::open` with `Error::Corruption` naming the segment: at the footer's
//! offset for the footer itself, at the offset a handle names when that handle points past
//! the blocks. Nothing is read from outside the file and nothing is changed on disk.
use std::path::{Path, PathBuf};

use alluvium::files::{self, FileKind};
use alluvium::segment::format::{BlockHandle, Footer, FOOTER_LEN};
use alluvium::{Db, Error, Options, Result};

fn flushed_db() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    for i in 0..300 {
        db.put(format!("key{i:04}"), "value")?;
    }
    db.flush()?;
    db.close()?;
    let segment = files::list(dir.path())?.into_iter().find_map(|k| match k {
        FileKind::Segment(n) => Some(files::segment_path(dir.path(), n)),
        _ => None,
    });
    Ok((dir, segment.expect("one segment")))
}

fn expect_corruption(dir: &Path, seg: &Path, bytes: &[u8], at: u64, what: &str) {
    std::fs::write(seg, bytes).expect("write");
    match Db::open(dir, Options::default()) {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!((path.as_path(), offset), (seg, at), "{what}");
        }
        other => panic!("{what}: expected corruption at {at}, got {other:?}"),
    }
    let after = std::fs::read(seg).expect("read");
    assert_eq!(after, bytes, "{what}: the segment is left as it was");
}

/// The pristine file with its footer replaced by `footer` (checksummed by `encode`).
fn with_footer(pristine: &[u8], footer: Footer) -> Vec<u8> {
    let mut bytes = pristine.to_vec();
    let at = bytes.len() - FOOTER_LEN;
    bytes[at..].copy_from_slice(&footer.encode());
    bytes
}

#[test]
fn a_damaged_segment_footer_is_corruption_at_the_footer() -> Result<()> {
    let (dir, seg) = flushed_db()?;
    let pristine = std::fs::read(&seg).expect("read");
    let len = pristine.len();
    let footer_at = (len - FOOTER_LEN) as u64;
    let raw: &[u8; FOOTER_LEN] = pristine[len - FOOTER_LEN..].try_into().expect("64");
    let footer = Footer::decode(raw).expect("pristine footer");

    let mut zeroed = pristine.clone();
    zeroed[len - FOOTER_LEN..].fill(0);
    expect_corruption(dir.path(), &seg, &zeroed, footer_at, "zeroed footer");

    // A file cut inside its footer: its last 64 bytes are no footer.
    let cut = &pristine[..len - 10];
    expect_corruption(dir.path(), &seg, cut, footer_at - 10, "cut footer");

    let v0 = with_footer(
        &pristine,
        Footer {
            format_version: 0,
            ..footer
        },
    );
    expect_corruption(dir.path(), &seg, &v0, footer_at, "format version 0");

    // Checksummed handles that point outside the file or into the footer.
    let outside = BlockHandle {
        offset: 1 << 40,
        size_bytes: 100,
    };
    let index_outside = with_footer(
        &pristine,
        Footer {
            index: outside,
            ..footer
        },
    );
    expect_corruption(
        dir.path(),
        &seg,
        &index_outside,
        1 << 40,
        "index past the end",
    );
    let huge = BlockHandle {
        offset: footer.properties.offset,
        size_bytes: u64::MAX - 2,
    };
    let props_huge = with_footer(
        &pristine,
        Footer {
            properties: huge,
            ..footer
        },
    );
    expect_corruption(
        dir.path(),
        &seg,
        &props_huge,
        huge.offset,
        "4 EiB properties",
    );
    let into_footer = BlockHandle {
        offset: footer_at - 2,
        size_bytes: 8,
    };
    let filter_in_footer = with_footer(
        &pristine,
        Footer {
            filter: into_footer,
            ..footer
        },
    );
    expect_corruption(
        dir.path(),
        &seg,
        &filter_in_footer,
        footer_at - 2,
        "filter in footer",
    );

    std::fs::write(&seg, &pristine).expect("write");
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(
        db.get("key0123")?,
        Some(b"value".to_vec()),
        "the pristine file reads"
    );
    db.close()
}
