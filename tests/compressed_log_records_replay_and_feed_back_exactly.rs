//! Log compression (format version 3): compressible batches take fewer log bytes, replay and
//! come back through the change feed byte for byte, and a compressed body that does not
//! decompress is corruption at its offset even when its frame checksums match.
mod common;
use common::newest_log;
use std::path::Path;

use alluvium::commit_log::{encode_record, RecordBody, RECORD_HEADER_LEN};
use alluvium::files;
use alluvium::frame::{encode_frame, FRAME_HEADER_LEN};
use alluvium::{Compression, Db, Error, Op, Options, Result, Start, WriteBatch};

/// 300 batches of two puts each, with values that compress about 2:1 (as db_bench's do).
fn batches() -> Vec<WriteBatch> {
    (0..300u32)
        .map(|i| {
            let half: Vec<u8> = (0..60u32)
                .map(|j| (i.wrapping_mul(31).wrapping_add(j * 7919) % 251) as u8)
                .collect();
            let value = [half.as_slice(), half.as_slice()].concat();
            let mut b = WriteBatch::new();
            b.put(format!("key{i:05}"), &value)
                .put(format!("other{i:05}"), b"small");
            b
        })
        .collect()
}

fn log_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for n in files::log_numbers(dir)? {
        let path = files::log_path(dir, n);
        total += std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
    }
    Ok(total)
}

/// Writes every batch with `compression`, reopens, and returns the log bytes and the batches
/// the change feed hands back.
fn write_and_read_back(compression: Compression) -> Result<(u64, Vec<Vec<Op>>)> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let opts = Options::default().log_compression(compression);
    let db = Db::open(dir.path(), opts.clone())?;
    for b in batches() {
        db.write(b, &Default::default())?;
    }
    db.close()?;
    let bytes = log_bytes(dir.path())?;
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.recovery_report().records_replayed, 300);
    assert_eq!(db.get("key00299")?.map(|v| v.len()), Some(120));
    let mut cursor = db.changes(Start::Beginning)?;
    let mut got = Vec::new();
    while let Some(batch) = cursor.try_next()? {
        got.push(batch.ops.into_iter().map(|(_, op)| op).collect());
    }
    db.close()?;
    Ok((bytes, got))
}

#[test]
fn compressed_records_take_fewer_bytes_and_read_back_exactly() -> Result<()> {
    let expected: Vec<Vec<Op>> = batches().iter().map(|b| b.ops().to_vec()).collect();
    let (raw_bytes, raw) = write_and_read_back(Compression::None)?;
    let (snappy_bytes, snappy) = write_and_read_back(Compression::Snappy)?;
    assert!(raw == expected, "uncompressed log read back differently");
    assert!(snappy == expected, "compressed log read back differently");
    assert!(
        snappy_bytes * 10 < raw_bytes * 8,
        "compressed log {snappy_bytes} bytes, uncompressed {raw_bytes}"
    );
    Ok(())
}

#[test]
fn a_compressed_body_that_does_not_decompress_is_corruption_at_its_offset() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let first = db.put("a", "1")?;
    db.close()?;
    let log = newest_log(dir.path())?;

    // A valid compressed record for the next sequence number, its snappy stream cut short,
    // then framed with matching checksums: only decoding can tell.
    let mut batch = WriteBatch::new();
    batch.put("b", vec![b'x'; 500]);
    let body = RecordBody::encode(&batch, &[], Compression::Snappy);
    let mut payload = Vec::new();
    encode_record(&mut payload, first + 1, 0, &body);
    assert_eq!(payload[RECORD_HEADER_LEN], 1, "stored compressed");
    payload.truncate(payload.len() - 2);
    let mut bytes = std::fs::read(&log).map_err(|e| Error::io(&log, e))?;
    let frame_at = bytes.len() as u64;
    encode_frame(&mut bytes, &payload);
    std::fs::write(&log, &bytes).map_err(|e| Error::io(&log, e))?;

    let body_at = frame_at + (FRAME_HEADER_LEN + RECORD_HEADER_LEN + 1) as u64;
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Corruption {
            path,
            offset,
            detail,
        }) => {
            assert_eq!(path, log);
            assert_eq!(offset, body_at, "{detail}");
            assert!(detail.contains("snappy"), "{detail}");
        }
        other => panic!("expected corruption at {body_at}, got {other:?}"),
    }
    Ok(())
}
