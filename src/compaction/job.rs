//! Running one compaction job: merge, garbage-collect, write outputs, build the version edit.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::merge::{GarbageCollector, MergedEntries, Verdict};
use super::Job;
use crate::error::{Error, Result};
use crate::files;
use crate::key::{encode_internal_key, internal_key, user_key, SeqNo, ValueKind, SEQNO_MAX};
use crate::manifest::{AddedSegment, LiveSegment, Version, VersionEdit};
use crate::options::Options;
use crate::segment::{Segment, SegmentWriter};

/// Entries between two looks at the shutdown flag.
const SHUTDOWN_CHECK_EVERY: u64 = 4096;
/// Jobs smaller than this run as one subcompaction: splitting costs more than it saves.
const SPLIT_MIN_BYTES: u64 = 8 << 20;

/// What a job needs from the database around it.
pub struct JobContext<'a> {
    /// The database directory.
    pub dir: &'a Path,
    /// The database's options.
    pub opts: &'a Options,
    /// The version the job's inputs come from.
    pub version: &'a Version,
    /// Live snapshots, ascending.
    pub snapshots: Vec<SeqNo>,
    /// Allocates a file number.
    pub next_file_number: &'a (dyn Fn() -> u64 + Sync),
    /// Set when the database is closing; the job then stops early.
    pub shutdown: &'a AtomicBool,
    /// The dedicated compaction pool.
    pub pool: &'a rayon::ThreadPool,
}

/// What a job produced.
pub struct JobOutcome {
    /// The version edit that replaces the inputs with the outputs.
    pub edit: VersionEdit,
    /// The outputs, open.
    pub opened: Vec<Arc<LiveSegment>>,
    /// Bytes of input segments read.
    pub bytes_read: u64,
    /// Bytes of output segments written (0 for a move).
    pub bytes_written: u64,
    /// Versions and tombstones dropped.
    pub dropped: u64,
}

