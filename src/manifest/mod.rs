//! The manifest: version edits, versions and the version set.
//!
//! The manifest file is a framed file (`FORMAT.md`, "Manifest") of [`VersionEdit`]s; replaying
//! them in order gives the live segments and the counters. `CURRENT` names the manifest in
//! use and is replaced atomically. Every open writes a fresh manifest holding one edit that
//! describes the whole state, so a manifest never grows without bound across restarts.

mod edit;
mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use edit::{AddedSegment, SubscriptionChange, VersionEdit};
pub use version::{LiveSegment, Version};

use crate::error::{Error, IoContext, Result};
use crate::files;
use crate::frame::{
    encode_frame, file_header, read_file_header, Frame, FrameReader, FILE_HEADER_LEN,
};
use crate::fs::{FileSystem, WritableFile};
use crate::key::SeqNo;
use crate::segment::{BlockCache, Segment};

/// Number of levels of the LSM tree.
pub const LEVELS: usize = 7;
/// The first 8 bytes of every manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"ALVMMAN1";
/// The manifest format version this build writes. It reads this one and every earlier one
/// (`FORMAT.md`, "Version changes").
pub const MANIFEST_FORMAT_VERSION: u32 = 2;
/// The oldest manifest format version this build reads.
pub const MANIFEST_FORMAT_VERSION_OLDEST: u32 = 1;

/// The counters and live segments a manifest describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Log files numbered below this hold only flushed data.
    pub log_number: u64,
    /// The next unused file number.
    pub next_file_number: u64,
    /// The largest sequence number stored in segments.
    pub last_seqno: SeqNo,
    /// Live segments per level, in the order they were added.
    pub levels: Vec<Vec<AddedSegment>>,
    /// Change-feed subscriptions by id: name and flushed position.
    pub subscriptions: BTreeMap<u64, (String, SeqNo)>,
}

impl ManifestState {
    fn apply(&mut self, edit: &VersionEdit) {
        self.levels.resize_with(LEVELS, Vec::new);
        self.log_number = edit.log_number.unwrap_or(self.log_number);
        self.next_file_number = edit.next_file_number.unwrap_or(self.next_file_number);
        self.last_seqno = edit.last_seqno.unwrap_or(self.last_seqno);
        for (level, id) in &edit.deleted {
            self.levels[*level as usize].retain(|s| s.id != *id);
        }
        for added in &edit.added {
            self.levels[added.level as usize].push(added.clone());
        }
        edit.subscriptions
            .iter()
            .for_each(|c| self.apply_subscription(c));
    }

    fn apply_subscription(&mut self, change: &SubscriptionChange) {
        match change {
            SubscriptionChange::Set { id, name, position } => {
                self.subscriptions.insert(*id, (name.clone(), *position));
            }
            SubscriptionChange::Delete { id } => {
                self.subscriptions.remove(id);
            }
        }
    }

    /// One edit that recreates this whole state.
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_seqno: Some(self.last_seqno),
            added: self.levels.iter().flatten().cloned().collect(),
            deleted: Vec::new(),
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(&id, (name, position))| SubscriptionChange::Set {
                    id,
                    name: name.clone(),
                    position: *position,
                })
                .collect(),
        }
    }
}

/// The name of the manifest `CURRENT` points at.
pub fn read_current(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(files::CURRENT);
    let text = std::fs::read(&path).at(&path)?;
    let name = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_suffix('\n'));
    match name.and_then(files::parse_file_name) {
        Some(files::FileKind::Manifest(n)) => Ok(files::manifest_path(dir, n)),
        _ => Err(Error::corruption(
            &path,
            0,
            "CURRENT does not name a manifest",
        )),
    }
}

