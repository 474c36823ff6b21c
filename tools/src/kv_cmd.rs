//! `alluvium get|put|delete|scan DIR ...`: quick work on a database no other process holds.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use alluvium::{Db, DbIter, Error, Options, WriteBatch, WriteOptions};
use serde::Serialize;

use crate::json::KeyValueJson;
use crate::output::{decode, Align, Out, OutputArgs, Table};
use crate::CmdResult;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    alluvium get db/ user:1\n  \
    alluvium get db/ 00ff --key-encoding hex --value-encoding base64\n\n\
    The exit status is 1 when the key is absent.")]
pub struct GetArgs {
    /// The database directory.
    dir: PathBuf,
    /// The key (in --key-encoding).
    key: String,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    alluvium put db/ user:1 ada\n  \
    alluvium put db/ 'bin\\x00key' 'line\\x0a' --create")]
pub struct PutArgs {
    /// The database directory.
    dir: PathBuf,
    /// The key (in --key-encoding).
    key: String,
    /// The value (in --value-encoding).
    value: String,
    /// Create the database if the directory holds none.
    #[arg(long)]
    create: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Example:\n  alluvium delete db/ user:1")]
pub struct DeleteArgs {
    /// The database directory.
    dir: PathBuf,
    /// The key (in --key-encoding).
    key: String,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    alluvium scan db/ --prefix user: --limit 10\n  \
    alluvium scan db/ --from a --to m --reverse --json")]
pub struct ScanArgs {
    /// The database directory.
    dir: PathBuf,
    /// Only keys starting with this prefix (in --key-encoding).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    prefix: Option<String>,
    /// Only keys at or after this key.
    #[arg(long)]
    from: Option<String>,
    /// Only keys before this key.
    #[arg(long)]
    to: Option<String>,
    /// Print at most this many keys.
    #[arg(long)]
    limit: Option<usize>,
    /// Largest key first.
    #[arg(long)]
    reverse: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// One item of a scan.
type KeyValue = alluvium::Result<(Vec<u8>, Vec<u8>)>;

/// Opens the database in `dir` for a quick operation. Without `create`, a directory holding
/// no database is an error rather than a new, empty database.
fn open(dir: &Path, create: bool) -> Result<Db, String> {
    if !create {
        crate::require_database(dir)?;
    }
    Db::open(dir, Options::default().create_if_missing(create)).map_err(|e| match e {
        Error::Locked { .. } => format!("{}: database is in use by another process", dir.display()),
        other => other.to_string(),
    })
}

pub fn get(args: &GetArgs) -> CmdResult {
    let key = decode(&args.key, args.out.key_encoding)?;
    let db = open(&args.dir, false)?;
    let value = db.get(&key)?;
    db.close()?;
    let mut out = Out::new();
    let printed = value.as_deref().map(|v| args.out.value(v));
    match args.out.json {
        true => out.json(&KeyValueJson {
            key: args.out.key(&key),
            value: printed.clone(),
        })?,
        false => {
            if let Some(v) = &printed {
                out.line(v)?;
            }
        }
    }
    out.finish()?;
    match printed {
        Some(_) => Ok(()),
        None => Err(format!("key {} not found", args.out.key(&key)).into()),
    }
}

#[derive(Serialize)]
struct WriteJson {
    op: &'static str,
    key: String,
    seqno: u64,
}

pub fn put(args: &PutArgs) -> CmdResult {
    let key = decode(&args.key, args.out.key_encoding)?;
    let value = decode(&args.value, args.out.value_encoding)?;
    let mut batch = WriteBatch::new();
    batch.put(&key, &value);
    write(&args.dir, args.create, batch, "put", &key, &args.out)
}

pub fn delete(args: &DeleteArgs) -> CmdResult {
    let key = decode(&args.key, args.out.key_encoding)?;
    let mut batch = WriteBatch::new();
    batch.delete(&key);
    write(&args.dir, false, batch, "delete", &key, &args.out)
}

/// Applies a one-operation batch, synced, and prints its sequence number.
fn write(
    dir: &Path,
    create: bool,
    batch: WriteBatch,
    op: &'static str,
    key: &[u8],
    args: &OutputArgs,
) -> CmdResult {
    let db = open(dir, create)?;
    let seqno = db.write(batch, &WriteOptions::synced())?;
    db.close()?;
    let mut out = Out::new();
    let key = args.key(key);
    match args.json {
        true => out.json(&WriteJson { op, key, seqno })?,
        false => out.line(&format!("{op} {key} at sequence number {seqno}"))?,
    }
    Ok(out.finish()?)
}

pub fn scan(args: &ScanArgs) -> CmdResult {
    let enc = args.out.key_encoding;
    let bound = |k: &Option<String>| k.as_deref().map(|k| decode(k, enc)).transpose();
    let (prefix, from, to) = (bound(&args.prefix)?, bound(&args.from)?, bound(&args.to)?);
    let db = open(&args.dir, false)?;
    let iter: DbIter = match &prefix {
        Some(p) => db.prefix(p),
        None => db.range::<Vec<u8>, _>((
            from.map_or(Bound::Unbounded, Bound::Included),
            to.map_or(Bound::Unbounded, Bound::Excluded),
        )),
    };
    let entries: Box<dyn Iterator<Item = KeyValue>> = match args.reverse {
        true => Box::new(iter.rev()),
        false => Box::new(iter),
    };
    print_scan(entries.take(args.limit.unwrap_or(usize::MAX)), &args.out)?;
    Ok(db.close()?)
}

fn print_scan(
    entries: impl Iterator<Item = alluvium::Result<(Vec<u8>, Vec<u8>)>>,
    args: &OutputArgs,
) -> CmdResult {
    let mut out = Out::new();
    let mut table = Table::new(&[("KEY", Align::Left), ("VALUE", Align::Left)]);
    for entry in entries {
        let (key, value) = entry?;
        let (key, value) = (args.key(&key), args.value(&value));
        match args.json {
            true => out.json(&KeyValueJson {
                key,
                value: Some(value),
            })?,
            false => table.row(&mut out, vec![key, value])?,
        }
    }
    if !args.json {
        table.finish(&mut out)?;
    }
    Ok(out.finish()?)
}
