//! Where and when values die: variables dropped inside the transaction that uses them, and heap
//! values whose `Drop` itself runs transactions.
//!
//! The crash cases run in a child process (`commute_test_support::in_child_process`), so that a
//! crash fails the test instead of taking the whole test binary down.

use commute_stm::{TBox, TVar, atomically, in_transaction};
use commute_test_support::in_child_process;

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;
#[path = "common/cross_thread.rs"]
mod cross_thread;
use cross_thread::{
    write_after_another_thread_dropped_the_last_handle,
    write_after_another_thread_took_the_last_handle,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn a_tbox_created_written_and_dropped_in_one_transaction() {
    in_child_process(|| {
        for i in 0..1_000 {
            atomically(|tx| {
                let b = TBox::new(format!("a{i}"));
                b.write(tx, format!("b{i}"));
                drop(b);
                Ok(())
            });
        }
    });
}

#[test]
fn a_tvar_created_and_written_in_a_transaction_and_returned_keeps_the_write() {
    in_child_process(|| {
        for i in 0..1_000u64 {
            let v = atomically(|tx| {
                let v = TVar::new(0u64);
                v.write(tx, i);
                Ok(v)
            });
            assert_eq!(v.load(), i);
        }
    });
}

/// Counts its drops; on drop, runs a transaction of its own (a handle that unregisters itself).
struct Unregisters {
    registered: Arc<TVar<u64>>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Unregisters {
    fn drop(&mut self) {
        assert!(!in_transaction(), "dropped inside a transaction");
        atomically(|tx| self.registered.modify(tx, |n| n - 1));
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn replaced_values_whose_drop_runs_transactions_are_dropped_outside_transactions() {
    in_child_process(replace_values_whose_drop_runs_transactions);
}

fn replace_values_whose_drop_runs_transactions() {
    const REPLACEMENTS: u64 = 5_000;
    let registered = Arc::new(TVar::new(0u64));
    let dropped = Arc::new(AtomicUsize::new(0));
    let value = |registered: &Arc<TVar<u64>>, dropped: &Arc<AtomicUsize>| {
        atomically(|tx| registered.modify(tx, |n| n + 1));
        Unregisters {
            registered: registered.clone(),
            dropped: dropped.clone(),
        }
    };
    let slot = Arc::new(TBox::new(value(&registered, &dropped)));
    let worker = {
        let (slot, registered, dropped) = (slot.clone(), registered.clone(), dropped.clone());
        std::thread::spawn(move || {
            for _ in 0..REPLACEMENTS {
                let mut new = Some(value(&registered, &dropped));
                // Only this thread writes the box and the attempt reads nothing: it runs once.
                atomically(|tx| {
                    slot.write(tx, new.take().expect("the attempt runs once"));
                    Ok(())
                });
            }
        })
    };
    // A panic in a destructor would surface here as a failed join.
    worker.join().unwrap();
    reclaim_until("every replaced value dropped", || {
        dropped.load(Ordering::SeqCst) == REPLACEMENTS as usize
    });
    assert_eq!(
        registered.load(),
        1,
        "only the value in the box is registered"
    );
    drop(Arc::try_unwrap(slot).ok().expect("the worker has exited"));
    assert_eq!(registered.load(), 0);
    assert_eq!(dropped.load(Ordering::SeqCst), REPLACEMENTS as usize + 1);
}

#[test]
fn a_tvar_dropped_by_another_thread_while_an_attempt_still_writes_it() {
    in_child_process(|| {
        write_after_another_thread_dropped_the_last_handle(
            || TVar::new(0u64),
            |tx, v| v.write(tx, 7),
        );
    });
}

#[test]
fn a_tbox_dropped_by_another_thread_while_an_attempt_still_writes_it() {
    in_child_process(|| {
        write_after_another_thread_dropped_the_last_handle(
            || TBox::new(String::from("first")),
            |tx, b| b.write(tx, String::from("second")),
        );
    });
}

#[test]
fn a_tbox_taken_apart_by_another_thread_while_an_attempt_still_writes_it() {
    in_child_process(|| {
        write_after_another_thread_took_the_last_handle(
            || TBox::new(String::from("first")),
            |tx, b| b.write(tx, String::from("second")),
            // The attempt's write must not replace (and free) the value taken out.
            |b| assert_eq!(b.into_inner(), "first"),
        );
    });
}

#[test]
fn a_tbox_borrowed_mutably_by_another_thread_while_an_attempt_still_writes_it() {
    in_child_process(|| {
        write_after_another_thread_took_the_last_handle(
            || TBox::new(String::from("first")),
            |tx, b| b.write(tx, String::from("second")),
            |mut b| {
                b.get_mut().push_str(" and more");
                assert_eq!(b.load(), "first and more");
            },
        );
    });
}

/// Counts its drops, and panics in its drop if `panics`.
struct PanicsOnDrop {
    panics: bool,
    dropped: Arc<AtomicUsize>,
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("the drop of a replaced value panics");
        }
    }
}

/// Checks that `payload` is [`PanicsOnDrop`]'s panic, come out of `atomically` with the thread
/// outside any transaction.
fn assert_is_the_drop_panic(payload: &(dyn std::any::Any + Send)) {
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the drop of a replaced value panics")
    );
    assert!(
        !in_transaction(),
        "the panic left the thread in a transaction"
    );
}

#[test]
fn a_panic_in_the_reclamation_pass_a_commit_made_due_comes_out_of_that_call() {
    in_child_process(|| {
        const WRITES: usize = 200;
        let dropped = Arc::new(AtomicUsize::new(0));
        let value = |panics| PanicsOnDrop {
            panics,
            dropped: dropped.clone(),
        };
        let b = TBox::new(value(true));
        let mut panicked = 0;
        for _ in 0..WRITES {
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                atomically(|tx| {
                    b.write(tx, value(false));
                    Ok(())
                })
            }));
            if let Err(payload) = written {
                panicked += 1;
                assert_is_the_drop_panic(&*payload);
            }
        }
        // The first value's drop panicked once, in a pass that one of the commits made due
        // (which committed: every write after it went on).
        assert_eq!(panicked, 1);
        // Every replaced value is dropped once: the first and all but the last written.
        reclaim_until("every replaced value dropped", || {
            dropped.load(Ordering::SeqCst) == WRITES
        });
        drop(b);
        reclaim_until("the last value dropped", || {
            dropped.load(Ordering::SeqCst) == WRITES + 1
        });
    });
}

