//! Loom models of the handshake of `TaskPool`'s ordered mode (`collections/src/pool/order.rs`):
//! a worker parks until the turn reaches its task's number, and `advance`, which moves the turn
//! on, wakes the worker parked for the next number. A lost wake-up leaves a worker parked for
//! good, which loom reports as a deadlock; a turn taken early shows as a task that ends out of
//! order, or as a task whose plain accesses race with its predecessor's (the turn's handoff
//! orders them).
#![cfg(loom)]

use commute::__loom::Order;
use commute_loom_tests::run_model;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// The number of the last task that ran, read and written by the tasks with plain (non-atomic)
/// accesses: loom reports two tasks whose accesses the turns do not order.
struct Last(UnsafeCell<u64>);

// SAFETY: only a task at its turn touches the cell (what the models check), and the model's end
// after every task.
unsafe impl Sync for Last {}

impl Last {
    /// Records task `seq`; returns the task recorded before it.
    fn replace(&self, seq: u64) -> u64 {
        // SAFETY: as for `Sync`; loom checks that the accesses do not race.
        self.0
            .with_mut(|p| unsafe { core::mem::replace(&mut *p, seq) })
    }
}

/// Runs the tasks `first..first + tasks.len()` in order on their workers, the model's main
/// thread as worker 0 and one thread per other worker: worker `tasks[i]` waits for task
/// `first + i`'s turn, records its number in `last` (a plain write), and advances the turn.
/// Every worker then waits for the turn past the last task, which the last task gives, so that
/// each one has parked for a number it did not advance to itself.
fn run_in_order(workers: usize, first: u64, tasks: &'static [usize]) {
    let order = Arc::new(Order::new(first, workers));
    let last = Arc::new(Last(UnsafeCell::new(first - 1)));
    let finished = Arc::new(AtomicUsize::new(0));
    let end = first + tasks.len() as u64;
    for worker in 1..workers {
        let (order, last, finished) = (order.clone(), last.clone(), finished.clone());
        thread::spawn(move || {
            run_tasks(&order, &last, worker, first, tasks);
            finished.fetch_add(1, Ordering::Release);
        });
    }
    run_tasks(&order, &last, 0, first, tasks);
    // Not `join`: an `advance` may leave an unpark with a worker that saw its turn without
    // parking, and loom's `join` takes that unpark for the joined thread's end (loom issue
    // 249); std's `join` and `park` are unrelated.
    while finished.load(Ordering::Acquire) < workers - 1 {
        thread::yield_now();
    }
    assert_eq!(last.replace(end), end - 1);
}

/// Worker `worker`'s part of [`run_in_order`]: its tasks, then the wait for the turn past them.
fn run_tasks(order: &Order, last: &Last, worker: usize, first: u64, tasks: &[usize]) {
    order.register(worker);
    for (i, &w) in tasks.iter().enumerate() {
        if w != worker {
            continue;
        }
        let seq = first + i as u64;
        order.wait_turn(seq, worker);
        // The task before this one has run, and no later one.
        assert_eq!(last.replace(seq), seq - 1);
        order.advance(seq);
    }
    order.wait_turn(first + tasks.len() as u64, worker);
}

/// Two workers take turns: 0, 1, 0. Each wait of worker 1 races the advance that ends it.
#[test]
fn two_workers_taking_turns_are_each_woken_for_their_turn() {
    run_model(
        "two_workers_taking_turns_are_each_woken_for_their_turn",
        || {
            run_in_order(2, 1, &[0, 1, 0]);
        },
    );
}

/// Three workers, the turn handed on by each to the next: 1, 2, 0. A worker parked for a
/// later number is not woken for another's turn, and both parked workers' waits race
/// advances.
#[test]
fn three_workers_each_woken_for_its_own_turn() {
    run_model("three_workers_each_woken_for_its_own_turn", || {
        run_in_order(3, 7, &[1, 2, 0]);
    });
}
