//! Group commit: many writers, one leader at a time.
//!
//! A writer queues its item. If no leader is active it becomes the leader: it takes a group
//! of queued items from the front (its own among them, or ahead of it), commits them all with
//! one call (one commit log append, at most one `fdatasync`), completes each item's slot and
//! wakes every waiter. Other writers sleep until their slot is completed or no leader is
//! active. The database uses it with batches; the shuttle test below drives it with a model
//! of sequence-number assignment and publication.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sync::{lock, wait, Condvar, Mutex};

/// One queued item and, once its group is committed, its result.
pub(crate) struct Slot<T, R> {
    item: T,
    result: Mutex<Option<R>>,
}

impl<T, R> Slot<T, R> {
    /// Records the item's result; the leader calls this once per slot of its group.
    pub fn complete(&self, r: R) {
        *lock(&self.result) = Some(r);
    }

    fn take(&self) -> Option<R> {
        lock(&self.result).take()
    }
}

impl<T, R> std::ops::Deref for Slot<T, R> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

struct Queue<T, R> {
    pending: VecDeque<Arc<Slot<T, R>>>,
    leader_active: bool,
    /// Writers asleep on the condition variable. A leader with none to wake skips the
    /// notification: `std`'s `notify_all` is a `futex` system call even when nobody waits,
    /// one per commit for a lone writer.
    waiting: usize,
}

/// The queue of writers and the leader protocol.
///
/// # Concurrency
/// At most one leader at a time (`leader_active`, set and cleared under the queue lock). The
/// leader commits outside the lock, so writers keep queueing meanwhile. Results are stored
/// before the leader retakes the queue lock and notifies, and waiters check their slot under
/// that lock, so no wakeup is lost. `waiting` is counted under the queue lock too: a writer
/// increments it before it sleeps (atomically releasing the lock) and decrements it when it
/// wakes, so a leader that sees 0 after retaking the lock has nobody to wake.
///
/// # Invariants
/// Groups are taken from the front of the queue, so items are committed in queue order, and
/// every item is in exactly one group.
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Queue<T, R>>,
    cv: Condvar,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, R> GroupCommit<T, R> {
    /// An empty queue.
    pub fn new() -> Self {
        let queue = Queue {
            pending: VecDeque::new(),
            leader_active: false,
            waiting: 0,
        };
        GroupCommit {
            queue: Mutex::new(queue),
            cv: Condvar::new(),
        }
    }

    /// Queues `item` and returns its result once committed, leading groups as needed.
    ///
    /// `weight` and `max_weight` bound a group (one oversized item still goes alone);
    /// `commit` must complete every slot it is given.
    pub fn submit(
        &self,
        item: T,
        weight: impl Fn(&T) -> usize,
        max_weight: usize,
        commit: impl Fn(&[Arc<Slot<T, R>>]),
    ) -> R {
        let me = Arc::new(Slot {
            item,
            result: Mutex::new(None),
        });
        let mut q = lock(&self.queue);
        q.pending.push_back(me.clone());
        loop {
            if let Some(r) = me.take() {
                return r;
            }
            if !q.leader_active {
                q.leader_active = true;
                let group = take_group(&mut q.pending, &weight, max_weight);
                drop(q);
                commit(&group);
                q = lock(&self.queue);
                q.leader_active = false;
                if q.waiting > 0 {
                    self.cv.notify_all();
                }
                continue;
            }
            q.waiting += 1;
            q = wait(&self.cv, q);
            q.waiting -= 1;
        }
    }
}

fn take_group<T, R>(
    pending: &mut VecDeque<Arc<Slot<T, R>>>,
    weight: &impl Fn(&T) -> usize,
    max_weight: usize,
) -> Vec<Arc<Slot<T, R>>> {
    let mut group = Vec::new();
    let mut total = 0;
    while let Some(w) = pending.front() {
        let next = weight(&w.item);
        if !group.is_empty() && total + next > max_weight {
            break;
        }
        total += next;
        group.extend(pending.pop_front());
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(shuttle)]
    use shuttle::{sync::atomic::AtomicU64, sync::atomic::Ordering, thread};
    #[cfg(not(shuttle))]
    use std::{sync::atomic::AtomicU64, sync::atomic::Ordering, thread};

    /// A model of the write path: a batch of `n` operations gets `n` sequence numbers from a
    /// counter only the leader touches, is "inserted", then the last one is published.
    struct Model {
        queue: GroupCommit<u64, (u64, u64)>,
        assigned: Mutex<u64>,
        inserted: Mutex<Vec<(u64, u64)>>,
        visible: AtomicU64,
        leaders: AtomicU64,
    }

    impl Model {
        fn new() -> Arc<Self> {
            Arc::new(Model {
                queue: GroupCommit::new(),
                assigned: Mutex::new(0),
                inserted: Mutex::new(Vec::new()),
                visible: AtomicU64::new(0),
                leaders: AtomicU64::new(0),
            })
        }

        fn write(&self, n: u64) -> (u64, u64) {
            self.queue
                .submit(n, |n| *n as usize, 6, |group| self.commit(group))
        }

        fn commit(&self, group: &[Arc<Slot<u64, (u64, u64)>>]) {
            assert_eq!(
                self.leaders.fetch_add(1, Ordering::SeqCst),
                0,
                "one leader at a time"
            );
            // As the write path: assign and insert every batch, publish the last sequence
            // number, and only then complete the slots. (Completing a slot before publishing
            // lets its writer return before its write is visible: this test fails then.)
            let mut next = lock(&self.assigned);
            let mut ranges = Vec::with_capacity(group.len());
            for slot in group {
                let range = (*next + 1, *next + ***slot);
                lock(&self.inserted).push(range);
                *next = range.1;
                ranges.push(range);
            }
            self.visible.store(*next, Ordering::SeqCst);
            for (slot, range) in group.iter().zip(ranges) {
                slot.complete(range);
            }
            self.leaders.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Three writers of two batches each: every batch gets its own contiguous sequence numbers,
    /// together they tile 1..=total, and a writer's result is visible when it returns.
    fn scenario() {
        let model = Model::new();
        let writers: Vec<_> = (1..=3u64)
            .map(|t| {
                let model = model.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for n in [t, 4 - t] {
                        let (first, last) = model.write(n);
                        assert_eq!(last - first + 1, n);
                        assert!(
                            model.visible.load(Ordering::SeqCst) >= last,
                            "visible on return"
                        );
                        got.push((first, last));
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<(u64, u64)> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect();
        all.sort();
        let mut expected = 1;
        for (first, last) in &all {
            assert_eq!(*first, expected, "no gap, no overlap: {all:?}");
            expected = last + 1;
        }
        assert_eq!(expected - 1, 12);
        assert_eq!(
            *lock(&model.inserted),
            all,
            "inserted in sequence-number order"
        );
    }

    #[cfg(not(shuttle))]
    #[test]
    fn group_commit_hands_out_contiguous_sequence_numbers() {
        for _ in 0..200 {
            scenario();
        }
    }

    /// Explores thousands of interleavings with shuttle's randomized scheduler (and finds a
    /// lost wakeup as a deadlock). Run with
    /// `RUSTFLAGS="--cfg shuttle" cargo test --lib --target-dir target/shuttle group_commit`.
    #[cfg(shuttle)]
    #[test]
    fn group_commit_hands_out_contiguous_sequence_numbers_under_every_schedule() {
        shuttle::check_random(scenario, 4_000);
        shuttle::check_pct(scenario, 2_000, 3);
    }
}
