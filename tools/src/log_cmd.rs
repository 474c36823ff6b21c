//! `alluvium log dump FILE|DIR`.

use std::path::{Path, PathBuf};

use alluvium::commit_log::{LogItem, TailState};
use alluvium::inspect::{self, LogDump};
use clap::Subcommand;
use serde::Serialize;

use crate::json::EntryJson;
use crate::output::{utc_time, Align, Out, OutputArgs, Table};
use crate::{warn, CmdResult};

#[derive(Subcommand)]
pub enum LogCommand {
    /// Prints every commit log record: first sequence number, count, commit time, operations.
    #[command(after_help = "Examples:\n  \
        alluvium log dump db/              (every log file, oldest first)\n  \
        alluvium log dump db/000007.log --json | head")]
    Dump(DumpArgs),
}

#[derive(clap::Args)]
pub struct DumpArgs {
    /// A commit log file (`NNNNNN.log`), or a database directory for all of its log files.
    path: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(command: &LogCommand) -> CmdResult {
    let LogCommand::Dump(args) = command;
    let files = log_files(&args.path)?;
    let mut out = Out::new();
    let mut damaged = 0;
    for (i, path) in files.iter().enumerate() {
        let Some(dump) = read_log(path, args.path.is_dir())? else {
            continue;
        };
        print_dump(&mut out, &dump, &args.out)?;
        damaged += usize::from(report_tail(&dump, i + 1 == files.len()));
    }
    out.finish()?;
    match damaged {
        0 => Ok(()),
        n => Err(format!("{n} damaged log file(s); the dump stops at the damage in each").into()),
    }
}

/// The log file given, or the log files of the directory given (an error when it holds no
/// database and no log file).
fn log_files(path: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error + Send + Sync>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = inspect::log_files(path)?;
    if files.is_empty() {
        crate::require_database(path)?;
    }
    Ok(files)
}

/// Reads one log file. In a directory of a live database, a flush can delete a log file
/// after it was listed: that one is skipped.
fn read_log(path: &Path, listed: bool) -> Result<Option<LogDump>, alluvium::Error> {
    match inspect::read_log(path) {
        Err(alluvium::Error::Io { source, .. })
            if listed && source.kind() == std::io::ErrorKind::NotFound =>
        {
            warn(&format!(
                "{}: removed while being dumped (by a live database)",
                path.display()
            ));
            Ok(None)
        }
        other => other.map(Some),
    }
}

fn print_dump(out: &mut Out, dump: &LogDump, args: &OutputArgs) -> std::io::Result<()> {
    if args.json {
        return dump
            .items
            .iter()
            .try_for_each(|item| out.json(&RecordJson::new(&dump.path, item, args)));
    }
    out.line(&format!(
        "== {} ({} bytes)",
        dump.path.display(),
        dump.len_bytes
    ))?;
    let mut table = Table::new(&[
        ("OFFSET", Align::Right),
        ("SEQNO", Align::Right),
        ("COUNT", Align::Right),
        ("STORED", Align::Right),
        ("COMMIT TIME", Align::Left),
        ("KIND", Align::Left),
        ("KEY", Align::Left),
        ("VALUE", Align::Left),
    ]);
    for item in &dump.items {
        for row in record_rows(item, args) {
            table.row(out, row)?;
        }
    }
    table.finish(out)
}

/// One row per operation and per acknowledgement; the record's columns on its first row only.
fn record_rows(item: &LogItem, args: &OutputArgs) -> Vec<Vec<String>> {
    let rec = &item.record;
    let mut rows = Vec::new();
    for (i, op) in rec.batch.ops().iter().enumerate() {
        let entry = EntryJson::new(
            op.key(),
            rec.first_seqno + i as u64,
            op.kind(),
            op.value(),
            args,
        );
        let value = entry.value.unwrap_or_default();
        rows.push(vec![
            entry.seqno.to_string(),
            entry.kind.into(),
            entry.key,
            value,
        ]);
    }
    for ack in &rec.acks {
        let sub = format!("subscription {}", ack.subscription_id);
        rows.push(vec![
            String::new(),
            "ack".into(),
            sub,
            format!("position {}", ack.position),
        ]);
    }
    if rec.is_seal_marker() {
        rows.push(vec![
            String::new(),
            "seal".into(),
            "(end of file: sealed at a rotation or close)".into(),
            String::new(),
        ]);
    }
    let stored = match item.compressed {
        true => format!("{} snappy", item.stored_bytes),
        false => item.stored_bytes.to_string(),
    };
    let record_cells = [
        item.offset.to_string(),
        rec.batch.len().to_string(),
        stored,
        utc_time(rec.commit_time_us),
    ];
    for (i, row) in rows.iter_mut().enumerate() {
        let [offset, count, stored, time] =
            record_cells
                .clone()
                .map(|c| if i == 0 { c } else { String::new() });
        row.insert(0, offset);
        row.insert(2, count);
        row.insert(3, stored);
        row.insert(4, time);
    }
    rows
}

/// Says on stderr how a file ends when it does not end cleanly; true when it is damaged.
fn report_tail(dump: &LogDump, newest: bool) -> bool {
    let path = dump.path.display();
    match &dump.tail {
        TailState::Clean => false,
        TailState::Incomplete { offset } => {
            let why = match newest {
                true => "a torn write, or an append in progress",
                false => {
                    "a log file that is not the newest, sealed unsynced and cut by a power loss"
                }
            };
            warn(&format!(
                "{path}: incomplete record at offset {offset} ({why})"
            ));
            false
        }
        TailState::Corrupt { offset, detail, .. } => {
            warn(&format!(
                "{path}: damaged record at offset {offset}: {detail}"
            ));
            true
        }
    }
}

#[derive(Serialize)]
struct AckJson {
    subscription_id: u64,
    position: u64,
}

#[derive(Serialize)]
struct RecordJson {
    file: String,
    offset: u64,
    first_seqno: u64,
    count: usize,
    stored_bytes: u32,
    compressed: bool,
    commit_time_us: u64,
    commit_time: String,
    ops: Vec<EntryJson>,
    acks: Vec<AckJson>,
    /// The seal marker a rotation or a close appends as a file's last record.
    seal_marker: bool,
}

impl RecordJson {
    fn new(path: &Path, item: &LogItem, args: &OutputArgs) -> Self {
        let rec = &item.record;
        let ops = rec.batch.ops().iter().enumerate();
        RecordJson {
            file: path.display().to_string(),
            offset: item.offset,
            first_seqno: rec.first_seqno,
            count: rec.batch.len(),
            stored_bytes: item.stored_bytes,
            compressed: item.compressed,
            commit_time_us: rec.commit_time_us,
            commit_time: utc_time(rec.commit_time_us),
            ops: ops
                .map(|(i, op)| {
                    EntryJson::new(
                        op.key(),
                        rec.first_seqno + i as u64,
                        op.kind(),
                        op.value(),
                        args,
                    )
                })
                .collect(),
            acks: rec
                .acks
                .iter()
                .map(|a| AckJson {
                    subscription_id: a.subscription_id,
                    position: a.position,
                })
                .collect(),
            seal_marker: rec.is_seal_marker(),
        }
    }
}