/// Replays every edit of the manifest at `path`.
///
/// A manifest whose last edit is incomplete (a crash during an append that was never
/// acknowledged) ends there; any damaged edit is [`Error::Corruption`].
pub fn read_manifest(path: &Path) -> Result<(ManifestState, Vec<VersionEdit>)> {
    let data = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::corruption(
                path,
                0,
                "the manifest CURRENT names is missing",
            ));
        }
        other => other.at(path)?,
    };
    let versions = MANIFEST_FORMAT_VERSION_OLDEST..=MANIFEST_FORMAT_VERSION;
    if read_file_header(path, &data, MANIFEST_MAGIC, versions, "manifest")?.is_none() {
        return Err(Error::corruption(
            path,
            0,
            "manifest is shorter than its header",
        ));
    }
    let mut state = ManifestState::default();
    let mut edits = Vec::new();
    let mut frames = FrameReader::new(&data, FILE_HEADER_LEN);
    loop {
        match frames.next_frame() {
            Frame::Record { offset, payload } => {
                let edit = VersionEdit::decode(payload).map_err(|(at, detail)| {
                    Error::corruption(
                        path,
                        (offset + crate::frame::FRAME_HEADER_LEN + at) as u64,
                        detail,
                    )
                })?;
                state.apply(&edit);
                edits.push(edit);
            }
            Frame::End | Frame::Incomplete { .. } => break,
            Frame::Corrupt { offset, detail, .. } => {
                return Err(Error::corruption(path, offset as u64, detail))
            }
        }
    }
    if edits.is_empty() {
        return Err(Error::corruption(
            path,
            FILE_HEADER_LEN as u64,
            "manifest holds no version edit",
        ));
    }
    Ok((state, edits))
}

/// The manifest being appended to.
#[derive(Debug)]
pub struct ManifestWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    size_bytes: u64,
    /// Set after a failure that left the file in an unknown state: every later append fails.
    broken: bool,
}

impl ManifestWriter {
    /// Creates manifest `number` holding `state`, syncs it, points `CURRENT` at it (atomically)
    /// and removes the manifest `CURRENT` named before, if any.
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        state: &ManifestState,
        temp_number: u64,
    ) -> Result<Self> {
        let path = files::manifest_path(dir, number);
        let mut buf = file_header(MANIFEST_MAGIC, MANIFEST_FORMAT_VERSION);
        encode_frame(&mut buf, &state.snapshot_edit().encode());
        let mut file = fs.create_new(&path).at(&path)?;
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .at(&path)?;
        let previous = read_current(dir).ok();
        let current = format!("{}\n", files::manifest_name(number));
        let tmp = files::temp_path(dir, temp_number);
        files::write_atomically(fs, dir, &tmp, &dir.join(files::CURRENT), current.as_bytes())?;
        if let Some(old) = previous.filter(|p| *p != path) {
            files::remove_if_exists(fs, &old)?;
        }
        let size_bytes = buf.len() as u64;
        Ok(ManifestWriter {
            file,
            path,
            size_bytes,
            broken: false,
        })
    }

    /// Appends one edit and `fdatasync`s it.
    ///
    /// A write that fails for lack of space is cut off again (the file ends at its last
    /// complete edit) and reported as is, so the caller may retry later. Any other failure,
    /// and every failed `fdatasync`, breaks the writer for good: after a failed sync nothing is
    /// known about what reached the disk.
    pub fn append(&mut self, fs: &dyn FileSystem, edit: &VersionEdit) -> Result<()> {
        if self.broken {
            return Err(Error::Closed(
                "the manifest failed earlier; reopen the database".into(),
            ));
        }
        let mut buf = Vec::new();
        encode_frame(&mut buf, &edit.encode());
        if let Err(e) = self.file.write_all(&buf).at(&self.path) {
            let undone = fs.truncate(&self.path, self.size_bytes).is_ok();
            self.broken = !(undone && e.is_no_space());
            return Err(e);
        }
        if let Err(e) = self.file.sync_data() {
            self.broken = true;
            return Err(Error::Closed(format!("manifest fdatasync failed: {e}")));
        }
        self.size_bytes += buf.len() as u64;
        Ok(())
    }

    /// The manifest's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The live state: counters, the current version and the manifest writer.
