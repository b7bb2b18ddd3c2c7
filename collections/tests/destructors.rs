//! Where the collections drop what they hold: values a `TMap` update replaces and items a
//! `TQueue` pop removes are dropped outside any transaction, so their `Drop` may run
//! transactions; a thread that exits leaves its unfreed values to other threads, never to its
//! own thread-local destructors.

mod common;

use commute::{TBoundedQueue, TCounter, TMap, TQueue, atomically, in_transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Counts itself while alive; on drop, also counts the drop with a transaction of its own (a
/// handle that unregisters itself). Clones run inside transactions (a map copies its buckets),
/// so they count with a plain atomic.
struct Registered {
    live: Arc<AtomicI64>,
    drops: Arc<TCounter>,
}

impl Registered {
    fn new(live: &Arc<AtomicI64>, drops: &Arc<TCounter>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Registered {
            live: live.clone(),
            drops: drops.clone(),
        }
    }
}

impl Clone for Registered {
    fn clone(&self) -> Self {
        Registered::new(&self.live, &self.drops)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        assert!(!in_transaction(), "dropped inside a transaction");
        self.drops.atomic().incr();
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn replaced_map_values_and_popped_queue_items_are_dropped_outside_transactions() {
    common::with_watchdog(60, || {
        const ROUNDS: u64 = 2_000;
        let live = Arc::new(AtomicI64::new(0));
        let drops = Arc::new(TCounter::new());
        let map = Arc::new(TMap::new());
        let queue = Arc::new(TQueue::new());
        let worker = {
            let (live, drops) = (live.clone(), drops.clone());
            let (map, queue) = (map.clone(), queue.clone());
            std::thread::spawn(move || {
                for i in 0..ROUNDS {
                    let value = Registered::new(&live, &drops);
                    // What the transaction hands back (the replaced value's and the popped
                    // item's clones) is dropped here, after it.
                    let handed_back = atomically(|tx| {
                        // Each insert replaces the value an earlier round gave the key.
                        let replaced = map.insert(tx, i % 8, value.clone())?;
                        queue.push(tx, value.clone());
                        let popped = if i % 2 == 1 { queue.pop(tx)? } else { None };
                        Ok((replaced, popped))
                    });
                    drop(handed_back);
                }
            })
        };
        // A destructor that panics (inside a transaction, or unable to reach its thread-local
        // state as the worker exits) fails the worker: its panic would surface here.
        worker.join().unwrap();
        // The map holds 8 values and the queue ROUNDS / 2 items; every other value, replaced
        // or popped, is dropped by the worker's reclamation passes or, once it has exited, by
        // ours.
        let held = 8 + ROUNDS as i64 / 2;
        let settled = common::reclaim_until(|| live.load(Ordering::SeqCst) == held);
        assert!(
            settled,
            "{} values alive, {held} held",
            live.load(Ordering::SeqCst)
        );
        drop(Arc::try_unwrap(map).ok().expect("the worker has exited"));
        drop(Arc::try_unwrap(queue).ok().expect("the worker has exited"));
        assert_eq!(live.load(Ordering::SeqCst), 0, "every value was dropped");
        assert!(drops.atomic().get() > held);
    });
}

#[path = "../../stm/tests/common/cross_thread.rs"]
mod cross_thread;

#[test]
fn a_map_dropped_by_another_thread_while_an_attempt_still_inserts() {
    commute_test_support::in_child_process(|| {
        cross_thread::write_after_another_thread_dropped_the_last_handle(
            || {
                (0..64u64)
                    .map(|k| (k, k.to_string()))
                    .collect::<TMap<_, _>>()
            },
            |tx, map| {
                map.insert(tx, 7, String::from("seven")).unwrap();
            },
        );
    });
}

#[test]
fn a_queue_dropped_by_another_thread_while_an_attempt_still_pushes_and_pops() {
    commute_test_support::in_child_process(|| {
        cross_thread::write_after_another_thread_dropped_the_last_handle(
            || {
                let queue = TQueue::new();
                queue.atomic().push(String::from("first"));
                queue
            },
            |tx, queue| {
                queue.push(tx, String::from("second"));
                drop(queue.pop(tx).unwrap());
            },
        );
    });
}

#[test]
fn a_counter_dropped_by_another_thread_while_an_attempt_still_adds() {
    commute_test_support::in_child_process(|| {
        cross_thread::write_after_another_thread_dropped_the_last_handle(TCounter::new, |tx, c| {
            c.incr(tx)
        });
    });
}

#[test]
fn a_bounded_queue_dropped_by_another_thread_while_an_attempt_still_pushes() {
    commute_test_support::in_child_process(|| {
        cross_thread::write_after_another_thread_dropped_the_last_handle(
            || TBoundedQueue::with_capacity(4),
            |tx, queue| queue.push(tx, String::from("item")).unwrap(),
        );
    });
}
