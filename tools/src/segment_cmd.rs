//! `alluvium segment dump|stats FILE`.

use std::path::PathBuf;

use alluvium::inspect::{self, DecodedKey, SegmentStats};
use alluvium::segment::format::BlockHandle;
use alluvium::Compression;
use clap::Subcommand;
use serde::Serialize;

use crate::json::{kind_name, EntryJson, KeyJson};
use crate::output::{decode, human_bytes, Align, Out, OutputArgs, Table};
use crate::CmdResult;

#[derive(Subcommand)]
pub enum SegmentCommand {
    /// Prints every entry of a segment file: key, sequence number, kind, value.
    #[command(after_help = "Examples:\n  \
        alluvium segment dump db/000008.seg\n  \
        alluvium segment dump db/000008.seg --from user: --limit 10 --json")]
    Dump(DumpArgs),
    /// Prints a segment's footer, properties, block sizes, compression ratio, filter and key
    /// and sequence number ranges.
    #[command(after_help = "Example:\n  alluvium segment stats db/000008.seg")]
    Stats(StatsArgs),
}

#[derive(clap::Args)]
pub struct DumpArgs {
    /// The segment file (`NNNNNN.seg`).
    file: PathBuf,
    /// Start at the first entry whose key is at or after this key (in --key-encoding).
    #[arg(long)]
    from: Option<String>,
    /// Print at most this many entries.
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// The segment file (`NNNNNN.seg`).
    file: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(command: &SegmentCommand) -> CmdResult {
    match command {
        SegmentCommand::Dump(args) => dump(args),
        SegmentCommand::Stats(args) => stats(args),
    }
}

fn dump(args: &DumpArgs) -> CmdResult {
    let from = args
        .from
        .as_deref()
        .map(|k| decode(k, args.out.key_encoding))
        .transpose()?;
    let entries = inspect::segment_entries(&args.file, from.as_deref())?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut out = Out::new();
    let mut table = Table::new(&[
        ("KEY", Align::Left),
        ("SEQNO", Align::Right),
        ("KIND", Align::Left),
        ("VALUE", Align::Left),
    ]);
    for entry in entries.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        let e = entry?;
        let json = EntryJson::new(&e.key, e.seqno, e.kind, &e.value, &args.out);
        match args.out.json {
            true => out.json(&json)?,
            false => {
                let value = json.value.unwrap_or_default();
                let cells = vec![json.key, e.seqno.to_string(), json.kind.into(), value];
                table.row(&mut out, cells)?;
            }
        }
    }
    if !args.out.json {
        table.finish(&mut out)?;
    }
    Ok(out.finish()?)
}

fn stats(args: &StatsArgs) -> CmdResult {
    let stats = inspect::segment_stats(&args.file)?;
    let mut out = Out::new();
    match args.out.json {
        true => out.json(&StatsJson::new(&stats, &args.out))?,
        false => print_pairs(&mut out, &stats_pairs(&stats, &args.out))?,
    }
    Ok(out.finish()?)
}

fn stats_pairs(s: &SegmentStats, out: &OutputArgs) -> Vec<(&'static str, String)> {
    let p = &s.properties;
    let b = &s.data_blocks;
    let key = |k: Option<DecodedKey>| match k {
        Some(k) => format!(
            "{} @{} {}",
            out.key(&k.user_key),
            k.seqno,
            kind_name(k.kind)
        ),
        None => "(malformed)".to_string(),
    };
    vec![
        ("file", s.path.display().to_string()),
        (
            "size",
            format!("{} ({} bytes)", human_bytes(s.size_bytes), s.size_bytes),
        ),
        ("format version", s.footer.format_version.to_string()),
        ("filter block", handle(s.footer.filter)),
        ("index block", handle(s.footer.index)),
        ("properties block", handle(s.footer.properties)),
        (
            "entries",
            format!("{} ({} tombstones)", p.entry_count, p.tombstone_count),
        ),
        ("distinct keys", s.distinct_user_keys.to_string()),
        ("raw key bytes", p.raw_key_bytes.to_string()),
        ("raw value bytes", p.raw_value_bytes.to_string()),
        (
            "data blocks",
            format!("{} ({} compressed)", b.count, b.compressed_count),
        ),
        (
            "data block sizes",
            format!(
                "{}..{} bytes stored",
                b.stored_bytes_min, b.stored_bytes_max
            ),
        ),
        (
            "data bytes",
            format!(
                "{} stored, {} uncompressed, {} with trailers",
                b.stored_bytes, b.uncompressed_bytes, p.data_bytes
            ),
        ),
        (
            "compression",
            format!(
                "{} (ratio {:.2})",
                compression_name(p.compression),
                s.compression_ratio()
            ),
        ),
        (
            "filter",
            format!(
                "{} bytes, {} probes{}, {:.1} bits per key",
                s.filter_bits_bytes,
                s.filter_probes,
                if s.filter_blocked {
                    " in one 64-byte line"
                } else {
                    ""
                },
                s.filter_bits_per_key()
            ),
        ),
        ("smallest key", key(s.smallest())),
        ("largest key", key(s.largest())),
        (
            "sequence numbers",
            format!("{}..={}", p.seqno_min, p.seqno_max),
        ),
    ]
}

