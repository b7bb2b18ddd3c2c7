//! Closures the transaction keeps (commutative operations, publishing operations, hooks) may
//! own transactional variables. The core lets go of them at several points (a commit, an
//! `or_else` branch rolled back, a rollback, an operation applied at once to a pending write),
//! always while it works on the attempt's state; a variable's drop needs that state (it purges
//! the variable from the attempt), so the core drops them only once the attempt has ended.
//! Before it did, each of these cases aborted the process.

use commute_stm::{TVar, TxError, atomically, try_atomically};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A transactional variable and a drop counter, for a closure to own.
struct Owned {
    _var: TVar<u64>,
    _count: Counted,
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn owned(drops: &Arc<AtomicUsize>) -> Owned {
    Owned {
        _var: TVar::new(7),
        _count: Counted(drops.clone()),
    }
}

/// Adds `delta` to `v` through a commutative operation whose closure owns an [`Owned`].
fn commute_owning(
    tx: &commute_stm::Transaction,
    v: &TVar<u64>,
    drops: &Arc<AtomicUsize>,
    delta: u64,
) {
    let o = owned(drops);
    v.commute(tx, move |x| {
        let _ = &o;
        x + delta
    });
}

#[test]
fn a_committed_commute_drops_its_closure_and_what_it_owns() {
    let v = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    atomically(|tx| {
        commute_owning(tx, &v, &drops, 1);
        Ok(())
    });
    assert_eq!(v.load(), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_commute_on_a_variable_the_attempt_wrote_drops_its_closure_after_the_attempt() {
    let v = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    atomically(|tx| {
        v.write(tx, 5);
        commute_owning(tx, &v, &drops, 1);
        assert_eq!(v.read(tx)?, 6);
        Ok(())
    });
    assert_eq!(v.load(), 6);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_commute_of_an_or_else_branch_that_retries_is_dropped_unapplied() {
    let v = TVar::new(0u64);
    let gate = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    atomically(move |tx| {
        gate.read(tx)?;
        let d = d.clone();
        tx.or_else(
            |tx| {
                commute_owning(tx, &v, &d, 100);
                tx.retry()
            },
            |tx| {
                v.commute(tx, |x| x + 1);
                Ok(())
            },
        )?;
        assert_eq!(v.read(tx)?, 1);
        Ok(())
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn hooks_of_an_or_else_branch_that_retries_are_dropped_unrun() {
    let gate = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    atomically(|tx| {
        gate.read(tx)?;
        tx.or_else(
            |tx| {
                let (o, r) = (owned(&drops), ran.clone());
                tx.on_commit(move || {
                    let _ = &o;
                    r.fetch_add(1, Ordering::SeqCst);
                });
                let (o, r) = (owned(&drops), ran.clone());
                tx.on_abort(move || {
                    let _ = &o;
                    r.fetch_add(1, Ordering::SeqCst);
                });
                tx.retry()
            },
            |_| Ok(()),
        )
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_commute_of_an_attempt_that_fails_is_dropped_unapplied() {
    let v = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    let r: Result<(), &str> = try_atomically(|tx| {
        commute_owning(tx, &v, &drops, 1);
        Err(TxError::Abort("refused"))
    });
    assert_eq!(r, Err("refused"));
    assert_eq!(v.load(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_publishing_closure_of_an_or_else_branch_that_retries_is_dropped_unrun() {
    let v = TVar::new(0u64);
    let gate = TVar::new(0u64);
    let drops = Arc::new(AtomicUsize::new(0));
    atomically(|tx| {
        gate.read(tx)?;
        tx.or_else(
            |tx| {
                let o = owned(&drops);
                // SAFETY: the operation neither panics nor touches other memory.
                unsafe {
                    v.publish_on_commit(tx, move |x, _| {
                        let _ = &o;
                        x + 1
                    })
                };
                tx.retry()
            },
            |_| Ok(()),
        )
    });
    assert_eq!(v.load(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
