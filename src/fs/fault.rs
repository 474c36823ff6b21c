//! A file layer that injects faults, for tests: failing syncs, a full disk, a crash at the
//! k-th operation, and a power loss that drops every byte and directory entry not yet synced.
//!
//! It delegates to the operating system and remembers, per file, how much was written and how
//! much was synced, and which creations and renames were made durable by a directory sync.
//! [`FaultInjectingFs::power_loss`] then rewinds the real files to what a machine that lost
//! power would find: every file cut to its synced length, every file whose directory entry was
//! never synced removed, every rename whose directory was never synced undone.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileSystem, OsFileSystem, WritableFile};

/// The fault a [`FaultInjectingFs`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Every `fdatasync`/`fsync` fails with EIO.
    SyncFails,
    /// Every write and creation fails with ENOSPC.
    NoSpace,
    /// Every creation fails with ENOSPC; writes to files that exist succeed (a disk with room
    /// left in the blocks its files already hold, none for a new file).
    NoSpaceForNewFiles,
    /// Operation number k (counting from 1) and every later one fail: the process "died".
    CrashAt(u64),
}

#[derive(Debug, Default, Clone)]
struct FileState {
    written: u64,
    synced: u64,
    /// The directory entry is durable (a `sync_dir` happened after the creation).
    entry_durable: bool,
}

#[derive(Debug, Default)]
struct State {
    fault: Option<FaultKind>,
    /// When set, faults hit only files whose name ends with this (".seg", ".log", ...).
    only_suffix: Option<String>,
    ops: u64,
    faults_injected: u64,
    files: HashMap<PathBuf, FileState>,
    /// Renames not yet made durable: (from, to, what `to` held before, if anything).
    renames: Vec<(PathBuf, PathBuf, Option<Vec<u8>>)>,
}

/// A [`FileSystem`] that injects faults. Cheap to clone; clones share their state.
#[derive(Debug, Default, Clone)]
pub struct FaultInjectingFs {
    state: Arc<Mutex<State>>,
}

fn injected(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, format!("injected fault: {what}"))
}

impl FaultInjectingFs {
    /// A layer that injects nothing until [`FaultInjectingFs::set_fault`].
    pub fn new() -> Self {
        FaultInjectingFs::default()
    }

    /// Starts injecting `fault` (or stops, with `None`). Operation counting restarts.
    pub fn set_fault(&self, fault: Option<FaultKind>) {
        let mut s = self.state.lock();
        s.fault = fault;
        s.ops = 0;
    }

    /// Limits faults to files whose name ends with `suffix` (`None`: every file and
    /// directory operation).
    pub fn only_for(&self, suffix: Option<&str>) {
        self.state.lock().only_suffix = suffix.map(str::to_owned);
    }

