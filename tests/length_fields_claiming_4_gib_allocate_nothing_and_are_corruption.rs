//! A length field that claims about 4 GiB (a frame length, a key length in a record or a
//! version edit, a count, a block's restart count, an entry's key length, a snappy block's
//! uncompressed length) or a varint of 11 bytes, behind checksums that match, is
//! `Error::Corruption` naming the file and an offset inside the damaged frame or block, and
//! nothing is allocated for it: the largest single allocation while opening and reading the
//! database stays under 16 MiB. A frame whose length runs past the end of the newest log file
//! is a torn write and is dropped, as documented.
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use alluvium::coding::{crc32, put_u32, put_u64, put_varint};
use alluvium::files::{self, FileKind};
use alluvium::frame::{encode_frame, file_header, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use alluvium::manifest::{read_current, MANIFEST_FORMAT_VERSION, MANIFEST_MAGIC};
use alluvium::segment::format::{Footer, BLOCK_SNAPPY, FOOTER_LEN};
use alluvium::segment::Segment;
use alluvium::{Compression, Db, Error, Options, Result};

/// The largest single allocation since the last [`reset`].
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Tracking;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

const ALLOCATION_BYTES_MAX: usize = 16 << 20;

/// 2^32 - 1 as a varint: five bytes.
const FOUR_GIB: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

fn db(compression: Compression) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().compression(compression))?;
    for i in 0..200 {
        db.put(format!("key{i:04}"), "value ".repeat(20))?;
    }
    db.flush()?;
    db.put("in the log", "yes")?;
    db.close()?;
    Ok(dir)
}

fn newest(dir: &Path, log: bool) -> Result<PathBuf> {
    let found = files::list(dir)?.into_iter().rev().find_map(|k| match k {
        FileKind::Log(n) if log => Some(files::log_path(dir, n)),
        FileKind::Segment(n) if !log => Some(files::segment_path(dir, n)),
        _ => None,
    });
    Ok(found.expect("the file exists"))
}

/// Opens the database, reads everything, and checks the outcome and the allocations.
fn opened_and_read(dir: &Path) -> Result<usize> {
    let db = Db::open(dir, Options::default())?;
    let n = db.iter().collect::<Result<Vec<_>>>()?.len();
    db.close()?;
    Ok(n)
}

fn expect_corruption(dir: &Path, file: &Path, at: std::ops::Range<u64>, what: &str) {
    LARGEST.store(0, Ordering::Relaxed);
    match opened_and_read(dir) {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!(path, file, "{what}");
            assert!(
                at.contains(&offset),
                "{what}: offset {offset} not in {at:?}"
            );
        }
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_BYTES_MAX,
        "{what}: allocated {largest} bytes at once"
    );
}

fn append(path: &Path, bytes: &[u8]) -> u64 {
    let mut all = std::fs::read(path).expect("read");
    let at = all.len() as u64;
    all.extend_from_slice(bytes);
    std::fs::write(path, all).expect("write");
    at
}

/// A frame header claiming `len` bytes, with a matching header checksum.
fn frame_header(len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    put_u32(&mut h, len);
    put_u32(&mut h, 0);
    let crc = crc32(&[&h]);
    put_u32(&mut h, crc);
    h
}

/// A record payload: header fields, then `rest` as is.
fn record(first_seqno: u64, count: u32, rest: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    put_u64(&mut p, first_seqno);
    put_u32(&mut p, count);
    put_u64(&mut p, 0);
    p.extend_from_slice(rest);
    p
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, payload);
    out
}

fn log_cases() -> Result<()> {
    let big_frame = |len: u32| {
        let dir = db(Compression::Snappy)?;
        let log = newest(dir.path(), true)?;
        let at = append(&log, &frame_header(len));
        append(&log, &framed(&record(1000, 1, &[1, 1, b'k', 1, b'v', 0])));
        Ok::<_, Error>((dir, log, at))
    };
    let (dir, log, at) = big_frame(u32::MAX)?;
    expect_corruption(dir.path(), &log, at..at + 1, "frame length 4 GiB");

    // Within the frame limit but past the end of the newest file: a torn write, dropped.
    let dir = db(Compression::Snappy)?;
    let log = newest(dir.path(), true)?;
    let at = append(&log, &frame_header(1 << 30));
    LARGEST.store(0, Ordering::Relaxed);
    assert_eq!(
        opened_and_read(dir.path())?,
        201,
        "frame length 1 GiB at the end"
    );
    assert!(LARGEST.load(Ordering::Relaxed) < ALLOCATION_BYTES_MAX);
    assert_eq!(
        std::fs::metadata(&log).expect("meta").len(),
        at,
        "the torn frame is cut"
    );

    let cases: [(&str, Vec<u8>); 3] = [
        (
            "key length 4 GiB",
            record(1000, 1, &[[1].as_slice(), &FOUR_GIB].concat()),
        ),
        (
            "2^24 operations in 30 bytes",
            record(1000, 1 << 24, &[0, 1, b'k', 0]),
        ),
        (
            "ack count 4 GiB",
            record(1000, 1, &[[0, 1, b'k'].as_slice(), &FOUR_GIB].concat()),
        ),
    ];
    for (what, payload) in cases {
        let dir = db(Compression::Snappy)?;
        let log = newest(dir.path(), true)?;
        let len = payload.len() as u64;
        let at = append(&log, &framed(&payload));
        let body = at + FRAME_HEADER_LEN as u64;
        expect_corruption(dir.path(), &log, body..body + len + 1, what);
    }
    Ok(())
}

