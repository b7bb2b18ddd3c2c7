//! A pool's parked workers take the work that appears while they sleep, however many there
//! are: a task adds three children that can only finish together (each waits, outside any
//! transactional variable, until the others have started), once the two other workers of a
//! pool of three are asleep. Each of the three workers must end up with one child.
//!
//! Fails on `main` (hangs, caught by the watchdog), in both modes: a batch of children wakes
//! one parked worker, however many children there are and however many workers sleep.
//! Unordered, the woken worker steals the back half of the queue (two of the three children),
//! runs one and keeps the other in its own queue without waking anyone; ordered, it takes one
//! child from the shared queue and leaves the third there. Either way the third worker sleeps
//! on while a task waits in a queue, until some later push or the end of the run: a pool of
//! `n` workers whose tasks are added by one parent runs on two of them.
//!
//! Whether a thread is asleep is read from `/proc` (Linux only).
#![cfg(target_os = "linux")]

mod common;

use common::{asleep, named_asleep, own_tid};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use commute::{TCounter, TaskPool};

const WORKERS: usize = 3;

fn children_meet(mut pool: TaskPool) {
    let done = Arc::new(TCounter::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    // The calling thread is worker 0; the others are named.
    let caller = own_tid();
    {
        let (done, arrived) = (done.clone(), arrived.clone());
        pool.add(move |tx, ctx| {
            // Every other worker has found nothing to do and sleeps.
            let others_asleep = || {
                (0..WORKERS)
                    .filter(|&w| w != ctx.worker())
                    .all(|w| match w {
                        0 => asleep(&caller),
                        _ => named_asleep(&format!("commute-pool-{w}")),
                    })
            };
            while !others_asleep() {
                std::thread::yield_now();
            }
            for _ in 0..WORKERS {
                let (done, arrived) = (done.clone(), arrived.clone());
                let mut came = false;
                ctx.add(tx, move |tx, _| {
                    if !came {
                        came = true;
                        arrived.fetch_add(1, Ordering::SeqCst);
                    }
                    while arrived.load(Ordering::SeqCst) < WORKERS {
                        std::thread::yield_now();
                    }
                    done.incr(tx);
                    Ok(())
                });
            }
            Ok(())
        });
    }
    let report = pool.run().unwrap();
    assert_eq!(report.tasks, 1 + WORKERS as u64);
    assert_eq!(done.load(), WORKERS as i64, "each child committed once");
}

#[test]
fn three_children_that_wait_for_each_other_run_at_once_on_three_workers() {
    common::with_watchdog(20, || {
        for _ in 0..10 {
            children_meet(TaskPool::new().with_threads(WORKERS));
            children_meet(TaskPool::ordered().with_threads(WORKERS));
        }
    });
}
