//! The soak's final checks (`final_checks`) add up the pops the workers logged and the
//! items the drain found, and find a queue whose items all reached their consumers while a
//! consumer's log of them did not (a pop that committed without its logging hook): both the
//! pops' total and the workers' item counter (an `incr` per push, a `decr` per pop) disagree.

mod common;

use common::{final_messages, idle_logs};
use commute::atomically;
use commute_benches::soak::Finished;
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{Item, Shared, pop_checked};
use commute_test_support::with_watchdog;

/// Worker 0 pushes two items on the unbounded queue (as its pushes do, counted), then both are
/// popped through `pop_checked` (each counted down, as the workers' pops are); returns the
/// final checks' messages when the logs say worker 0 popped `logged_pops` of them.
fn messages_with_logged_pops(logged_pops: u64) -> Vec<String> {
    let shared = Shared::new(2, 0);
    atomically(|tx| {
        for seq in 0..2 {
            shared.queue.push(tx, Item::new(0, seq));
            shared.queue_items.incr(tx);
        }
        shared.queue_pushes.add(tx, 2);
        Ok(())
    });
    let monitor = Monitor::new(1);
    for _ in 0..2 {
        let popped = atomically(|tx| {
            shared.queue_items.decr(tx);
            pop_checked(
                tx,
                |tx| shared.queue.pop(tx),
                &shared.queue_next,
                &monitor,
                0,
            )
        });
        assert!(popped.is_some());
    }
    assert_eq!(monitor.messages(), Vec::<String>::new());
    let mut logs = idle_logs(2);
    logs[0].queue_pushed = 2;
    logs[0].queue_popped = logged_pops;
    final_messages(
        &shared,
        &Finished {
            logs,
            ..Finished::default()
        },
    )
}

#[test]
fn the_final_checks_find_pops_that_the_logs_do_not_account_for() {
    with_watchdog(20, || {
        assert_eq!(messages_with_logged_pops(2), Vec::<String>::new());
        assert_eq!(
            messages_with_logged_pops(1),
            [
                "queue: 2 pushed, 1 popped",
                "queue: the items counter reads 0, the logs say 2 pushed and 1 popped"
            ]
        );
    });
}
