//! Loom models of the commit clock's invariant (`clock.rs`): a transaction whose read version
//! reaches a commit's version sees every lock of that commit, even though the committer never
//! moved the clock itself.
#![cfg(loom)]

use commute_loom_tests::{capped_builder, run_model, run_model_with, settle};
use commute_stm::{StmResult, TVar, Transaction, atomically};
use loom::sync::Arc;
use loom::thread;

/// Commits `z = 1`, then `x = 1` and `y = 1` together. Unless a reader moves the clock in
/// between, both commits read it at 0 and get the same version: a reader that moved the clock to
/// `z`'s version has a read version that covers the second commit too.
fn commit_z_then_x_and_y(x: &TVar<u64>, y: &TVar<u64>, z: &TVar<u64>) {
    atomically(|tx| {
        z.write(tx, 1);
        Ok(())
    });
    commit_x_and_y(x, y);
}

/// Commits `x = 1` and `y = 1` together (written back in that order).
fn commit_x_and_y(x: &TVar<u64>, y: &TVar<u64>) {
    atomically(|tx| {
        x.write(tx, 1);
        y.write(tx, 1);
        Ok(())
    });
}

/// Reads `y`, then `x` (which the other commit writes back first), and checks that they belong
/// to the same state.
fn read_y_then_x(tx: &Transaction, x: &TVar<u64>, y: &TVar<u64>) -> StmResult<()> {
    let seen_y = y.read(tx)?;
    let seen_x = x.read(tx)?;
    assert_eq!(seen_x, seen_y, "a torn snapshot: x {seen_x}, y {seen_y}");
    Ok(())
}

/// A reader meets `z`'s version, newer than its read version, and extends: it moves the clock
/// to that version and takes it as its read version. A commit of `x` and `y` that read the
/// clock before that move carries the same version; the reader must see that commit's lock on
/// `y` (or its value), or it reads the old `y` and then the new `x`, whose version its read
/// version covers, without any validation.
///
/// Catches a missing `SeqCst` fence after the clock's advance (`clock::advance_to`, under loom;
/// the `SeqCst` `fetch_max` and lock-word loads outside loom): the advance is then not ordered
/// against the committer's clock read, which can miss it while the reader's load of `y` misses
/// the lock (the store-buffering shape). Also fails without the fence before the committer's
/// clock read (`clock::write_version`).
#[test]
fn an_extended_read_version_covers_the_locks_of_its_commits() {
    run_model(
        "an_extended_read_version_covers_the_locks_of_its_commits",
        || {
            let (x, y, z) = (
                Arc::new(TVar::new(0u64)),
                Arc::new(TVar::new(0u64)),
                Arc::new(TVar::new(0u64)),
            );
            let committer = {
                let (x, y, z) = (x.clone(), y.clone(), z.clone());
                thread::spawn(move || commit_z_then_x_and_y(&x, &y, &z))
            };
            atomically(|tx| {
                z.read(tx)?;
                read_y_then_x(tx, &x, &y)
            });
            committer.join().unwrap();
            assert_eq!((x.load(), y.load(), z.load()), (1, 1, 1));
        },
    );
}

/// One reader meets `z`'s version and moves the clock to it; another then begins, its read
/// version at that version, and reads `y` and `x`, which a commit that read the clock before
/// the move writes at the same version. The second reader must see that commit's lock on `y`
/// (or its value), or it reads the old `y` and then the new `x`, whose version its read version
/// covers, without any validation.
///
/// Catches a missing `SeqCst` fence after the clock read of a transaction's begin
/// (`clock::begin`, under loom; the `SeqCst` clock load and lock-word loads outside loom): the
/// clock value reaches the beginner by release/acquire from the first reader's `fetch_max`, which
/// carries nothing of the commit.
///
/// Preemption bound at most 2: three threads, about 58,000 executions at 3 (14 s on a busy
/// machine), 3,900 at 2; the failing schedule needs two preemptions (the committer after its
/// clock read, the second reader after reading `y`).
#[test]
fn a_read_version_taken_from_a_moved_clock_covers_the_locks_of_its_commits() {
    run_model_with(
        "a_read_version_taken_from_a_moved_clock_covers_the_locks_of_its_commits",
        capped_builder(2),
        || {
            let (x, y, z) = (
                Arc::new(TVar::new(0u64)),
                Arc::new(TVar::new(0u64)),
                Arc::new(TVar::new(0u64)),
            );
            // The committer is this thread: `z` first, before the readers start.
            atomically(|tx| {
                z.write(tx, 1);
                Ok(())
            });
            let mover = {
                let z = z.clone();
                thread::spawn(move || atomically(|tx| z.read(tx)))
            };
            let reader = {
                let (x, y) = (x.clone(), y.clone());
                thread::spawn(move || atomically(|tx| read_y_then_x(tx, &x, &y)))
            };
            commit_x_and_y(&x, &y);
            assert_eq!(mover.join().unwrap(), 1);
            reader.join().unwrap();
            // Two thread contexts to drop before the globals go (see `settle`).
            settle();
            assert_eq!((x.load(), y.load()), (1, 1));
        },
    );
}
