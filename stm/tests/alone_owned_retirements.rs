//! `TVar::commit_owned_alone` and `commit_owned_alone_through` free the owned value they
//! replace (once no reader remains), exactly once, and never the value of a refused commit,
//! which goes back to the caller: every value made is dropped once in the end.

#[path = "common/owned.rs"]
mod owned;
#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{OwnedWord, TVar};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A boxed counted value, or null.
type Owned = owned::Owned<Counted>;

/// Reclaims until `live` values remain, failing after a deadline.
fn settle(live: &AtomicUsize, expected: usize) {
    reclaim_until(&format!("only {expected} values live"), || {
        live.load(Ordering::SeqCst) == expected
    });
}

fn value(v: &TVar<Owned>) -> u64 {
    // SAFETY: no transaction runs; the variable's box is alive while it holds it.
    unsafe { (*v.load().0).value() }
}

#[test]
fn values_replaced_by_owned_commits_alone_are_freed_once() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let owned = |n| Owned::new(Counted::new(n, &live));
        let path = TVar::new(owned(0));
        let v = TVar::new(owned(1));
        for n in 2..10 {
            let (_, seen) = v.load_seen();
            let done = if n % 2 == 0 {
                // SAFETY: a fresh box; every value of `v` is owned by it alone.
                unsafe { v.commit_owned_alone(seen, owned(n)) }
            } else {
                let through = [(&path, path.load_seen().1)];
                // SAFETY: as above.
                unsafe { v.commit_owned_alone_through(seen, owned(n), through) }
            };
            assert!(done.is_ok(), "nothing else commits");
            assert_eq!(value(&v), n);
            // A refused commit (stale `seen`): the value comes back, not freed.
            // SAFETY: as above.
            match unsafe { v.commit_owned_alone(seen, owned(100 + n)) } {
                Ok(()) => panic!("a commit with a stale seen succeeded"),
                // SAFETY: given back, owned by us, freed once.
                Err(back) => unsafe {
                    assert_eq!((*back.0).value(), 100 + n);
                    back.free();
                },
            }
        }
        // `path`'s and `v`'s current values remain; the eight replaced ones are freed.
        settle(&live, 2);
        assert_eq!(value(&v), 9);
        // SAFETY: no transaction runs; each value freed once.
        unsafe {
            v.into_inner().free();
            path.into_inner().free();
        }
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}
