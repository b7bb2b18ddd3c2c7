//! The abort hooks of an `or_else` branch that retried leave with the branch: they never run,
//! not even when the whole attempt is rolled back later, while the attempt's own abort hooks
//! run then. Catches a mutant of `Transaction::branch` that kept a retried branch's abort hooks
//! (`on_abort.drain(abort_hooks..abort_hooks)`): they ran at the attempt's rollback.

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn abort_hooks_of_a_retried_branch_never_run() {
    with_watchdog(20, || {
        let v = TVar::new(0u8);
        let ran: Rc<RefCell<Vec<(u32, &str)>>> = Rc::new(RefCell::new(Vec::new()));
        let attempts = Cell::new(0u32);
        atomically(|tx| {
            attempts.set(attempts.get() + 1);
            let attempt = attempts.get();
            let hook = |what: &'static str| {
                let ran = ran.clone();
                move || ran.borrow_mut().push((attempt, what))
            };
            tx.on_abort(hook("attempt"));
            tx.or_else(
                |tx| {
                    tx.on_abort(hook("retried branch"));
                    v.read(tx)?;
                    tx.retry()
                },
                |tx| {
                    tx.on_abort(hook("second branch"));
                    v.read(tx)
                },
            )?;
            if attempt == 1 {
                // The whole attempt retries, and wakes a millisecond later.
                loop {
                    tx.retry_until(Instant::now() + Duration::from_millis(1))?;
                }
            }
            Ok(())
        });
        assert_eq!(attempts.get(), 2);
        assert_eq!(*ran.borrow(), [(1, "attempt"), (1, "second branch")]);
        // Every hook, run or not, has been dropped.
        assert_eq!(Rc::strong_count(&ran), 1);
    });
}
