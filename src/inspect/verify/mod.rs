//! `verify`: every checksum and structural invariant of every file, as a list of problems.
//!
//! Verification never stops at the first problem: a damaged data block does not keep the
//! other blocks of its segment from being read, a damaged frame payload does not keep the
//! frames after it from being read (its header, which has its own checksum, still gives its
//! length), and a damaged file does not keep the other files from being checked.
//!
//! # Severity
//! A problem is an [`Severity::Error`] when the data is damaged or the database would not
//! open. It is a [`Severity::Warning`] when it is something a crash or a live writer leaves
//! behind and that open handles by design:
//!
//! - an incomplete or torn record at the end of a log file (a write a crash interrupted, one
//!   still in progress on a live database, or the end of a file a rotation sealed unsynced
//!   that a power loss cut), and a log file that starts past the end of one without its seal
//!   marker: open drops them (and every later log file). A gap after a file that ends with
//!   its seal marker is an error (a missing log file);
//! - an incomplete last edit of the manifest (an append never acknowledged): open ignores it;
//! - segments the manifest does not name, temporary files and manifests other than the one
//!   `CURRENT` names: open removes them. They are not checked further.
//!
//! A single commit log file given on its own is judged as if it were the newest.
//!
//! # A live database
//! Verification reads files while another process may be writing them. A file deleted while
//! it runs (a log file a flush retired, a segment a compaction replaced) is a warning, and the
//! sequence-number check starts over after a log file that could not be read. A file created
//! after the directory was listed is not looked at.

mod log;
mod manifest;
mod segment;

use std::fs;
use std::path::{Path, PathBuf};

use super::FileType;
use crate::error::{Error, IoContext, Result};
use crate::files::{self, FileKind};
use crate::manifest::ManifestState;

/// How serious a problem is; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Left behind by a crash or a live writer, and handled by open.
    Warning,
    /// Damage, or something that keeps the database from opening.
    Error,
}

/// One thing wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub path: PathBuf,
    /// Byte offset in the file where the problem was found (0 for the file as a whole).
    pub offset: u64,
    /// What is wrong.
    pub detail: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files looked at.
    pub files_checked: u64,
    /// Their total size.
    pub bytes_checked: u64,
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Number of problems of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }

    /// True when no problem is an error.
    pub fn is_ok(&self) -> bool {
        self.count(Severity::Error) == 0
    }
}

/// How far a verification has got; passed to the progress callback after each file.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The file just checked.
    pub path: &'a Path,
    /// Files checked so far.
    pub files_done: u64,
    /// Files to check in all.
    pub files_total: u64,
    /// Bytes checked so far.
    pub bytes_done: u64,
    /// Bytes to check in all.
    pub bytes_total: u64,
}

/// Checks a database directory, or one file (a segment, commit log file, manifest or
/// `CURRENT`), and reports every problem found. `progress` is called after each file.
///
/// # Errors
/// Only when there is nothing to verify: `path` cannot be read, a directory holds no
/// alluvium file, or a file is none of alluvium's kinds. Damage is reported as problems.
pub fn verify(path: &Path, progress: &mut dyn FnMut(&Progress<'_>)) -> Result<VerifyReport> {
    if fs::metadata(path).at(path)?.is_dir() {
        verify_dir(path, progress)
    } else {
        verify_file(path, progress)
    }
}

/// Collects problems and reports progress.
struct Checker<'p> {
    report: VerifyReport,
    files_total: u64,
    bytes_total: u64,
    progress: &'p mut dyn FnMut(&Progress<'_>),
}

impl<'p> Checker<'p> {
    fn new(progress: &'p mut dyn FnMut(&Progress<'_>), paths: &[PathBuf]) -> Self {
        Checker {
            report: VerifyReport::default(),
            files_total: paths.len() as u64,
            bytes_total: paths.iter().map(|p| size_of(p)).sum(),
            progress,
        }
    }

    fn add(&mut self, severity: Severity, path: &Path, offset: u64, detail: impl Into<String>) {
        self.report.problems.push(Problem {
            severity,
            path: path.to_path_buf(),
            offset,
            detail: detail.into(),
        });
    }

    fn error(&mut self, path: &Path, offset: u64, detail: impl Into<String>) {
        self.add(Severity::Error, path, offset, detail);
    }

    fn warn(&mut self, path: &Path, offset: u64, detail: impl Into<String>) {
        self.add(Severity::Warning, path, offset, detail);
    }

    /// Records an error the library returned: corruption names its own file and offset;
    /// anything else is reported against `path` as a whole.
    fn absorb(&mut self, path: &Path, e: Error) {
        match e {
            Error::Corruption {
                path,
                offset,
                detail,
            } => self.error(&path, offset, detail),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                self.warn(path, 0, "removed while verify ran (by a live database)")
            }
            other => self.error(path, 0, other.to_string()),
        }
    }

    /// The whole file, or `None` after recording why it cannot be read.
    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        fs::read(path)
            .map_err(|e| self.absorb(path, Error::io(path, e)))
            .ok()
    }

    /// Marks `path` as checked and reports progress.
    fn done(&mut self, path: &Path) {
        self.report.files_checked += 1;
        self.report.bytes_checked += size_of(path);
        (self.progress)(&Progress {
            path,
            files_done: self.report.files_checked,
            files_total: self.files_total,
            bytes_done: self.report.bytes_checked,
            bytes_total: self.bytes_total,
        });
    }
}

