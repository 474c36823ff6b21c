//! Choosing the next compaction: level targets from the last level's size, scores, inputs.

use std::sync::Arc;

use super::Job;
use crate::manifest::{LiveSegment, Version, LEVELS};
use crate::options::CompactionOptions;

/// The target size of every level and the level that level 0 compacts into.
///
/// As RocksDB's dynamic level bytes: the last level's target is its actual size, each level
/// above is `ratio` times smaller, and the first level whose target would fall to
/// `level_base_size_bytes` or below is the base level. Levels between 1 and the base level
/// stay empty, so the last level holds about `ratio / (ratio + 1)` of the data and space
/// amplification stays near 1.1 whatever the data size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelTargets {
    /// Target bytes per level (0 for level 0 and for levels above the base level).
    pub bytes: Vec<u64>,
    /// The level that level 0 compacts into.
    pub base_level: usize,
}

/// Computes the targets for `version`.
pub fn level_targets(version: &Version, opts: &CompactionOptions) -> LevelTargets {
    let last = LEVELS - 1;
    let mut bytes = vec![0; LEVELS];
    let mut base_level = last;
    let mut target = version.level_size_bytes(last);
    bytes[last] = target;
    for level in (1..last).rev() {
        if target <= opts.level_base_size_bytes {
            break;
        }
        target /= opts.level_size_ratio;
        bytes[level] = target;
        base_level = level;
    }
    LevelTargets { bytes, base_level }
}

/// How urgently each level needs compaction; 1.0 or more means "compact now".
///
/// Level 0 scores its segment count against the trigger; levels from the base level down to
/// the one above the last score their size against their target; a non-empty level above the
/// base level scores very high, since it should be empty.
pub fn scores(version: &Version, targets: &LevelTargets, opts: &CompactionOptions) -> Vec<f64> {
    let mut scores = vec![0.0; LEVELS];
    scores[0] = version.level(0).len() as f64 / opts.level0_trigger as f64;
    for (level, score) in scores.iter_mut().enumerate().take(LEVELS - 1).skip(1) {
        let size = version.level_size_bytes(level);
        *score = match (size, level < targets.base_level) {
            (0, _) => 0.0,
            (_, true) => 1000.0,
            _ => size as f64 / targets.bytes[level].max(1) as f64,
        };
    }
    scores
}

/// Estimated bytes compaction must rewrite to bring every level within its target.
pub fn pending_bytes(version: &Version, opts: &CompactionOptions) -> u64 {
    let targets = level_targets(version, opts);
    let level0 = if version.level(0).len() >= opts.level0_trigger {
        version.level_size_bytes(0)
    } else {
        0
    };
    let deeper: u64 = (1..LEVELS - 1)
        .map(|l| version.level_size_bytes(l).saturating_sub(targets.bytes[l]))
        .sum();
    level0 + deeper
}

/// Picks the most urgent compaction, if any level scores 1.0 or more.
///
/// `cursors[level]` remembers the largest user key compacted last from that level, so
/// successive compactions of a level walk its key space round-robin.
pub fn pick(version: &Version, opts: &CompactionOptions, cursors: &[Vec<u8>]) -> Option<Job> {
    let targets = level_targets(version, opts);
    let scores = scores(version, &targets, opts);
    let (level, score) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if *score < 1.0 {
        return None;
    }
    if level == 0 {
        return Some(level0_job(version, targets.base_level));
    }
    let output = (level + 1).min(LEVELS - 1);
    let start = pick_segment(
        version.level(level),
        cursors.get(level).map_or(&[][..], |c| c),
    )?;
    Some(job_from(version, level, vec![start], output))
}

/// Level 0 compacts into the base level, or into a shallower level that still holds data (the
/// base level moves down when the data shrinks): level 0's versions are newer than every level
/// below, so writing them under a level that holds older versions of the same keys would let
/// reads find the older ones first.
fn level0_job(version: &Version, base_level: usize) -> Job {
    let first_non_empty = (1..LEVELS).find(|&l| !version.level(l).is_empty());
    let output = first_non_empty.map_or(base_level, |l| l.min(base_level));
    job_from(version, 0, version.level(0).to_vec(), output)
}

/// The first segment after `cursor` (by smallest key), wrapping around.
fn pick_segment(level: &[Arc<LiveSegment>], cursor: &[u8]) -> Option<Arc<LiveSegment>> {
    let after = level.iter().find(|s| s.smallest_user_key() > cursor);
    after.or(level.first()).cloned()
}

/// A job compacting `inputs` of `level` with what they overlap in `output_level`.
pub fn job_from(
    version: &Version,
    level: usize,
    inputs: Vec<Arc<LiveSegment>>,
    output_level: usize,
) -> Job {
    let (lo, hi) = key_span(&inputs);
    let overlapped = version.overlapping(output_level, &lo, &hi);
    let mut all: Vec<(usize, Arc<LiveSegment>)> = inputs.into_iter().map(|s| (level, s)).collect();
    all.extend(overlapped.into_iter().map(|s| (output_level, s)));
    Job {
        inputs: all,
        output_level,
        may_move: true,
    }
}

