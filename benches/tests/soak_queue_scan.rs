//! The soak's queue scan (`scan_checked`, run by the workers' `QueueScan`) passes a queue that
//! matches its producers' cursors and push count, and finds each way it can fail to: an item
//! taken behind the cursors' back, a push that was not counted, and a `len` that does not count
//! what a walk of the same snapshot finds.

mod common;

use common::consistent;
use commute::{TQueue, TVar, atomically};
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{Item, scan_checked};
use commute_test_support::with_watchdog;

/// The scan's verdict: its checks and violation messages.
fn scan(queue: &TQueue<Item>, next: &[TVar<u64>], pushes: &TVar<u64>) -> (u64, Vec<String>) {
    let monitor = Monitor::new(1);
    atomically(|tx| scan_checked(tx, queue, next, pushes, &monitor, 0));
    (monitor.checks(), monitor.messages())
}

#[test]
fn a_consistent_queue_passes_every_check_of_the_scan() {
    with_watchdog(20, || {
        let (queue, next, pushes) = consistent();
        assert_eq!(queue.atomic().len(), 4);
        let (checks, messages) = scan(&queue, &next, &pushes);
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(checks, 3);
        // Inside a transaction that pushed too: its own pending item is walked and counted.
        let monitor = Monitor::new(1);
        atomically(|tx| {
            queue.push(tx, Item::new(1, 2));
            pushes.add(tx, 1);
            scan_checked(tx, &queue, &next, &pushes, &monitor, 0)
        });
        assert_eq!(monitor.messages(), Vec::<String>::new());
    });
}

#[test]
fn the_scan_finds_a_taken_item_an_uncounted_push_and_a_wrong_len() {
    with_watchdog(20, || {
        // Producer 0's item 1 taken without moving its cursor.
        let (queue, next, pushes) = consistent();
        assert_eq!(queue.atomic().pop(), Some(Item::new(1, 0)));
        assert_eq!(queue.atomic().pop(), Some(Item::new(0, 1)));
        let (_, messages) = scan(&queue, &next, &pushes);
        assert_eq!(
            messages,
            [
                "queue scan: producer 0 item 2 (intact: true) where Some(1) was next",
                "queue scan: 2 items, but 5 pushed and 1 popped",
            ]
        );

        // A push the count missed.
        let (queue, next, pushes) = consistent();
        queue.atomic().push(Item::new(1, 2));
        let (_, messages) = scan(&queue, &next, &pushes);
        assert_eq!(messages, ["queue scan: 5 items, but 5 pushed and 1 popped"]);

        // An empty queue that its cursors and count agree with: nothing to find, and a len of 0.
        let (queue, next, pushes) = (TQueue::new(), vec![TVar::new(0)], TVar::new(0));
        let (checks, messages) = scan(&queue, &next, &pushes);
        assert_eq!((checks, messages), (3, Vec::<String>::new()));
    });
}
