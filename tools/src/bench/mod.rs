//! `alluvium bench`: db_bench-style workloads against alluvium (and, behind cargo features
//! CI never builds, fjall), printing db_bench's result lines.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Arguments of `alluvium bench`, named after db_bench's flags.
#[derive(clap::Args, Clone)]
pub struct BenchArgs {
    /// Comma-separated workloads: fillseq, fillrandom, overwrite, fillsync, readrandom,
    /// readmissing, readseq, readreverse.
    #[arg(long, default_value = "fillrandom,readrandom")]
    benchmarks: String,
    /// Number of keys (and of operations per workload).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Reads per read workload (default: --num).
    #[arg(long)]
    reads: Option<u64>,
    /// Value size in bytes.
    #[arg(long = "value_size", default_value_t = 100)]
    value_size: usize,
    /// Key size in bytes (zero-padded decimal numbers, as db_bench).
    #[arg(long = "key_size", default_value_t = 16)]
    key_size: usize,
    /// Fraction a value compresses to.
    #[arg(long = "compression_ratio", default_value_t = 0.5)]
    compression_ratio: f64,
    /// Concurrent threads per workload.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Database directory (default: a fresh temporary directory).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Sync every write.
    #[arg(long, default_value_t = false)]
    sync: bool,
    /// Memtable size in bytes.
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    write_buffer_size: u64,
    /// Engine: alluvium; fjall or rocksdb when built with `--features fjall` / `rocksdb`.
    #[arg(long, default_value = "alluvium")]
    engine: String,
}

/// What a workload needs from an engine.
trait Engine: Send + Sync {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> BenchResult;
    fn get(&self, key: &[u8]) -> BenchResult<bool>;
    fn scan(&self, reverse: bool) -> BenchResult<u64>;
    fn settle(&self) -> BenchResult;
}

struct Alluvium(alluvium::Db);

impl Engine for Alluvium {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> BenchResult {
        let mut batch = alluvium::WriteBatch::new();
        batch.put(key, value);
        self.0.write(batch, &alluvium::WriteOptions { sync })?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<bool> {
        Ok(self.0.get(key)?.is_some())
    }

    fn scan(&self, reverse: bool) -> BenchResult<u64> {
        let iter = self.0.iter();
        let n = if reverse {
            count(iter.rev())?
        } else {
            count(iter)?
        };
        Ok(n)
    }

