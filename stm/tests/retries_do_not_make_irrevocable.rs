//! A transaction that retries many times never turns irrevocable: only conflicts count towards
//! [`IRREVOCABLE_AFTER`]. Catches a mutant of `after_rollback` that counted retries as
//! conflicts (the waiter then took the global irrevocable token, and locked what it read).

use commute_stm::{IRREVOCABLE_AFTER, TVar, atomically, stats};
use commute_test_support::with_watchdog;
use std::time::{Duration, Instant};

#[test]
fn retries_do_not_count_towards_the_irrevocable_mode() {
    with_watchdog(20, || {
        let v = TVar::new(0u64);
        let retries = IRREVOCABLE_AFTER + 4;
        let mut attempts = 0u32;
        let mut irrevocable_attempts = 0u32;
        let before = stats::thread();
        let seen = atomically(|tx| {
            attempts += 1;
            if tx.is_irrevocable() {
                irrevocable_attempts += 1;
            }
            let seen = v.read(tx)?;
            if attempts <= retries {
                // Each attempt waits a millisecond of its own, then runs again (a deadline
                // computed in the closure moves on, on purpose).
                loop {
                    tx.retry_until(Instant::now() + Duration::from_millis(1))?;
                }
            }
            Ok(seen)
        });
        let delta = stats::thread() - before;
        assert_eq!(seen, 0);
        assert_eq!(attempts, retries + 1);
        assert_eq!(irrevocable_attempts, 0);
        assert_eq!(delta.retries, u64::from(retries));
        assert_eq!((delta.commits, delta.irrevocable_commits), (1, 0));
    });
}
