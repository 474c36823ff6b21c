//! The synchronisation primitives the group commit uses: `std`'s normally, `shuttle`'s when
//! the crate is built with `--cfg shuttle`, so a randomized scheduler can explore the
//! interleavings of writers and leaders (`src/group_commit.rs`, `TESTING.md`).

use std::sync::PoisonError;

#[cfg(shuttle)]
pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(shuttle))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `m`. A poisoned lock (a thread panicked holding it) is taken as is: the state behind
/// it is only queue bookkeeping that stays consistent at every step.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `cv`, releasing and retaking `guard`'s lock.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}
