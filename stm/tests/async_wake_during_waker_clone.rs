//! A future that waits (after a `retry`) stores its task's waker once the thread has left the
//! transaction: a clone of the waker, and a `clone` is foreign code, which may itself commit to
//! the variable waited on. That commit wakes the registration before the waker is stored; the
//! poll must see it (and run the transaction again), or else wake the task: a `Pending` with
//! no wake ahead would leave the task asleep for ever, though its variable changed.
//!
//! One test in this file: the waker's state is process-wide.

use std::pin::pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use commute_stm::{TVar, atomically, atomically_async};
use commute_test_support::with_watchdog;

/// The variable the future waits on.
static VAR: OnceLock<Arc<TVar<u64>>> = OnceLock::new();
/// Set by the first clone of the waker, which commits to `VAR`.
static CLONED: AtomicBool = AtomicBool::new(false);
/// Wakes of the waker (by value or by reference).
static WAKES: AtomicUsize = AtomicUsize::new(0);

/// The vtable's `clone`: its first call commits 1 to `VAR`.
unsafe fn clone_committing(_: *const ()) -> RawWaker {
    if !CLONED.swap(true, Ordering::SeqCst) {
        let v = VAR.get().expect("set by the test").clone();
        atomically(|tx| {
            v.write(tx, 1);
            Ok(())
        });
    }
    RawWaker::new(ptr::null(), &VTABLE)
}

unsafe fn count_wake(_: *const ()) {
    WAKES.fetch_add(1, Ordering::SeqCst);
}

unsafe fn do_nothing(_: *const ()) {}

static VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_committing, count_wake, count_wake, do_nothing);

#[test]
fn a_commit_made_by_the_wakers_clone_is_not_a_lost_wake_up() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        VAR.set(v.clone()).unwrap();
        // SAFETY: the vtable keeps the `RawWaker` contract: the data pointer is never read (the
        // state is in statics), `clone` returns a waker of the same vtable, and `wake`,
        // `wake_by_ref` and `drop` only count or do nothing.
        let waker = unsafe { Waker::from_raw(RawWaker::new(ptr::null(), &VTABLE)) };
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(atomically_async(|tx| match v.read(tx)? {
            0 => tx.retry(),
            n => Ok(n),
        }));
        let polled = future.as_mut().poll(&mut cx);
        assert!(CLONED.load(Ordering::SeqCst), "the poll stored a clone");
        if polled.is_pending() {
            assert!(
                WAKES.load(Ordering::SeqCst) > 0,
                "pending, with the variable changed and no wake-up ahead: the task would sleep \
                 for ever"
            );
            assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(1));
        } else {
            assert_eq!(polled, Poll::Ready(1));
        }
    });
}
