//! Loom models of `retry` (blocking until a change) and `or_else` (rolling a branch back).
#![cfg(loom)]

use commute_loom_tests::run_model;
use commute_stm::{TVar, atomically};
use loom::sync::Arc;
use loom::thread;

/// A consumer blocked in `retry` on an empty slot is woken by the producer's commit.
///
/// Catches lost wake-ups: a committer that does not wake the waiters of a variable it changes,
/// or a waiter that goes to sleep after the commit it waits for has already happened (loom
/// reports the sleeping consumer as a deadlock).
#[test]
fn retry_wakes_on_commit() {
    run_model("retry_wakes_on_commit", || {
        let slot = Arc::new(TVar::new(0u64));
        let consumer = {
            let slot = slot.clone();
            thread::spawn(move || {
                atomically(|tx| match slot.read(tx)? {
                    0 => tx.retry(),
                    item => {
                        slot.write(tx, 0);
                        Ok(item)
                    }
                })
            })
        };
        atomically(|tx| {
            slot.write(tx, 7);
            Ok(())
        });
        assert_eq!(consumer.join().unwrap(), 7);
        assert_eq!(slot.load(), 0);
    });
}

/// Marker written by a branch that later retries: must never be seen anywhere.
const ROLLED_BACK: u64 = 99;

/// `or_else`: the first branch writes, then retries; the second branch, a concurrent thread
/// and the final state must not see that write.
///
/// Catches an `or_else` that does not restore the write set before running the alternative
/// (the rolled-back value is read by the second branch or committed), and a write of a
/// rolled-back branch that leaks into what other threads read.
#[test]
fn or_else_rolls_back_first_branch() {
    run_model("or_else_rolls_back_first_branch", || {
        let value = Arc::new(TVar::new(0u64));
        let gate = Arc::new(TVar::new(false));
        let chosen = Arc::new(TVar::new(0u64));
        let other = {
            let value = value.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    let seen = value.read(tx)?;
                    assert_ne!(seen, ROLLED_BACK, "another thread saw a rolled-back write");
                    value.write(tx, seen + 1);
                    Ok(())
                });
            })
        };
        let branch = atomically(|tx| {
            tx.or_else(
                |tx| {
                    value.write(tx, ROLLED_BACK);
                    chosen.write(tx, 1);
                    if gate.read(tx)? { Ok(1) } else { tx.retry() }
                },
                |tx| {
                    let seen = value.read(tx)?;
                    assert!(seen <= 1, "the second branch saw {seen}");
                    chosen.write(tx, 2);
                    Ok(2)
                },
            )
        });
        assert_eq!(branch, 2);
        other.join().unwrap();
        assert_eq!(value.load(), 1);
        assert_eq!(chosen.load(), 2);
    });
}

/// Both branches of an `or_else` retry; a commit to the variable read by the *first* branch
/// must wake the transaction.
///
/// Catches an `or_else` that drops the first branch's reads along with its writes, so the
/// waiter never hears of the change it was waiting for (loom reports a deadlock).
#[test]
fn or_else_waits_on_both_branches() {
    run_model("or_else_waits_on_both_branches", || {
        let first = Arc::new(TVar::new(false));
        let second = Arc::new(TVar::new(false));
        let waiter = {
            let (first, second) = (first.clone(), second.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    tx.or_else(
                        |tx| if first.read(tx)? { Ok(1) } else { tx.retry() },
                        |tx| if second.read(tx)? { Ok(2) } else { tx.retry() },
                    )
                })
            })
        };
        atomically(|tx| {
            first.write(tx, true);
            Ok(())
        });
        assert_eq!(waiter.join().unwrap(), 1);
    });
}

/// A wait with a deadline (`retry_until`) that ends without a wake-up (loom has no time: such
/// a wait returns as soon as it has registered, as if the deadline had passed), racing with
/// the commit it was waiting for. The consumer's second attempt treats the deadline as passed.
///
/// Catches a timed-out waiter that leaves its registration or its `WAITERS` flag in a state
/// that breaks the committer's wake-up (a use after free of the waiter, a lost or doubled
/// item): the item is taken exactly once or left in the slot, never both nor neither.
#[test]
fn retry_until_times_out_against_a_commit() {
    run_model("retry_until_times_out_against_a_commit", || {
        let slot = Arc::new(TVar::new(0u64));
        let consumer = {
            let slot = slot.clone();
            thread::spawn(move || {
                let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
                let mut attempts = 0;
                atomically(|tx| {
                    attempts += 1;
                    match slot.read(tx)? {
                        0 if attempts >= 2 => Ok(None), // the deadline has passed
                        0 => {
                            tx.retry_until(far)?;
                            Ok(None)
                        }
                        item => {
                            slot.write(tx, 0);
                            Ok(Some(item))
                        }
                    }
                })
            })
        };
        atomically(|tx| {
            slot.write(tx, 7);
            Ok(())
        });
        match consumer.join().unwrap() {
            Some(item) => assert_eq!((item, slot.load()), (7, 0)),
            None => assert_eq!(slot.load(), 7),
        }
    });
}
