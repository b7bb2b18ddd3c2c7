//! The attempts an async transaction runs within one `poll`, each against what
//! `atomically`/`try_atomically` do on a thread:
//!
//! - a retry whose variable changed before the future could register runs again in the same
//!   poll (nothing would wake a registration made on a value that is already gone);
//! - conflicts in a row end in an irrevocable attempt, as in `atomically` (with every
//!   optimistic attempt conflicting, nothing else ever completes);
//! - a closure that swallowed a conflict and then failed with its own error runs again: the
//!   error of a doomed attempt is not the transaction's.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use commute_stm::{TVar, atomically, atomically_async, try_atomically_async};
use commute_test_support::with_watchdog;

/// Commits `value` to `v` from another thread, and waits for it.
fn write_elsewhere(v: &Arc<TVar<u64>>, value: u64) {
    let v = v.clone();
    std::thread::spawn(move || {
        atomically(|tx| {
            v.write(tx, value);
            Ok(())
        });
    })
    .join()
    .unwrap();
}

#[test]
fn a_retry_on_a_variable_changed_before_the_wait_runs_again_in_the_same_poll() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let mut attempts = 0;
        let fut = atomically_async(|tx| {
            attempts += 1;
            let seen = v.read(tx)?;
            if seen == 0 {
                // Changed after this attempt read it, before the future waits on it.
                write_elsewhere(&v, 5);
                return tx.retry();
            }
            Ok(seen)
        });
        let mut cx = Context::from_waker(Waker::noop());
        // No waker will ever wake this poll's registration: the answer must come now.
        assert_eq!(pin!(fut).as_mut().poll(&mut cx), Poll::Ready(5));
        assert_eq!(attempts, 2);
        assert_eq!(commute_stm::pending_async_registrations(), 0);
    });
}

#[test]
fn conflicts_in_a_row_end_in_an_irrevocable_attempt() {
    with_watchdog(20, || {
        let y = Arc::new(TVar::new(0u64));
        let mut attempts = 0u32;
        let fut = atomically_async(|tx| {
            attempts += 1;
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
            Ok(tx.is_irrevocable())
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(pin!(fut).as_mut().poll(&mut cx), Poll::Ready(true));
        assert_eq!(attempts, commute_stm::IRREVOCABLE_AFTER + 1);
        assert_eq!(y.load(), u64::from(commute_stm::IRREVOCABLE_AFTER));
    });
}

#[test]
fn a_try_closure_that_swallowed_a_conflict_runs_again_instead_of_failing() {
    with_watchdog(20, || {
        let y = Arc::new(TVar::new(0u64));
        let mut attempts = 0u32;
        let fut = try_atomically_async(|tx| {
            attempts += 1;
            let first = y.read(tx)?;
            if attempts == 1 {
                write_elsewhere(&y, first + 1);
                // The conflict, swallowed: this attempt is doomed, whatever it returns.
                let _ = y.read(tx);
                return tx.abort("refused on an inconsistent state");
            }
            Ok(first)
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(pin!(fut).as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
        assert_eq!(attempts, 2);
    });
}