/// The manual job for user keys `[lo, hi]`: every segment of every level that overlaps the
/// range, widened until no segment outside the job overlaps a segment inside it, rewritten
/// into the last level.
pub fn manual_job(version: &Version, lo: &[u8], hi: &[u8]) -> Option<Job> {
    let (mut lo, mut hi) = (lo.to_vec(), hi.to_vec());
    loop {
        let inputs: Vec<(usize, Arc<LiveSegment>)> = (0..LEVELS)
            .flat_map(|l| {
                version
                    .overlapping(l, &lo, &hi)
                    .into_iter()
                    .map(move |s| (l, s))
            })
            .collect();
        let segs: Vec<_> = inputs.iter().map(|(_, s)| s.clone()).collect();
        let (new_lo, new_hi) = key_span(&segs);
        if inputs.is_empty() {
            return None;
        }
        if new_lo >= lo && new_hi <= hi {
            return Some(Job {
                inputs,
                output_level: LEVELS - 1,
                may_move: false,
            });
        }
        lo = lo.min(new_lo);
        hi = hi.max(new_hi);
    }
}

/// The smallest and largest user keys of `segments`.
pub fn key_span(segments: &[Arc<LiveSegment>]) -> (Vec<u8>, Vec<u8>) {
    let lo = segments
        .iter()
        .map(|s| s.smallest_user_key())
        .min()
        .unwrap_or_default();
    let hi = segments
        .iter()
        .map(|s| s.largest_user_key())
        .max()
        .unwrap_or_default();
    (lo.to_vec(), hi.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};
    use crate::manifest::{AddedSegment, VersionEdit};
    use crate::options::Options;
    use crate::segment::{Segment, SegmentWriter};

    fn segment(dir: &std::path::Path, id: u64, keys: &[&str]) -> (AddedSegment, Arc<LiveSegment>) {
        let path = dir.join(format!("{id:06}.seg"));
        let mut w = SegmentWriter::create(&path, &Options::default()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            w.add(
                &internal_key(k.as_bytes(), id * 100 + i as u64, ValueKind::Put),
                b"v",
            )
            .unwrap();
        }
        let meta = w.finish().unwrap();
        let seg = Arc::new(Segment::open(&path, id).unwrap());
        (
            AddedSegment {
                level: 0,
                id,
                meta: meta.clone(),
            },
            LiveSegment::new(seg, meta),
        )
    }

    fn version(dir: &std::path::Path, layout: &[(u32, u64)]) -> Version {
        let mut edit = VersionEdit::default();
        let mut opened = Vec::new();
        for &(level, id) in layout {
            let (mut added, live) = segment(dir, id, &["a", "m", "z"]);
            added.level = level;
            edit.added.push(added);
            opened.push(live);
        }
        Version::empty().apply(&edit, &opened).unwrap().0
    }

    #[test]
    fn an_empty_tree_compacts_level_0_into_the_last_level() {
        let dir = tempfile::tempdir().unwrap();
        let v = version(dir.path(), &[(0, 1), (0, 2), (0, 3), (0, 4)]);
        let job = pick(
            &v,
            &Options::default().compaction,
            &vec![Vec::new(); LEVELS],
        )
        .unwrap();
        assert_eq!(
            (job.level(), job.output_level, job.inputs.len()),
            (0, LEVELS - 1, 4)
        );
    }

    #[test]
    fn level_0_never_compacts_below_a_level_that_still_holds_older_data() {
        // Level 5 holds data although the base level is 6 (the data shrank): level 0 must go
        // into level 5, or a read would find level 5's older versions first.
        let dir = tempfile::tempdir().unwrap();
        let v = version(
            dir.path(),
            &[(5, 10), (6, 11), (0, 1), (0, 2), (0, 3), (0, 4)],
        );
        let opts = Options::default().compaction;
        assert_eq!(level_targets(&v, &opts).base_level, LEVELS - 1);
        let job = level0_job(&v, level_targets(&v, &opts).base_level);
        assert_eq!(job.output_level, 5);
    }

    #[test]
    fn targets_grow_upwards_from_the_last_level() {
        let dir = tempfile::tempdir().unwrap();
        let v = version(dir.path(), &[(6, 11)]);
        let size = v.level_size_bytes(6);
        let opts = Options::default()
            .level_base_size_bytes(size / 50)
            .level_size_ratio(10)
            .compaction;
        let t = level_targets(&v, &opts);
        assert_eq!(t.base_level, 4);
        assert_eq!(
            (t.bytes[6], t.bytes[5], t.bytes[4]),
            (size, size / 10, size / 100)
        );
    }
}
