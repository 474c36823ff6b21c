//! Compaction keeps a put every reader sees with sequence number 0 when no deeper level may
//! hold its key (FORMAT.md, "Internal keys"). This checks both halves: a newer version
//! compacted into a level above an older one keeps its number, so iterators and point reads
//! still return the newer value; and once no snapshot needs them, the bottom level holds
//! sequence number 0 only.
use alluvium::{inspect, Db, Error, Options, Result};

fn options() -> Options {
    Options::default()
        .memtable_size_bytes(16 * 1024)
        .segment_size_bytes(16 * 1024)
        .level_base_size_bytes(32 * 1024)
        .level_size_ratio(4)
        .level0_triggers(2, 20, 30)
}

fn key(i: u32) -> String {
    format!("k{i:05}")
}

/// A user key and a sequence number.
type Version = (Vec<u8>, u64);

/// Per level, every version its segments hold.
fn versions_per_level(dir: &std::path::Path) -> Result<Vec<Vec<Version>>> {
    let levels = inspect::levels(dir)?;
    levels
        .state
        .levels
        .iter()
        .map(|segments| {
            let mut out = Vec::new();
            for s in segments {
                for e in inspect::segment_entries(&dir.join(format!("{:06}.seg", s.id)), None)? {
                    let e = e?;
                    out.push((e.key, e.seqno));
                }
            }
            Ok(out)
        })
        .collect()
}

#[test]
fn a_version_given_sequence_number_zero_never_hides_a_newer_one() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), options())?;
    let n = 4000u32;
    // A snapshot older than every write keeps the bottom level's real sequence numbers.
    let snapshot = db.snapshot();
    for i in 0..n {
        db.put(key(i), format!("old{i}-{}", "x".repeat(80)))?;
    }
    db.compact_range::<&[u8], _>(..)?;
    let last = db.stats().levels.len() - 1;
    assert!(
        versions_per_level(dir.path())?[last]
            .iter()
            .all(|(_, s)| *s > 0),
        "a version a snapshot does not see keeps its sequence number"
    );
    drop(snapshot);

    // Newer versions of a few keys, in two flushes: level 0 reaches its trigger (2) and
    // compacts into the base level, above the bottom one.
    let newer: Vec<u32> = (0..n).step_by(40).collect();
    for half in newer.chunks(newer.len().div_ceil(2)) {
        for &i in half {
            db.put(key(i), format!("new{i}"))?;
        }
        db.flush()?;
    }
    db.wait_idle()?;
    // The setup this test needs: newer versions in a level above the bottom one, over
    // older versions of the same keys at the bottom; those newer versions keep their numbers.
    let after = versions_per_level(dir.path())?;
    let bottom: std::collections::HashSet<&[u8]> =
        after[last].iter().map(|(k, _)| k.as_slice()).collect();
    let stacked: Vec<&Version> = after[1..last]
        .iter()
        .flatten()
        .filter(|(k, _)| bottom.contains(k.as_slice()))
        .collect();
    assert!(
        !stacked.is_empty(),
        "some newer version sits above an older one"
    );
    assert!(
        stacked.iter().all(|(_, s)| *s > 0),
        "a version above an older one keeps its sequence number: {stacked:?}"
    );

    let expect = |i: u32| -> String {
        match newer.contains(&i) {
            true => format!("new{i}"),
            false => format!("old{i}-{}", "x".repeat(80)),
        }
    };
    let mut seen = 0u32;
    for kv in db.iter() {
        let (k, v) = kv?;
        let i: u32 = std::str::from_utf8(&k[1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::InvalidArgument(format!("unexpected key {k:?}")))?;
        assert_eq!(i, seen, "keys in order, each once");
        assert_eq!(String::from_utf8_lossy(&v), expect(i), "iterator, key {i}");
        seen += 1;
    }
    assert_eq!(seen, n);
    for &i in &newer {
        assert_eq!(db.get(key(i))?.as_deref(), Some(expect(i).as_bytes()));
    }
    // Everything down to the bottom: no snapshot is left, so every version there is 0.
    db.compact_range::<&[u8], _>(..)?;
    let bottom = versions_per_level(dir.path())?.swap_remove(last);
    assert_eq!(bottom.len(), n as usize);
    assert!(
        bottom.iter().all(|(_, s)| *s == 0),
        "the bottom level holds versions every reader sees, written with sequence number 0"
    );
    // And after a reopen (nothing in memory).
    db.close()?;
    drop(db);
    let db = Db::open(dir.path(), options())?;
    for i in 0..n {
        assert_eq!(db.get(key(i))?.as_deref(), Some(expect(i).as_bytes()));
    }
    Ok(())
}
