//! A pool's idle workers take the work that appears while they are parked: two sibling tasks
//! that can only finish together (each waits, outside any transactional variable, until the
//! other has started) finish on a pool of two workers. Their parent adds them once the other
//! worker, having found nothing to do, is asleep: it must be woken when the children are
//! queued, and (unordered mode, where each worker has its own queue) steal one of them from the
//! parent's worker (a thief takes the back half, rounded up: one of one).
//!
//! Whether a thread is asleep is read from `/proc` (Linux only).
#![cfg(target_os = "linux")]

mod common;

use common::{asleep, named_asleep, own_tid};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use commute::{TCounter, TaskPool};

/// Sets `me`, then waits until `other` is set: the two siblings must run at the same time.
fn meet(me: &AtomicBool, other: &AtomicBool) {
    me.store(true, Ordering::Release);
    while !other.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
}

fn siblings_meet(mut pool: TaskPool) {
    let done = Arc::new(TCounter::new());
    let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let caller = own_tid();
    {
        let (done, flags) = (done.clone(), flags.clone());
        // One root: the other worker has nothing to do, and parks.
        pool.add(move |tx, ctx| {
            // The other worker: the calling thread is worker 0.
            let other_asleep = || match ctx.worker() {
                0 => named_asleep("commute-pool-1"),
                _ => asleep(&caller),
            };
            while !other_asleep() {
                std::thread::yield_now();
            }
            for i in 0..2 {
                let (done, flags) = (done.clone(), flags.clone());
                ctx.add(tx, move |tx, _| {
                    meet(&flags[i], &flags[1 - i]);
                    done.incr(tx);
                    Ok(())
                });
            }
            Ok(())
        });
    }
    let report = pool.run().unwrap();
    assert_eq!(report.tasks, 3);
    assert_eq!(report.threads, 2);
    assert_eq!(done.load(), 2, "each child committed once");
}

#[test]
fn two_siblings_that_wait_for_each_other_run_at_once_on_two_workers() {
    common::with_watchdog(20, || {
        for _ in 0..20 {
            siblings_meet(TaskPool::new().with_threads(2));
            siblings_meet(TaskPool::ordered().with_threads(2));
        }
    });
}