/// Runs `job`.
pub fn run(job: &Job, ctx: &JobContext) -> Result<JobOutcome> {
    if job.is_trivial_move() {
        return Ok(trivial_move(job));
    }
    let ranges = split(job, ctx.opts.compaction.threads);
    let results: Vec<Result<SubOutcome>> = ctx
        .pool
        .install(|| ranges.par_iter().map(|r| subcompact(job, ctx, r)).collect());
    let mut outputs = Vec::new();
    let mut failure = None;
    let mut dropped = 0;
    for r in results {
        match r {
            Ok(sub) => {
                dropped += sub.dropped;
                outputs.extend(sub.outputs);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        outputs
            .iter()
            .for_each(|(_, path)| drop(std::fs::remove_file(path)));
        return Err(e);
    }
    finish(job, ctx, outputs, dropped)
}

fn trivial_move(job: &Job) -> JobOutcome {
    let (level, seg) = &job.inputs[0];
    let edit = VersionEdit {
        deleted: vec![(*level as u32, seg.id())],
        added: vec![AddedSegment {
            level: job.output_level as u32,
            id: seg.id(),
            meta: seg.meta.clone(),
        }],
        ..VersionEdit::default()
    };
    JobOutcome {
        edit,
        opened: vec![seg.clone()],
        bytes_read: 0,
        bytes_written: 0,
        dropped: 0,
    }
}

fn finish(
    job: &Job,
    ctx: &JobContext,
    outputs: Vec<(AddedSegment, PathBuf)>,
    dropped: u64,
) -> Result<JobOutcome> {
    files::sync_dir(&**ctx.opts.file_system_value(), ctx.dir)?;
    let mut edit = VersionEdit::default();
    let mut opened = Vec::new();
    for (added, path) in outputs {
        let cache = ctx.opts.block_cache_value().cloned();
        let segment = Arc::new(Segment::open_cached(&path, added.id, cache)?);
        opened.push(LiveSegment::new(segment, added.meta.clone()));
        edit.added.push(added);
    }
    let mut bytes_read = 0;
    for (level, seg) in &job.inputs {
        edit.deleted.push((*level as u32, seg.id()));
        bytes_read += seg.meta.size_bytes;
    }
    let bytes_written = edit.added.iter().map(|a| a.meta.size_bytes).sum();
    Ok(JobOutcome {
        edit,
        opened,
        bytes_read,
        bytes_written,
        dropped,
    })
}

/// A user-key range `[start, end)` of one subcompaction; `None` is unbounded.
type KeyRange = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Splits the job's key space into at most `ways` ranges at data-block boundaries of its
/// inputs, so subcompactions get similar amounts of work.
fn split(job: &Job, ways: usize) -> Vec<KeyRange> {
    let total: u64 = job.segments().map(|s| s.meta.size_bytes).sum();
    if ways <= 1 || total < SPLIT_MIN_BYTES {
        return vec![(None, None)];
    }
    let mut keys: Vec<Vec<u8>> = job
        .segments()
        .flat_map(|s| s.segment.block_boundaries(8))
        .collect();
    keys.sort();
    keys.dedup();
    let step = (keys.len() / ways).max(1);
    let cuts: Vec<Vec<u8>> = keys
        .into_iter()
        .skip(step)
        .step_by(step)
        .take(ways - 1)
        .collect();
    let mut starts = vec![None];
    starts.extend(cuts.iter().cloned().map(Some));
    let mut ends: Vec<Option<Vec<u8>>> = cuts.into_iter().map(Some).collect();
    ends.push(None);
    starts.into_iter().zip(ends).collect()
}

struct SubOutcome {
    outputs: Vec<(AddedSegment, PathBuf)>,
    dropped: u64,
}

fn subcompact(job: &Job, ctx: &JobContext, range: &KeyRange) -> Result<SubOutcome> {
    let lower = range.0.as_ref().map_or(Bound::Unbounded, |k| {
        Bound::Included(internal_key(k, SEQNO_MAX, ValueKind::Put))
    });
    let upper = range.1.as_ref().map_or(Bound::Unbounded, |k| {
        Bound::Excluded(internal_key(k, SEQNO_MAX, ValueKind::Put))
    });
    let sources = job
        .segments()
        .map(|s| {
            s.segment
                .range(lower.clone(), upper.clone())
                .fill_cache(false)
        })
        .collect();
    let mut merged = MergedEntries::new(sources)?;
    let version = ctx.version;
    let below = |k: &[u8]| version.may_exist_below(job.output_level, k);
    let mut gc = GarbageCollector::new(ctx.snapshots.clone(), below).zero_seqnos();
    let mut out = Outputs::new(ctx);
    let mut zeroed = Vec::new();
    let mut n: u64 = 0;
    while let Some((ikey, value)) = merged.current() {
        if n.is_multiple_of(SHUTDOWN_CHECK_EVERY) && ctx.shutdown.load(Ordering::Acquire) {
            out.abandon();
            return Err(Error::Closed(
                "compaction stopped: the database is closing".into(),
            ));
        }
        n += 1;
        let written = match gc.keep(ikey)? {
            Verdict::Drop => Ok(()),
            Verdict::Keep => out.add(ikey, value, job.output_level),
            Verdict::KeepWithSeqnoZero => {
                zeroed.clear();
                encode_internal_key(&mut zeroed, user_key(ikey), 0, ValueKind::Put);
                out.add(&zeroed, value, job.output_level)
            }
        };
        if let Err(e) = written {
            out.abandon();
            return Err(e);
        }
        if let Err(e) = merged.advance() {
            out.abandon();
            return Err(e);
        }
    }
    let outputs = out.finish(job.output_level)?;
    Ok(SubOutcome {
        outputs,
        dropped: gc.shadowed + gc.tombstones,
    })
}

/// The output segments of one subcompaction, cut at the target size between user keys.
struct Outputs<'a> {
    ctx: &'a JobContext<'a>,
    current: Option<(u64, PathBuf, SegmentWriter)>,
    last_key: Vec<u8>,
    done: Vec<(AddedSegment, PathBuf)>,
}

impl<'a> Outputs<'a> {
    fn new(ctx: &'a JobContext<'a>) -> Self {
        Outputs {
            ctx,
            current: None,
            last_key: Vec::new(),
            done: Vec::new(),
        }
    }

    fn add(&mut self, ikey: &[u8], value: &[u8], level: usize) -> Result<()> {
        // Every version of a user key goes to one segment, so levels never overlap.
        let full = self.current.as_ref().is_some_and(|(_, _, w)| {
            w.estimated_size_bytes() >= self.ctx.opts.compaction.segment_size_bytes
                && user_key(ikey) != self.last_key.as_slice()
        });
        if full {
            self.close_current(level)?;
        }
        if self.current.is_none() {
            let id = (self.ctx.next_file_number)();
            let path = files::segment_path(self.ctx.dir, id);
            self.current = Some((
                id,
                path.clone(),
                SegmentWriter::create(&path, self.ctx.opts)?,
            ));
        }
        if let Some((_, _, w)) = self.current.as_mut() {
            w.add(ikey, value)?;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(user_key(ikey));
        Ok(())
    }

    fn close_current(&mut self, level: usize) -> Result<()> {
        if let Some((id, path, writer)) = self.current.take() {
            let meta = writer.finish()?;
            self.done.push((
                AddedSegment {
                    level: level as u32,
                    id,
                    meta,
                },
                path,
            ));
        }
        Ok(())
    }

    fn finish(mut self, level: usize) -> Result<Vec<(AddedSegment, PathBuf)>> {
        if let Err(e) = self.close_current(level) {
            self.abandon();
            return Err(e);
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// Removes every file this subcompaction wrote.
    fn abandon(&mut self) {
        let open = self.current.take().map(|(_, p, _)| p);
        for path in self.done.drain(..).map(|(_, p)| p).chain(open) {
            let _ = std::fs::remove_file(path);
        }
    }
}
