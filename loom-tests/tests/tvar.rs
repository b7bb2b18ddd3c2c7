//! Loom models of plain `TVar` transactions: read-modify-write, opacity, serialisability.
#![cfg(loom)]

use commute_loom_tests::{capped_builder, model_builder, run_model, run_model_with};
use commute_stm::{TVar, atomically};
use loom::sync::Arc;
use loom::thread;

/// Two read-modify-write increments of one variable must both land.
///
/// Catches lost updates: a commit that does not validate its read set, a lock that two
/// committers can hold at once, or a value written back after the lock was released.
#[test]
fn rmw_increments() {
    run_model("rmw_increments", || {
        let counter = Arc::new(TVar::new(0u64));
        let other = {
            let counter = counter.clone();
            thread::spawn(move || atomically(|tx| counter.modify(tx, |n| n + 1)))
        };
        let mine = atomically(|tx| counter.modify(tx, |n| n + 1));
        let theirs = other.join().unwrap();
        // `modify` returns the new value: the two increments saw different snapshots.
        assert_ne!(mine, theirs);
        assert_eq!(counter.load(), 2);
    });
}

const TOTAL: u64 = 10;

/// A transfer between two variables races an audit that reads both; the audit must see the
/// invariant in every attempt, including attempts that are later rolled back (opacity). The
/// audit also counts itself, so it goes through commit-time validation too.
///
/// Catches a read that is not validated against the read version when it meets a newer
/// version (missing or broken timestamp extension), and torn sequence-lock reads.
#[test]
fn transfer_vs_audit_opacity() {
    run_model("transfer_vs_audit_opacity", || {
        let a = Arc::new(TVar::new(TOTAL));
        let b = Arc::new(TVar::new(0u64));
        let audits = Arc::new(TVar::new(0u64));
        let transfer = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    let from = a.read(tx)?;
                    let to = b.read(tx)?;
                    a.write(tx, from - 3);
                    b.write(tx, to + 3);
                    Ok(())
                })
            })
        };
        let (seen_a, seen_b) = atomically(|tx| {
            let seen_a = a.read(tx)?;
            let seen_b = b.read(tx)?;
            // Inside the attempt: an inconsistent snapshot fails here even if the attempt
            // would be rolled back at commit.
            assert_eq!(seen_a + seen_b, TOTAL, "audit saw an inconsistent snapshot");
            audits.modify(tx, |n| n + 1)?;
            Ok((seen_a, seen_b))
        });
        assert!((seen_a, seen_b) == (TOTAL, 0) || (seen_a, seen_b) == (TOTAL - 3, 3));
        transfer.join().unwrap();
        assert_eq!((a.load(), b.load(), audits.load()), (TOTAL - 3, 3, 1));
    });
}

/// Two transfers in opposite directions (two threads) race an audit on the main thread: the
/// audit sees the invariant in every attempt, and the outcome is a serial one (the b -> a
/// transfer fits only after the a -> b one).
///
/// Catches the opacity bugs of `transfer_vs_audit_opacity` when the newer versions the audit
/// meets come from two committers, one of which may commit while the audit extends its read
/// version past the other.
///
/// Preemption bound at most 2: three threads at bound 3 take 3.7 million executions (over five
/// minutes on two cores); at bound 2 about 7,000.
#[test]
fn two_transfers_vs_audit() {
    run_model_with("two_transfers_vs_audit", capped_builder(2), || {
        let a = Arc::new(TVar::new(TOTAL));
        let b = Arc::new(TVar::new(0u64));
        let transfers: Vec<_> = [(true, 3u64), (false, 1u64)]
            .into_iter()
            .map(|(a_to_b, amount)| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    let (from, to) = if a_to_b { (a, b) } else { (b, a) };
                    atomically(|tx| {
                        let available = from.read(tx)?;
                        if available < amount {
                            return Ok(false);
                        }
                        to.modify(tx, |n| n + amount)?;
                        from.write(tx, available - amount);
                        Ok(true)
                    })
                })
            })
            .collect();
        atomically(|tx| {
            let seen_a = a.read(tx)?;
            let seen_b = b.read(tx)?;
            assert_eq!(seen_a + seen_b, TOTAL, "audit saw an inconsistent snapshot");
            Ok(())
        });
        let done: Vec<bool> = transfers.into_iter().map(|t| t.join().unwrap()).collect();
        // The a -> b transfer always fits; b -> a fits only after it.
        assert!(done[0]);
        let expected_b = 3 - if done[1] { 1 } else { 0 };
        assert_eq!((a.load(), b.load()), (TOTAL - expected_b, expected_b));
    });
}

