//! `alluvium bench`: db_bench-style workloads against alluvium (and, behind cargo features
//! CI never builds, fjall and RocksDB), printing db_bench's result lines.

mod engines;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use engines::Engine;
use rand::{Rng, SeedableRng};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
type Histogram = hdrhistogram::Histogram<u64>;

/// Arguments of `alluvium bench`, named after db_bench's flags.
#[derive(clap::Args, Clone)]
pub struct BenchArgs {
    /// Comma-separated workloads: fillseq, fillrandom, overwrite, fillsync, readrandom,
    /// readmissing, seekrandom, deleterandom, readwhilewriting, readseq, readreverse,
    /// waitforcompaction, feedtail (alluvium only: a cursor tails the writes).
    #[arg(long, default_value = "fillrandom,readrandom")]
    benchmarks: String,
    /// Number of keys (and of operations per workload).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Reads per read workload (default: --num).
    #[arg(long)]
    reads: Option<u64>,
    /// Writes per write workload (default: --num); keys stay below --num.
    #[arg(long)]
    writes: Option<u64>,
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
    /// Keep what --db holds; without it an existing --db directory is removed first, as
    /// db_bench does.
    #[arg(long = "use_existing_db", default_value_t = false)]
    use_existing_db: bool,
    /// Sync every write.
    #[arg(long, default_value_t = false)]
    sync: bool,
    /// Print the engine's own account of flushes and compactions at the end (RocksDB's
    /// `rocksdb.stats`; alluvium's per-level compaction bytes).
    #[arg(long, default_value_t = false)]
    statistics: bool,
    /// Print latency percentiles (p50, p99, p99.9, max) for each workload.
    #[arg(long, default_value_t = false)]
    histogram: bool,
    /// Memtables in memory at most, the active one included (alluvium: immutable memtables
    /// allowed = this - 1; RocksDB: max_write_buffer_number).
    /// Default: each engine's own (alluvium 3, RocksDB 2).
    #[arg(long = "max_write_buffer_number")]
    max_write_buffer_number: Option<usize>,
    /// alluvium only: bytes the next memtable may gather while a full one flushes before
    /// writers wait for the flush (`Options::flush_headroom_bytes`; default an eighth of
    /// `--write_buffer_size`; 18446744073709551615 turns the wait off).
    #[arg(long = "flush_headroom")]
    flush_headroom: Option<usize>,
    /// Compression of alluvium's commit log: none or snappy (the default). RocksDB's WAL is
    /// uncompressed here: zstd, its only WAL compression, is not built in.
    #[arg(long = "wal_compression")]
    wal_compression: Option<String>,
    /// Memtable size in bytes.
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    write_buffer_size: u64,
    /// Block cache size in bytes, for every engine (default 32 MiB: RocksDB's and fjall's
    /// own default; 0 turns alluvium's and RocksDB's off, and gives fjall the smallest).
    #[arg(long = "cache_size", default_value_t = 32 << 20)]
    cache_size: u64,
    /// Engine: alluvium; fjall or rocksdb when built with `--features fjall` / `rocksdb`.
    #[arg(long, default_value = "alluvium")]
    engine: String,
}

struct Ctx<'a> {
    args: &'a BenchArgs,
    engine: &'a Arc<dyn Engine>,
    values: &'a ValueGen,
    written: &'a KeySet,
}

pub fn run(args: &BenchArgs) -> BenchResult {
    let tmp = tempfile::tempdir()?;
    let dir = args.db.clone().unwrap_or_else(|| tmp.path().join("db"));
    if args.db.is_some() && !args.use_existing_db && dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let engine = engines::open(args, &dir)?;
    let values = ValueGen::new(args.value_size, args.compression_ratio);
    let written = KeySet::new(args.num);
    let ctx = Ctx {
        args,
        engine: &engine,
        values: &values,
        written: &written,
    };
    println!(
        "engine: {}  keys: {} bytes  values: {} bytes  entries: {}  threads: {}",
        args.engine, args.key_size, args.value_size, args.num, args.threads
    );
    let io_before = disk_write_bytes();
    let anon = AnonPeak::start();
    for name in args.benchmarks.split(',').filter(|s| !s.is_empty()) {
        let started = Instant::now();
        let outcome = run_one(name, &ctx)?;
        report(name, started.elapsed().as_secs_f64(), &outcome, args);
    }
    summary(&ctx, &dir, io_before);
    println!("peak anonymous memory: {} KiB", anon.finish());
    if args.statistics {
        print!("{}", engine.statistics());
    }
    Ok(())
}

