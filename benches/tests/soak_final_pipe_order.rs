//! The soak's final checks (`final_checks`) find the items left in the blocking pipe out
//! of the producer's order, even when none is missing.

mod common;

use common::{final_messages, idle_logs};
use commute::atomically;
use commute_benches::soak::Finished;
use commute_benches::soak::shared::{Item, Shared};
use commute_test_support::with_watchdog;

/// The pipeline producer's id in its items.
const PIPE_PRODUCER: u32 = u32::MAX;

/// The final checks' messages when the pipe holds the producer's items `seqs`, in that order,
/// after it pushed `seqs.len()` and the consumer popped none.
fn messages_with_pipe(seqs: &[u64]) -> Vec<String> {
    let shared = Shared::new(1, 0);
    for &seq in seqs {
        atomically(|tx| shared.pipe.push(tx, Item::new(PIPE_PRODUCER, seq)));
    }
    // The producer's high-water mark, as its commits leave it.
    let pushed = seqs.len() as u64;
    let stamp = pushed
        .checked_sub(1)
        .map_or(0, |last| (last << 8) | u64::from(PIPE_PRODUCER));
    atomically(|tx| {
        shared.pipe_high_water.write(tx, stamp);
        Ok(())
    });
    final_messages(
        &shared,
        &Finished {
            logs: idle_logs(1),
            pipe_pushed: pushed,
            ..Finished::default()
        },
    )
}

#[test]
fn the_final_checks_find_pipe_items_left_out_of_order() {
    with_watchdog(20, || {
        assert_eq!(messages_with_pipe(&[0, 1, 2]), Vec::<String>::new());
        assert_eq!(
            messages_with_pipe(&[0, 2, 1]),
            [
                "pipe: item 2 left where 1 was next",
                "pipe: item 1 left where 2 was next",
            ]
        );
    });
}
