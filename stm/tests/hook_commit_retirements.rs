//! A commit that leaves hooks to run hands what it replaced or retired to the thread's
//! reclamation when the attempt's leftovers are released, outside the transaction: an
//! irrevocable commit (which collects what it replaces in the attempt's own list) and an
//! attempt that writes nothing but retires a value (`retire_on_commit`), each with an
//! `on_commit` hook. The values must be freed by the following reclamation passes, not
//! lost with the attempt.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;
#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TBox, TVar, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs reclamation passes until `live` is `want`.
fn settle(live: &AtomicUsize, want: usize, what: &str) {
    reclaim_until(what, || live.load(Ordering::Relaxed) == want);
}

#[test]
fn an_irrevocable_commit_with_a_hook_retires_the_value_it_replaced() {
    with_watchdog(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = TBox::new(Counted::new(0, &live));
        let y = Arc::new(TVar::new(0u64));
        let hooks = Arc::new(AtomicUsize::new(0));
        atomically(|tx| {
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
            b.write(tx, Counted::new(1, &live));
            let hooks = hooks.clone();
            tx.on_commit(move || {
                hooks.fetch_add(1, Ordering::Relaxed);
            });
            Ok(())
        });
        assert_eq!(hooks.load(Ordering::Relaxed), 1);
        settle(&live, 1, "after the irrevocable commit");
        assert_eq!(b.load_with(|v| v.value()), 1);
        drop(b);
        settle(&live, 0, "after the box's drop");
    });
}

#[test]
fn a_read_only_commit_with_a_hook_retires_what_it_retired() {
    with_watchdog(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let v = TVar::new(0u64);
        let value = Box::into_raw(Box::new(Counted::new(7, &live)));
        let hooks = Arc::new(AtomicUsize::new(0));
        atomically(|tx| {
            // SAFETY: reachable from nothing, boxed, retired once (the closure reads nothing:
            // its one attempt commits).
            unsafe { v.retire_on_commit(tx, value) };
            let hooks = hooks.clone();
            tx.on_commit(move || {
                hooks.fetch_add(1, Ordering::Relaxed);
            });
            Ok(())
        });
        assert_eq!(hooks.load(Ordering::Relaxed), 1);
        settle(&live, 0, "after the read-only commit");
    });
}
