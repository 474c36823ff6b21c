//! A database directory may hold files alluvium did not write: notes, backups, editor files,
//! a subdirectory, names that look like alluvium's but are not (`12.LOG`, `x.seg`) and names
//! whose number is past the largest file number. Open, writes, flushes, compaction and close
//! ignore every one of them: none is read, changed or removed, and the data is intact.
//!
//! Regression: a file named `18446744073709551615.log` (`u64::MAX`) made open overflow while
//! it counted past the largest file number in the directory. Numbers above
//! `files::FILE_NUMBER_MAX` are not alluvium names (`FORMAT.md`, "Directory layout").
use std::collections::BTreeMap;
use std::path::Path;

use alluvium::files::FILE_NUMBER_MAX;
use alluvium::{Db, Options, Result};

const STRANGERS: [&str; 8] = [
    "notes.txt",
    "000007.log.bak",
    "12.LOG",
    "x.seg",
    "MANIFEST-",
    ".000009.seg.swp",
    "18446744073709551615.log",
    "9223372036854775808.seg",
];

fn strangers(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in STRANGERS {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            out.insert(name.to_string(), bytes);
        }
    }
    if let Ok(bytes) = std::fs::read(dir.join("subdir").join("CURRENT")) {
        out.insert("subdir/CURRENT".to_string(), bytes);
    }
    out
}

#[test]
fn files_alluvium_does_not_name_are_left_alone() -> Result<()> {
    assert_eq!(FILE_NUMBER_MAX.to_string(), "9223372036854775807");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("before", "strangers")?;
    db.close()?;
    for (i, name) in STRANGERS.iter().enumerate() {
        std::fs::write(dir.path().join(name), format!("not alluvium's {i}")).expect("write");
    }
    std::fs::create_dir(dir.path().join("subdir")).expect("mkdir");
    std::fs::write(dir.path().join("subdir/CURRENT"), "MANIFEST-000001\n").expect("write");
    let before = strangers(dir.path());
    assert_eq!(before.len(), STRANGERS.len() + 1);

    let opts = Options::default().memtable_size_bytes(64 * 1024);
    for round in 0..3 {
        let db = Db::open(dir.path(), opts.clone())?;
        assert_eq!(
            db.get("before")?,
            Some(b"strangers".to_vec()),
            "round {round}"
        );
        for i in 0..3000 {
            db.put(
                format!("key{i:05}"),
                format!("round {round} {}", "x".repeat(40)),
            )?;
        }
        db.flush()?;
        db.compact_range::<&[u8], _>(..)?;
        db.close()?;
        assert_eq!(strangers(dir.path()), before, "round {round}");
    }
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.get("key02999")?.map(|v| v.len()), Some(48));
    assert_eq!(db.iter().count(), 3001);
    db.close()
}