fn manifest_cases() -> Result<()> {
    let header = file_header(MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION);
    let mut big_key = vec![4, 0, 9, 100, 1, 1, 1, 0];
    big_key.extend_from_slice(&FOUR_GIB);
    let mut eleven = vec![2];
    eleven.extend_from_slice(&[0xff; 10]);
    eleven.push(0x01);
    let edit_at = (FILE_HEADER_LEN + FRAME_HEADER_LEN) as u64;
    for (what, edit) in [("smallest key 4 GiB", big_key), ("11-byte varint", eleven)] {
        let dir = db(Compression::Snappy)?;
        let manifest = read_current(dir.path())?;
        let mut bytes = header.clone();
        encode_frame(&mut bytes, &edit);
        std::fs::write(&manifest, &bytes).expect("write");
        expect_corruption(dir.path(), &manifest, edit_at..edit_at + 1, what);
    }
    let dir = db(Compression::Snappy)?;
    let manifest = read_current(dir.path())?;
    let mut bytes = header.clone();
    bytes.extend_from_slice(&frame_header(u32::MAX));
    std::fs::write(&manifest, &bytes).expect("write");
    let at = FILE_HEADER_LEN as u64;
    expect_corruption(dir.path(), &manifest, at..at + 1, "manifest frame 4 GiB");
    Ok(())
}

/// Overwrites bytes of the first data block at `at` (relative to the block) and repairs every
/// checksum, so that only the length field is wrong. Returns the block's offset.
fn forge_first_block(seg: &Path, at: usize, with: &[u8], from_end: bool) -> Result<u64> {
    let handle = Segment::open(seg, 1)?.data_block_handles()[0];
    let mut bytes = std::fs::read(seg).expect("read");
    let (start, end) = (
        handle.offset as usize,
        (handle.offset + handle.size_bytes) as usize,
    );
    let pos = if from_end { end - at } else { start + at };
    bytes[pos..pos + with.len()].copy_from_slice(with);
    alluvium::fuzzing::fix_segment_checksums(&mut bytes);
    std::fs::write(seg, &bytes).expect("write");
    Ok(handle.offset)
}

fn segment_cases() -> Result<()> {
    // Raw blocks: an entry whose key length claims 4 GiB, a restart count of 2^32 - 1.
    for (what, at, with, from_end) in [
        ("entry key length 4 GiB", 1, &FOUR_GIB[..], false),
        ("restart count 2^32 - 1", 4, &[0xff; 4][..], true),
    ] {
        let dir = db(Compression::None)?;
        let seg = newest(dir.path(), false)?;
        let block = forge_first_block(&seg, at, with, from_end)?;
        expect_corruption(dir.path(), &seg, block..block + 1, what);
    }
    // A snappy block whose uncompressed length claims 4 GiB.
    let dir = db(Compression::Snappy)?;
    let seg = newest(dir.path(), false)?;
    let bytes = std::fs::read(&seg).expect("read");
    let raw: &[u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..].try_into().expect("64");
    assert!(Footer::decode(raw).is_ok());
    let first = Segment::open(&seg, 1)?.data_block_handles()[0];
    let kind = bytes[(first.offset + first.size_bytes) as usize];
    assert_eq!(kind, BLOCK_SNAPPY, "the first data block is compressed");
    let block = forge_first_block(&seg, 0, &FOUR_GIB, false)?;
    expect_corruption(dir.path(), &seg, block..block + 1, "snappy length 4 GiB");
    Ok(())
}

#[test]
fn length_fields_claiming_4_gib_allocate_nothing_and_are_corruption() -> Result<()> {
    log_cases()?;
    manifest_cases()?;
    segment_cases()?;
    // The checks can fail: a pristine database opens, reads, and stays under the bound.
    let dir = db(Compression::Snappy)?;
    LARGEST.store(0, Ordering::Relaxed);
    assert_eq!(opened_and_read(dir.path())?, 201);
    assert!(LARGEST.load(Ordering::Relaxed) < ALLOCATION_BYTES_MAX);
    let mut varint = Vec::new();
    put_varint(&mut varint, u64::from(u32::MAX));
    assert_eq!(varint, FOUR_GIB);
    Ok(())
}