/// Peak anonymous resident memory (`RssAnon`), sampled every 10 ms by a thread: the heap,
/// memtables and caches an engine owns, without the pages of files it maps (which `VmHWM`
/// counts although the kernel can drop them at any time).
struct AnonPeak {
    peak: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl AnonPeak {
    fn start() -> Self {
        let peak = std::sync::Arc::new(AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(
                    proc_field("/proc/self/status", "RssAnon:"),
                    Ordering::Relaxed,
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        AnonPeak { peak, stop, thread }
    }

    /// Stops sampling; the largest sample in KiB.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let last = proc_field("/proc/self/status", "RssAnon:");
        self.peak.load(Ordering::Relaxed).max(last)
    }
}

#[derive(Default)]
struct Outcome {
    ops: u64,
    found: u64,
    bytes: u64,
    latency: Option<Histogram>,
}

fn run_one(name: &str, ctx: &Ctx) -> BenchResult<Outcome> {
    let args = ctx.args;
    let (reads, writes) = (
        args.reads.unwrap_or(args.num),
        args.writes.unwrap_or(args.num),
    );
    let threads = args.threads.max(1) as u64;
    match name {
        "fillseq" => parallel(ctx, writes, |t, i| {
            write_op(ctx, (i * threads + t) % args.num.max(1), false)
        }),
        "fillrandom" | "overwrite" => parallel(ctx, writes, |_, _| {
            write_op(ctx, random_key(args.num), false)
        }),
        "fillsync" => parallel(ctx, writes / 100, |_, _| {
            write_op(ctx, random_key(args.num), true)
        }),
        "readrandom" => parallel(ctx, reads, |_, _| read_op(ctx, random_key(args.num), false)),
        "readmissing" => parallel(ctx, reads, |_, _| read_op(ctx, random_key(args.num), true)),
        "seekrandom" => parallel(ctx, reads, |_, _| seek_op(ctx, random_key(args.num))),
        "deleterandom" => parallel(ctx, writes, |_, _| delete_op(ctx, random_key(args.num))),
        "readwhilewriting" => read_while_writing(ctx, reads),
        "readseq" | "readreverse" => {
            let n = ctx.engine.scan(name == "readreverse")?;
            let bytes = n * (args.key_size + args.value_size) as u64;
            Ok(Outcome {
                ops: n,
                found: n,
                bytes,
                latency: None,
            })
        }
        "feedtail" => feed_tail(ctx, writes),
        "waitforcompaction" => {
            ctx.engine.settle()?;
            Ok(Outcome {
                ops: 1,
                ..Outcome::default()
            })
        }
        other => Err(format!("unknown benchmark {other:?}").into()),
    }
}

fn write_op(ctx: &Ctx, k: u64, sync: bool) -> BenchResult<(bool, u64)> {
    let key = make_key(k, ctx.args.key_size, false);
    ctx.engine
        .put(&key, ctx.values.next(), sync || ctx.args.sync)?;
    let bytes = (key.len() + ctx.args.value_size) as u64;
    ctx.written.insert(k, bytes);
    Ok((true, bytes))
}

fn seek_op(ctx: &Ctx, k: u64) -> BenchResult<(bool, u64)> {
    let key = make_key(k, ctx.args.key_size, false);
    let found = ctx.engine.seek(&key)?;
    Ok((
        found,
        if found {
            (key.len() + ctx.args.value_size) as u64
        } else {
            0
        },
    ))
}

fn delete_op(ctx: &Ctx, k: u64) -> BenchResult<(bool, u64)> {
    let key = make_key(k, ctx.args.key_size, false);
    ctx.engine.delete(&key, ctx.args.sync)?;
    Ok((true, key.len() as u64))
}

/// `--threads` readers run `reads` random reads while one more thread overwrites random keys
/// until they finish; the figures are the readers'.
fn read_while_writing(ctx: &Ctx, reads: u64) -> BenchResult<Outcome> {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> BenchResult {
            while !done.load(Ordering::Relaxed) {
                write_op(ctx, random_key(ctx.args.num), false)?;
            }
            Ok(())
        });
        let outcome = parallel(ctx, reads, |_, _| {
            read_op(ctx, random_key(ctx.args.num), false)
        });
        done.store(true, Ordering::Relaxed);
        writer.join().map_err(|_| "the writer thread panicked")??;
        outcome
    })
}

fn read_op(ctx: &Ctx, k: u64, missing: bool) -> BenchResult<(bool, u64)> {
    let key = make_key(k, ctx.args.key_size, missing);
    let found = ctx.engine.get(&key)?;
    Ok((
        found,
        if found {
            (key.len() + ctx.args.value_size) as u64
        } else {
            0
        },
    ))
}

