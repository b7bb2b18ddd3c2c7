//! A `TBox` dropped inside the transaction that wrote it: the pending write goes with the box,
//! and both the committed value and the pending one are dropped when the attempt ends, right
//! after it, on the same thread (no reclamation pass needed: the test's one thread is the only
//! one inside `atomically`). The commit changes nothing else of the box: the committed value
//! is not retired as a replaced one.

use commute_stm::{TBox, TVar, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn a_box_dropped_after_a_write_drops_both_values_when_the_attempt_ends() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let other = TVar::new(0u64);
        for round in 0..3u64 {
            let mut slot = Some(TBox::new(Counted::new(round, &live)));
            atomically(|tx| {
                other.write(tx, round + 1);
                if let Some(b) = slot.take() {
                    assert_eq!(b.read(tx)?.value(), round);
                    b.write(tx, Counted::new(100 + round, &live));
                    drop(b);
                }
                // Inside the attempt: both values wait for its end.
                assert_eq!(live.load(Ordering::SeqCst), 2, "dropped inside the attempt");
                Ok(())
            });
            assert_eq!(other.load(), round + 1);
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "round {round}: a value of the dropped box outlived the attempt"
            );
        }
    });
}
