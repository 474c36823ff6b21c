//! Keys and values at the documented limits are accepted, one byte over is rejected with
//! `Error::InvalidArgument` and writes nothing, and invalid options are rejected at open.
use alluvium::options::{KEY_SIZE_MAX, VALUE_SIZE_MAX};
use alluvium::{Db, Error, Options, Result, WriteBatch, WriteOptions};

fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn a_key_of_64_kib_is_accepted_and_one_byte_more_is_rejected() -> Result<()> {
    assert_eq!(KEY_SIZE_MAX, 64 * 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options::default().memtable_size_bytes(16 * 1024);
    let db = Db::open(dir.path(), opts.clone())?;
    let biggest = vec![b'k'; KEY_SIZE_MAX];
    db.put(&biggest, "big key")?;
    let before = db.latest_seqno();

    let too_big = vec![b'k'; KEY_SIZE_MAX + 1];
    assert_invalid(db.put(&too_big, "v"), "put");
    assert_invalid(db.delete(&too_big), "delete");
    let mut batch = WriteBatch::new();
    batch.put("innocent", "bystander").put(&too_big, "v");
    assert_invalid(db.write(batch, &WriteOptions::synced()), "batch");
    assert_eq!(
        db.latest_seqno(),
        before,
        "a rejected write takes no sequence number"
    );
    assert_eq!(db.get("innocent")?, None, "a rejected batch writes nothing");

    db.flush()?;
    assert_eq!(db.get(&biggest)?, Some(b"big key".to_vec()));
    db.close()?;
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.latest_seqno(), before);
    assert_eq!(db.get(&biggest)?, Some(b"big key".to_vec()));
    assert_eq!(db.get("innocent")?, None);
    Ok(())
}

#[test]
fn the_empty_key_is_an_ordinary_key() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("", "empty")?;
    db.put("a", "1")?;
    assert_eq!(db.get("")?, Some(b"empty".to_vec()));
    let first = db.iter().next().transpose()?;
    assert_eq!(first, Some((Vec::new(), b"empty".to_vec())));
    let last = db.iter().next_back().transpose()?;
    assert_eq!(last, Some((b"a".to_vec(), b"1".to_vec())));
    db.flush()?;
    assert_eq!(db.get("")?, Some(b"empty".to_vec()));
    db.delete("")?;
    assert_eq!(db.get("")?, None);
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("")?, None);
    assert_eq!(db.get("a")?, Some(b"1".to_vec()));
    Ok(())
}

#[test]
fn a_value_over_256_mib_is_rejected() -> Result<()> {
    assert_eq!(VALUE_SIZE_MAX, 256 * 1024 * 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default())?;
    db.put("k", "small")?;
    let before = db.latest_seqno();
    let huge = vec![0u8; VALUE_SIZE_MAX + 1];
    assert_invalid(db.put("k", &huge), "oversize value");
    drop(huge);
    assert_eq!(db.latest_seqno(), before);
    assert_eq!(db.get("k")?, Some(b"small".to_vec()));
    Ok(())
}

#[test]
fn invalid_options_are_rejected_at_open_without_creating_the_directory() {
    let parent = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("memtable 0", Options::default().memtable_size_bytes(0)),
        (
            "memtable 4095",
            Options::default().memtable_size_bytes(4095),
        ),
        ("block size 1", Options::default().block_size_bytes(1)),
        (
            "block size over 4 MiB",
            Options::default().block_size_bytes((4 << 20) + 1),
        ),
        (
            "restart interval 0",
            Options::default().block_restart_interval(0),
        ),
        (
            "restart interval 1025",
            Options::default().block_restart_interval(1025),
        ),
        ("bloom 100", Options::default().bloom_bits_per_key(100)),
        (
            "immutable memtables 0",
            Options::default().immutable_memtables_max(0),
        ),
        (
            "immutable memtables 65",
            Options::default().immutable_memtables_max(65),
        ),
        (
            "flush headroom 0",
            Options::default().flush_headroom_bytes(0),
        ),
    ];
    for (what, opts) in cases {
        let dir = parent.path().join(what.replace(' ', "-"));
        assert_invalid(Db::open(&dir, opts), what);
        assert!(!dir.exists(), "{what}: a rejected open creates nothing");
    }
}

#[test]
fn the_edges_of_the_valid_options_are_accepted() -> Result<()> {
    let parent = tempfile::tempdir().expect("tempdir");
    let edges = Options::default()
        .memtable_size_bytes(4096)
        .block_size_bytes(256)
        .block_restart_interval(1)
        .bloom_bits_per_key(0)
        .immutable_memtables_max(1)
        .flush_headroom_bytes(1);
    let db = Db::open(parent.path().join("low"), edges)?;
    for i in 0..300 {
        db.put(format!("key{i:03}"), "value")?;
    }
    db.flush()?;
    assert_eq!(db.get("key123")?, Some(b"value".to_vec()));
    let highs = Options::default()
        .block_size_bytes(4 << 20)
        .block_restart_interval(1024)
        .bloom_bits_per_key(32)
        .immutable_memtables_max(64)
        .flush_headroom_bytes(usize::MAX);
    let db = Db::open(parent.path().join("high"), highs)?;
    db.put("k", "v")?;
    db.flush()?;
    assert_eq!(db.get("k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_missing_directory_without_create_if_missing_is_rejected() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("missing");
    assert_invalid(
        Db::open(&dir, Options::default().create_if_missing(false)),
        "create_if_missing(false)",
    );
    assert!(!dir.exists());
}

#[test]
fn an_existing_database_with_error_if_exists_is_rejected_and_left_intact() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = Db::open(dir.path(), Options::default().error_if_exists(true))?;
    fresh.put("k", "v")?;
    fresh.close()?;
    assert_invalid(
        Db::open(dir.path(), Options::default().error_if_exists(true)),
        "error_if_exists(true)",
    );
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.get("k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_file_where_the_directory_should_be_is_rejected() {
    let parent = tempfile::tempdir().expect("tempdir");
    let path = parent.path().join("plain-file");
    std::fs::write(&path, b"not a database").expect("write");
    assert_invalid(Db::open(&path, Options::default()), "a file");
}