    fn settle(&self) -> BenchResult {
        Ok(())
    }
}

fn count<T>(mut iter: impl Iterator<Item = alluvium::Result<T>>) -> alluvium::Result<u64> {
    iter.try_fold(0, |n, r| r.map(|_| n + 1))
}

#[cfg(feature = "fjall")]
struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

#[cfg(feature = "fjall")]
impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> BenchResult {
        self.ks.insert(key, value)?;
        if sync {
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<bool> {
        Ok(self.ks.get(key)?.is_some())
    }

    fn scan(&self, reverse: bool) -> BenchResult<u64> {
        let mut n = 0;
        if reverse {
            for kv in self.ks.iter().rev() {
                kv.into_inner()?;
                n += 1;
            }
        } else {
            for kv in self.ks.iter() {
                kv.into_inner()?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn settle(&self) -> BenchResult {
        Ok(())
    }
}

#[cfg(feature = "rocksdb")]
struct Rocks(rocksdb::DB);

#[cfg(feature = "rocksdb")]
impl Engine for Rocks {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> BenchResult {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(sync);
        self.0.put_opt(key, value, &w)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> BenchResult<bool> {
        Ok(self.0.get_pinned(key)?.is_some())
    }

    fn scan(&self, reverse: bool) -> BenchResult<u64> {
        let mode = if reverse { rocksdb::IteratorMode::End } else { rocksdb::IteratorMode::Start };
        let mut n = 0;
        for kv in self.0.iterator(mode) {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    fn settle(&self) -> BenchResult {
        Ok(())
    }
}

#[cfg(feature = "rocksdb")]
fn open_rocksdb(args: &BenchArgs, dir: &std::path::Path) -> BenchResult<Arc<dyn Engine>> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(args.write_buffer_size as usize);
    opts.set_compression_type(rocksdb::DBCompressionType::Snappy);
    opts.set_level_compaction_dynamic_level_bytes(true);
    opts.increase_parallelism(2);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_size(4096);
    opts.set_block_based_table_factory(&table);
    Ok(Arc::new(Rocks(rocksdb::DB::open(&opts, dir)?)))
}

fn open_engine(args: &BenchArgs, dir: &std::path::Path) -> BenchResult<Arc<dyn Engine>> {
    match args.engine.as_str() {
        "alluvium" => {
            let opts =
                alluvium::Options::default().memtable_size_bytes(args.write_buffer_size as usize);
            Ok(Arc::new(Alluvium(alluvium::Db::open(dir, opts)?)))
        }
        #[cfg(feature = "fjall")]
        "fjall" => {
            let db = fjall::Database::builder(dir).open()?;
            let opts =
                fjall::KeyspaceCreateOptions::default().max_memtable_size(args.write_buffer_size);
            let ks = db.keyspace("bench", || opts)?;
            Ok(Arc::new(Fjall { db, ks }))
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => open_rocksdb(args, dir),
        other => Err(format!("engine {other:?} is not built in (see --help)").into()),
    }
}

pub fn run(args: &BenchArgs) -> BenchResult {
    let tmp = tempfile::tempdir()?;
    let dir = args.db.clone().unwrap_or_else(|| tmp.path().join("db"));
    let engine = open_engine(args, &dir)?;
    let values = ValueGen::new(args.value_size, args.compression_ratio);
    println!(
        "engine: {}  keys: {} bytes  values: {} bytes  entries: {}  threads: {}",
        args.engine, args.key_size, args.value_size, args.num, args.threads
    );
    for name in args.benchmarks.split(',').filter(|s| !s.is_empty()) {
        let started = Instant::now();
        let stats = run_one(name, args, &engine, &values)?;
        engine.settle()?;
        report(name, started.elapsed().as_secs_f64(), &stats, args);
    }
    println!("directory size: {} bytes", dir_size(&dir));
    Ok(())
}

#[derive(Default)]
struct Outcome {
    ops: u64,
    found: u64,
    bytes: u64,
}

fn run_one(
    name: &str,
    args: &BenchArgs,
    engine: &Arc<dyn Engine>,
    values: &ValueGen,
) -> BenchResult<Outcome> {
    let reads = args.reads.unwrap_or(args.num);
    match name {
        "fillseq" => parallel(args, args.num, |t, i| {
            write_op(engine, args, values, i * args.threads as u64 + t, false)
        }),
        "fillrandom" | "overwrite" => parallel(args, args.num, |_, _| {
            write_op(engine, args, values, random_key(args.num), false)
        }),
        "fillsync" => parallel(args, args.num / 100, |_, _| {
            write_op(engine, args, values, random_key(args.num), true)
        }),
        "readrandom" => parallel(args, reads, |_, _| {
            read_op(engine, args, random_key(args.num), false)
        }),
        "readmissing" => parallel(args, reads, |_, _| {
            read_op(engine, args, random_key(args.num), true)
        }),
        "readseq" | "readreverse" => {
            let n = engine.scan(name == "readreverse")?;
            Ok(Outcome {
                ops: n,
                found: n,
                bytes: n * (args.key_size + args.value_size) as u64,
            })
        }
        other => Err(format!("unknown benchmark {other:?}").into()),
    }
}

fn write_op(
    engine: &Arc<dyn Engine>,
    args: &BenchArgs,
    values: &ValueGen,
    k: u64,
    sync: bool,
) -> BenchResult<(bool, u64)> {
    let key = make_key(k, args.key_size, false);
    engine.put(&key, values.next(), sync || args.sync)?;
    Ok((true, (key.len() + args.value_size) as u64))
}

fn read_op(
    engine: &Arc<dyn Engine>,
    args: &BenchArgs,
    k: u64,
    missing: bool,
) -> BenchResult<(bool, u64)> {
    let key = make_key(k, args.key_size, missing);
    let found = engine.get(&key)?;
    Ok((
        found,
        if found {
            (key.len() + args.value_size) as u64
        } else {
            0
        },
    ))
}

fn random_key(num: u64) -> u64 {
    rand::thread_rng().gen_range(0..num.max(1))
}

/// db_bench's keys: the number zero-padded to `size` digits; a missing key gets a suffix.
fn make_key(k: u64, size: usize, missing: bool) -> Vec<u8> {
    let mut key = format!("{k:0size$}").into_bytes();
    key.truncate(size.max(1));
    if missing {
        key.push(b'.');
    }
    key
}

fn parallel(
    args: &BenchArgs,
    ops: u64,
    op: impl Fn(u64, u64) -> BenchResult<(bool, u64)> + Sync,
) -> BenchResult<Outcome> {
    let threads = args.threads.max(1) as u64;
    let (found, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (op, found, bytes) = (&op, &found, &bytes);
                s.spawn(move || -> BenchResult {
                    for i in 0..ops / threads {
                        let (f, b) = op(t, i)?;
                        found.fetch_add(u64::from(f), Ordering::Relaxed);
                        bytes.fetch_add(b, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a benchmark thread panicked")?)
    })?;
    Ok(Outcome {
        ops: ops / threads * threads,
        found: found.into_inner(),
        bytes: bytes.into_inner(),
    })
}

fn report(name: &str, secs: f64, o: &Outcome, args: &BenchArgs) {
    let ops = o.ops.max(1) as f64;
    let micros = secs * 1e6 / ops * args.threads.max(1) as f64;
    let mbps = o.bytes as f64 / 1048576.0 / secs;
    let mut line = format!(
        "{name:<12} : {micros:>11.3} micros/op {:.0} ops/sec; {mbps:>6.1} MB/s",
        ops / secs
    );
    if name.starts_with("read") && name != "readseq" && name != "readreverse" {
        line.push_str(&format!(" ({} of {} found)", o.found, o.ops));
    }
    println!("{line}");
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Values that compress to about `ratio`, as db_bench's generator makes them.
struct ValueGen {
    data: Vec<u8>,
    pos: AtomicU64,
    size: usize,
}

impl ValueGen {
    fn new(size: usize, ratio: f64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(301);
        let mut data = Vec::with_capacity(1 << 20);
        let piece = size.max(1);
        while data.len() < (1 << 20).max(piece * 2) {
            let raw = ((piece as f64 * ratio) as usize).max(1);
            let random: Vec<u8> = (0..raw).map(|_| rng.gen_range(b' '..=b'~')).collect();
            data.extend(random.iter().cycle().take(piece));
        }
        ValueGen {
            data,
            pos: AtomicU64::new(0),
            size,
        }
    }

    fn next(&self) -> &[u8] {
        let span = (self.data.len() - self.size) as u64;
        let at = (self.pos.fetch_add(self.size as u64, Ordering::Relaxed) % span.max(1)) as usize;
        &self.data[at..at + self.size]
    }
}
