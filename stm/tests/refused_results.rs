//! The value an attempt's closure returns, when the attempt is rolled back instead of
//! committing (its commit refused, a snapshot attempt that must run again, an error of an
//! attempt already told to roll back), is dropped outside the transaction, as every other value
//! the library drops: its destructor may use commute. Each test failed before ("atomically()
//! called inside a transaction", from the destructor).
//!
//! So is what the closure returned when a panic passes on from the end of its attempt (a hook,
//! a commutative operation's closure at commit): the panics tests below aborted the process
//! before (the destructor's panic while the hook's unwound).

use commute_stm::{TVar, TxError, atomically, try_atomically};
use commute_test_support::{in_child_process, panic_message};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A value whose destructor runs a transaction of its own.
struct Logs(Arc<TVar<u64>>);

impl Drop for Logs {
    fn drop(&mut self) {
        atomically(|tx| self.0.modify(tx, |n| n + 1));
    }
}

/// Reads `read` and writes `written`; on the first attempt, another thread commits to `read`
/// meanwhile, so that attempt's commit is refused.
fn conflicted_once(
    tx: &commute_stm::Transaction,
    read: &Arc<TVar<u64>>,
    written: &TVar<u64>,
    attempts: &AtomicUsize,
) -> commute_stm::StmResult<u64> {
    let r = read.read(tx)?;
    written.write(tx, r + 1);
    if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        let read = read.clone();
        std::thread::spawn(move || {
            atomically(|tx| {
                read.write(tx, 10);
                Ok(())
            })
        })
        .join()
        .expect("the other commit");
    }
    Ok(r)
}

#[test]
fn a_refused_attempts_result_is_dropped_outside_the_transaction() {
    let (read, written, log) = (
        Arc::new(TVar::new(0u64)),
        TVar::new(0u64),
        Arc::new(TVar::new(0)),
    );
    let attempts = AtomicUsize::new(0);
    let got = atomically(|tx| {
        let r = conflicted_once(tx, &read, &written, &attempts)?;
        Ok((r, Logs(log.clone())))
    });
    assert_eq!(got.0, 10);
    drop(got);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(log.load(), 2, "both attempts' results were dropped");
}

#[test]
fn a_refused_try_attempts_result_is_dropped_outside_the_transaction() {
    let (read, written, log) = (
        Arc::new(TVar::new(0u64)),
        TVar::new(0u64),
        Arc::new(TVar::new(0)),
    );
    let attempts = AtomicUsize::new(0);
    let got: Result<(u64, Logs), ()> = try_atomically(|tx| {
        let r = conflicted_once(tx, &read, &written, &attempts)?;
        Ok((r, Logs(log.clone())))
    });
    assert_eq!(got.as_ref().map(|g| g.0), Ok(10));
    drop(got);
    assert_eq!(log.load(), 2);
}

#[test]
fn the_error_of_an_attempt_told_to_roll_back_is_dropped_outside_the_transaction() {
    let (read, written, log) = (
        Arc::new(TVar::new(0u64)),
        TVar::new(0u64),
        Arc::new(TVar::new(0)),
    );
    let attempts = AtomicUsize::new(0);
    let got: Result<u64, Logs> = try_atomically(|tx| {
        let r = conflicted_once(tx, &read, &written, &attempts)?;
        // The first attempt reads `read` again, which the other commit changed since the
        // attempt began: a conflict, which the closure swallows, then returns an error.
        if attempts.load(Ordering::SeqCst) == 1 && read.read(tx).is_err() {
            return Err(TxError::Abort(Logs(log.clone())));
        }
        Ok(r)
    });
    assert_eq!(got.ok(), Some(10));
    assert_eq!(log.load(), 1, "the first attempt's error was dropped");
}

#[test]
fn a_snapshot_attempts_result_is_dropped_outside_the_transaction() {
    let written = TVar::new(0u64);
    let log = Arc::new(TVar::new(0u64));
    let got = commute_stm::read_only(|tx| {
        written.write(tx, 1);
        Ok(Logs(log.clone()))
    });
    drop(got);
    assert_eq!(log.load(), 2);
}

