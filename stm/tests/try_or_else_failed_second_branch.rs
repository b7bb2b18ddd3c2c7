//! `try_or_else` rolls back a failed `second` branch as it does a failed `first`: its writes,
//! adds, boxed values and commit hooks are gone when its error is returned, so a transaction
//! that handles the error commits as if `second` had not run, in both modes. Catches a mutant
//! of `alternatives` that ran `second` outside a branch (`if false && second_may_fail`): every
//! other test passed with the failed branch's writes committed.

#[path = "common/irrevocable.rs"]
mod irrevocable;
#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{TBox, TVar, TxError, TxResult, try_atomically};
use commute_test_support::{Counted, with_watchdog};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn a_handled_failure_of_the_second_branch_leaves_nothing(irrevocable: bool) {
    let live = Arc::new(AtomicUsize::new(0));
    let written = TVar::new(1u64);
    let added = TVar::new(10u64);
    let boxed = TBox::new(Counted::new(100, &live));
    let after = TVar::new(0u64);
    let y = Arc::new(TVar::new(0u64));
    let hooks = Rc::new(Cell::new(0u32));
    let mut irrevocable_attempts = 0;
    let result: Result<u64, &str> = try_atomically(|tx| {
        if irrevocable {
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
        }
        irrevocable_attempts += u32::from(tx.is_irrevocable());
        let failed: TxResult<u64, &str> = tx.try_or_else(
            |tx| Ok(tx.retry()?),
            |tx| {
                written.write(tx, 2);
                added.add(tx, 5);
                boxed.write(tx, Counted::new(101, &live));
                let hooks = hooks.clone();
                tx.on_commit(move || hooks.set(hooks.get() + 1));
                tx.abort("refused")
            },
        );
        assert!(
            matches!(failed, Err(TxError::Abort("refused"))),
            "the second branch's error: {failed:?}"
        );
        // Handled: the transaction goes on from where it stood before the branches.
        let seen = written.read(tx)? + added.read(tx)? + boxed.read(tx)?.value();
        after.write(tx, seen);
        Ok(seen)
    });
    assert_eq!(
        result,
        Ok(111),
        "what the transaction read after the failed branch"
    );
    assert_eq!(u32::from(irrevocable), irrevocable_attempts);
    assert_eq!(
        (written.load(), added.load(), after.load()),
        (1, 10, 111),
        "the failed branch's writes were committed"
    );
    assert_eq!(boxed.load_with(|v| v.value()), 100);
    assert_eq!(hooks.get(), 0, "the failed branch's commit hook ran");
    reclaim_until("the failed branch's boxed value freed", || {
        live.load(Ordering::Relaxed) == 1
    });
    drop(boxed);
    reclaim_until("the box's value freed", || {
        live.load(Ordering::Relaxed) == 0
    });
}

#[test]
fn a_failed_second_branch_is_rolled_back() {
    with_watchdog(20, || {
        a_handled_failure_of_the_second_branch_leaves_nothing(false)
    });
}

#[test]
fn a_failed_second_branch_is_rolled_back_in_irrevocable_mode() {
    with_watchdog(20, || {
        a_handled_failure_of_the_second_branch_leaves_nothing(true)
    });
}