    /// Operations seen since the last [`FaultInjectingFs::set_fault`].
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.state.lock().faults_injected
    }

    /// Counts an operation and returns the error to inject for it, if any.
    fn check(&self, path: &Path, is_sync: bool, is_write: bool) -> io::Result<()> {
        self.check_op(path, is_sync, is_write, false)
    }

    /// [`FaultInjectingFs::check`] for the creation of a file.
    fn check_create(&self, path: &Path) -> io::Result<()> {
        self.check_op(path, false, true, true)
    }

    fn check_op(
        &self,
        path: &Path,
        is_sync: bool,
        is_write: bool,
        is_create: bool,
    ) -> io::Result<()> {
        let mut s = self.state.lock();
        s.ops += 1;
        let name = path.to_string_lossy();
        if s.only_suffix
            .as_ref()
            .is_some_and(|suffix| !name.ends_with(suffix.as_str()))
        {
            return Ok(());
        }
        let fail = match s.fault {
            Some(FaultKind::SyncFails) if is_sync => {
                Some(injected(io::ErrorKind::Other, "EIO on sync"))
            }
            Some(FaultKind::NoSpace) if is_write => {
                Some(injected(io::ErrorKind::StorageFull, "ENOSPC"))
            }
            Some(FaultKind::NoSpaceForNewFiles) if is_create => Some(injected(
                io::ErrorKind::StorageFull,
                "ENOSPC creating a file",
            )),
            Some(FaultKind::CrashAt(k)) if s.ops >= k => {
                Some(injected(io::ErrorKind::Other, "crashed"))
            }
            _ => None,
        };
        match fail {
            Some(e) => {
                s.faults_injected += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Rewinds the real files to what survives a power loss now, then stops injecting.
    ///
    /// Files are cut to their last synced length; files whose directory entry was never
    /// synced are removed; renames whose directory was never synced are undone. Removals are
    /// not undone (a removed file that would come back is one recovery removes anyway).
    pub fn power_loss(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        let renames: Vec<_> = s.renames.drain(..).rev().collect();
        for (from, to, previous) in renames {
            let _ = std::fs::rename(&to, &from);
            if let Some(state) = s.files.remove(&to) {
                s.files.insert(from, state);
            }
            if let Some(bytes) = previous {
                std::fs::write(&to, bytes)?;
            }
        }
        for (path, f) in s.files.drain() {
            if !path.exists() {
                continue;
            }
            if f.entry_durable {
                std::fs::File::options()
                    .write(true)
                    .open(&path)?
                    .set_len(f.synced)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        s.fault = None;
        Ok(())
    }

    fn wrote(&self, path: &Path, n: u64) {
        if let Some(f) = self.state.lock().files.get_mut(path) {
            f.written += n;
        }
    }

    fn synced(&self, path: &Path) {
        if let Some(f) = self.state.lock().files.get_mut(path) {
            f.synced = f.written;
        }
    }
}

#[derive(Debug)]
struct FaultFile {
    fs: FaultInjectingFs,
    path: PathBuf,
    inner: Box<dyn WritableFile>,
}

impl WritableFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.fs.check(&self.path, false, true)?;
        self.inner.write_all(buf)?;
        self.fs.wrote(&self.path, buf.len() as u64);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.fs.check(&self.path, true, false)?;
        self.inner.sync_data()?;
        self.fs.synced(&self.path);
        Ok(())
    }
}

impl FileSystem for FaultInjectingFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.check_create(path)?;
        let inner = OsFileSystem.create_new(path)?;
        self.state
            .lock()
            .files
            .insert(path.to_path_buf(), FileState::default());
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            path: path.to_path_buf(),
            inner,
        }))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(dir, true, false)?;
        OsFileSystem.sync_dir(dir)?;
        let mut s = self.state.lock();
        for (path, f) in s.files.iter_mut() {
            if path.parent() == Some(dir) {
                f.entry_durable = true;
            }
        }
        s.renames.retain(|(_, to, _)| to.parent() != Some(dir));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(to, false, false)?;
        let previous = std::fs::read(to).ok();
        OsFileSystem.rename(from, to)?;
        let mut s = self.state.lock();
        if let Some(mut f) = s.files.remove(from) {
            f.entry_durable = false;
            s.files.insert(to.to_path_buf(), f);
        }
        s.renames
            .push((from.to_path_buf(), to.to_path_buf(), previous));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(path, false, false)?;
        OsFileSystem.remove_file(path)?;
        self.state.lock().files.remove(path);
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        // A cut never needs space; it fails as a sync does (it ends with one).
        self.check(path, true, false)?;
        OsFileSystem.truncate(path, len)?;
        if let Some(f) = self.state.lock().files.get_mut(path) {
            (f.written, f.synced) = (len, len);
        }
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check(path, false, true)?;
        OsFileSystem.create_dir_all(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_keeps_only_what_was_synced() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultInjectingFs::new();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut fa = fs.create_new(&a).unwrap();
        fa.write_all(b"durable").unwrap();
        fa.sync_data().unwrap();
        fs.sync_dir(dir.path()).unwrap();
        fa.write_all(b" lost").unwrap();
        let mut fb = fs.create_new(&b).unwrap();
        fb.write_all(b"never in the directory").unwrap();
        fb.sync_data().unwrap();
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"durable");
        assert!(
            !b.exists(),
            "a file whose directory entry was never synced is gone"
        );
    }

    #[test]
    fn an_unsynced_rename_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultInjectingFs::new();
        let (cur, tmp) = (dir.path().join("CURRENT"), dir.path().join("1.tmp"));
        std::fs::write(&cur, b"old").unwrap();
        let mut f = fs.create_new(&tmp).unwrap();
        f.write_all(b"new").unwrap();
        f.sync_data().unwrap();
        fs.rename(&tmp, &cur).unwrap();
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(&cur).unwrap(), b"old");
    }

    #[test]
    fn faults_fire_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultInjectingFs::new();
        fs.set_fault(Some(FaultKind::SyncFails));
        let mut f = fs.create_new(&dir.path().join("x")).unwrap();
        f.write_all(b"ok").unwrap();
        assert!(f.sync_data().is_err());
        fs.set_fault(Some(FaultKind::NoSpace));
        assert_eq!(
            f.write_all(b"x").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        fs.set_fault(Some(FaultKind::NoSpaceForNewFiles));
        f.write_all(b"y").unwrap();
        assert_eq!(
            fs.create_new(&dir.path().join("y")).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        fs.set_fault(Some(FaultKind::CrashAt(2)));
        assert!(f.sync_data().is_ok());
        assert!(f.write_all(b"x").is_err());
        assert!(
            fs.sync_dir(dir.path()).is_err(),
            "everything after the crash fails"
        );
        assert_eq!(fs.faults_injected(), 5);
    }
}
