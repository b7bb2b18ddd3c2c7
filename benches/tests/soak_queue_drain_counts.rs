//! The soak's checks of the operations that its workers' pushes, takes and drains use: the
//! drain's check (`drain_checked`, run by the workers' `QueueDrain`) passes a drain of a
//! queue that matches its producers' cursors and push count and finds one that returned fewer
//! items; and the final checks (`final_checks`) pass a queue whose item counter (`incr`
//! per push, `decr` per item out) and commuted push mix agree with the logs, and find a `decr`
//! counted twice and a commute applied twice.

mod common;

use common::{consistent, final_messages, idle_logs};
use commute::{TQueue, TVar, atomically};
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{Item, Shared, drain_checked, pop_checked, push_mix};
use commute_benches::soak::{Finished, WorkerLog};
use commute_test_support::with_watchdog;

/// The drain's verdict: the count it returned, its checks and its violation messages.
fn drain(queue: &TQueue<Item>, next: &[TVar<u64>], pushes: &TVar<u64>) -> (u64, u64, Vec<String>) {
    let monitor = Monitor::new(1);
    let drained = atomically(|tx| drain_checked(tx, queue, next, pushes, &monitor, 0));
    (drained, monitor.checks(), monitor.messages())
}

#[test]
fn the_drain_check_passes_a_whole_drain_and_finds_an_item_gone_missing() {
    with_watchdog(20, || {
        let (queue, next, pushes) = consistent();
        assert_eq!(drain(&queue, &next, &pushes), (4, 6, Vec::new()));
        assert!(queue.atomic().is_empty());
        assert_eq!(next.iter().map(TVar::load).collect::<Vec<_>>(), [3, 2]);
        // Drained again: nothing left, nothing wrong.
        assert_eq!(drain(&queue, &next, &pushes), (0, 2, Vec::new()));

        // Producer 1's item 0 gone from the queue without its cursor moving (as a drain that
        // skipped it would leave it): the drain returns one item too few, out of order.
        let (queue, next, pushes) = consistent();
        assert_eq!(queue.atomic().pop(), Some(Item::new(1, 0)));
        let (drained, _, messages) = drain(&queue, &next, &pushes);
        assert_eq!(drained, 3);
        assert_eq!(
            messages,
            [
                "queue drain: 3 items drained, but 5 pushed and 1 popped",
                "producer 1: popped item 1 (intact: true) where 0 was next",
            ]
        );
    });
}

/// `shared` after worker 0 pushed its items 0 and 1 on the unbounded queue, as the soak's
/// pushes do (each counted in `queue_pushes` and `queue_items`, and commuted into
/// `push_mix`), and popped item 0 (counted down with a `decr`); and the two workers' logs.
fn pushed_two_popped_one() -> (Shared, Vec<WorkerLog>) {
    let shared = Shared::new(2, 0);
    let monitor = Monitor::new(1);
    atomically(|tx| {
        for seq in 0..2 {
            shared.queue.push(tx, Item::new(0, seq));
            shared.queue_pushes.add(tx, 1);
            shared.queue_items.incr(tx);
            let x = push_mix(0, seq);
            shared.push_mix.commute(tx, move |h| h.wrapping_add(x));
        }
        Ok(())
    });
    atomically(|tx| {
        let item = pop_checked(
            tx,
            |tx| shared.queue.pop(tx),
            &shared.queue_next,
            &monitor,
            0,
        )?;
        assert_eq!(item, Some(Item::new(0, 0)));
        shared.queue_items.decr(tx);
        Ok(())
    });
    assert_eq!(monitor.messages(), Vec::<String>::new());
    let mut logs = idle_logs(2);
    logs[0].queue_pushed = 2;
    logs[0].queue_popped = 1;
    logs[0].push_mix = push_mix(0, 0).wrapping_add(push_mix(0, 1));
    (shared, logs)
}

/// The final checks' messages on `shared` with `logs`.
fn messages_with(shared: &Shared, logs: Vec<WorkerLog>) -> Vec<String> {
    final_messages(
        shared,
        &Finished {
            logs,
            ..Finished::default()
        },
    )
}

#[test]
fn the_final_checks_find_a_decr_counted_twice_and_a_commute_applied_twice() {
    with_watchdog(20, || {
        let (shared, logs) = pushed_two_popped_one();
        assert_eq!(messages_with(&shared, logs), Vec::<String>::new());

        // The pop's `decr` counted twice.
        let (shared, logs) = pushed_two_popped_one();
        shared.queue_items.atomic().decr();
        assert_eq!(
            messages_with(&shared, logs),
            ["queue: the items counter reads 0, the logs say 2 pushed and 1 popped"]
        );

        // Item 1's commute applied twice.
        let (shared, logs) = pushed_two_popped_one();
        let x = push_mix(0, 1);
        atomically(|tx| {
            shared.push_mix.commute(tx, move |h| h.wrapping_add(x));
            Ok(())
        });
        let want = push_mix(0, 0).wrapping_add(x);
        assert_eq!(
            messages_with(&shared, logs),
            [format!(
                "queue: the commuted push mix is {:#x}, the logs say {want:#x}",
                want.wrapping_add(x)
            )]
        );
    });
}
