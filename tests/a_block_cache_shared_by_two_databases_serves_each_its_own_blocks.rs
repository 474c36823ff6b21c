//! Two databases sharing one block cache (their segment files have the same names) each read
//! their own data, before and after compactions replace the files; a database with no cache
//! reads from its files alone; `stats()` counts the cache's hits and misses.
use std::sync::Arc;

use alluvium::{BlockCache, Db, Options, Result};

fn opts() -> Options {
    Options::default()
        .memtable_size_bytes(64 << 10)
        .segment_size_bytes(64 << 10)
        .level_base_size_bytes(256 << 10)
}

fn value(db: &str, i: u32, round: u32) -> Vec<u8> {
    format!("{db}-{i:05}-{round}-{}", "x".repeat(40)).into_bytes()
}

fn fill(db: &Db, name: &str, round: u32) -> Result<()> {
    for i in 0..3000u32 {
        db.put(format!("key{i:05}"), value(name, i, round))?;
    }
    db.flush()?;
    db.wait_idle()
}

fn check(db: &Db, name: &str, round: u32) -> Result<()> {
    for i in (0..3000u32).step_by(7) {
        let got = db.get(format!("key{i:05}"))?;
        assert_eq!(got, Some(value(name, i, round)), "{name} key {i}");
    }
    let scanned = db.iter().collect::<Result<Vec<_>>>()?;
    assert_eq!(scanned.len(), 3000);
    for (i, (_, v)) in scanned.iter().enumerate() {
        assert_eq!(v, &value(name, i as u32, round), "{name} scan {i}");
    }
    Ok(())
}

#[test]
fn a_block_cache_shared_by_two_databases_serves_each_its_own_blocks() -> Result<()> {
    let cache = Arc::new(BlockCache::new(8 << 20));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Db::open(dir_a.path(), opts().block_cache(Some(cache.clone())))?;
    let b = Db::open(dir_b.path(), opts().block_cache(Some(cache.clone())))?;
    for round in 0..3 {
        fill(&a, "a", round)?;
        fill(&b, "b", round)?;
        for _ in 0..2 {
            check(&a, "a", round)?;
            check(&b, "b", round)?;
        }
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa
        .levels
        .iter()
        .skip(1)
        .any(|l| l.compaction.compactions > 0));
    assert_eq!(
        (sa.block_cache_hits, sa.block_cache_misses),
        (sb.block_cache_hits, sb.block_cache_misses),
        "both report the shared cache's counters"
    );
    assert!(sa.block_cache_hits > sa.block_cache_misses, "{sa:?}");
    assert!(sa.block_cache_bytes > 0 && sa.block_cache_bytes <= 8 << 20);
    Ok(())
}

#[test]
fn without_a_cache_every_read_comes_from_the_files() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts().block_cache_bytes(0))?;
    fill(&db, "a", 0)?;
    check(&db, "a", 0)?;
    let s = db.stats();
    assert_eq!(
        (
            s.block_cache_hits,
            s.block_cache_misses,
            s.block_cache_bytes
        ),
        (0, 0, 0)
    );
    Ok(())
}

#[test]
fn a_database_gets_a_cache_of_its_own_by_default() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts())?;
    fill(&db, "a", 0)?;
    check(&db, "a", 0)?;
    check(&db, "a", 0)?;
    let s = db.stats();
    assert!(s.block_cache_hits > 0 && s.block_cache_bytes > 0, "{s:?}");
    Ok(())
}