#[test]
fn an_async_refused_attempts_result_is_dropped_outside_the_transaction() {
    let (read, written, log) = (
        Arc::new(TVar::new(0u64)),
        TVar::new(0u64),
        Arc::new(TVar::new(0)),
    );
    let attempts = AtomicUsize::new(0);
    let got = commute_stm::__block_on(commute_stm::atomically_async(|tx| {
        let r = conflicted_once(tx, &read, &written, &attempts)?;
        Ok((r, Logs(log.clone())))
    }));
    assert_eq!(got.0, 10);
    drop(got);
    assert_eq!(log.load(), 2);
}

/// Runs `body`, which must panic with `expected` (a hook's or an operation's panic passed on
/// by the driver), then checks that the result it dropped on the way ran its destructor's
/// transaction once: outside the transaction, where its `Drop` may use commute.
fn panics_dropping_the_result_outside(expected: &str, body: impl FnOnce(Arc<TVar<u64>>)) {
    in_child_process(|| {
        let log = Arc::new(TVar::new(0u64));
        let payload =
            catch_unwind(AssertUnwindSafe(|| body(log.clone()))).expect_err("the panic passes on");
        assert_eq!(panic_message(&*payload), expected);
        assert_eq!(
            log.load(),
            1,
            "the result was dropped once, outside the transaction"
        );
    });
}

#[test]
fn the_result_of_a_commit_whose_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("commit hook", |log| {
        let v = TVar::new(0u64);
        atomically(|tx| {
            v.write(tx, 1);
            tx.on_commit(|| panic!("commit hook"));
            Ok(Logs(log.clone()))
        });
    });
}

#[test]
fn the_result_of_a_commit_whose_commutative_operation_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("commute", |log| {
        let v = TVar::new(0u64);
        atomically(|tx| {
            v.commute(tx, |_| panic!("commute"));
            Ok(Logs(log.clone()))
        });
        unreachable!("the commit panics");
    });
}

#[test]
fn the_result_of_a_try_commit_whose_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("commit hook", |log| {
        let v = TVar::new(0u64);
        let _ = try_atomically(|tx| -> Result<Logs, TxError<()>> {
            v.write(tx, 1);
            tx.on_commit(|| panic!("commit hook"));
            Ok(Logs(log.clone()))
        });
    });
}

#[test]
fn the_error_of_a_try_attempt_whose_abort_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("abort hook", |log| {
        let v = TVar::new(0u64);
        let _ = try_atomically(|tx| -> Result<(), TxError<Logs>> {
            v.write(tx, 1);
            tx.on_abort(|| panic!("abort hook"));
            tx.abort(Logs(log.clone()))
        });
    });
}

#[test]
fn the_result_of_a_snapshot_whose_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("commit hook", |log| {
        let v = TVar::new(0u64);
        commute_stm::read_only(|tx| {
            v.read(tx)?;
            tx.on_commit(|| panic!("commit hook"));
            Ok(Logs(log.clone()))
        });
    });
}

#[test]
fn the_result_of_an_async_commit_whose_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("commit hook", |log| {
        let v = TVar::new(0u64);
        commute_stm::__block_on(commute_stm::atomically_async(|tx| {
            v.write(tx, 1);
            tx.on_commit(|| panic!("commit hook"));
            Ok(Logs(log.clone()))
        }));
    });
}

#[test]
fn the_error_of_an_async_try_attempt_whose_abort_hook_panics_is_dropped_outside_the_transaction() {
    panics_dropping_the_result_outside("abort hook", |log| {
        let v = TVar::new(0u64);
        let _ = commute_stm::__block_on(commute_stm::try_atomically_async(
            |tx| -> Result<(), TxError<Logs>> {
                v.write(tx, 1);
                tx.on_abort(|| panic!("abort hook"));
                tx.abort(Logs(log.clone()))
            },
        ));
    });
}
