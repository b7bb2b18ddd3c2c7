//! `try_atomically`: a closure's own error rolls back every effect of the attempt and is
//! returned without running the transaction again.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use commute::{
    TBox, TCounter, TMap, TQueue, TVar, TaskPool, TxError, atomically, stats, try_atomically,
};
use commute_test_support::with_watchdog;

#[derive(Debug, PartialEq)]
struct InsufficientFunds {
    short_by: i64,
}

#[test]
fn a_refused_withdrawal_leaves_the_balance_untouched() {
    let balance = TVar::new(100i64);
    let attempts = Cell::new(0u32);
    let before = stats::thread();
    let r = try_atomically(|tx| {
        attempts.set(attempts.get() + 1);
        balance.modify(tx, |b| b - 400)?;
        let b = balance.read(tx)?;
        if b < 0 {
            return tx.abort(InsufficientFunds { short_by: -b });
        }
        Ok(b)
    });
    assert_eq!(r, Err(InsufficientFunds { short_by: 300 }));
    assert_eq!(balance.load(), 100);
    assert_eq!(attempts.get(), 1);
    let delta = stats::thread() - before;
    assert_eq!((delta.commits, delta.aborts()), (0, 0));
}

#[test]
fn an_accepted_withdrawal_commits() {
    let balance = TVar::new(500i64);
    let r: Result<i64, InsufficientFunds> = try_atomically(|tx| {
        balance.modify(tx, |b| b - 400)?;
        Ok(balance.read(tx)?)
    });
    assert_eq!(r, Ok(100));
    assert_eq!(balance.load(), 100);
}

#[test]
fn pushes_inserts_commutes_and_hooks_of_an_aborted_attempt_leave_no_trace() {
    let queue = TQueue::new();
    let map = TMap::new();
    atomically(|tx| map.insert(tx, 1u32, String::from("one")).map(drop));
    let counter = TCounter::new();
    let plain = TVar::new(0u64);
    let committed = Rc::new(Cell::new(false));
    let aborted = Rc::new(Cell::new(0u32));
    let r = try_atomically(|tx| {
        queue.push(tx, String::from("pushed"));
        map.insert(tx, 1, String::from("uno"))?;
        map.insert(tx, 2, String::from("two"))?;
        counter.add(tx, 5);
        plain.add(tx, 7);
        let (c, a) = (committed.clone(), aborted.clone());
        tx.on_commit(move || c.set(true));
        tx.on_abort(move || a.set(a.get() + 1));
        tx.abort("no")
    });
    assert_eq!(r, Err::<(), _>("no"));
    assert!(queue.atomic().is_empty());
    assert_eq!(map.atomic().len(), 1);
    assert_eq!(map.atomic().get(&1).as_deref(), Some("one"));
    assert_eq!(map.atomic().get(&2), None);
    assert_eq!(counter.load(), 0);
    assert_eq!(plain.load(), 0);
    assert!(!committed.get());
    assert_eq!(aborted.get(), 1);
}

