//! Variables dropped inside an `or_else` branch that retries: the rollback must restore the
//! write set, the retirements and, in irrevocable mode, the locks, whatever the branch dropped
//! and whatever address a variable made afterwards takes.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TVar, atomically, reclaim_retired};
use irrevocable::conflict_unless_irrevocable;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `x`'s value if an ordinary transaction can read it within a few attempts; `None` if it stays
/// locked (a lock the irrevocable transaction never released).
fn readable(x: &TVar<u64>) -> Option<u64> {
    let mut attempts = 0;
    atomically(|tx| {
        attempts += 1;
        if attempts > 5 {
            return Ok(None);
        }
        Ok(Some(x.read(tx)?))
    })
}

#[test]
fn an_irrevocable_branch_that_drops_an_earlier_variable_releases_its_own_locks() {
    let y = Arc::new(TVar::new(0u64));
    let x = TVar::new(0u64);
    atomically(|tx| {
        conflict_unless_irrevocable(tx, &y)?;
        let t = TVar::new(0u64);
        t.write(tx, 1); // locked before the branch
        let mut t = Some(t);
        tx.or_else(
            |tx| {
                x.write(tx, 5); // locked by the branch
                drop(t.take()); // leaves the write set, before the branch's entries
                tx.retry()
            },
            |_| Ok(()),
        )
    });
    let read = readable(&x);
    if read.is_none() {
        // Left locked, it could never be dropped (its drop waits for the lock).
        std::mem::forget(x);
        panic!("the branch's lock is not released");
    }
    assert_eq!(read, Some(0), "the branch's write is rolled back");
}

#[test]
fn an_irrevocable_branch_whose_new_variables_reuse_dropped_addresses_releases_their_locks() {
    let y = Arc::new(TVar::new(0u64));
    let made: Vec<TVar<u64>> = atomically(|tx| {
        conflict_unless_irrevocable(tx, &y)?;
        let mut made = Vec::new();
        tx.or_else(
            |tx| {
                for _ in 0..4 {
                    drop(TVar::new(0u64)); // its block is freed at once...
                    let w = TVar::new(0u64); // ...and usually taken by this one
                    w.write(tx, 5);
                    made.push(w);
                }
                tx.retry()
            },
            |_| Ok(()),
        )?;
        Ok(made)
    });
    let stuck: Vec<usize> = (0..made.len())
        .filter(|&i| readable(&made[i]).is_none())
        .collect();
    if !stuck.is_empty() {
        // Left locked, they could never be dropped (a drop waits for the lock).
        std::mem::forget(made);
        panic!("variables {stuck:?} left locked");
    }
    let values: Vec<u64> = made.iter().map(TVar::load).collect();
    assert_eq!(values, [0; 4], "the branch's writes are rolled back");
}

#[test]
fn an_irrevocable_branch_may_drop_more_variables_than_it_writes() {
    let y = Arc::new(TVar::new(0u64));
    let z = TVar::new(0u64);
    atomically(|tx| {
        conflict_unless_irrevocable(tx, &y)?;
        let t = TVar::new(0u64);
        t.write(tx, 1);
        let mut t = Some(t);
        tx.or_else(
            |tx| {
                drop(t.take());
                tx.retry()
            },
            |tx| {
                z.write(tx, 3);
                Ok(())
            },
        )
    });
    assert_eq!(z.load(), 3);
    assert_eq!(readable(&z), Some(3));
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_retirement_made_in_a_branch_that_retries_is_rolled_back_even_if_the_branch_drops_a_variable() {
    let a = TVar::new(0u64);
    let freed_before = Arc::new(AtomicUsize::new(0));
    let freed_in_branch = Arc::new(AtomicUsize::new(0));
    let before = Box::into_raw(Box::new(Counted(freed_before.clone())));
    let in_branch = Box::into_raw(Box::new(Counted(freed_in_branch.clone())));
    let mut b = Some(TVar::new(0u64));
    atomically(|tx| {
        a.read(tx)?;
        // SAFETY: `before` is unreachable from anything shared; `b`'s drop below cancels the
        // retirement, and the test frees it itself.
        unsafe { b.as_ref().unwrap().retire_on_commit(tx, before) };
        tx.or_else(
            |tx| {
                // SAFETY: unreachable from anything shared; rolled back with the branch.
                unsafe { a.retire_on_commit(tx, in_branch) };
                drop(b.take()); // cancels the retirement made before the branch
                tx.retry()
            },
            |_| Ok(()),
        )
    });
    reclaim_retired();
    let freed = freed_in_branch.load(Ordering::SeqCst);
    // SAFETY: neither retirement stands (one cancelled, one rolled back): the test owns both.
    unsafe {
        drop(Box::from_raw(before));
        if freed == 0 {
            drop(Box::from_raw(in_branch));
        }
    }
    assert_eq!(
        freed, 0,
        "the rolled-back branch's retirement was freed by the commit"
    );
    assert_eq!(freed_before.load(Ordering::SeqCst), 1);
    assert_eq!(freed_in_branch.load(Ordering::SeqCst), 1);
}
