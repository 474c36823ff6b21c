//! Change feed benches.
//!
//! - `feed/catch_up_*`: changes per second read by a cursor catching up from log files on disk
//!   (criterion, throughput in operations; 100-byte values), from a snappy-compressed log (the
//!   default) and from an uncompressed one.
//! - `feed/tail_latency`: commit-to-consumer latency of a cursor waiting at the end of the log,
//!   p50 / p99 / p99.9 over 20 000 commits without sync (printed; criterion does not report
//!   percentiles). The writer stamps each value with the time just before `Db::write`; the
//!   consumer, blocked in `next_timeout`, takes the time when the batch is handed to it. The
//!   `Db::write` calls' own latency and a wakeup baseline without the database (a condition
//!   variable) are printed beside it, to tell what the commit and the scheduler add.
//!
//! `cargo bench --bench feed` runs both; `cargo bench --bench feed -- catch_up` or
//! `-- tail_latency` one of them.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use alluvium::{Compression, Db, Options, Start, WriteBatch, WriteOptions};
use criterion::{BenchmarkId, Criterion, Throughput};

const OPS: u64 = 200_000;

/// A database holding `OPS` puts with 100-byte values in batches of `per_batch`, all in log
/// files (a subscription keeps them through flushes).
fn prepare(dir: &Path, per_batch: u64, compression: Compression) -> alluvium::Result<()> {
    let opts = Options::default()
        .memtable_size_bytes(16 << 20)
        .log_compression(compression);
    let db = Db::open(dir, opts)?;
    db.create_subscription("bench", Start::Beginning)?;
    let value = [b'v'; 100];
    for b in 0..OPS / per_batch {
        let mut batch = WriteBatch::new();
        for i in 0..per_batch {
            batch.put(format!("key{:012}", b * per_batch + i), value);
        }
        db.write(batch, &WriteOptions::default())?;
    }
    db.close()
}

fn catch_up(c: &mut Criterion) {
    let mut g = c.benchmark_group("feed");
    g.throughput(Throughput::Elements(OPS));
    g.sample_size(20);
    let cases = [1u64, 100].map(|n| [(n, Compression::Snappy), (n, Compression::None)]);
    for (per_batch, compression) in cases.into_iter().flatten() {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path(), per_batch, compression).expect("prepare");
        let db = Db::open(dir.path(), Options::default()).expect("open");
        let log = match compression {
            Compression::Snappy => "snappy_log",
            Compression::None => "raw_log",
        };
        g.bench_with_input(
            BenchmarkId::new(format!("catch_up_{log}_ops_per_batch"), per_batch),
            &db,
            |b, db| {
                b.iter(|| {
                    let mut cursor = db.changes(Start::Beginning).expect("cursor");
                    let mut ops = 0;
                    while let Some(batch) = cursor.try_next().expect("read") {
                        ops += black_box(batch).ops.len() as u64;
                    }
                    assert_eq!(ops, OPS);
                })
            },
        );
        db.close().expect("close");
    }
    g.finish();
}

/// Nanoseconds since `base`, as 8 bytes.
fn stamp(base: Instant) -> [u8; 8] {
    (base.elapsed().as_nanos() as u64).to_le_bytes()
}

fn tail_latency() {
    const COMMITS: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let base = Instant::now();
    let mut cursor = db.changes(Start::Now).expect("cursor");
    let consumer = std::thread::spawn(move || {
        let mut lat_ns = Vec::with_capacity(COMMITS);
        while lat_ns.len() < COMMITS {
            let batch = cursor.next_timeout(Duration::from_secs(10)).expect("read");
            let batch = batch.expect("a batch within 10 s");
            let now = base.elapsed().as_nanos() as u64;
            let sent: [u8; 8] = batch.ops[0].1.value().try_into().expect("stamp");
            lat_ns.push(now - u64::from_le_bytes(sent));
        }
        lat_ns
    });
    let mut write_ns = Vec::with_capacity(COMMITS);
    for i in 0..COMMITS {
        let mut batch = WriteBatch::new();
        batch.put(format!("k{i:08}"), stamp(base));
        let started = Instant::now();
        db.write(batch, &WriteOptions::default()).expect("write");
        write_ns.push(started.elapsed().as_nanos() as u64);
        // Pace the writer so the consumer is waiting at the end of the log for each commit
        // (sleeping, so that on a small machine the writer does not hold the consumer's core).
        std::thread::sleep(Duration::from_micros(100));
    }
    let lat_ns = consumer.join().expect("consumer");
    print_percentiles(
        "feed/tail_latency (commit to waiting cursor, no sync)",
        lat_ns,
    );
    // The same commits' `Db::write` calls alone: what the commit itself adds to the tail.
    print_percentiles("feed/write_call (Db::write of those commits)", write_ns);
    db.close().expect("close");
}

/// The same measurement without the database: a thread waiting on a condition variable that
/// the writer signals. It shows what the machine's scheduler alone adds to the tail.
fn wakeup_baseline() {
    use std::sync::{Arc, Condvar, Mutex};
    const COMMITS: usize = 20_000;
    let base = Instant::now();
    let shared = Arc::new((Mutex::new((0usize, 0u64)), Condvar::new()));
    let consumer = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*shared;
            let mut lat_ns = Vec::with_capacity(COMMITS);
            let mut seen = 0;
            while seen < COMMITS {
                let mut g = lock.lock().expect("lock");
                while g.0 == seen {
                    g = cv.wait(g).expect("wait");
                }
                seen = g.0;
                lat_ns.push(base.elapsed().as_nanos() as u64 - g.1);
            }
            lat_ns
        })
    };
    for i in 1..=COMMITS {
        *shared.0.lock().expect("lock") = (i, base.elapsed().as_nanos() as u64);
        shared.1.notify_all();
        std::thread::sleep(Duration::from_micros(100));
    }
    let lat_ns = consumer.join().expect("consumer");
    print_percentiles("feed/wakeup_baseline (no database)", lat_ns);
}

fn print_percentiles(what: &str, mut lat_ns: Vec<u64>) {
    lat_ns.sort_unstable();
    let pct = |p: f64| lat_ns[((lat_ns.len() as f64 * p) as usize).min(lat_ns.len() - 1)];
    println!(
        "{what}: {} samples: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        lat_ns.len(),
        pct(0.50) as f64 / 1e3,
        pct(0.99) as f64 / 1e3,
        pct(0.999) as f64 / 1e3,
        *lat_ns.last().unwrap_or(&0) as f64 / 1e3,
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("feed/tail_latency") {
        tail_latency();
        wakeup_baseline();
    }
    let mut c = Criterion::default().configure_from_args();
    if wants("feed/catch_up_ops_per_batch") {
        catch_up(&mut c);
    }
    c.final_summary();
}
