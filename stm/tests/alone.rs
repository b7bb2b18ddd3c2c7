//! Single-variable commits outside transactions (`TVar::commit_alone` and its forms): a stale
//! commit is refused and counted in the statistics as the aborted attempt it is; a retiring
//! commit retires only when it commits; a publishing one runs both steps and wakes waiters;
//! none may run inside a transaction.

use commute_stm::{TVar, stats};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_stale_commit_alone_is_refused_and_counted_as_an_abort() {
    let v = TVar::new(1u64);
    let (value, seen) = v.load_seen();
    let before = stats::thread();
    assert_eq!(v.commit_alone(seen, value + 1), Ok(()));
    assert_eq!(
        v.commit_alone(seen, 100),
        Err(100),
        "the variable changed since `seen`"
    );
    let after = stats::thread();
    assert_eq!(v.load(), 2);
    assert_eq!(after.commits - before.commits, 1);
    assert_eq!(
        after.aborts_read_validation - before.aborts_read_validation,
        1
    );
}

/// A value that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `commit_alone_retiring` retires its value only if it commits, and reclamation then drops it
/// once; a refused commit retires nothing and gives the new value back.
#[test]
fn a_commit_alone_retiring_retires_only_when_it_commits() {
    let drops = Arc::new(AtomicUsize::new(0));
    let v = TVar::new(1u64);
    let (_, seen) = v.load_seen();
    let retired = Box::into_raw(Box::new(Counted(drops.clone())));
    // SAFETY: `retired` is a box that nothing else frees.
    let first = unsafe { v.commit_alone_retiring(seen, 2, 7, retired) };
    assert_eq!(first, Ok(()));
    let stale = Box::into_raw(Box::new(Counted(drops.clone())));
    // SAFETY: as above; refused, so it stays ours.
    let second = unsafe { v.commit_alone_retiring(seen, 3, 0, stale) };
    assert_eq!(second, Err(3));
    assert_eq!(v.load(), 2);
    // Another test's running transaction may hold reclamation back for a while: a deadline,
    // not a count of tries.
    let deadline = Instant::now() + Duration::from_secs(10);
    let released = loop {
        commute_stm::reclaim_retired();
        if drops.load(Ordering::SeqCst) == 1 || Instant::now() >= deadline {
            break drops.load(Ordering::SeqCst) == 1;
        }
        std::thread::yield_now();
    };
    assert!(released, "the retired value was not dropped by reclamation");
    // SAFETY: the refused commit left it to us.
    drop(unsafe { Box::from_raw(stale) });
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// `publish_box_alone` runs its first step under the variable's lock with the commit's version
/// (above the version the variable had), its second after, with the value replaced; it counts
/// as a commit and wakes a transaction blocked in `retry` on the variable.
#[test]
fn a_publish_alone_runs_both_steps_and_wakes_a_waiter() {
    // What the steps saw, checked after the publish: neither step may panic.
    static VERSION: AtomicU64 = AtomicU64::new(0);
    static REPLACED: AtomicU64 = AtomicU64::new(u64::MAX);
    fn swap_in(_old: u64, version: u64, node: *mut u64) -> u64 {
        VERSION.store(version, Ordering::SeqCst);
        // SAFETY: the node is ours until this step publishes its value.
        unsafe { *node }
    }
    fn free(old: u64, node: *mut u64) {
        REPLACED.store(old, Ordering::SeqCst);
        // SAFETY: the first step copied the value out; the box is ours to free.
        drop(unsafe { Box::from_raw(node) });
    }
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        // Counted before the waiter starts, so that its retry cannot come before the count.
        let retries = stats::snapshot().retries;
        let waiter = {
            let v = v.clone();
            std::thread::spawn(move || {
                commute_stm::atomically(|tx| {
                    let value = v.read(tx)?;
                    if value == 0 {
                        return tx.retry();
                    }
                    Ok(value)
                })
            })
        };
        // Once the waiter has retried it sleeps on `v` (or checks `v` again first, and then
        // sees the publish: either way it must end with 5). Another test's retry may end the
        // wait early: the order does not matter for the result.
        while stats::snapshot().retries == retries && !waiter.is_finished() {
            std::thread::yield_now();
        }
        let before = stats::thread();
        // SAFETY: neither step blocks or panics; the node is published once and freed once.
        unsafe { v.publish_box_alone(Box::into_raw(Box::new(5u64)), swap_in, free) };
        assert_eq!(stats::thread().commits - before.commits, 1);
        assert!(
            VERSION.load(Ordering::SeqCst) > 0,
            "the first step got a commit version"
        );
        assert_eq!(
            REPLACED.load(Ordering::SeqCst),
            0,
            "the second step got the value replaced"
        );
        assert_eq!(waiter.join().unwrap(), 5);
        assert_eq!(v.load(), 5);
    });
}

#[test]
#[should_panic(expected = "commit alone")]
fn a_publish_alone_inside_a_transaction_panics() {
    fn keep(old: u64, _version: u64, _node: *mut u64) -> u64 {
        old
    }
    fn nothing(_old: u64, _node: *mut u64) {}
    let v = TVar::new(0u64);
    commute_stm::atomically(|_tx| {
        // SAFETY: never reached past the panic; the node pointer is never used.
        unsafe { v.publish_box_alone(core::ptr::null_mut(), keep, nothing) };
        Ok(())
    });
}

#[test]
#[should_panic(expected = "commit alone")]
fn a_commit_alone_retiring_inside_a_transaction_panics() {
    let v = TVar::new(0u64);
    let (_, seen) = v.load_seen();
    commute_stm::atomically(|_tx| {
        // SAFETY: never reached past the panic; the pointer is never used.
        let _ = unsafe { v.commit_alone_retiring(seen, 1, 0, core::ptr::null_mut::<u64>()) };
        Ok(())
    });
}
