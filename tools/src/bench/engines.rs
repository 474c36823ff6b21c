//! The engines `alluvium bench` drives: alluvium always; fjall and RocksDB behind cargo
//! features that CI never builds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{BenchArgs, BenchResult};

/// What a workload needs from an engine.
pub trait Engine: Send + Sync {
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> BenchResult;
    fn get(&self, key: &[u8]) -> BenchResult<bool>;
    /// Positions at the first key at or after `key` and reads it; false at the end.
    fn seek(&self, key: &[u8]) -> BenchResult<bool>;
    fn delete(&self, key: &[u8], sync: bool) -> BenchResult;
    fn scan(&self, reverse: bool) -> BenchResult<u64>;
    /// Flushes the memtable and waits until background compaction is idle.
    fn settle(&self) -> BenchResult;
    /// Writes `ops` single-put batches while a change-feed cursor tails them; returns the
    /// latency from submitting each write to the cursor handing it out, in nanoseconds.
    fn feed_tail(&self, ops: u64, value: &[u8]) -> BenchResult<Vec<u64>> {
        let _ = (ops, value);
        Err("feedtail needs a change feed: only the alluvium engine has one".into())
    }
    /// The engine's own account of where its bytes went (`--statistics`).
    fn statistics(&self) -> String;
}

/// Opens the engine `args.engine` names in `dir`.
pub fn open(args: &BenchArgs, dir: &std::path::Path) -> BenchResult<Arc<dyn Engine>> {
    match args.engine.as_str() {
        "alluvium" => {
            let mut opts =
                alluvium::Options::default().memtable_size_bytes(args.write_buffer_size as usize);
            opts = opts.block_cache_bytes(args.cache_size);
            if let Some(n) = args.max_write_buffer_number {
                opts = opts.immutable_memtables_max(n.saturating_sub(1).max(1));
            }
            if let Some(n) = args.flush_headroom {
                opts = opts.flush_headroom_bytes(n);
            }
            match args.wal_compression.as_deref() {
                None | Some("snappy") => {}
                Some("none") => opts = opts.log_compression(alluvium::Compression::None),
                Some(other) => {
                    return Err(format!(
                        "alluvium's log compression is none or snappy, not {other:?}"
                    )
                    .into())
                }
            }
            Ok(Arc::new(Alluvium(alluvium::Db::open(dir, opts)?)))
        }
        #[cfg(feature = "fjall")]
        "fjall" => open_fjall(args, dir),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => open_rocksdb(args, dir),
        other => Err(format!("engine {other:?} is not built in (see --help)").into()),
    }
}