///
/// # Concurrency
/// Held behind the database's version mutex; every change goes through [`VersionSet::log_and_apply`],
/// which makes the edit durable before it becomes visible.
#[derive(Debug)]
pub struct VersionSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    state: ManifestState,
    current: Arc<Version>,
    manifest: ManifestWriter,
}

impl VersionSet {
    /// Opens every segment `state` names, then writes a fresh manifest describing it.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        mut state: ManifestState,
        cache: Option<&Arc<BlockCache>>,
    ) -> Result<VersionSet> {
        state.levels.resize_with(LEVELS, Vec::new);
        let opened = open_segments(dir, &state, cache)?;
        let (version, _) = Version::empty().apply(&state.snapshot_edit(), &opened)?;
        let manifest_number = state.next_file_number;
        let temp_number = manifest_number + 1;
        state.next_file_number += 2;
        let manifest = ManifestWriter::create(&*fs, dir, manifest_number, &state, temp_number)?;
        let current = Arc::new(version);
        Ok(VersionSet {
            fs,
            dir: dir.to_path_buf(),
            state,
            current,
            manifest,
        })
    }

    /// The current version.
    pub fn current(&self) -> Arc<Version> {
        self.current.clone()
    }

    /// The recorded counters and segments.
    pub fn state(&self) -> &ManifestState {
        &self.state
    }

    /// Takes a new file number. It becomes durable with the next edit; recovery also skips
    /// past every number it finds on disk, so a number is never reused.
    pub fn new_file_number(&mut self) -> u64 {
        let n = self.state.next_file_number;
        self.state.next_file_number += 1;
        n
    }

    /// Appends `edit` to the manifest, syncs it, then installs the new version. Segments the
    /// edit removes are deleted once no reader holds them.
    pub fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        opened: &[Arc<LiveSegment>],
    ) -> Result<Arc<Version>> {
        edit.next_file_number = Some(self.state.next_file_number);
        let (next, removed) = self.current.apply(&edit, opened)?;
        self.manifest.append(&*self.fs, &edit)?;
        self.state.apply(&edit);
        // A segment an edit both removes and adds was moved to another level: its file stays.
        let moved = |id| edit.added.iter().any(|a| a.id == id);
        removed
            .iter()
            .filter(|s| !moved(s.id()))
            .for_each(|s| s.mark_obsolete());
        self.current = Arc::new(next);
        Ok(self.current.clone())
    }

    /// The path of the manifest being appended to.
    pub fn manifest_path(&self) -> &Path {
        self.manifest.path()
    }

    /// The file layer.
    pub fn file_system(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn open_segments(
    dir: &Path,
    state: &ManifestState,
    cache: Option<&Arc<BlockCache>>,
) -> Result<Vec<Arc<LiveSegment>>> {
    let mut out = Vec::new();
    for added in state.levels.iter().flatten() {
        let path = files::segment_path(dir, added.id);
        if !path.exists() {
            return Err(Error::corruption(
                &path,
                0,
                "segment named by the manifest is missing",
            ));
        }
        let segment = Segment::open_cached(&path, added.id, cache.cloned())?;
        if segment.size_bytes() != added.meta.size_bytes {
            let detail = format!(
                "segment is {} bytes; the manifest says {}",
                segment.size_bytes(),
                added.meta.size_bytes
            );
            return Err(Error::corruption(&path, 0, detail));
        }
        if segment.meta() != added.meta {
            // Versions order and skip segments by the manifest's key and sequence ranges, so
            // a description that disagrees with the file would hide or misplace its entries.
            let detail = format!(
                "segment properties disagree with the manifest: the file holds {:?}, the manifest says {:?}",
                segment.meta(),
                added.meta
            );
            return Err(Error::corruption(&path, 0, detail));
        }
        out.push(LiveSegment::new(Arc::new(segment), added.meta.clone()));
    }
    Ok(out)
}
