//! Appending to a commit log file by copying into a shared memory map (Linux).
//!
//! A `write` system call per commit costs more than everything else a small unsynced write
//! does but the memtable search (the kernel's buffered-write path, the file's timestamps, the
//! dirty-page accounting). A page written through a `MAP_SHARED` mapping of the file is the
//! same page-cache page that `write` would have filled: it survives the process being killed,
//! `fdatasync` writes it out, and readers of the file see it. So the log writer preallocates
//! the file a window at a time with `fallocate` (real blocks, so a full disk is an error
//! here, before a byte is copied, never a `SIGBUS` later), maps the 256 KiB stretch it is
//! writing into and copies each group's frames there.
//!
//! What readers must know (`FORMAT.md`, "What a reader finds"): the file is longer than what
//! was written, and its tail is zeros; a frame being copied can be seen half there. Sealing
//! the file ([`WritableFile::seal`]: at a memtable rotation, and before the sync at close)
//! cuts it to the bytes written, so while the machine runs only the newest log file has a
//! zero tail (after a power loss an older one can too, if it was never synced: recovery then
//! ends the log there, `FORMAT.md` "What a reader finds").

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use memmap2::{MmapMut, MmapOptions};

use super::WritableFile;

/// Bytes preallocated at a time (one `fallocate`).
pub const WINDOW_BYTES: u64 = 1 << 20;

/// Bytes mapped at a time: a divisor of [`WINDOW_BYTES`], so a mapped stretch never crosses
/// the allocated size. Pages written through the map count in the process's resident memory
/// until their stretch is unmapped, so this bounds that (a quarter of the preallocation step:
/// 768 KiB less peak resident memory, for a remap every 256 KiB of log).
pub const MAP_BYTES: u64 = 256 << 10;
const _: () = assert!(WINDOW_BYTES.is_multiple_of(MAP_BYTES));

/// A log file written through a shared map of its current window.
///
/// # Invariants
/// - `len` bytes have been written; the file's size is `allocated` ≥ `len`, a multiple of
///   [`WINDOW_BYTES`] until [`WritableFile::seal`] sets it to `len`; the bytes from `len` to
///   `allocated` are zero or a prefix of frames a failed append left (overwritten by the next).
/// - `map`, when present, maps `[map_start, map_start + MAP_BYTES)`, which lies inside
///   `allocated` (a multiple of `MAP_BYTES`, since `WINDOW_BYTES` is).
pub struct MappedLogFile {
    file: File,
    len: u64,
    allocated: u64,
    map: Option<MmapMut>,
    map_start: u64,
    /// Tests: the size past which `fallocate` is made to fail with `ENOSPC`.
    #[cfg(test)]
    disk_bytes: u64,
}

impl std::fmt::Debug for MappedLogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedLogFile")
            .field("len", &self.len)
            .field("allocated", &self.allocated)
            .field("map_start", &self.map_start)
            .finish_non_exhaustive()
    }
}

