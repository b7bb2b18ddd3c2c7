//! A commit of one variable knows its one lock by that entry: a variable it read that another
//! committer holds locked at its validation is not its own, even at the version it read. The
//! commit must fail, or the two commits can each miss the other's write (write skew).

#[path = "common/write_skew.rs"]
mod write_skew;

use commute_test_support::with_watchdog;

#[test]
fn a_commit_of_one_variable_does_not_take_another_committers_lock_for_its_own() {
    with_watchdog(30, || {
        // T's write set has one entry.
        write_skew::t_meets_a_lock_u_holds("one write", |tx, a, y_was_zero, _| {
            a.write(tx, u64::from(y_was_zero));
        });
    });
}
