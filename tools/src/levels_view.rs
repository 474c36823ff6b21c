//! Drawing the LSM shape as a tree with size bars, for `alluvium levels`.
//!
//! ```text
//! MANIFEST-000004  last_seqno 1003  log_number 7  next_file_number 12
//! ├── L0  2 segments  1.2 MiB  ████████████████████████
//! │   ├── 000008.seg  612.0 KiB  ████████████████████████  seqno 1..=500     [user:0000 .. user:0499]
//! │   └── 000010.seg  600.0 KiB  ███████████████████████▌  seqno 501..=1003  [user:0500 .. user:0999]
//! ├── L1  empty
//! ...
//! └── L6  empty
//! ```
//!
//! A level's bar is its size against the largest level's; a segment's bar is its size against
//! the largest segment's.

use alluvium::inspect::Levels;
use alluvium::key::user_key;
use alluvium::manifest::AddedSegment;

use crate::output::{human_bytes, Out, OutputArgs};

/// Characters a bar is drawn with.
const BAR_WIDTH: usize = 24;

pub fn draw(out: &mut Out, levels: &Levels, args: &OutputArgs) -> std::io::Result<()> {
    out.line(&crate::manifest_cmd::counters(levels))?;
    let all = &levels.state.levels;
    let level_size = |l: &[AddedSegment]| l.iter().map(|s| s.meta.size_bytes).sum::<u64>();
    let largest_level = all.iter().map(|l| level_size(l)).max().unwrap_or(0).max(1);
    let rows = SegmentRows::new(all, args);
    for (n, level) in all.iter().enumerate() {
        let (branch, stem) = match n + 1 == all.len() {
            true => ("└── ", "    "),
            false => ("├── ", "│   "),
        };
        if level.is_empty() {
            out.line(&format!("{branch}L{n}  empty"))?;
            continue;
        }
        let size = level_size(level);
        let fraction = size as f64 / largest_level as f64;
        let count = level.len();
        let plural = if count == 1 { "" } else { "s" };
        let header = format!(
            "{branch}L{n}  {count} segment{plural}  {}",
            human_bytes(size)
        );
        out.line(&format!("{header}  {}", bar(fraction).trim_end()))?;
        for (i, s) in level.iter().enumerate() {
            let twig = if i + 1 == level.len() {
                "└── "
            } else {
                "├── "
            };
            out.line(&format!("{stem}{twig}{}", rows.line(s)))?;
        }
    }
    Ok(())
}

/// The columns of every segment line, with widths shared across levels.
struct SegmentRows<'a> {
    args: &'a OutputArgs,
    largest: u64,
    size_width: usize,
    seqno_width: usize,
}

impl<'a> SegmentRows<'a> {
    fn new(all: &[Vec<AddedSegment>], args: &'a OutputArgs) -> Self {
        let segments = || all.iter().flatten();
        SegmentRows {
            args,
            largest: segments()
                .map(|s| s.meta.size_bytes)
                .max()
                .unwrap_or(0)
                .max(1),
            size_width: segments()
                .map(|s| human_bytes(s.meta.size_bytes).len())
                .max()
                .unwrap_or(0),
            seqno_width: segments().map(|s| seqno_range(s).len()).max().unwrap_or(0),
        }
    }

    fn line(&self, s: &AddedSegment) -> String {
        let m = &s.meta;
        let fraction = m.size_bytes as f64 / self.largest as f64;
        format!(
            "{:06}.seg  {:>sw$}  {}  {:<qw$}  [{} .. {}]",
            s.id,
            human_bytes(m.size_bytes),
            bar(fraction),
            seqno_range(s),
            self.args.key(user_key(&m.smallest)),
            self.args.key(user_key(&m.largest)),
            sw = self.size_width,
            qw = self.seqno_width,
        )
    }
}

fn seqno_range(s: &AddedSegment) -> String {
    format!("seqno {}..={}", s.meta.seqno_min, s.meta.seqno_max)
}

/// A bar of [`BAR_WIDTH`] characters, `fraction` of it filled in eighths; never empty, so a
/// tiny segment still shows.
fn bar(fraction: f64) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (BAR_WIDTH * 8) as f64).round() as usize;
    let eighths = eighths.max(1);
    let mut text = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        text.push(PARTS[eighths % 8]);
    }
    let drawn = text.chars().count();
    text.push_str(&" ".repeat(BAR_WIDTH.saturating_sub(drawn)));
    text
}
