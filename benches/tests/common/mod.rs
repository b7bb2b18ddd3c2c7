//! Helpers shared by the soak's check tests (each test file is its own crate, includes this
//! module with `mod common;`, and uses some of them).
#![allow(dead_code)]

use commute::{TQueue, TVar, atomically};
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{BOXES, Item, Shared, pop_checked};
use commute_benches::soak::verify::final_checks;
use commute_benches::soak::{Finished, WorkerLog};

/// The logs of `workers` workers that committed nothing (a zero write count per box).
pub(crate) fn idle_logs(workers: usize) -> Vec<WorkerLog> {
    vec![
        WorkerLog {
            box_writes: vec![0; BOXES],
            ..WorkerLog::default()
        };
        workers
    ]
}

/// The final checks' (`final_checks`) messages on `shared` at the end of a run that left
/// `finished`; they must have checked something.
pub(crate) fn final_messages(shared: &Shared, finished: &Finished) -> Vec<String> {
    let monitor = Monitor::new(1);
    final_checks(shared, &monitor, 0, finished);
    assert!(monitor.checks() > 0);
    monitor.messages()
}

/// Two producers' cursors, a push count, and a queue holding producer 0's items 0..3 and
/// producer 1's items 0..2, interleaved, with producer 0's first item popped through
/// `pop_checked` (its cursor moved on).
pub(crate) fn consistent() -> (TQueue<Item>, Vec<TVar<u64>>, TVar<u64>) {
    let queue = TQueue::new();
    let next: Vec<TVar<u64>> = (0..2).map(|_| TVar::new(0)).collect();
    let pushes = TVar::new(0u64);
    for (producer, seq) in [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1)] {
        atomically(|tx| {
            queue.push(tx, Item::new(producer, seq));
            pushes.add(tx, 1);
            Ok(())
        });
    }
    let checker = Monitor::new(1);
    let first = atomically(|tx| pop_checked(tx, |tx| queue.pop(tx), &next, &checker, 0));
    assert_eq!(first, Some(Item::new(0, 0)));
    assert_eq!(checker.violations(), 0, "{:?}", checker.messages());
    (queue, next, pushes)
}
