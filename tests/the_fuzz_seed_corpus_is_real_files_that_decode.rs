//! The seed corpus of every fuzz target (`fuzz/corpus/<target>/`) holds small, valid inputs
//! written by the database's own writers, and each one decodes through the entry point its
//! target calls. A seed that no longer decodes (a format change, a decoder that got stricter)
//! fails here instead of silently making the fuzzer start from garbage.
//!
//! `cargo test --test the_fuzz_seed_corpus_is_real_files_that_decode -- --ignored` writes the
//! seeds again from a fresh database (`TESTING.md`, "Fuzzing").
use std::path::{Path, PathBuf};

use alluvium::commit_log::{encode_record, LogFile, RecordBody};
use alluvium::files::{self, FileKind};
use alluvium::fuzzing::{self, Verdict};
use alluvium::segment::format::{Footer, BLOCK_RAW, FOOTER_LEN};
use alluvium::segment::Segment;
use alluvium::{Compression, Db, Options, Result, Start, WriteBatch, WriteOptions};

const SEED_BYTES_MAX: usize = 100 << 10;

/// The first byte of a file seed: odd asks the target to repair checksums (a no-op on a valid
/// file), which is the mode the fuzzer mutates from most usefully.
const REPAIR: u8 = 1;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(corpus(target))
        .expect("the corpus directory exists")
        .map(|e| e.expect("dir entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read seed");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Runs a file seed the way its target does: mode byte, optional repair, scratch file.
fn run_file_seed(
    seed: &[u8],
    name: &str,
    repair: fn(&mut [u8]),
    decode: fn(&Path) -> Verdict,
) -> Verdict {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mode, file) = seed.split_first().expect("a seed has a mode byte");
    let mut file = file.to_vec();
    if mode & 1 == 1 {
        repair(&mut file);
    }
    let path = dir.path().join(name);
    std::fs::write(&path, &file).expect("write");
    decode(&path)
}

fn verdict(target: &str, seed: &[u8]) -> Verdict {
    match target {
        "block" => fuzzing::block(seed),
        "log_record" => fuzzing::log_record(seed),
        "manifest_edit" => fuzzing::manifest_edit(seed),
        "segment" => run_file_seed(
            seed,
            "000001.seg",
            fuzzing::fix_segment_checksums,
            fuzzing::segment,
        ),
        "log_file" => run_file_seed(
            seed,
            "000001.log",
            fuzzing::fix_framed_checksums,
            fuzzing::log_file,
        ),
        "manifest_file" => run_file_seed(
            seed,
            "MANIFEST-000001",
            fuzzing::fix_framed_checksums,
            fuzzing::manifest_file,
        ),
        other => panic!("no fuzz target {other}"),
    }
}

const TARGETS: [&str; 6] = [
    "block",
    "segment",
    "log_record",
    "log_file",
    "manifest_edit",
    "manifest_file",
];

#[test]
fn every_seed_is_small_and_decodes_through_its_target() {
    for target in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 2, "{target}: {} seeds", seeds.len());
        for (path, bytes) in seeds {
            assert!(bytes.len() <= SEED_BYTES_MAX, "{}", path.display());
            match verdict(target, &bytes) {
                Verdict::Decoded(n) => assert!(n > 0, "{}: decodes to nothing", path.display()),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }
}

#[test]
fn a_damaged_seed_is_rejected_not_decoded() {
    // The check above can fail: the same seeds with a byte flipped and no checksum repair.
    for target in ["segment", "log_file", "manifest_file"] {
        for (path, mut bytes) in seeds(target) {
            bytes[0] = 0;
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
            let got = verdict(target, &bytes);
            assert!(
                matches!(got, Verdict::Rejected(_)),
                "{}: {got:?}",
                path.display()
            );
        }
    }
}

// ---- writing the seeds -------------------------------------------------------------------

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    assert!(bytes.len() <= SEED_BYTES_MAX, "{target}/{name}");
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn write_file_seed(target: &str, name: &str, path: &Path) {
    let mut bytes = vec![REPAIR];
    bytes.extend(std::fs::read(path).expect("read"));
    write_seed(target, name, &bytes);
}

fn numbered(dir: &Path, pick: fn(FileKind) -> Option<u64>) -> Vec<u64> {
    files::list(dir)
        .expect("list")
        .into_iter()
        .filter_map(pick)
        .collect()
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    let n = numbered(dir, |k| match k {
        FileKind::Log(n) => Some(n),
        _ => None,
    });
    n.into_iter().map(|n| files::log_path(dir, n)).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let n = numbered(dir, |k| match k {
        FileKind::Segment(n) => Some(n),
        _ => None,
    });
    n.into_iter().map(|n| files::segment_path(dir, n)).collect()
}

