//! Criterion benches for the hot pieces: memtable insert and lookup, data block build and seek,
//! segment build and point lookups, bloom probes, merging iteration, commit log append with and
//! without group commit.

use std::hint::black_box;
use std::sync::Arc;

use alluvium::key::{compare_internal, internal_key, ValueKind};
use alluvium::memtable::Memtable;
use alluvium::segment::block::{BlockBuilder, BlockView};
use alluvium::segment::{Segment, SegmentWriter};
use alluvium::{Compression, Db, Options, WriteBatch, WriteOptions};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn key(i: u64) -> Vec<u8> {
    format!("{:016}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 10_000_000).into_bytes()
}

/// A 100-byte value that snappy halves, as db_bench's values at its default compression ratio.
fn half_compressible_value() -> Vec<u8> {
    let half: Vec<u8> = (0..50u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    [half.as_slice(), half.as_slice()].concat()
}

fn memtable(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    let value = half_compressible_value();
    for compression in [Compression::None, Compression::Snappy] {
        g.throughput(Throughput::Elements(10_000));
        g.bench_function(format!("insert_10k_random_{compression:?}"), |b| {
            b.iter_batched(
                || Memtable::with_compression(1, compression),
                |m| {
                    for i in 0..10_000u64 {
                        m.insert(&key(i), i + 1, ValueKind::Put, &value);
                    }
                    m
                },
                BatchSize::SmallInput,
            )
        });
        let m = Memtable::with_compression(1, compression);
        for i in 0..100_000u64 {
            m.insert(&key(i), i + 1, ValueKind::Put, &value);
        }
        g.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        g.bench_function(format!("get_hit_100k_{compression:?}"), |b| {
            b.iter(|| {
                i = (i + 7919) % 100_000;
                black_box(m.get(&key(i), u64::MAX >> 8))
            })
        });
    }
    g.finish();
}

fn build_segment(dir: &std::path::Path, n: u64, opts: &Options) -> Arc<Segment> {
    let path = dir.join(format!("{n:06}.seg"));
    let _ = std::fs::remove_file(&path);
    let mut keys: Vec<Vec<u8>> = (0..n).map(key).collect();
    keys.sort();
    keys.dedup();
    let mut w = SegmentWriter::create(&path, opts).expect("create");
    for (s, k) in keys.iter().enumerate() {
        let ikey = alluvium::key::internal_key(k, s as u64 + 1, ValueKind::Put);
        w.add(&ikey, &[7u8; 100]).expect("add");
    }
    w.finish().expect("finish");
    Arc::new(Segment::open(&path, n).expect("open"))
}

fn segment(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("segment");
    for comp in [Compression::None, Compression::Snappy] {
        let opts = Options::default().compression(comp);
        g.throughput(Throughput::Elements(10_000));
        g.bench_function(format!("build_10k_{comp:?}"), |b| {
            b.iter(|| build_segment(dir.path(), 10_000, &opts))
        });
        let seg = build_segment(dir.path(), 100_000, &opts);
        g.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        g.bench_function(format!("get_hit_{comp:?}"), |b| {
            b.iter(|| {
                i = (i + 7919) % 100_000;
                black_box(seg.get(&key(i), u64::MAX >> 8).expect("get"))
            })
        });
        g.bench_function(format!("bloom_probe_miss_{comp:?}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(seg.may_contain(format!("missing{i}").as_bytes()))
            })
        });
        g.throughput(Throughput::Elements(100_000));
        g.bench_function(format!("scan_100k_{comp:?}"), |b| {
            b.iter(|| {
                seg.range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                    .count()
            })
        });
    }
    g.finish();
}

/// One 4 KiB data block of 16-byte keys and 100-byte values (about 30 entries), restart
/// interval 16 (the defaults): building it, and seeking in it the way a point lookup does.
fn block(c: &mut Criterion) {
    let mut keys: Vec<Vec<u8>> = (0..30u64)
        .map(|i| internal_key(&key(i), i + 1, ValueKind::Put))
        .collect();
    keys.sort_by(|a, b| compare_internal(a, b));
    let value = [b'v'; 100];
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(keys.len() as u64));
    let mut builder = BlockBuilder::new(16);
    g.bench_function("build_4k", |b| {
        b.iter(|| {
            for k in &keys {
                builder.add(k, &value);
            }
            black_box(builder.finish().len())
        })
    });
    for k in &keys {
        builder.add(k, &value);
    }
    let bytes = builder.finish().to_vec();
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("seek_4k", |b| {
        b.iter(|| {
            i = (i + 7) % keys.len();
            let view = BlockView::parse(&bytes).expect("a valid block");
            let found = view.seek(&keys[i], compare_internal).expect("decodes");
            black_box(found.map(|(k, _)| k.len()))
        })
    });
    g.finish();
}

fn commit_log(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_log");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path().join("db"), Options::default()).expect("open");
    let mut i = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("put_unsynced", |b| {
        b.iter(|| {
            i += 1;
            db.put(key(i), [7u8; 100]).expect("put")
        })
    });
    for threads in [1usize, 4] {
        g.throughput(Throughput::Elements(threads as u64 * 20));
        g.bench_function(format!("put_synced_{threads}_threads_x20"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let db = &db;
                        s.spawn(move || {
                            for j in 0..20u64 {
                                let mut batch = WriteBatch::new();
                                batch.put(key(j * 31 + t as u64), [1u8; 100]);
                                db.write(batch, &WriteOptions::synced()).expect("write");
                            }
                        });
                    }
                })
            })
        });
    }
    g.finish();
}

/// The merging iterator over a memtable and four level-0 segments that overwrite each other.
fn merging_iterator(c: &mut Criterion) {
    let mut g = c.benchmark_group("merging_iterator");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options::default().compaction_enabled(false);
    let db = Db::open(dir.path().join("db"), opts).expect("open");
    for round in 0..5u64 {
        for i in 0..20_000u64 {
            db.put(key(i * 5 + round), [7u8; 100]).expect("put");
        }
        if round < 4 {
            db.flush().expect("flush");
        }
    }
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("scan_5_sources_100k", |b| b.iter(|| db.iter().count()));
    g.bench_function("scan_reverse_5_sources_100k", |b| {
        b.iter(|| db.iter().rev().count())
    });
    g.throughput(Throughput::Elements(100));
    let mut i = 0u64;
    g.bench_function("seek_and_take_100", |b| {
        b.iter(|| {
            i += 1;
            db.range(key(i)..).take(100).count()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = memtable, block, segment, commit_log, merging_iterator
}
criterion_main!(benches);
