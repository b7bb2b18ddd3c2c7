//! Loom models of the handshake of `TaskPool`'s ordered mode (`collections/src/pool/order.rs`):
//! a worker parks until the turn reaches its task's number, and `advance`, which moves the turn
//! on, wakes the worker parked for the next number. A lost wake-up leaves a worker parked for
//! good, which loom reports as a deadlock; a turn taken early shows as a task that ends out of
//! order.
#![cfg(loom)]

use commute::__loom::Order;
use commute_loom_tests::run_model;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::thread;

/// Runs the tasks `first..first + tasks.len()` in order on their workers, the model's main
/// thread as worker 0 and one thread per other worker: worker `tasks[i]` waits for task
/// `first + i`'s turn, writes its number to `last`, and advances the turn. Every worker then
/// waits for the turn past the last task, which the last task gives, so that each one has
/// parked for a number it did not advance to itself.
fn run_in_order(workers: usize, first: u64, tasks: &'static [usize]) {
    let order = Arc::new(Order::new(first, workers));
    let last = Arc::new(AtomicU64::new(first - 1));
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
    assert_eq!(last.load(Ordering::Relaxed), end - 1);
}

/// Worker `worker`'s part of [`run_in_order`]: its tasks, then the wait for the turn past them.
fn run_tasks(order: &Order, last: &AtomicU64, worker: usize, first: u64, tasks: &[usize]) {
    order.register(worker);
    for (i, &w) in tasks.iter().enumerate() {
        if w != worker {
            continue;
        }
        let seq = first + i as u64;
        order.wait_turn(seq, worker);
        assert!(order.is_turn(seq));
        // The task before this one has run, and no later one.
        assert_eq!(last.swap(seq, Ordering::Relaxed), seq - 1);
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