fn record_seeds(log: &Path) -> Result<()> {
    let (items, _) = LogFile::read(log)?.records()?;
    // The first record, the one with a delete, the one with the empty key and the
    // acknowledgement, and the last.
    for i in [0, 3, 20, items.len() - 1] {
        let item = &items[i];
        let r = &item.record;
        let mut payload = Vec::new();
        let body = RecordBody::encode(&r.batch, &r.acks, Compression::Snappy);
        encode_record(&mut payload, r.first_seqno, r.commit_time_us, &body);
        write_seed("log_record", &format!("record-{i}"), &payload);
    }
    Ok(())
}

/// The stored bytes of the raw data blocks and of the index block of a segment.
fn block_seeds(path: &Path) -> Result<()> {
    let segment = Segment::open(path, 1)?;
    let bytes = std::fs::read(path).expect("read");
    let raw: &[u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..]
        .try_into()
        .expect("64 bytes");
    let footer = Footer::decode(raw).expect("a valid footer");
    let handles = segment.data_block_handles().into_iter().take(3);
    for (i, h) in handles.chain([footer.index]).enumerate() {
        let (start, end) = (h.offset as usize, (h.offset + h.size_bytes) as usize);
        assert_eq!(bytes[end], BLOCK_RAW, "the seed segment is not compressed");
        write_seed("block", &format!("block-{i}"), &bytes[start..end]);
    }
    Ok(())
}

/// A small database with every kind of record: puts, deletes, the empty key, a subscription
/// and its acknowledgement, raw and compressed bodies.
fn write_small_db(dir: &Path, opts: &Options) -> Result<()> {
    let db = Db::open(dir, opts.clone())?;
    db.create_subscription("search-index", Start::Beginning)?;
    for i in 0..40u32 {
        let mut batch = WriteBatch::new();
        batch.put(
            format!("user:{i:03}"),
            // Every third value is long enough for the log to store it compressed.
            format!("name {i} {}", "ab".repeat(8 + (i as usize % 3) * 20)),
        );
        if i % 7 == 3 {
            batch.delete(format!("user:{:03}", i - 1));
        }
        if i == 20 {
            batch.put("", "the empty key").ack("search-index", 10);
        }
        db.write(batch, &WriteOptions::default())?;
    }
    db.close()
}

#[test]
#[ignore = "writes the seed corpus; run it by hand after a format change"]
fn write_the_seed_corpus() -> Result<()> {
    for target in TARGETS {
        let _ = std::fs::remove_dir_all(corpus(target));
    }
    let small_blocks = Options::default()
        .block_size_bytes(256)
        .block_restart_interval(4);
    let raw = tempfile::tempdir().expect("tempdir");
    let opts = small_blocks.clone().compression(Compression::None);
    write_small_db(raw.path(), &opts)?;
    let log = logs(raw.path()).pop().expect("a log file");
    write_file_seed("log_file", "records-with-an-acknowledgement.log", &log);
    let mut torn = vec![REPAIR];
    torn.extend(std::fs::read(&log).expect("read"));
    torn.truncate(torn.len() - 7); // a crash in the middle of the last append
    write_seed("log_file", "torn-tail.log", &torn);
    record_seeds(&log)?;
    let db = Db::open(raw.path(), opts)?;
    db.flush()?;
    db.delete_subscription("search-index")?;
    let manifest = alluvium::manifest::read_current(raw.path())?;
    write_file_seed("manifest_file", "flush-and-subscriptions", &manifest);
    let (_, edits) = alluvium::manifest::read_manifest(&manifest)?;
    for (i, edit) in edits.iter().enumerate() {
        write_seed("manifest_edit", &format!("edit-{i}"), &edit.encode());
    }
    let segment = segments(raw.path()).pop().expect("a segment");
    write_file_seed("segment", "uncompressed.seg", &segment);
    block_seeds(&segment)?;
    db.close()?;

    let snappy = tempfile::tempdir().expect("tempdir");
    let opts = small_blocks.compression(Compression::Snappy);
    write_small_db(snappy.path(), &opts)?;
    let db = Db::open(snappy.path(), opts)?;
    db.flush()?;
    let segment = segments(snappy.path()).pop().expect("a segment");
    write_file_seed("segment", "snappy.seg", &segment);
    let manifest = alluvium::manifest::read_current(snappy.path())?;
    write_file_seed("manifest_file", "after-open", &manifest);
    db.close()
}
