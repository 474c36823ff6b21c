//! Leveled compaction: picker, job, scheduler.
//!
//! Level 0 holds flushed segments, which may overlap. Levels 1 to 6 hold segments that do not
//! overlap, each level about `level_size_ratio` times the size of the one above, with targets
//! derived from the size of the last level ([`picker::level_targets`]). The scheduler thread
//! runs one job at a time; a large job splits its key range into subcompactions that run in
//! parallel on a dedicated `rayon` pool (never the global one, which belongs to the host
//! application). A job writes its outputs, syncs them, then records the swap in one version
//! edit; a crash at any point reopens to the same contents.

mod job;
mod merge;
pub(crate) use merge::{GarbageCollector, Verdict};
pub mod picker;
mod scheduler;

use std::sync::Arc;

use crate::manifest::LiveSegment;

pub use scheduler::LevelCompactionStats;
pub(crate) use scheduler::{
    compact_range, compaction_loop, install_current_version, wait_idle, Compactor,
};

/// One compaction: input segments (with their levels) merged into `output_level`.
#[derive(Debug, Clone)]
pub struct Job {
    /// Every input segment and the level it is in. Inputs of the output level are included.
    pub inputs: Vec<(usize, Arc<LiveSegment>)>,
    /// Where the outputs go.
    pub output_level: usize,
    /// False for manual compactions, which always rewrite (to drop what they can).
    pub may_move: bool,
}

impl Job {
    /// True when the job is one segment with nothing to merge with: it moves down as it is.
    pub fn is_trivial_move(&self) -> bool {
        self.may_move && self.inputs.len() == 1 && self.inputs[0].0 != self.output_level
    }

    /// The input segments.
    pub fn segments(&self) -> impl Iterator<Item = &Arc<LiveSegment>> {
        self.inputs.iter().map(|(_, s)| s)
    }

    /// The level the job was picked for (the shallowest input level).
    pub fn level(&self) -> usize {
        self.inputs
            .iter()
            .map(|(l, _)| *l)
            .min()
            .unwrap_or(self.output_level)
    }
}