#[test]
fn an_aborting_first_branch_of_try_or_else_ends_the_transaction() {
    let a = TVar::new(0u32);
    let b = TVar::new(0u32);
    let second_ran = Cell::new(false);
    let abort_hook_ran = Arc::new(AtomicUsize::new(0));
    let r: Result<(), &str> = try_atomically(|tx| {
        b.write(tx, 1);
        tx.try_or_else(
            |tx| {
                a.write(tx, 1);
                let ran = abort_hook_ran.clone();
                tx.on_abort(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
                tx.abort("first")
            },
            |_| {
                second_ran.set(true);
                Ok(())
            },
        )
    });
    assert_eq!(r, Err("first"));
    assert!(!second_ran.get());
    assert_eq!((a.load(), b.load()), (0, 0));
    assert_eq!(
        abort_hook_ran.load(Ordering::SeqCst),
        1,
        "the failed branch's abort hook ran when its error ended the transaction"
    );
}

#[test]
fn a_retrying_first_branch_falls_through_to_one_that_aborts() {
    let a = TVar::new(0u32);
    let r: Result<(), u8> = try_atomically(|tx| {
        tx.try_or_else(
            |tx| {
                a.write(tx, 1);
                a.read(tx)?;
                Ok(tx.retry()?)
            },
            |tx| tx.abort(2),
        )
    });
    assert_eq!(r, Err(2));
    assert_eq!(a.load(), 0);
}

#[test]
fn an_error_handled_inside_the_closure_does_not_abort() {
    let a = TVar::new(0u32);
    let r: Result<u32, &str> = try_atomically(|tx| {
        a.write(tx, 1);
        let inner = tx.try_or_else(|tx| tx.abort("inner"), |_| Ok(()));
        assert!(matches!(inner, Err(TxError::Abort("inner"))));
        Ok(a.read(tx)?)
    });
    assert_eq!(r, Ok(1));
    assert_eq!(a.load(), 1);
}

/// A failed first branch whose error the caller handles leaves nothing behind: its writes are
/// rolled back as a retrying branch's are, and the transaction goes on from where it was
/// before the branch (its writes were kept, and committed with the rest).
#[test]
fn a_handled_error_of_the_first_branch_rolls_that_branch_back() {
    let a = TVar::new(0u32);
    let b = TVar::new(0u32);
    let hook_ran = Arc::new(AtomicUsize::new(0));
    let r: Result<u32, &str> = try_atomically(|tx| {
        b.write(tx, 1);
        let inner = tx.try_or_else(
            |tx| {
                a.write(tx, 1);
                let hook_ran = hook_ran.clone();
                tx.on_commit(move || {
                    hook_ran.fetch_add(1, Ordering::SeqCst);
                });
                tx.abort("refused")
            },
            |_| Ok(()),
        );
        assert!(matches!(inner, Err(TxError::Abort("refused"))));
        Ok(a.read(tx)? + b.read(tx)?)
    });
    assert_eq!(r, Ok(1), "inside, the branch's write was gone");
    assert_eq!((a.load(), b.load()), (0, 1));
    assert_eq!(
        hook_ran.load(Ordering::SeqCst),
        0,
        "the branch's hook was dropped"
    );
}

/// So does a failed second branch (run after the first retried): its writes are rolled back,
/// the first's too (it retried), and what the transaction wrote before the branches stays. (A
/// reviewer's question: only the first branch was rolled back.)
#[test]
fn a_handled_error_of_the_second_branch_rolls_that_branch_back() {
    let (a, b, c) = (TVar::new(0u32), TVar::new(0u32), TVar::new(0u32));
    let gate = TVar::new(false);
    let r: Result<u32, &str> = try_atomically(|tx| {
        c.write(tx, 1);
        let inner = tx.try_or_else(
            |tx| {
                a.write(tx, 1);
                if gate.read(tx)? {
                    Ok(())
                } else {
                    Ok(tx.retry()?)
                }
            },
            |tx| {
                b.write(tx, 1);
                tx.abort("refused")
            },
        );
        assert!(matches!(inner, Err(TxError::Abort("refused"))));
        Ok(a.read(tx)? + b.read(tx)? + c.read(tx)?)
    });
    assert_eq!(r, Ok(1), "inside, both branches' writes were gone");
    assert_eq!((a.load(), b.load(), c.load()), (0, 0, 1));
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(
            !commute::in_transaction(),
            "values of an aborted attempt are dropped outside it"
        );
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn values_written_by_an_aborted_attempt_are_dropped_once_outside_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let boxed = TBox::new(Counted(drops.clone()));
    let queue = TQueue::new();
    let map = TMap::new();
    let r: Result<(), ()> = try_atomically(|tx| {
        boxed.write(tx, Counted(drops.clone()));
        queue.push(tx, Arc::new(Counted(drops.clone())));
        map.insert(tx, 1u8, Arc::new(Counted(drops.clone())))?;
        tx.abort(())
    });
    assert!(r.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert!(queue.atomic().is_empty());
    assert_eq!(map.atomic().len(), 0);
    drop(boxed);
    // Dropped at once, or, while other tests' threads are inside `atomically`, by a later
    // reclamation pass once their calls have returned.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
        commute::reclaim_retired();
        std::thread::yield_now();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn a_conflict_swallowed_by_the_closure_runs_the_attempt_again_instead_of_failing() {
    with_watchdog(20, || {
        let v = TVar::new(0u32);
        let other = TVar::new(0u32);
        let attempts = Cell::new(0u32);
        let r: Result<u32, &str> = try_atomically(|tx| {
            attempts.set(attempts.get() + 1);
            other.read(tx)?;
            if attempts.get() == 1 {
                // Another thread changes both: reading `v`'s newer version then finds `other`
                // changed too, a conflict.
                std::thread::scope(|s| {
                    s.spawn(|| {
                        atomically(|tx| {
                            other.write(tx, 1);
                            v.write(tx, 1);
                            Ok(())
                        })
                    });
                });
            }
            match v.read(tx) {
                Ok(x) => Ok(x),
                // The closure swallows the signal and fails on a value it never got: the error
                // is not returned, the attempt runs again.
                Err(_) => tx.abort("fabricated"),
            }
        });
        assert_eq!(r, Ok(1));
        assert_eq!(attempts.get(), 2);
    });
}

#[test]
fn a_task_pool_task_rolls_back_by_panicking_with_its_error() {
    let balance = Arc::new(TVar::new(100i64));
    let mut pool = TaskPool::new().with_threads(2);
    let b = balance.clone();
    pool.add(move |tx, _| {
        b.modify(tx, |x| x - 400)?;
        if b.read(tx)? < 0 {
            std::panic::panic_any(InsufficientFunds { short_by: 300 });
        }
        Ok(())
    });
    let failed = pool.run().unwrap_err();
    assert_eq!(
        failed.payload().downcast_ref::<InsufficientFunds>(),
        Some(&InsufficientFunds { short_by: 300 })
    );
    assert_eq!(balance.load(), 100);
}

#[test]
fn an_irrevocable_attempt_that_fails_releases_its_locks() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let r: Result<(), u64> = try_atomically(|tx| {
            let read = v.read(tx)?;
            if !tx.is_irrevocable() {
                // Another thread's commit makes this attempt conflict, until it runs irrevocably.
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
                v.write(tx, 0);
                return Ok(());
            }
            v.write(tx, 1_000);
            tx.abort(read)
        });
        let n = u64::from(commute::IRREVOCABLE_AFTER);
        assert_eq!(r, Err(n));
        assert_eq!(v.load(), n);
        // Its locks are gone: another thread commits at once.
        let v2 = v.clone();
        std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
            .join()
            .unwrap();
        assert_eq!(v.load(), n + 1);
    });
}
