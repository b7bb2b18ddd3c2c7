//! Waiting for readers ([`commute_stm::wait_for_readers`], and through it a queue's
//! `Taken::into_inner`) inside a pin ([`commute_stm::pinned`], `TBox::load_with`'s closure) is
//! a documented panic: two pinned threads that each wait for the other's pin to move would wait
//! for ever (the test below hung, caught by its watchdog, before the panic).
//!
//! So is a retry that would block inside a pin: it held the pin while asleep (other threads'
//! waits for readers waited for it), and the values its attempt wrote, dropped only once the pin
//! ends, could own the only variable it read: it then slept for ever (the first retry test hung,
//! caught by its watchdog, before the panic).

use commute_stm::{TBox, TVar, atomically, pinned, read_only, wait_for_readers};
use commute_test_support::{in_child_process, panic_message, with_watchdog};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier, Weak};
use std::thread;
use std::time::{Duration, Instant};

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
                                .map_err(|payload| panic_message(&*payload))
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
    // A pin that outlived its end would make the wait block for ever.
    with_watchdog(20, || {
        let v = TVar::new(0u64);
        pinned(|| commit_version(&v));
        wait_for_readers(v.load());
        assert!(v.load() > 0);
    });
}

/// Writes a new variable into `outer`, reads only that variable and retries: the variable can
/// never change (nothing else holds it), and it is freed with the rolled-back write. Hands out
/// the variable of the last attempt.
fn retry_on_a_variable_of_its_own(
    outer: &TBox<Option<Arc<TVar<u64>>>>,
    last: &mut Weak<TVar<u64>>,
) {
    atomically(|tx| {
        let inner = Arc::new(TVar::new(0u64));
        *last = Arc::downgrade(&inner);
        outer.write(tx, Some(inner.clone()));
        if inner.read(tx)? == 0 {
            return tx.retry();
        }
        Ok(())
    });
}

#[test]
fn a_retry_on_variables_its_own_rollback_frees_panics_as_one_that_read_nothing() {
    let outer = TBox::new(None);
    let mut last = Weak::new();
    let text = catch_unwind(AssertUnwindSafe(|| {
        retry_on_a_variable_of_its_own(&outer, &mut last)
    }))
    .map_err(|payload| panic_message(&*payload))
    .expect_err("nothing to wait on");
    assert!(text.contains("has read no TVar"), "{text}");
    assert!(last.upgrade().is_none(), "freed with the rollback");
}

#[test]
fn a_retry_on_variables_its_own_rollback_frees_inside_a_pin_panics_instead_of_sleeping_for_ever() {
    // In a child process: a hang would leave the thread pinned for good.
    in_child_process(|| {
        with_watchdog(20, || {
            let outer = TBox::new(None);
            let mut last = Weak::new();
            let text = catch_unwind(AssertUnwindSafe(|| {
                pinned(|| retry_on_a_variable_of_its_own(&outer, &mut last))
            }))
            .map_err(|payload| panic_message(&*payload))
            .expect_err("a retry that would block inside a pin panics");
            assert!(text.contains("inside a pin"), "{text}");
            // The rolled-back value, kept past the pin that unwound, is dropped on the way out of
            // the thread's next transaction.
            atomically(|_| Ok(()));
            assert!(
                last.upgrade().is_none(),
                "the rolled-back value was dropped"
            );
            assert!(outer.load().is_none());
        });
    });
}

#[test]
fn a_retry_that_would_block_inside_a_pin_panics() {
    // In a child process: a hang would leave the thread pinned for good.
    in_child_process(|| {
        with_watchdog(20, || {
            let ready = TVar::new(false);
            let text = catch_unwind(AssertUnwindSafe(|| {
                pinned(|| atomically(|tx| if ready.read(tx)? { Ok(()) } else { tx.retry() }))
            }))
            .map_err(|payload| panic_message(&*payload))
            .expect_err("a retry that would block inside a pin panics");
            assert!(text.contains("inside a pin"), "{text}");
            // Outside the pin the same transaction runs (and blocks, were `ready` false).
            atomically(|tx| {
                ready.write(tx, true);
                Ok(())
            });
            atomically(|tx| if ready.read(tx)? { Ok(()) } else { tx.retry() });
        });
    });
}

#[test]
fn a_retry_with_a_deadline_inside_a_pin_waits_out_its_deadline() {
    with_watchdog(20, || {
        let ready = TVar::new(false);
        let deadline = Instant::now() + Duration::from_millis(20);
        let timed_out = pinned(|| {
            atomically(|tx| {
                if ready.read(tx)? {
                    return Ok(false);
                }
                tx.retry_until(deadline)?;
                Ok(true)
            })
        });
        assert!(timed_out);
        assert!(Instant::now() >= deadline);
    });
}

/// A thread that, once the returned barrier is passed, waits for the readers running then (an
/// attempt of the caller's, pinned or a snapshot, whose read version is below the bound).
fn waiter_for_readers() -> (Arc<Barrier>, thread::JoinHandle<()>) {
    let barrier = Arc::new(Barrier::new(2));
    let waiter = {
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            wait_for_readers(commute_stm::version_bound());
        })
    };
    (barrier, waiter)
}

/// `Transaction::give_way`: an attempt that waits, pinned, for another thread ends with a
/// conflict once that thread waits for its pin, and runs again; without it both would wait for
/// ever (the pool's ordered mode hung so, `collections/tests/pool.rs`).
#[test]
fn a_pinned_attempt_that_waits_gives_way_to_a_thread_waiting_for_readers() {
    with_watchdog(60, || {
        let (pinned_now, waiter) = waiter_for_readers();
        let mut attempts = 0;
        let mut gave_way = 0;
        atomically(|tx| {
            attempts += 1;
            if attempts > 1 {
                // Run again, unpinned: nothing to give way to.
                return tx.give_way();
            }
            tx.pin();
            pinned_now.wait();
            // Waits (as for a turn) until the other thread waits for this pin.
            loop {
                if let Err(e) = tx.give_way() {
                    gave_way += 1;
                    return Err(e);
                }
                thread::yield_now();
            }
        });
        waiter.join().unwrap();
        assert_eq!((attempts, gave_way), (2, 1));
        // Nobody waits now: a pinned attempt goes on.
        atomically(|tx| {
            tx.pin();
            tx.give_way()
        });
    });
}

/// The same for a snapshot attempt (`read_only`), which a thread in `wait_for_readers` waits
/// for without a pin: it gives way, and runs again as an ordinary attempt. It did not (a
/// reviewer's test): `give_way` looked at the pin only, and the wait for snapshot readers was
/// not counted, so both waited for ever.
#[test]
fn a_snapshot_attempt_that_waits_gives_way_to_a_thread_waiting_for_readers() {
    with_watchdog(60, || {
        let v = TVar::new(1u64);
        let (registered, waiter) = waiter_for_readers();
        let mut snapshots = 0;
        let seen = read_only(|tx| {
            let x = v.read(tx)?;
            if !tx.is_snapshot() {
                return Ok(x);
            }
            snapshots += 1;
            registered.wait();
            loop {
                tx.give_way()?;
                thread::yield_now();
            }
        });
        waiter.join().unwrap();
        assert_eq!((seen, snapshots), (1, 1));
    });
}
