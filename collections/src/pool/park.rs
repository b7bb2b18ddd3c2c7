//! Parking a `TaskPool` worker that has nothing to do, and waking it when work comes; and a
//! worker's next task ([`next_task`]), whose stealing wakes sleepers too.
//!
//! A worker with no work registers in `count` while holding the `idle` lock, then checks what
//! the caller gives it (every task queue and the tasks put aside, each read under its own lock;
//! whether every task has finished) and waits on the condition variable, which lets go of
//! `idle` only inside the wait. Whoever makes tasks visible (pushes them under a queue's lock)
//! reads `count` after the push and, if any worker is registered, takes `idle` and notifies
//! one per task pushed (all of them for a batch at least as large); the worker that finishes
//! the run's last task takes `idle` and notifies everyone.
//!
//! No wake-up is lost:
//! - A pusher that reads `count` as zero pushed before any worker that had yet to register
//!   checked the queues: the worker's increment comes before its check, under the queue's lock,
//!   and the pusher's read after its push, under the same lock, so one of the two sees the
//!   other. (The `SeqCst` accesses are not what orders them: the queue's lock is; they stay
//!   `SeqCst` as documentation of the pair.)
//! - A pusher or finisher that notifies holds `idle`, which a registered worker holds from its
//!   check to its wait: the notification comes before the check (which then sees the work, or
//!   the end) or reaches the worker in its wait.
//!
//! Under loom (where this module is compiled alone, for the models of
//! `loom-tests/tests/pool_park.rs`) the lock and the condition variable are loom's.

use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::sync::PoisonError;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard};

/// The parked workers of one run, and the handshake that wakes them.
pub(super) struct Sleepers {
    /// Workers registered as parked (or about to park, holding `idle`).
    count: CachePadded<AtomicUsize>,
    idle: Mutex<()>,
    wake: Condvar,
}

/// Locks `m`, a lock of the pool's bookkeeping: nothing panics while holding one but
/// allocation failure, so a poisoned lock's data is still consistent.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One run's task queues (one per worker, or one shared), each on a cache line of its own.
pub(super) type Queues<T> = [CachePadded<Mutex<VecDeque<T>>>];

impl Sleepers {
    pub(super) fn new() -> Self {
        Sleepers {
            count: CachePadded::new(AtomicUsize::new(0)),
            idle: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Wakes up to `tasks` parked workers, if any, after the caller made that many tasks
    /// visible (pushed them under a queue's lock): one per task, so that a batch runs on as
    /// many workers as it can use.
    pub(super) fn wake(&self, tasks: usize) {
        let sleepers = self.count.load(Ordering::SeqCst);
        if sleepers == 0 || tasks == 0 {
            return;
        }
        let _idle = lock(&self.idle);
        if tasks >= sleepers {
            self.wake.notify_all();
        } else {
            for _ in 0..tasks {
                self.wake.notify_one();
            }
        }
    }

    /// Wakes every parked worker, after the caller finished the run's last task.
    pub(super) fn wake_all(&self) {
        let _idle = lock(&self.idle);
        self.wake.notify_all();
    }

    /// Parks the calling worker until `has_work()` (true) or `finished()` (false), asking
    /// `finished` first each time it wakes. Both read what they check under its own lock, or
    /// as an atomic that the finisher changes before [`wake_all`](Sleepers::wake_all).
    pub(super) fn park(&self, finished: impl Fn() -> bool, has_work: impl Fn() -> bool) -> bool {
        let mut idle = lock(&self.idle);
        self.count.fetch_add(1, Ordering::SeqCst);
        let more = loop {
            if finished() {
                break false;
            }
            if has_work() {
                break true;
            }
            idle = self.wake.wait(idle).unwrap_or_else(PoisonError::into_inner);
        };
        self.count.fetch_sub(1, Ordering::SeqCst);
        more
    }
}

/// The next task for the worker whose queue is `queues[home]`: its front, else half of
/// another queue's back, taken with `try_lock` (a thief never waits for an owner). A thief that
/// keeps stolen tasks for later puts them in its own queue and wakes sleepers for them: the
/// pusher woke as many workers as it pushed tasks, but a thief that took several runs them one
/// at a time, and another sleeper may steal them.
pub(super) fn next_task<T>(queues: &Queues<T>, home: usize, sleepers: &Sleepers) -> Option<T> {
    if let Some(task) = lock(&queues[home]).pop_front() {
        return Some(task);
    }
    let n = queues.len();
    for victim in (1..n).map(|i| (home + i) % n) {
        let Ok(mut queue) = queues[victim].try_lock() else {
            continue;
        };
        let len = queue.len();
        if len == 0 {
            continue;
        }
        let mut stolen = queue.split_off(len - len.div_ceil(2));
        drop(queue);
        let task = stolen.pop_front();
        if !stolen.is_empty() {
            let left = stolen.len();
            lock(&queues[home]).append(&mut stolen);
            sleepers.wake(left);
        }
        return task;
    }
    None
}
