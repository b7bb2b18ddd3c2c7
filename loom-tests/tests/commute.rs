//! Loom model of commutative updates: adders never conflict with each other.
#![cfg(loom)]

use commute_loom_tests::{capped_builder, run_model, run_model_with, settle};
use commute_stm::{TVar, atomically, stats};
use loom::sync::Arc;
use loom::thread;

/// Two threads `add` to one variable while a third reads it: the total is exact, the reader
/// sees 0, 1 or 2, and the adders never abort.
///
/// Catches a commuted update applied to a stale value (not under the commit lock, or from the
/// attempt's snapshot instead of the latest committed value), and a commute that takes a
/// read-set entry and so can conflict.
///
/// Preemption bound at most 2. With 3, loom finds a schedule where one adder is preempted while
/// it holds the commit lock, and the reader and the other adder take turns through their
/// yields: the reader meets the lock `IRREVOCABLE_AFTER` times, turns irrevocable, and the
/// other adder, meeting the irrevocable lock, aborts by design. Adders never abort *each
/// other*; an irrevocable third party may still abort them.
#[test]
fn commuting_adds_never_abort() {
    run_model_with("commuting_adds_never_abort", capped_builder(2), || {
        let counter = Arc::new(TVar::new(0u64));
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    let before = stats::thread();
                    atomically(|tx| {
                        counter.add(tx, 1);
                        Ok(())
                    });
                    let after = stats::thread();
                    assert_eq!(after.aborts(), before.aborts(), "an adder aborted");
                    assert_eq!(after.commits, before.commits + 1);
                })
            })
            .collect();
        let seen = atomically(|tx| counter.read(tx));
        assert!(seen <= 2, "the reader saw {seen}");
        for adder in adders {
            adder.join().unwrap();
        }
        assert_eq!(counter.load(), 2);
    });
}

/// A transaction commutes an add and then reads the variable, racing a blind write. The read
/// turns the commute into an ordinary read and write, so the outcome is serialisable: either
/// the add sees 0 and the write lands last, or the write lands first and the add sees it.
///
/// Catches a read of a pending commute that is not validated (or not recorded in the read set),
/// so that the commit applies the add to a value the transaction never saw.
#[test]
fn commute_then_read_is_serialisable() {
    run_model("commute_then_read_is_serialisable", || {
        let counter = Arc::new(TVar::new(0u64));
        let writer = {
            let counter = counter.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    counter.write(tx, 10);
                    Ok(())
                })
            })
        };
        let seen = atomically(|tx| {
            counter.add(tx, 1);
            counter.read(tx)
        });
        writer.join().unwrap();
        let last = counter.load();
        assert!(
            (seen, last) == (1, 10) || (seen, last) == (11, 11),
            "not serialisable: the add saw {seen}, final value {last}"
        );
    });
}

/// Two transactions add to the same two variables, named in opposite orders, without reading
/// them: both commit, neither aborts, and both adds land on each variable.
///
/// Catches the commit's first locking pass (a small write set, in the order written) waiting
/// while it holds a lock (each committer holding one lock and waiting for the other: loom
/// reports the endless wait), a fallback to lock order that leaves a lock of the first pass
/// held or restores the wrong word (a lost add, or a hang), and a fallback that aborts: with
/// no reads, nothing can fail validation.
#[test]
fn crossed_adders_never_abort() {
    run_model("crossed_adders_never_abort", || {
        let a = Arc::new(TVar::new(0u64));
        let b = Arc::new(TVar::new(0u64));
        let add_both = |first: Arc<TVar<u64>>, second: Arc<TVar<u64>>| {
            let before = stats::thread();
            atomically(|tx| {
                first.add(tx, 1);
                second.add(tx, 1);
                Ok(())
            });
            let after = stats::thread();
            assert_eq!(after.aborts(), before.aborts(), "an adder aborted");
        };
        let other = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || add_both(b, a))
        };
        add_both(a.clone(), b.clone());
        other.join().unwrap();
        assert_eq!((a.load(), b.load()), (2, 2));
    });
}

/// Two committers of write sets too large to stay unindexed (3 variables, past the write
/// set's index threshold, 2 under loom), written in opposite orders: each locks its set as
/// written, and on meeting the other's lock releases, sorts and locks in address order.
/// Neither deadlocks (the model would report it) nor aborts, and no add is lost.
#[test]
fn crossed_large_write_sets_never_abort() {
    run_model("crossed_large_write_sets_never_abort", || {
        let vars: Arc<Vec<TVar<u64>>> = Arc::new((0..3).map(|_| TVar::new(0u64)).collect());
        let add_all = |vars: Arc<Vec<TVar<u64>>>, reversed: bool| {
            let before = stats::thread();
            atomically(|tx| {
                let order: Vec<&TVar<u64>> = if reversed {
                    vars.iter().rev().collect()
                } else {
                    vars.iter().collect()
                };
                for v in order {
                    v.add(tx, 1);
                }
                Ok(())
            });
            let after = stats::thread();
            assert_eq!(after.aborts(), before.aborts(), "an adder aborted");
        };
        let other = {
            let vars = vars.clone();
            thread::spawn(move || add_all(vars, true))
        };
        add_all(vars.clone(), false);
        other.join().unwrap();
        assert!(vars.iter().all(|v| v.load() == 2), "an add was lost");
    });
}

/// A committer that meets another's lock gives back the lock it took first, restoring the
/// word it replaced, and falls back to lock order; a committer that then takes the given-back
/// lock must still see the value of the commit before. Here this thread adds to `a` alone
/// while `first` adds to `a` and then `b`, and `second` to `b` and then `a`: `b` is created
/// first, so that `first`, having given `a` back on meeting `second`'s lock on `b`, waits for
/// `b` holding nothing, and `second` locks `a` from the restored word.
///
/// Catches a lock given back without release ordering (`LockGuard::release` in `commit.rs`):
/// a release sequence ends at a plain store, so `second`'s lock then carries nothing of this
/// thread's commit, whose value `second` may not see: its add lands on the value before, and
/// this thread's add is lost.
///
/// Preemption bound 1, which the failing schedule needs (`second` preempted once it holds
/// `b`): at 3 the waits on the locks (`first` for `b`, the others for `a`) exceed loom's branch
/// limit after two minutes (loom lets a waiting load return a superseded lock word, see the
/// crate doc).
#[test]
fn a_lock_given_back_passes_on_the_value_under_it() {
    run_model_with(
        "a_lock_given_back_passes_on_the_value_under_it",
        capped_builder(1),
        || {
            let b = Arc::new(TVar::new(0u64));
            let a = Arc::new(TVar::new(0u64));
            let add_both = |first: Arc<TVar<u64>>, second: Arc<TVar<u64>>| {
                thread::spawn(move || {
                    atomically(|tx| {
                        first.add(tx, 1);
                        second.add(tx, 1);
                        Ok(())
                    })
                })
            };
            let first = add_both(a.clone(), b.clone());
            let second = add_both(b.clone(), a.clone());
            // After the spawns: nothing orders this commit before theirs but the locks.
            atomically(|tx| {
                a.add(tx, 1);
                Ok(())
            });
            first.join().unwrap();
            second.join().unwrap();
            // Two thread contexts to drop before the globals go (see `settle`).
            settle();
            assert_eq!((a.load(), b.load()), (3, 2), "an add was lost");
        },
    );
}
