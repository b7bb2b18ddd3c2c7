//! Waiting for readers ([`commute_stm::wait_for_readers`], and through it a queue's
//! `Taken::into_inner`) inside a pin ([`commute_stm::pinned`], `TBox::load_with`'s closure) is
//! a documented panic: two pinned threads that each wait for the other's pin to move would wait
//! for ever (the test below hung, caught by its watchdog, before the panic).

use commute_stm::{TVar, atomically, pinned, wait_for_readers};
use commute_test_support::{in_child_process, with_watchdog};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier};
use std::thread;

/// The text of a panic's payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .expect("a text panic")
}

/// Commits the version of the commit to `v`.
fn commit_version(v: &TVar<u64>) {
    atomically(|tx| {
        // SAFETY: the operation neither panics nor touches other memory.
        unsafe { v.publish_on_commit(tx, |_, version| version) };
        Ok(())
    });
}

#[test]
fn waiting_for_readers_inside_a_pin_panics_instead_of_waiting_for_another_pinned_waiter() {
    // In a child process: a hang would leave two threads pinned for good.
    in_child_process(|| {
        with_watchdog(20, || {
            let v = Arc::new(TVar::new(0u64));
            let pinned_both = Arc::new(Barrier::new(2));
            let committed = Arc::new(Barrier::new(2));
            let waiters: Vec<_> = (0..2)
                .map(|i| {
                    let (v, pinned_both, committed) =
                        (v.clone(), pinned_both.clone(), committed.clone());
                    thread::spawn(move || {
                        pinned(|| {
                            pinned_both.wait();
                            // A commit after both pins began: each waits for the other's pin.
                            if i == 0 {
                                commit_version(&v);
                            }
                            committed.wait();
                            let version = v.load();
                            catch_unwind(AssertUnwindSafe(|| wait_for_readers(version)))
                                .map_err(|payload| message(&*payload))
                        })
                    })
                })
                .collect();
            for waiter in waiters {
                let waited = waiter.join().expect("the waiter's own code does not panic");
                let text = waited.expect_err("waiting inside a pin panics");
                assert!(text.contains("inside a pin"), "{text}");
            }
        })
    });
}

#[test]
fn waiting_for_readers_after_the_pin_ends_returns() {
    let v = TVar::new(0u64);
    pinned(|| commit_version(&v));
    wait_for_readers(v.load());
    assert!(v.load() > 0);
}
