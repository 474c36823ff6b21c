//! `alluvium manifest dump DIR|FILE` and `alluvium levels DIR`.

use std::path::{Path, PathBuf};

use alluvium::commit_log::TailState;
use alluvium::inspect::{self, EditAt, Levels};
use alluvium::manifest::{AddedSegment, SubscriptionChange, VersionEdit};
use clap::Subcommand;
use serde::Serialize;

use crate::json::KeyJson;
use crate::output::{human_bytes, Out, OutputArgs};
use crate::{warn, CmdResult};

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// Prints the version edits of the manifest in order.
    #[command(after_help = "Examples:\n  \
        alluvium manifest dump db/                  (the manifest CURRENT names)\n  \
        alluvium manifest dump db/MANIFEST-000004 --json")]
    Dump(DumpArgs),
}

#[derive(clap::Args)]
pub struct DumpArgs {
    /// A database directory (its current manifest) or a manifest file.
    path: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  alluvium levels db/\n  alluvium levels db/ --json")]
pub struct LevelsArgs {
    /// The database directory. No lock is taken: this works while the database is open.
    dir: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(command: &ManifestCommand) -> CmdResult {
    let ManifestCommand::Dump(args) = command;
    let path = match args.path.is_dir() {
        true => {
            crate::require_database(&args.path)?;
            inspect::current_manifest(&args.path)?
        }
        false => args.path.clone(),
    };
    let dump = inspect::read_manifest_edits(&path)?;
    let mut out = Out::new();
    if !args.out.json {
        out.line(&format!("== {}", path.display()))?;
    }
    for edit in &dump.edits {
        match args.out.json {
            true => out.json(&EditJson::new(&path, edit, &args.out))?,
            false => print_edit(&mut out, edit, &args.out)?,
        }
    }
    out.finish()?;
    match dump.tail {
        TailState::Clean => Ok(()),
        TailState::Incomplete { offset } => {
            warn(&format!(
                "{}: incomplete last edit at offset {offset} (never acknowledged; open ignores it)",
                path.display()
            ));
            Ok(())
        }
        TailState::Corrupt { offset, detail, .. } => Err(format!(
            "corruption in {} at offset {offset}: {detail}",
            path.display()
        )
        .into()),
    }
}

fn print_edit(out: &mut Out, at: &EditAt, args: &OutputArgs) -> std::io::Result<()> {
    let e = &at.edit;
    let field = |name: &str, v: Option<u64>| v.map(|v| format!("  {name} {v}")).unwrap_or_default();
    out.line(&format!(
        "edit at offset {}:{}{}{}",
        at.offset,
        field("log_number", e.log_number),
        field("next_file_number", e.next_file_number),
        field("last_seqno", e.last_seqno)
    ))?;
    for (level, id) in &e.deleted {
        out.line(&format!("  - L{level} {id:06}.seg"))?;
    }
    for added in &e.added {
        out.line(&format!(
            "  + L{} {}",
            added.level,
            segment_line(added, args)
        ))?;
    }
    Ok(())
}

/// `000008.seg  212 B  seqno 1..=3  3 entries, 1 tombstone  [apple @3 .. kiwi @2]`.
fn segment_line(s: &AddedSegment, args: &OutputArgs) -> String {
    let m = &s.meta;
    format!(
        "{:06}.seg  {}  seqno {}..={}  {} entries, {} tombstones  [{} .. {}]",
        s.id,
        human_bytes(m.size_bytes),
        m.seqno_min,
        m.seqno_max,
        m.entry_count,
        m.tombstone_count,
        key_text(&m.smallest, args),
        key_text(&m.largest, args)
    )
}

fn key_text(ikey: &[u8], args: &OutputArgs) -> String {
    match KeyJson::from_internal(ikey, args) {
        Some(k) => format!("{} @{}", k.key, k.seqno),
        None => "(malformed key)".to_string(),
    }
}

pub fn levels(args: &LevelsArgs) -> CmdResult {
    crate::require_database(&args.dir)?;
    let levels = inspect::levels(&args.dir)?;
    let mut out = Out::new();
    if args.out.json {
        for s in levels.state.levels.iter().flatten() {
            out.json(&SegmentJson::new(s, &args.out))?;
        }
    } else {
        crate::levels_view::draw(&mut out, &levels, &args.out)?;
    }
    Ok(out.finish()?)
}

#[derive(Serialize)]
pub struct SegmentJson {
    level: u32,
    id: u64,
    size_bytes: u64,
    seqno_min: u64,
    seqno_max: u64,
    entry_count: u64,
    tombstone_count: u64,
    smallest: Option<KeyJson>,
    largest: Option<KeyJson>,
}

impl SegmentJson {
    fn new(s: &AddedSegment, args: &OutputArgs) -> Self {
        let m = &s.meta;
        SegmentJson {
            level: s.level,
            id: s.id,
            size_bytes: m.size_bytes,
            seqno_min: m.seqno_min,
            seqno_max: m.seqno_max,
            entry_count: m.entry_count,
            tombstone_count: m.tombstone_count,
            smallest: KeyJson::from_internal(&m.smallest, args),
            largest: KeyJson::from_internal(&m.largest, args),
        }
    }
}

#[derive(Serialize)]
struct DeletedJson {
    level: u32,
    id: u64,
}

#[derive(Serialize)]
struct EditJson {
    manifest: String,
    offset: u64,
    log_number: Option<u64>,
    next_file_number: Option<u64>,
    last_seqno: Option<u64>,
    added: Vec<SegmentJson>,
    deleted: Vec<DeletedJson>,
    subscriptions: Vec<SubscriptionJson>,
}

#[derive(Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
enum SubscriptionJson {
    Set {
        id: u64,
        name: String,
        position: u64,
    },
    Delete {
        id: u64,
    },
}

impl From<&SubscriptionChange> for SubscriptionJson {
    fn from(change: &SubscriptionChange) -> Self {
        match change {
            SubscriptionChange::Set { id, name, position } => SubscriptionJson::Set {
                id: *id,
                name: name.clone(),
                position: *position,
            },
            SubscriptionChange::Delete { id } => SubscriptionJson::Delete { id: *id },
        }
    }
}

impl EditJson {
    fn new(path: &Path, at: &EditAt, args: &OutputArgs) -> Self {
        let e: &VersionEdit = &at.edit;
        EditJson {
            manifest: path.display().to_string(),
            offset: at.offset,
            log_number: e.log_number,
            next_file_number: e.next_file_number,
            last_seqno: e.last_seqno,
            added: e.added.iter().map(|a| SegmentJson::new(a, args)).collect(),
            deleted: e
                .deleted
                .iter()
                .map(|&(level, id)| DeletedJson { level, id })
                .collect(),
            subscriptions: e.subscriptions.iter().map(SubscriptionJson::from).collect(),
        }
    }
}

/// The manifest's counters, for the header of `levels`.
pub fn counters(levels: &Levels) -> String {
    let s = &levels.state;
    let name = levels
        .manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    format!(
        "{}  last_seqno {}  log_number {}  next_file_number {}",
        name.unwrap_or_default(),
        s.last_seqno,
        s.log_number,
        s.next_file_number
    )
}