/// Polls `busy` every 100 ms until it has been false ten times in a row.
#[cfg(any(feature = "fjall", feature = "rocksdb"))]
fn wait_quiet(busy: impl Fn() -> bool) {
    let mut quiet = 0;
    while quiet < 10 {
        quiet = if busy() { 0 } else { quiet + 1 };
        std::thread::sleep(Duration::from_millis(100));
    }
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

    fn seek(&self, key: &[u8]) -> BenchResult<bool> {
        Ok(self.0.range(key..).next().transpose()?.is_some())
    }

    fn delete(&self, key: &[u8], sync: bool) -> BenchResult {
        let mut batch = alluvium::WriteBatch::new();
        batch.delete(key);
        self.0.write(batch, &alluvium::WriteOptions { sync })?;
        Ok(())
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
        self.0.flush()?;
        self.0.wait_idle()?;
        Ok(())
    }

    fn statistics(&self) -> String {
        let s = self.0.stats();
        let mut out = format!(
            "flushes: {} ({} ms each on average)  flushed bytes: {}  compaction bytes written: {}  tree write amplification: {:.2}\n",
            s.flushes,
            s.flush_us / s.flushes.max(1) / 1000,
            s.flushed_bytes,
            s.compaction_bytes_written,
            s.write_amplification
        );
        out.push_str(&format!(
            "write stalls: {} waits for a flush, {} slowdowns, {} stops for compaction ({} ms in all)\n",
            s.write_stalls,
            s.write_slowdowns,
            s.write_stops,
            s.write_stall_us / 1000
        ));
        let lookups = s.block_cache_hits + s.block_cache_misses;
        out.push_str(&format!(
            "block cache: {} hits, {} misses ({:.1}% hit), {} bytes held\n",
            s.block_cache_hits,
            s.block_cache_misses,
            100.0 * s.block_cache_hits as f64 / lookups.max(1) as f64,
            s.block_cache_bytes
        ));
        out.push_str("level  segments        bytes  compactions  moves   bytes read     bytes in  bytes written\n");
        for (l, lv) in s.levels.iter().enumerate() {
            let c = &lv.compaction;
            out.push_str(&format!(
                "{l:>5}  {:>8}  {:>11}  {:>11}  {:>5}  {:>11}  {:>11}  {:>13}\n",
                lv.segments,
                lv.bytes,
                c.compactions,
                c.moves,
                c.bytes_read,
                c.bytes_in,
                c.bytes_written
            ));
        }
        out
    }

    fn feed_tail(&self, ops: u64, value: &[u8]) -> BenchResult<Vec<u64>> {
        let base = std::time::Instant::now();
        let submitted: Vec<AtomicU64> = (0..ops).map(|_| AtomicU64::new(0)).collect();
        let mut cursor = self.0.changes(alluvium::Start::Now)?;
        let first = self.0.latest_seqno() + 1;
        std::thread::scope(|s| {
            let consumer = s.spawn(|| -> BenchResult<Vec<u64>> {
                let mut latencies = Vec::with_capacity(ops as usize);
                while (latencies.len() as u64) < ops {
                    let Some(batch) = cursor.next_timeout(Duration::from_secs(10))? else {
                        return Err("the cursor saw nothing for 10 s".into());
                    };
                    let at = base.elapsed().as_nanos() as u64;
                    let i = (batch.first_seqno - first) as usize;
                    let sent = submitted.get(i).map_or(at, |t| t.load(Ordering::Acquire));
                    latencies.push(at.saturating_sub(sent));
                }
                Ok(latencies)
            });
            for i in 0..ops {
                submitted[i as usize].store(base.elapsed().as_nanos() as u64, Ordering::Release);
                self.put(format!("feed{i:012}").as_bytes(), value, false)?;
            }
            consumer.join().map_err(|_| "the consumer panicked")?
        })
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
fn open_fjall(args: &BenchArgs, dir: &std::path::Path) -> BenchResult<Arc<dyn Engine>> {
    if args.wal_compression.is_some() {
        return Err("--wal_compression is not wired up for fjall".into());
    }
    let db = fjall::Database::builder(dir)
        .cache_size(args.cache_size)
        .open()?;
    let opts = fjall::KeyspaceCreateOptions::default().max_memtable_size(args.write_buffer_size);
    let ks = db.keyspace("bench", || opts)?;
    Ok(Arc::new(Fjall { db, ks }))
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

    fn seek(&self, key: &[u8]) -> BenchResult<bool> {
        match self.ks.range(key..).next() {
            Some(kv) => kv.into_inner().map(|_| true).map_err(Into::into),
            None => Ok(false),
        }
    }

    fn delete(&self, key: &[u8], sync: bool) -> BenchResult {
        self.ks.remove(key)?;
        if sync {
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
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
        self.ks.rotate_memtable_and_wait()?;
        wait_quiet(|| self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0);
        Ok(())
    }

    fn statistics(&self) -> String {
        String::from("(fjall reports no per-level statistics)\n")
    }
}

#[cfg(feature = "rocksdb")]
struct Rocks(rocksdb::DB);

#[cfg(feature = "rocksdb")]
fn open_rocksdb(args: &BenchArgs, dir: &std::path::Path) -> BenchResult<Arc<dyn Engine>> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(args.write_buffer_size as usize);
    if let Some(n) = args.max_write_buffer_number {
        opts.set_max_write_buffer_number(n as i32);
    }
    opts.set_compression_type(rocksdb::DBCompressionType::Snappy);
    opts.set_level_compaction_dynamic_level_bytes(true);
    // RocksDB compresses its WAL only with zstd, which this build leaves out (the `rocksdb`
    // feature builds the library with snappy alone); it would silently ignore the setting.
    if !matches!(args.wal_compression.as_deref(), None | Some("none")) {
        return Err("RocksDB is built without zstd, its only WAL compression".into());
    }
    opts.increase_parallelism(2);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_size(4096);
    if args.cache_size == 0 {
        table.disable_cache();
    } else {
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(args.cache_size as usize));
    }
    opts.set_block_based_table_factory(&table);
    Ok(Arc::new(Rocks(rocksdb::DB::open(&opts, dir)?)))
}

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

    fn seek(&self, key: &[u8]) -> BenchResult<bool> {
        let mut it = self.0.raw_iterator();
        it.seek(key);
        it.status()?;
        Ok(it.valid() && it.value().is_some())
    }

    fn delete(&self, key: &[u8], sync: bool) -> BenchResult {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(sync);
        self.0.delete_opt(key, &w)?;
        Ok(())
    }

    fn scan(&self, reverse: bool) -> BenchResult<u64> {
        let mode = if reverse {
            rocksdb::IteratorMode::End
        } else {
            rocksdb::IteratorMode::Start
        };
        let mut n = 0;
        for kv in self.0.iterator(mode) {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    fn settle(&self) -> BenchResult {
        self.0.flush()?;
        let busy = |p: &str| self.0.property_int_value(p).ok().flatten().unwrap_or(0) > 0;
        let props = [
            "rocksdb.compaction-pending",
            "rocksdb.num-running-compactions",
            "rocksdb.num-running-flushes",
        ];
        wait_quiet(|| props.iter().any(|p| busy(p)));
        Ok(())
    }

    fn statistics(&self) -> String {
        self.0
            .property_value("rocksdb.stats")
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}