impl MappedLogFile {
    /// Creates `path`, failing if it exists, with its first window allocated. `Ok(None)` (and
    /// no file) when the file system cannot allocate space (`fallocate` unsupported): the
    /// caller then appends with `write`.
    pub fn create_new(path: &Path) -> io::Result<Option<MappedLogFile>> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let mut f = MappedLogFile {
            file,
            len: 0,
            allocated: 0,
            map: None,
            map_start: 0,
            #[cfg(test)]
            disk_bytes: u64::MAX,
        };
        match f.reserve(WINDOW_BYTES) {
            Ok(()) => Ok(Some(f)),
            Err(e) if unsupported(&e) => {
                drop(f);
                std::fs::remove_file(path)?;
                Ok(None)
            }
            Err(e) => {
                drop(f);
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Makes the file at least `end` bytes long, in whole windows of allocated blocks.
    fn reserve(&mut self, end: u64) -> io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = end.div_ceil(WINDOW_BYTES) * WINDOW_BYTES;
        #[cfg(test)]
        if target > self.disk_bytes {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let (Ok(offset), Ok(len)) = (
            i64::try_from(self.allocated),
            i64::try_from(target - self.allocated),
        ) else {
            return Err(io::Error::other("log file size out of range"));
        };
        // SAFETY: fallocate only reads its integer arguments; the descriptor is open for as
        // long as `self.file` lives. Mode 0 allocates the blocks and extends the file size.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, offset, len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.allocated = target;
        Ok(())
    }

    /// The mapped stretch ([`MAP_BYTES`]) holding offset `at`, mapping it if needed.
    fn window(&mut self, at: u64) -> io::Result<&mut MmapMut> {
        let start = at / MAP_BYTES * MAP_BYTES;
        if self.map.is_none() || self.map_start != start {
            self.map = None;
            // SAFETY: the stretch lies inside the file's allocated size (`reserve` ran for the
            // bytes being written, in whole windows, each a whole number of stretches), and
            // nothing shrinks the file while it is mapped: the database directory is locked
            // to this process, this object is the file's only writer, and `seal` drops the
            // map before it cuts the file. Other processes only read the file. So no access
            // through the map faults past the end.
            let map = unsafe {
                MmapOptions::new()
                    .offset(start)
                    .len(MAP_BYTES as usize)
                    .map_mut(&self.file)?
            };
            self.map_start = start;
            self.map = Some(map);
        }
        self.map
            .as_mut()
            .ok_or_else(|| io::Error::other("log window not mapped"))
    }

    /// Copies `buf` to file offset `at` (inside the reserved space).
    fn copy_at(&mut self, mut at: u64, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let map = self.window(at)?;
            let in_window = (at % MAP_BYTES) as usize;
            let n = buf.len().min(map.len() - in_window);
            map[in_window..in_window + n].copy_from_slice(&buf[..n]);
            at += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// True for the errors of a file system that has no `fallocate`.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    )
}

impl WritableFile for MappedLogFile {
    /// Copies `buf` after the written bytes: everything but its first four bytes, then (after
    /// a release fence) those four. An append is one or more whole frames, so the last four
    /// bytes copied are the first frame's length, and a process killed during the copy
    /// leaves a zero length where the append starts, which readers take as the end
    /// ([`crate::frame::FrameReader::zero_length_ends`]).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let at = self.len;
        self.reserve(at + buf.len() as u64)?;
        let split = buf.len().min(4);
        // On failure (mapping a window failed) what was copied lies past the end, behind a
        // zero length, and the next append overwrites it.
        self.copy_at(at + split as u64, &buf[split..])?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.copy_at(at, &buf[..split])?;
        self.len = at + buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        // fdatasync writes back every dirty page of the file, those dirtied through the map
        // included (they are the same page-cache pages).
        self.file.sync_data()
    }

    fn start_writeback(&mut self, offset: u64, len: u64) {
        super::start_writeback(&self.file, offset, len);
    }

    fn seal(&mut self) -> io::Result<()> {
        self.map = None;
        self.file.set_len(self.len)?;
        self.allocated = self.len;
        Ok(())
    }

    fn cut_back(&mut self, len: u64) -> Option<io::Result<()>> {
        // Appends never leave a partial write behind `len` (see `write_all`).
        Some(match len == self.len {
            true => Ok(()),
            false => Err(io::Error::other(format!(
                "cannot cut a mapped log back to {len} bytes: {} are written",
                self.len
            ))),
        })
    }
}

impl Drop for MappedLogFile {
    fn drop(&mut self) {
        // Best effort: a file dropped without `seal` (a failed write, a process that never
        // closed the database) keeps its zero tail, which recovery reads as the end.
        if self.allocated != self.len {
            self.map = None;
            let _ = self.file.set_len(self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_across_windows_read_back_exactly_and_finish_cuts_the_zero_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.log");
        let mut f = MappedLogFile::create_new(&path).unwrap().unwrap();
        let mut expected = Vec::new();
        // Appends of 1 byte to more than a window, so some straddle a window boundary and one
        // spans several; each is distinct so a misplaced copy shows.
        for (i, n) in [1usize, 3, 4, 5, 4095, 700_000, 1 << 20, 3 << 20, 17]
            .iter()
            .enumerate()
        {
            let chunk: Vec<u8> = (0..*n).map(|j| (i * 31 + j * 7 % 251) as u8 | 1).collect();
            f.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            let size = std::fs::metadata(&path).unwrap().len();
            assert_eq!(
                size % WINDOW_BYTES,
                0,
                "a live file grows a window at a time"
            );
            assert!(size >= expected.len() as u64);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(
                &on_disk[..expected.len()],
                &expected[..],
                "after append {i}"
            );
            assert!(
                on_disk[expected.len()..].iter().all(|&b| b == 0),
                "zero tail"
            );
        }
        assert!(f.cut_back(expected.len() as u64).unwrap().is_ok());
        assert!(f.cut_back(1).unwrap().is_err());
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn a_full_disk_fails_an_append_before_copying_and_the_next_append_follows_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.log");
        let mut f = MappedLogFile::create_new(&path).unwrap().unwrap();
        f.disk_bytes = 2 * WINDOW_BYTES;
        let first = vec![7u8; 1000];
        f.write_all(&first).unwrap();
        let big = vec![9u8; 2 * WINDOW_BYTES as usize];
        let e = f.write_all(&big).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(
            f.cut_back(1000).unwrap().is_ok(),
            "nothing to cut: nothing was copied"
        );
        assert!(std::fs::read(&path).unwrap()[1000..]
            .iter()
            .all(|&b| b == 0));
        f.disk_bytes = u64::MAX; // space is back
        let next = vec![5u8; 3000];
        f.write_all(&next).unwrap();
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [first, next].concat());
    }

    #[test]
    fn a_dropped_file_that_was_not_finished_gives_back_its_zero_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.log");
        let mut f = MappedLogFile::create_new(&path).unwrap().unwrap();
        f.write_all(b"abc").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), WINDOW_BYTES);
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }
}