/// Change-feed tailing: a cursor follows `ops` single-put batches as they commit; the figures
/// are changes handed out per second and the latency from write call to cursor.
fn feed_tail(ctx: &Ctx, ops: u64) -> BenchResult<Outcome> {
    let latencies = ctx.engine.feed_tail(ops, ctx.values.next())?;
    let mut hist = Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?;
    latencies.iter().for_each(|l| hist.saturating_record(*l));
    let bytes = ops * (ctx.args.key_size + ctx.args.value_size) as u64;
    Ok(Outcome {
        ops,
        found: ops,
        bytes,
        latency: Some(hist),
    })
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

/// Runs `ops` operations split over the configured threads, timing each one.
fn parallel(
    ctx: &Ctx,
    ops: u64,
    op: impl Fn(u64, u64) -> BenchResult<(bool, u64)> + Sync,
) -> BenchResult<Outcome> {
    let threads = ctx.args.threads.max(1) as u64;
    let per_thread = |t: u64| -> BenchResult<(Histogram, u64, u64)> {
        let (mut hist, mut found, mut bytes) =
            (Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?, 0, 0);
        for i in 0..ops / threads {
            let started = Instant::now();
            let (f, b) = op(t, i)?;
            hist.saturating_record(started.elapsed().as_nanos() as u64);
            found += u64::from(f);
            bytes += b;
        }
        Ok((hist, found, bytes))
    };
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || per_thread(t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a benchmark thread panicked")?)
            .collect::<BenchResult<Vec<_>>>()
    })?;
    let mut out = Outcome {
        ops: ops / threads * threads,
        latency: Some(Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?),
        ..Outcome::default()
    };
    for (hist, found, bytes) in results {
        out.latency.as_mut().map(|l| l.add(&hist)).transpose()?;
        out.found += found;
        out.bytes += bytes;
    }
    Ok(out)
}

fn report(name: &str, secs: f64, o: &Outcome, args: &BenchArgs) {
    let ops = o.ops.max(1) as f64;
    let micros = secs * 1e6 / ops * args.threads.max(1) as f64;
    let mbps = o.bytes as f64 / 1048576.0 / secs;
    let mut line = format!(
        "{name:<12} : {micros:>11.3} micros/op {:.0} ops/sec; {mbps:>6.1} MB/s",
        ops / secs
    );
    if matches!(
        name,
        "readrandom" | "readmissing" | "seekrandom" | "readwhilewriting"
    ) {
        line.push_str(&format!(" ({} of {} found)", o.found, o.ops));
    }
    println!("{line}");
    if let Some(h) = o.latency.as_ref().filter(|_| args.histogram) {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let max = h.max() as f64 / 1000.0;
        println!(
            "{name:<12} : latency us p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {max:.2}",
            us(0.5),
            us(0.99),
            us(0.999)
        );
    }
}

/// Disk, space and memory figures after the run.
fn summary(ctx: &Ctx, dir: &std::path::Path, io_before: (u64, u64)) {
    let user = ctx.written.user_bytes.load(Ordering::Relaxed);
    let io = disk_write_bytes();
    let disk = io.0.saturating_sub(io_before.0);
    let cancelled = io.1.saturating_sub(io_before.1);
    let size = dir_size(dir);
    let live = ctx.written.count() * (ctx.args.key_size + ctx.args.value_size) as u64;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    println!(
        "user bytes written: {user}  disk bytes written: {disk}  write amplification: {:.3}",
        ratio(disk, user)
    );
    println!(
        "of those, dropped dirty before writeback (file deleted first): {cancelled}  net write amplification: {:.3}",
        ratio(disk.saturating_sub(cancelled), user)
    );
    println!(
        "directory size: {size} bytes  live data: {live} bytes  space amplification: {:.2}",
        ratio(size, live)
    );
    println!("peak resident memory: {} KiB", peak_rss_kib());
}

/// Distinct keys written (for the live-data size) and bytes the user wrote.
struct KeySet {
    bits: Vec<AtomicU64>,
    user_bytes: AtomicU64,
}

impl KeySet {
    fn new(num: u64) -> Self {
        let words = num.div_ceil(64) as usize;
        KeySet {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            user_bytes: AtomicU64::new(0),
        }
    }

    fn insert(&self, k: u64, bytes: u64) {
        if let Some(w) = self.bits.get((k / 64) as usize) {
            w.fetch_or(1 << (k % 64), Ordering::Relaxed);
        }
        self.user_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.bits
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

fn proc_field(file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let line = text.lines().find(|l| l.starts_with(field));
    let digits = line.map(|l| l.chars().filter(char::is_ascii_digit).collect::<String>());
    digits.and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// Bytes this process caused to be written to storage (`/proc/self/io`): the pages it
/// dirtied (`write_bytes`), and those of them dropped dirty because their file was deleted or
/// truncated before writeback (`cancelled_write_bytes`: an unsynced commit log deleted after
/// its flush never reaches the disk).
fn disk_write_bytes() -> (u64, u64) {
    let io = "/proc/self/io";
    (
        proc_field(io, "write_bytes:"),
        proc_field(io, "cancelled_write_bytes:"),
    )
}

/// Peak resident set size (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> u64 {
    proc_field("/proc/self/status", "VmHWM:")
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
