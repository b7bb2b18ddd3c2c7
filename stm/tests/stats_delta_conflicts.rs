//! `stats::thread() - before` leaves in its `conflicts` map only the conflict aborts made
//! between the two snapshots: a site that conflicted before as well shows the new count only,
//! and a site that conflicted only before is gone (as the counters `aborts_read_validation`
//! and friends are). The existing tests took their `before` on fresh threads with no conflicts,
//! so they could not tell.
//!
//! Catches `StatsSnapshot`'s `Sub` leaving the later snapshot's `conflicts` map unchanged
//! (ignoring `rhs.conflicts`).

use commute_stm::{TVar, atomically, stats};
use commute_test_support::with_watchdog;

#[path = "common/conflict_once.rs"]
mod conflict_once;
use conflict_once::conflict_once;
use std::sync::Arc;

/// One transaction that conflicts exactly once, by read validation on `v` (every call from
/// this one line: one transaction site).
fn conflict_on(v: &Arc<TVar<u64>>) {
    let v2 = v.clone();
    conflict_once(
        |tx| v.read(tx),
        move || atomically(|tx| v2.modify(tx, |x| x + 1)),
    );
}

#[test]
fn a_delta_counts_only_the_conflicts_made_after_its_earlier_snapshot() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let u = Arc::new(TVar::new(0u64));
        let start = stats::thread();
        for _ in 0..3 {
            conflict_on(&v);
        }
        conflict_on(&u);
        let before = stats::thread();
        let earlier = before.clone() - start;
        assert_eq!(earlier.aborts_read_validation, 4);
        assert_eq!(earlier.conflicts.values().sum::<u64>(), 4, "{earlier}");

        conflict_on(&v);
        conflict_on(&v);
        let delta = stats::thread() - before;
        assert_eq!(delta.commits, 2);
        assert_eq!(delta.aborts(), 2);
        assert_eq!(delta.aborts_read_validation, 2);
        // Only `v`'s site, with the two new conflicts; `u`'s site conflicted only before.
        assert_eq!(delta.conflicts.len(), 1, "{delta}");
        let (site, n) = delta.top_conflicts()[0];
        assert_eq!(n, 2, "{delta}");
        assert_eq!(site.var_created_at.line(), v.created_at().line());
        assert!(
            delta
                .conflicts
                .keys()
                .all(|s| s.var_created_at.line() != u.created_at().line()),
            "{delta}"
        );
    });
}
