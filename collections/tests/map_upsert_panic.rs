//! `TMap::upsert` clones the present value (or calls `default()`) and hands it to `update`.
//! Before the fix, if `update` panicked, that value, which the map made and does not keep, was
//! dropped right there, inside the transaction (the first test counted that drop), while every
//! other copy the map lets go of after a panic of user code goes through `drop_outside` (docs:
//! keys and values are "never [dropped] inside a transaction, so their `Drop` may use
//! commute"). A value whose `Drop` uses commute then panicked while unwinding, and the second
//! test's child process aborted (SIGABRT).

use commute::{TCounter, TMap, atomically, in_transaction};
use commute_test_support::in_child_process;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

static DROPPED_INSIDE: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Noted(#[allow(dead_code)] u32);
impl Drop for Noted {
    fn drop(&mut self) {
        if in_transaction() {
            DROPPED_INSIDE.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn an_upsert_whose_update_panics_drops_the_clone_outside_the_transaction() {
    let m: TMap<u32, Noted> = TMap::new();
    m.atomic().insert(1, Noted(1));
    let before = DROPPED_INSIDE.load(Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| m.upsert(tx, 1, || Noted(0), |_| panic!("update panics")))
    }));
    assert!(r.is_err());
    assert_eq!(
        DROPPED_INSIDE.load(Ordering::SeqCst) - before,
        0,
        "the clone handed to `update` was dropped inside the transaction"
    );
}

/// The consequence: a value whose `Drop` uses commute aborts the process.
#[derive(Clone)]
struct Counts(Arc<TCounter>);
impl Drop for Counts {
    fn drop(&mut self) {
        self.0.atomic().incr();
    }
}

#[test]
fn an_upsert_whose_update_panics_does_not_abort_with_a_drop_that_uses_commute() {
    in_child_process(|| {
        let drops = Arc::new(TCounter::new());
        let m: TMap<u32, Counts> = TMap::new();
        m.atomic().insert(1, Counts(drops.clone()));
        let r = catch_unwind(AssertUnwindSafe(|| {
            m.atomic()
                .upsert(1, || Counts(drops.clone()), |_| panic!("update panics"))
        }));
        assert!(r.is_err(), "update's panic is passed on");
    });
}
