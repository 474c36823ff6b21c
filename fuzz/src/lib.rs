//! What every fuzz target shares: a bound on each allocation and a scratch file.
//!
//! The bound is the allocator's, not libFuzzer's `-malloc_limit_mb`, because that option
//! needs a sanitizer's malloc hooks and the targets also run without one (`-s none`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use alluvium::fuzzing::Verdict;

/// The largest single allocation a decoder may make while reading a fuzz input. The inputs
/// are at most 64 KiB (`-max_len`), and nothing the decoders read them into needs more
/// than a few MiB; a length field that is trusted shows up as a request far beyond this.
pub const ALLOCATION_BYTES_MAX: usize = 32 << 20;

/// Aborts the process (a crash libFuzzer saves the input of) on an allocation over the bound.
pub struct Bounded;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check(size: usize) {
    if size > ALLOCATION_BYTES_MAX {
        eprintln!("allocation of {size} bytes is over the bound of {ALLOCATION_BYTES_MAX}");
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

/// Writes `bytes` to this process's scratch file (in `/dev/shm` when there is one) and
/// returns its path. One file, rewritten for every input.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        made.expect("a scratch directory")
    });
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the scratch file");
    path
}

/// Splits an input into "repair the checksums first?" (its first byte is odd) and the file.
pub fn mode_and_file(data: &[u8]) -> Option<(bool, Vec<u8>)> {
    let (&mode, file) = data.split_first()?;
    Some((mode & 1 == 1, file.to_vec()))
}

/// Panics on a decoder that contradicted itself; everything else is a pass.
pub fn judge(verdict: Verdict) {
    if let Verdict::Inconsistent(detail) = verdict {
        panic!("inconsistent decoder: {detail}");
    }
}