fn handle(h: BlockHandle) -> String {
    format!("offset {}, {} bytes", h.offset, h.size_bytes)
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Snappy => "snappy",
    }
}

/// Prints `label  value` lines with the values aligned.
pub fn print_pairs(out: &mut Out, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in pairs {
        out.line(&format!("{label:width$}  {value}"))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct HandleJson {
    offset: u64,
    size_bytes: u64,
}

impl From<BlockHandle> for HandleJson {
    fn from(h: BlockHandle) -> Self {
        HandleJson {
            offset: h.offset,
            size_bytes: h.size_bytes,
        }
    }
}

#[derive(Serialize)]
struct StatsJson {
    path: String,
    size_bytes: u64,
    format_version: u32,
    filter_block: HandleJson,
    index_block: HandleJson,
    properties_block: HandleJson,
    entry_count: u64,
    tombstone_count: u64,
    distinct_keys: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_block_count: u64,
    compressed_block_count: u64,
    data_block_stored_bytes_min: u64,
    data_block_stored_bytes_max: u64,
    data_stored_bytes: u64,
    data_uncompressed_bytes: u64,
    data_bytes: u64,
    compression: &'static str,
    compression_ratio: f64,
    filter_bytes: u64,
    filter_probes: u32,
    filter_blocked: bool,
    filter_bits_per_key: f64,
    smallest: Option<KeyJson>,
    largest: Option<KeyJson>,
    seqno_min: u64,
    seqno_max: u64,
}

impl StatsJson {
    fn new(s: &SegmentStats, out: &OutputArgs) -> Self {
        let (p, b) = (&s.properties, &s.data_blocks);
        StatsJson {
            path: s.path.display().to_string(),
            size_bytes: s.size_bytes,
            format_version: s.footer.format_version,
            filter_block: s.footer.filter.into(),
            index_block: s.footer.index.into(),
            properties_block: s.footer.properties.into(),
            entry_count: p.entry_count,
            tombstone_count: p.tombstone_count,
            distinct_keys: s.distinct_user_keys,
            raw_key_bytes: p.raw_key_bytes,
            raw_value_bytes: p.raw_value_bytes,
            data_block_count: b.count,
            compressed_block_count: b.compressed_count,
            data_block_stored_bytes_min: b.stored_bytes_min,
            data_block_stored_bytes_max: b.stored_bytes_max,
            data_stored_bytes: b.stored_bytes,
            data_uncompressed_bytes: b.uncompressed_bytes,
            data_bytes: p.data_bytes,
            compression: compression_name(p.compression),
            compression_ratio: s.compression_ratio(),
            filter_bytes: s.filter_bits_bytes,
            filter_probes: s.filter_probes,
            filter_blocked: s.filter_blocked,
            filter_bits_per_key: s.filter_bits_per_key(),
            smallest: KeyJson::from_internal(&p.smallest, out),
            largest: KeyJson::from_internal(&p.largest, out),
            seqno_min: p.seqno_min,
            seqno_max: p.seqno_max,
        }
    }
}
