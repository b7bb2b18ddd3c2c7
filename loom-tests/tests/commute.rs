//! Loom model of commutative updates: adders never conflict with each other.
#![cfg(loom)]

use commute_loom_tests::{capped_builder, run_model, run_model_with};
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
