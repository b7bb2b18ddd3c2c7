//! `TaskPool` (unordered mode): put-aside tasks run as alternatives of one transaction, the
//! first that proceeds commits and the others go back to the queue, where a parked worker must
//! be woken for them. Three tasks wait for a gate; once it opens, the first to see it commits,
//! and the two others can only finish together (each waits, outside any transactional
//! variable, until the other has started): on two workers, the worker that ran the
//! alternatives runs one of them, and the other worker, parked meanwhile, must run the other.
//!
//! Whether a thread is asleep is read from `/proc` (Linux only).
#![cfg(target_os = "linux")]

mod common;

use common::{asleep, named_asleep, own_tid};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use commute::{TVar, TaskPool, atomically};

/// Runs one round; false if it was inconclusive.
fn one_round() -> bool {
    let gate = Arc::new(TVar::new(false));
    // Who saw the gate open first (it proceeds at once), and the others' arrivals.
    let leader = Arc::new(AtomicBool::new(false));
    let arrived = Arc::new(AtomicUsize::new(0));
    // Set when both workers block in `retry`, each with some of the tasks: then the followers
    // do not wait for each other (one of them may sit behind the other in one worker's
    // alternatives), and the round shows nothing.
    let inconclusive = Arc::new(AtomicBool::new(false));
    let mut pool = TaskPool::new().with_threads(2);
    for _ in 0..3 {
        let (gate, leader, arrived, inconclusive) = (
            gate.clone(),
            leader.clone(),
            arrived.clone(),
            inconclusive.clone(),
        );
        let mut role: Option<bool> = None;
        pool.add(move |tx, _| {
            if !gate.read(tx)? {
                return tx.retry();
            }
            // Decided once per task, by its first attempt that sees the gate open.
            let leads = *role.get_or_insert_with(|| {
                let leads = !leader.swap(true, Ordering::SeqCst);
                if !leads {
                    arrived.fetch_add(1, Ordering::SeqCst);
                }
                leads
            });
            if !leads {
                while arrived.load(Ordering::SeqCst) < 2 && !inconclusive.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
            }
            Ok(())
        });
    }
    let caller = own_tid();
    let watcher = pool.watcher();
    let opener = {
        let (gate, inconclusive) = (gate.clone(), inconclusive.clone());
        std::thread::spawn(move || {
            // Wait until one worker blocks in the alternatives' `retry` and the other is
            // parked (both asleep); if both block in `retry` (each took some of the tasks),
            // open all the same.
            loop {
                let blocked = watcher.blocked_transactions().len();
                if blocked == 2 {
                    inconclusive.store(true, Ordering::SeqCst);
                    break;
                }
                // Asleep twice, a while apart: not a passing wait for a lock.
                let both_asleep = || asleep(&caller) && named_asleep("commute-pool-1");
                if blocked == 1 && both_asleep() {
                    for _ in 0..100 {
                        std::thread::yield_now();
                    }
                    if watcher.blocked_transactions().len() == 1 && both_asleep() {
                        break;
                    }
                }
                std::thread::yield_now();
            }
            atomically(|tx| {
                gate.write(tx, true);
                Ok(())
            });
        })
    };
    let report = pool.run().unwrap();
    opener.join().unwrap();
    assert_eq!(report.tasks, 3);
    assert_eq!(arrived.load(Ordering::SeqCst), 2);
    !inconclusive.load(Ordering::SeqCst)
}

#[test]
fn tasks_put_back_after_the_alternatives_wake_a_parked_worker() {
    common::with_watchdog(20, || {
        let conclusive = (0..10).filter(|_| one_round()).count();
        eprintln!("{conclusive} of 10 rounds conclusive");
    });
}
