//! `TBox::into_inner` inside a transaction that has written the box gives the committed value
//! and takes the box's pending write with it (dropped once, when the attempt ends): the attempt
//! goes on and commits its other writes at once, in an optimistic attempt and in an
//! irrevocable one, and every value is dropped exactly once.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TBox, TVar, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Reclaims until `live` values remain, failing after a deadline.
fn settle(live: &AtomicUsize, expected: usize) {
    reclaim_until(&format!("only {expected} values live"), || {
        live.load(Ordering::SeqCst) == expected
    });
}

fn into_inner_after_a_write(irrevocable: bool) {
    let live = Arc::new(AtomicUsize::new(0));
    let y = Arc::new(TVar::new(0u64));
    let other = TVar::new(0u64);
    let mut slot = Some(TBox::new(Counted::new(1, &live)));
    // Attempts that reached the box, and those that took it out.
    let mut took = 0;
    let mut attempts = 0;
    let got = atomically(|tx| {
        attempts += 1;
        if irrevocable {
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
        }
        other.write(tx, 7);
        match slot.take() {
            Some(b) => {
                b.write(tx, Counted::new(2, &live));
                assert_eq!(b.read(tx)?.value(), 2, "the attempt reads its own write");
                took += 1;
                Ok(Some(b.into_inner().value()))
            }
            None => Ok(None),
        }
    });
    assert_eq!(
        (got, took),
        (Some(1), 1),
        "into_inner gave the committed value, in the attempt that committed ({attempts} attempts)"
    );
    assert_eq!(other.load(), 7);
    // The value taken out was dropped by the caller; the pending one with the attempt.
    settle(&live, 0);
}

#[test]
fn into_inner_inside_an_optimistic_attempt_that_wrote_the_box() {
    with_watchdog(20, || into_inner_after_a_write(false));
}

#[test]
fn into_inner_inside_an_irrevocable_attempt_that_wrote_the_box() {
    with_watchdog(20, || into_inner_after_a_write(true));
}
