//! `alluvium demo`: the README's main job.

use std::io::Write;
use std::path::PathBuf;

use alluvium::{Db, Options, WriteBatch, WriteOptions};

/// Arguments of `alluvium demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Database directory; a fresh temporary directory when omitted.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of keys to write.
    #[arg(long, default_value_t = 100_000)]
    keys: u32,
}

type DemoResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `println!` that returns the write error instead of panicking, so `alluvium demo | head`
/// ends quietly.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*)?
    };
}

pub fn run(args: &DemoArgs) -> DemoResult {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("db")
        }
    };
    say!("opening a default database in {}", dir.display());
    let db = Db::open(&dir, Options::default())?;
    write_phase(&db, args.keys)?;
    read_phase(&db, args.keys)?;
    say!("closing (the memtable stays in the commit log) and reopening...");
    db.close()?;
    drop(db);
    let db = Db::open(&dir, Options::default())?;
    let report = db.recovery_report();
    say!(
        "recovered: {} log file(s), {} batch(es) replayed, latest sequence number {}, {} torn tail(s) dropped",
        report.logs_replayed,
        report.records_replayed,
        db.latest_seqno(),
        report.dropped.len()
    );
    read_phase(&db, args.keys)?;
    db.flush()?;
    let stats = db.stats();
    say!(
        "flushed: level 0 holds {} segment(s), {} bytes",
        stats.levels[0].segments,
        stats.levels[0].bytes
    );
    db.close()?;
    say!("done");
    Ok(())
}

fn write_phase(db: &Db, keys: u32) -> DemoResult {
    let started = std::time::Instant::now();
    let mut batch = WriteBatch::new();
    for i in 0..keys {
        batch.put(
            format!("user:{i:08}"),
            format!("{{\"id\":{i},\"name\":\"user {i}\"}}"),
        );
        if batch.len() == 100 {
            db.write(std::mem::take(&mut batch), &WriteOptions::default())?;
        }
    }
    db.write(batch, &WriteOptions::default())?;
    let first_deleted = db.delete(format!("user:{:08}", 0))?;
    let synced = db.write(single_put("demo:last-run", "ok"), &WriteOptions::synced())?;
    say!(
        "wrote {keys} keys in batches of 100, deleted user:00000000 (sequence number {first_deleted}), \
         synced a marker at sequence number {synced} in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

fn single_put(k: &str, v: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(k, v);
    b
}

fn read_phase(db: &Db, keys: u32) -> DemoResult {
    let probe = format!("user:{:08}", keys / 2);
    let value = db
        .get(&probe)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    say!("get {probe} -> {}", value.as_deref().unwrap_or("(none)"));
    say!(
        "get user:00000000 -> {:?} (deleted)",
        db.get("user:00000000")?
    );
    let first: Vec<_> = db
        .prefix("user:")
        .take(3)
        .collect::<alluvium::Result<_>>()?;
    let last: Vec<_> = db
        .prefix("user:")
        .rev()
        .take(2)
        .collect::<alluvium::Result<_>>()?;
    let names = |v: &[(Vec<u8>, Vec<u8>)]| {
        v.iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    say!(
        "first keys: {:?}; last keys (reverse): {:?}",
        names(&first),
        names(&last)
    );
    let count = db.prefix("user:").count();
    say!("prefix user: holds {count} keys");
    Ok(())
}
