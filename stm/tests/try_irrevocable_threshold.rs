//! `try_atomically` turns irrevocable after exactly [`IRREVOCABLE_AFTER`] conflicts in a row, as
//! `atomically` does: its driver (`run_try`) decides that for itself, and a mutant of it that
//! waited for one conflict more (`conflicts > IRREVOCABLE_AFTER`) passed every other test.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{IRREVOCABLE_AFTER, TVar, stats, try_atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;

#[test]
fn try_atomically_runs_irrevocably_after_irrevocable_after_conflicts() {
    with_watchdog(20, || {
        let y = Arc::new(TVar::new(0u64));
        let before = stats::thread();
        let mut attempts = 0u32;
        let mut irrevocable_attempts = Vec::new();
        let got: Result<u64, &str> = try_atomically(|tx| {
            attempts += 1;
            if tx.is_irrevocable() {
                irrevocable_attempts.push(attempts);
            }
            // Every optimistic attempt conflicts: another thread changes `y` once it read it.
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
            Ok(y.read(tx)?)
        });
        let delta = stats::thread() - before;
        assert_eq!(got, Ok(u64::from(IRREVOCABLE_AFTER)));
        assert_eq!(attempts, IRREVOCABLE_AFTER + 1);
        assert_eq!(irrevocable_attempts, [IRREVOCABLE_AFTER + 1]);
        assert_eq!(delta.aborts_read_validation, u64::from(IRREVOCABLE_AFTER));
        assert_eq!((delta.commits, delta.irrevocable_commits), (1, 1));
    });
}

/// An error of the closure returned by the irrevocable attempt ends the call as any other:
/// rolled back, its locks let go (the variable is written again at once).
#[test]
fn an_irrevocable_try_atomically_that_fails_rolls_back_and_lets_go() {
    with_watchdog(20, || {
        let y = Arc::new(TVar::new(0u64));
        let x = TVar::new(5u64);
        let mut attempts = 0u32;
        let got: Result<(), u32> = try_atomically(|tx| {
            attempts += 1;
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
            x.write(tx, 99);
            tx.abort(attempts)
        });
        assert_eq!(got, Err(IRREVOCABLE_AFTER + 1));
        assert_eq!(x.load(), 5);
        let other = {
            let y = y.clone();
            std::thread::spawn(move || {
                commute_stm::atomically(|tx| y.modify(tx, |v| v + 1));
            })
        };
        other.join().unwrap();
        assert_eq!(y.load(), u64::from(IRREVOCABLE_AFTER) + 1);
    });
}
