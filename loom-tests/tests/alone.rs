//! Loom models of single-variable commits outside the transaction machinery
//! (`TVar::load_seen`, `commit_alone`, `modify_alone`) against each other and against
//! transactions.
#![cfg(loom)]

use commute_loom_tests::{capped_builder, run_model, run_model_with};
use commute_stm::{OwnedWord, TVar, Word, atomically};
use loom::sync::Arc;
use loom::thread;

/// Two single-variable increments, one alone and one in a transaction, never lose an update.
///
/// Catches a commit alone that does not lock (or does not check that the variable is unchanged
/// since it read it), and one that a transaction's commit does not see as a conflict.
#[test]
fn alone_and_transaction_increments_both_land() {
    run_model("alone_and_transaction_increments_both_land", || {
        let v = Arc::new(TVar::new(0u64));
        let other = {
            let v = v.clone();
            thread::spawn(move || v.modify_alone(|x| x + 1))
        };
        atomically(|tx| v.modify(tx, |x| x + 10));
        let alone_saw = other.join().unwrap();
        assert!(alone_saw == 1 || alone_saw == 11, "saw {alone_saw}");
        assert_eq!(v.load(), 11);
    });
}

/// A transaction that reads two variables never sees one of them changed by a commit alone
/// and the other not, when each commit alone keeps `a == b` only together with the others:
/// here one thread moves one unit from `a` to `b` in a transaction while another adds to `b`
/// alone; the reader's sum is one of the serial outcomes.
///
/// Catches a commit alone whose new value a transaction reads without ordering it against the
/// snapshot (no version, or a version the reader does not validate).
///
/// Preemption bound at most 2: three threads, and at 3 loom lets a waiting load return a
/// superseded lock word without end (it may, as long as nothing orders the newer store before
/// the load; hardware shows it within nanoseconds). Found with `LOOM_MAX_PREEMPTIONS=3`
/// (2026-12-05): the reader's loads of `b` kept showing the mover's released lock until its
/// sixteenth abort made it irrevocable, and then the adder's loads in `load_seen` kept showing
/// the irrevocable commit's interim lock, while a read-modify-write of the same word, which
/// reads the newest value, saw it unlocked: the model exceeded loom's branch limit, with no
/// thread holding anything the spinner waited for.
#[test]
fn a_transaction_sees_a_commit_alone_whole_or_not_at_all() {
    run_model_with(
        "a_transaction_sees_a_commit_alone_whole_or_not_at_all",
        capped_builder(2),
        || {
            let a = Arc::new(TVar::new(5u64));
            let b = Arc::new(TVar::new(0u64));
            let mover = {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    atomically(|tx| {
                        a.modify(tx, |x| x - 1)?;
                        b.modify(tx, |x| x + 1)
                    })
                })
            };
            let adder = {
                let b = b.clone();
                thread::spawn(move || b.modify_alone(|x| x + 100))
            };
            let sum = atomically(|tx| Ok(a.read(tx)? + b.read(tx)?));
            assert!(sum == 5 || sum == 105, "a torn state: sum {sum}");
            mover.join().unwrap();
            adder.join().unwrap();
            assert_eq!((a.load(), b.load()), (4, 101));
        },
    );
}

/// A transaction blocked in `retry` on a variable is woken by a commit alone of it.
///
/// Catches a commit alone that does not wake the variable's waiters (loom reports the
/// sleeping waiter as a deadlock).
#[test]
fn commit_alone_wakes_retry() {
    run_model("commit_alone_wakes_retry", || {
        let gate = Arc::new(TVar::new(0u64));
        let waiter = {
            let gate = gate.clone();
            thread::spawn(move || {
                atomically(|tx| match gate.read(tx)? {
                    0 => tx.retry(),
                    n => Ok(n),
                })
            })
        };
        let (_, seen) = gate.load_seen();
        assert_eq!(gate.commit_alone(seen, 3), Ok(()));
        assert_eq!(waiter.join().unwrap(), 3);
    });
}

/// A plain number as an [`OwnedWord`] that owns nothing, for the owned commits alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Plain(u64);

// SAFETY: the number is its own bits.
unsafe impl Word for Plain {
    fn into_bits(self) -> u64 {
        self.0
    }
    fn from_bits(bits: u64) -> Self {
        Plain(bits)
    }
}

// SAFETY: owns nothing, frees nothing.
unsafe impl OwnedWord for Plain {
    unsafe fn free(self) {}
}

/// Write skew between a commit alone through a path and a transaction: the commit alone reads
/// `x` on the way and sets `y` if `x` is 0; the transaction reads `y` and sets `x` if `y` is 0.
/// No serial order sets both.
///
/// Catches a commit alone through a path whose check of the path is not ordered after its lock
/// (the `SeqCst` fence after `lock_seen` in `commit_alone_through`, under loom; its `SeqCst`
/// lock CAS and path loads outside loom): it can then miss the transaction's lock on `x` while
/// the transaction's validation misses its lock on `y` (the store-buffering shape), and both
/// commit.
#[test]
fn a_commit_alone_through_a_path_is_serialisable_with_a_transaction() {
    run_model(
        "a_commit_alone_through_a_path_is_serialisable_with_a_transaction",
        || {
            let x = Arc::new(TVar::new(Plain(0)));
            let y = Arc::new(TVar::new(Plain(0)));
            let tx_thread = {
                let (x, y) = (x.clone(), y.clone());
                thread::spawn(move || {
                    atomically(|tx| {
                        if y.read(tx)? == Plain(0) {
                            x.write(tx, Plain(1));
                        }
                        Ok(())
                    })
                })
            };
            let (seen_x, x_word) = x.load_seen();
            let (_, y_word) = y.load_seen();
            if seen_x == Plain(0) {
                // SAFETY: `Plain` owns nothing.
                let _ = unsafe { y.commit_owned_alone_through(y_word, Plain(1), [(&*x, x_word)]) };
            }
            tx_thread.join().unwrap();
            assert!(
                !(x.load() == Plain(1) && y.load() == Plain(1)),
                "both set their variable: not serialisable"
            );
        },
    );
}