/// Values an attempt writes and then overwrites are dropped as it ends, after its commit and
/// outside any transaction, every one even if an earlier one's drop panics; the panic then
/// comes out of `atomically`, whose transaction committed.
#[test]
fn a_panic_in_the_drop_of_a_value_overwritten_in_the_attempt_comes_out_after_its_commit() {
    in_child_process(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let value = |panics| PanicsOnDrop {
            panics,
            dropped: dropped.clone(),
        };
        let a = TBox::new(value(false));
        let b = TBox::new(value(false));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            atomically(|tx| {
                a.write(tx, value(true));
                a.write(tx, value(false));
                b.write(tx, value(false));
                b.write(tx, value(false));
                Ok(())
            })
        }));
        let payload = result.expect_err("the overwritten value's drop panics");
        assert_is_the_drop_panic(&*payload);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "both overwritten values are dropped by the time `atomically` returns"
        );
        // The attempt committed: the two values it replaced are retired, and go.
        reclaim_until("the replaced values dropped", || {
            dropped.load(Ordering::SeqCst) == 4
        });
        drop((a, b));
        reclaim_until("the committed values dropped", || {
            dropped.load(Ordering::SeqCst) == 6
        });
    });
}

/// A value overwritten in the attempt whose `Drop` runs a transaction of its own: dropped as
/// the attempt ends, outside it.
#[test]
fn overwritten_values_whose_drop_runs_transactions_are_dropped_outside_transactions() {
    in_child_process(|| {
        let registered = Arc::new(TVar::new(0u64));
        let dropped = Arc::new(AtomicUsize::new(0));
        let value = || {
            atomically(|tx| registered.modify(tx, |n| n + 1));
            Unregisters {
                registered: registered.clone(),
                dropped: dropped.clone(),
            }
        };
        let slot = TBox::new(value());
        for round in 1..=100 {
            let (mut first, mut second) = (Some(value()), Some(value()));
            atomically(|tx| {
                slot.write(tx, first.take().expect("the attempt runs once"));
                slot.write(tx, second.take().expect("the attempt runs once"));
                Ok(())
            });
            assert!(
                dropped.load(Ordering::SeqCst) >= round,
                "the overwritten value is dropped as the attempt ends"
            );
        }
        reclaim_until("every replaced value dropped", || {
            dropped.load(Ordering::SeqCst) == 200
        });
        assert_eq!(
            registered.load(),
            1,
            "only the value in the box is registered"
        );
        drop(slot);
        assert_eq!(registered.load(), 0);
    });
}
