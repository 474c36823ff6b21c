//! Verifying `CURRENT` and the manifest.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Checker, NamedManifest};
use crate::files::{self, FileKind};
use crate::frame::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
use crate::inspect::frames::{self, FrameEvent};
use crate::key;
use crate::manifest::{read_current, read_manifest, AddedSegment, ManifestState, VersionEdit};

/// Checks `CURRENT` and the manifest it names; returns that manifest and, when it replays,
/// its state.
pub(super) fn check_named(
    c: &mut Checker<'_>,
    dir: &Path,
    listing: &[FileKind],
) -> Option<NamedManifest> {
    let current = dir.join(files::CURRENT);
    if !listing.contains(&FileKind::Current) {
        c.error(
            &current,
            0,
            "CURRENT is missing but the directory holds alluvium files",
        );
        return None;
    }
    let manifest = check_current(c, &current);
    c.done(&current);
    let manifest = manifest?;
    if !manifest.exists() {
        c.error(&manifest, 0, "the manifest CURRENT names is missing");
        return None;
    }
    let state = check(c, &manifest);
    c.done(&manifest);
    Some((manifest, state))
}

/// Checks a `CURRENT` file; returns the manifest it names.
pub(super) fn check_current(c: &mut Checker<'_>, current: &Path) -> Option<std::path::PathBuf> {
    let dir = current.parent().unwrap_or(Path::new("."));
    read_current(dir).map_err(|e| c.absorb(current, e)).ok()
}

/// Checks one manifest: file header, every frame, every edit, and what the edits do (no
/// segment deleted that is not live, none added twice, levels 1+ without overlap). Returns
/// the state when the manifest replays as open would replay it.
pub(super) fn check(c: &mut Checker<'_>, path: &Path) -> Option<ManifestState> {
    let data = c.read(path)?;
    match crate::inspect::manifest::check_header(path, &data) {
        Ok(Some(_)) => {}
        Ok(None) => {
            c.error(path, 0, "manifest is shorter than its header");
            return None;
        }
        Err(e) => {
            c.absorb(path, e);
            return None;
        }
    }
    let mut replay = Replay::default();
    for event in frames::walk(&data, FILE_HEADER_LEN, false) {
        check_frame(c, path, event, &mut replay);
    }
    if replay.edits == 0 {
        c.error(
            path,
            FILE_HEADER_LEN as u64,
            "manifest holds no version edit",
        );
    }
    replay.check_levels(c, path);
    read_manifest(path).ok().map(|(state, _)| state)
}

fn check_frame(c: &mut Checker<'_>, path: &Path, event: FrameEvent<'_>, replay: &mut Replay) {
    match event {
        FrameEvent::Record { offset, payload } => match VersionEdit::decode(payload) {
            Ok(edit) => replay.apply(c, path, offset, &edit),
            Err((at, detail)) => c.error(path, offset + (FRAME_HEADER_LEN + at) as u64, detail),
        },
        FrameEvent::Incomplete { offset } => c.warn(
            path,
            offset,
            "incomplete last version edit (an append a crash interrupted, never acknowledged); open ignores it",
        ),
        FrameEvent::Corrupt { offset, detail, .. } => c.error(path, offset, detail),
    }
}

/// The live segments as the edits so far leave them, with the offset of the edit that added
/// each, to check what every edit does.
#[derive(Default)]
struct Replay {
    edits: u64,
    live: BTreeMap<u64, (u64, AddedSegment)>,
}

impl Replay {
    fn apply(&mut self, c: &mut Checker<'_>, path: &Path, offset: u64, edit: &VersionEdit) {
        self.edits += 1;
        for &(level, id) in &edit.deleted {
            match self.live.get(&id) {
                Some((_, s)) if s.level == level => drop(self.live.remove(&id)),
                _ => c.error(
                    path,
                    offset,
                    format!("edit deletes segment {id}, which is not live in level {level}"),
                ),
            }
        }
        for added in &edit.added {
            if self.live.contains_key(&added.id) {
                c.error(
                    path,
                    offset,
                    format!("edit adds segment {} that is already live", added.id),
                );
            }
            if edit.next_file_number.is_some_and(|next| added.id >= next) {
                c.error(
                    path,
                    offset,
                    format!(
                        "edit adds segment {} at or past its next_file_number",
                        added.id
                    ),
                );
            }
            self.live.insert(added.id, (offset, added.clone()));
        }
    }

    /// Levels 1 and deeper must not overlap (level 0 may).
    fn check_levels(&self, c: &mut Checker<'_>, path: &Path) {
        let mut deeper: Vec<&(u64, AddedSegment)> =
            self.live.values().filter(|(_, s)| s.level > 0).collect();
        deeper.sort_by(|a, b| {
            (a.1.level, key::user_key(&a.1.meta.smallest))
                .cmp(&(b.1.level, key::user_key(&b.1.meta.smallest)))
        });
        for pair in deeper.windows(2) {
            let ((_, a), (offset, b)) = (pair[0], pair[1]);
            let overlap = a.level == b.level
                && key::user_key(&a.meta.largest) >= key::user_key(&b.meta.smallest);
            if overlap {
                let detail = format!(
                    "segments {} and {} overlap in level {}",
                    a.id, b.id, a.level
                );
                c.error(path, *offset, detail);
            }
        }
    }
}
