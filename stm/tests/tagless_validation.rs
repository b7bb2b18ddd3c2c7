//! A thread without a version tag (past the 1,023 threads that get one) tells its own commit
//! locks from other committers' by searching its write set (all tag-less locks look alike). A
//! variable it read that another committer holds locked at its validation is not its own: the
//! commit must fail, or the two commits can each miss the other's write (write skew).
//!
//! One test in its own binary (see `common/tags.rs`).

#[path = "common/tags.rs"]
mod tags;
#[path = "common/write_skew.rs"]
mod write_skew;

use commute_stm::TVar;
use commute_test_support::with_watchdog;
use std::sync::Arc;

#[test]
fn a_tagless_commit_does_not_take_another_committers_lock_for_its_own() {
    with_watchdog(30, || {
        let parked = tags::use_up_tags();
        // T and U register after the parked threads: neither has a tag. T writes `b` too, so
        // that its write set has two entries.
        let b = Arc::new(TVar::new(0u64));
        write_skew::t_meets_a_lock_u_holds("tag-less", move |tx, a, y_was_zero, attempts| {
            if y_was_zero {
                a.write(tx, 1);
            }
            b.write(tx, attempts);
        });
        parked.release();
    });
}