/// Write skew: each transaction reads both variables and, if the constraint leaves room, writes
/// one of them. Serialisable executions keep `x + y >= 1`.
///
/// Catches commits that validate only the variables they write (snapshot isolation) or skip
/// read validation altogether.
#[test]
fn write_skew() {
    run_model("write_skew", || {
        let x = Arc::new(TVar::new(1u64));
        let y = Arc::new(TVar::new(1u64));
        // Take one unit off `mine` if the pair can spare it.
        fn withdraw(mine: &TVar<u64>, other: &TVar<u64>) -> bool {
            atomically(|tx| {
                let m = mine.read(tx)?;
                let o = other.read(tx)?;
                if m + o >= 2 {
                    mine.write(tx, m - 1);
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
        }
        let other = {
            let (x, y) = (x.clone(), y.clone());
            thread::spawn(move || withdraw(&y, &x))
        };
        let mine = withdraw(&x, &y);
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one withdrawal fits: {mine} {theirs}"
        );
        assert_eq!(x.load() + y.load(), 1);
    });
}

/// Two transactions write the same two variables, named in opposite orders.
///
/// Catches commit-time locking that is not in one global order (the two committers each hold
/// one lock and wait for the other: loom reports the endless wait), and lost updates when
/// both write sets overlap fully.
#[test]
fn crossed_writers() {
    run_model("crossed_writers", || {
        let a = Arc::new(TVar::new(0u64));
        let b = Arc::new(TVar::new(0u64));
        let other = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    b.modify(tx, |n| n + 1)?;
                    a.modify(tx, |n| n + 1)
                })
            })
        };
        atomically(|tx| {
            a.modify(tx, |n| n + 1)?;
            b.modify(tx, |n| n + 1)
        });
        other.join().unwrap();
        assert_eq!((a.load(), b.load()), (2, 2));
    });
}

/// Write skew where each committer reads a variable last written by its own thread, and the
/// other commit locks it: each transaction reads one variable and, if it is 0, sets the other
/// to 1 (with a second write, so that the commit takes the several-entry path, which knows its
/// own locks by the thread's tag in the lock word). No serial order sets both.
///
/// Catches a lock that keeps the tag bits of the version it replaced (a committer that does not
/// put its own tag in the word it locks, `locked_by`): each commit then takes the other's lock
/// on the variable it read for its own, both validations pass and both set their variable
/// (seen to fail with `try_lock` locking `word | LOCKED`). Needs three preemptions: both
/// commits must hold their locks while both validate.
#[test]
fn crossed_readers_of_their_own_writes() {
    let mut builder = model_builder();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(3, |bound| bound.max(3)));
    run_model_with("crossed_readers_of_their_own_writes", builder, || {
        let x = Arc::new(TVar::new(0u64));
        let y = Arc::new(TVar::new(0u64));
        // Rewrites `mine` with its own value (its version now names this thread), then sets
        // `other` (and `flag`) if `mine` is still 0.
        fn rewrite_then_set(mine: &TVar<u64>, other: &TVar<u64>, flag: &TVar<u64>) -> bool {
            atomically(|tx| {
                let v = mine.read(tx)?;
                mine.write(tx, v);
                Ok(())
            });
            atomically(|tx| {
                if mine.read(tx)? == 0 {
                    other.write(tx, 1);
                    flag.write(tx, 1);
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
        }
        let flags = Arc::new([TVar::new(0u64), TVar::new(0u64)]);
        let other = {
            let (x, y, flags) = (x.clone(), y.clone(), flags.clone());
            thread::spawn(move || rewrite_then_set(&x, &y, &flags[0]))
        };
        let mine = rewrite_then_set(&y, &x, &flags[1]);
        let theirs = other.join().unwrap();
        assert!(mine || theirs, "the first to commit sets its variable");
        assert!(
            !(mine && theirs),
            "both set their variable: not serialisable"
        );
        assert_eq!(x.load() + y.load(), 1);
    });
}