fn size_of(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

fn verify_file(path: &Path, progress: &mut dyn FnMut(&Progress<'_>)) -> Result<VerifyReport> {
    let kind = super::identify(path)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{} is not an alluvium file (segment, commit log, manifest, CURRENT or IDENTITY)",
            path.display()
        ))
    })?;
    let mut c = Checker::new(progress, &[path.to_path_buf()]);
    match kind {
        FileType::Segment => drop(segment::check(&mut c, path)),
        FileType::CommitLog => log::check(&mut c, path, true, &mut log::SeqCheck::default()),
        FileType::Manifest => drop(manifest::check(&mut c, path)),
        FileType::Current => drop(manifest::check_current(&mut c, path)),
        FileType::Identity => check_identity(&mut c, path),
    }
    c.done(path);
    Ok(c.report)
}

fn verify_dir(dir: &Path, progress: &mut dyn FnMut(&Progress<'_>)) -> Result<VerifyReport> {
    let listing = files::list(dir)?;
    if listing.iter().all(|k| *k == FileKind::Lock) {
        let detail = format!("{} holds no alluvium database", dir.display());
        return Err(Error::InvalidArgument(detail));
    }
    let identity = Some(crate::identity::identity_path(dir)).filter(|p| p.exists());
    let mut paths: Vec<PathBuf> = listing.iter().filter_map(|k| path_of(dir, *k)).collect();
    paths.extend(identity.clone());
    let mut c = Checker::new(progress, &paths);
    if let Some(path) = &identity {
        check_identity(&mut c, path);
        c.done(path);
    }
    let named = manifest::check_named(&mut c, dir, &listing);
    let state = named.as_ref().and_then(|(_, state)| state.as_ref());
    segment::check_all(&mut c, dir, &listing, state);
    log::check_all(&mut c, dir, &listing, state);
    check_leftovers(
        &mut c,
        dir,
        &listing,
        named.as_ref().map(|(p, _)| p.as_path()),
    );
    Ok(c.report)
}

/// The path of a file verify looks at (every alluvium file but `LOCK`).
fn path_of(dir: &Path, kind: FileKind) -> Option<PathBuf> {
    match kind {
        FileKind::Log(n) => Some(files::log_path(dir, n)),
        FileKind::Segment(n) => Some(files::segment_path(dir, n)),
        FileKind::Manifest(n) => Some(files::manifest_path(dir, n)),
        FileKind::Temp(n) => Some(files::temp_path(dir, n)),
        FileKind::Current => Some(dir.join(files::CURRENT)),
        FileKind::Lock => None,
    }
}

/// Temporary files, and manifests `CURRENT` does not name: what a crash leaves and the next
/// open removes.
/// `IDENTITY` holds 32 lowercase hex digits and a newline (a directory without one is an
/// older database that gets one at its next open, so its absence is no problem).
fn check_identity(c: &mut Checker<'_>, path: &Path) {
    if let Err(e) = crate::identity::read_file(path) {
        c.absorb(path, e);
    }
}

fn check_leftovers(c: &mut Checker<'_>, dir: &Path, listing: &[FileKind], named: Option<&Path>) {
    for &kind in listing {
        let (path, detail) = match kind {
            FileKind::Temp(n) => (
                files::temp_path(dir, n),
                "temporary file of a CURRENT replacement that did not finish; the next open removes it",
            ),
            FileKind::Manifest(n) if named != Some(&files::manifest_path(dir, n)) => (
                files::manifest_path(dir, n),
                "manifest not named by CURRENT; the next open removes it",
            ),
            _ => continue,
        };
        c.warn(&path, 0, detail);
        c.done(&path);
    }
}

/// The manifest state, when the manifest could be replayed.
type NamedManifest = (PathBuf, Option<ManifestState>);
