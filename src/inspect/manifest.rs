//! The manifest as version edits, and the LSM shape it describes.

use std::path::{Path, PathBuf};

use super::frames::{self, FrameEvent};
use crate::commit_log::TailState;
use crate::error::{Error, IoContext, Result};
use crate::frame::{read_file_header, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use crate::manifest::{
    read_current, read_manifest, ManifestState, VersionEdit, MANIFEST_FORMAT_VERSION,
    MANIFEST_FORMAT_VERSION_OLDEST, MANIFEST_MAGIC,
};

/// A version edit and the offset of its frame in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditAt {
    /// Offset of the frame header.
    pub offset: u64,
    /// The decoded edit.
    pub edit: VersionEdit,
}

/// The edits of one manifest, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDump {
    /// The manifest.
    pub path: PathBuf,
    /// Every edit before the first damage.
    pub edits: Vec<EditAt>,
    /// How the manifest ends. An incomplete last edit is an append a crash interrupted and
    /// that was never acknowledged; open ignores it. A damaged one makes open fail.
    pub tail: TailState,
}

/// The LSM shape of a database: the state its current manifest describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    /// The manifest `CURRENT` names.
    pub manifest: PathBuf,
    /// Its counters and the live segments of every level.
    pub state: ManifestState,
}

/// The manifest `CURRENT` names in `dir`.
pub fn current_manifest(dir: &Path) -> Result<PathBuf> {
    read_current(dir)
}

/// Reads every version edit of the manifest at `path`, stopping at the first damage.
pub fn read_manifest_edits(path: &Path) -> Result<ManifestDump> {
    let data = std::fs::read(path).at(path)?;
    if check_header(path, &data)?.is_none() {
        return Err(Error::corruption(
            path,
            0,
            "manifest is shorter than its header",
        ));
    }
    let mut edits = Vec::new();
    let mut tail = TailState::Clean;
    for event in frames::walk(&data, FILE_HEADER_LEN, false) {
        match decode_edit(event) {
            Ok(edit) => edits.push(edit),
            Err(end) => {
                tail = end;
                break;
            }
        }
    }
    Ok(ManifestDump {
        path: path.to_path_buf(),
        edits,
        tail,
    })
}

/// The manifest's format version; `None` when the file is shorter than its header.
pub(super) fn check_header(path: &Path, data: &[u8]) -> Result<Option<u32>> {
    let versions = MANIFEST_FORMAT_VERSION_OLDEST..=MANIFEST_FORMAT_VERSION;
    read_file_header(path, data, MANIFEST_MAGIC, versions, "manifest")
}

/// The edit a frame holds, or the tail state that ends the dump there.
fn decode_edit(event: FrameEvent<'_>) -> Result<EditAt, TailState> {
    match event {
        FrameEvent::Record { offset, payload } => match VersionEdit::decode(payload) {
            Ok(edit) => Ok(EditAt { offset, edit }),
            Err((at, detail)) => Err(TailState::Corrupt {
                offset: offset + (FRAME_HEADER_LEN + at) as u64,
                detail,
                at_tail: false,
            }),
        },
        FrameEvent::Incomplete { offset } => Err(TailState::Incomplete { offset }),
        FrameEvent::Corrupt {
            offset,
            detail,
            at_tail,
        } => Err(TailState::Corrupt {
            offset,
            detail,
            at_tail,
        }),
    }
}

/// The current shape of the database in `dir`, from `CURRENT` and the manifest alone: no
/// segment is opened and no lock is taken, so this works while another process has the
/// database open.
///
/// An open of the database replaces the manifest and deletes the old one; if that happens
/// between reading `CURRENT` and reading the manifest, this reads `CURRENT` again.
pub fn levels(dir: &Path) -> Result<Levels> {
    let mut attempts_left = 3;
    loop {
        let manifest = read_current(dir)?;
        match read_manifest(&manifest) {
            Ok((state, _)) => return Ok(Levels { manifest, state }),
            Err(_) if attempts_left > 1 && !manifest.exists() => attempts_left -= 1,
            Err(e) => return Err(e),
        }
    }
}
