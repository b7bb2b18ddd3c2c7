//! A transaction that pushes an item, then pushes another in an `or_else` branch that is rolled
//! back, and pushes nothing after it: the first item's link to the rolled-back one must not be
//! followed, neither by the transaction itself (popping into its own pushes) nor, once it has
//! committed, by the pops of later transactions. The queue holds the first item alone.

mod common;

use commute::{StmResult, TQueue, Transaction, atomically};

/// Pushes `first` and, in a branch that retries, `discarded`; the other branch pushes nothing.
fn push_then_roll_back_a_second(q: &TQueue<u32>, tx: &Transaction, first: u32) -> StmResult<()> {
    q.push(tx, first);
    tx.or_else(
        |tx| {
            q.push(tx, first + 1000);
            tx.retry()
        },
        |_| Ok(()),
    )
}

#[test]
fn the_transaction_pops_its_own_push_and_then_finds_the_queue_empty() {
    common::with_watchdog(20, || {
        let q = TQueue::new();
        let seen = atomically(|tx| {
            push_then_roll_back_a_second(&q, tx, 1)?;
            let popped = q.pop(tx)?;
            Ok((popped, q.pop(tx)?, q.peek(tx)?, q.is_empty(tx)?, q.len(tx)?))
        });
        assert_eq!(seen, (Some(1), None, None, true, 0));
        assert!(q.atomic().is_empty());
        assert_eq!(q.atomic().pop(), None);
    });
}

#[test]
fn after_the_commit_the_queue_holds_the_first_push_alone() {
    common::with_watchdog(20, || {
        let q = TQueue::new();
        for round in 0..50u32 {
            atomically(|tx| push_then_roll_back_a_second(&q, tx, round));
            assert_eq!(q.atomic().iter(), [round], "round {round}");
            assert_eq!(atomically(|tx| q.pop(tx)), Some(round), "round {round}");
            assert_eq!(atomically(|tx| q.pop(tx)), None, "round {round}");
            assert_eq!(q.atomic().pop(), None, "round {round}");
            assert_eq!(q.atomic().len(), 0, "round {round}");
        }
    });
}
