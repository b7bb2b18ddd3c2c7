//! A commit alone (`modify_alone`, `commit_alone`, `publish_box_alone`) to a variable that a
//! transaction sleeps on in `retry` wakes it. The commit comes once the sleeper is listed in
//! `blocked_transactions`, which it is only after flagging the variable (so the commit finds
//! the flag and must wake it, instead of the sleeper seeing the change before it sleeps).

use commute_stm::{TVar, atomically, blocked_transactions};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::thread::ThreadId;

fn wait_until_listed(thread: ThreadId) {
    while !blocked_transactions()
        .iter()
        .any(|b| b.thread_id() == thread)
    {
        std::thread::yield_now();
    }
}

/// A sleeper on `v` (until it is nonzero), woken by `commit`; returns what it read.
fn woken_by(commit: impl FnOnce(&TVar<u64>)) -> u64 {
    let v = Arc::new(TVar::new(0u64));
    let sleeper = {
        let v = v.clone();
        std::thread::spawn(move || {
            atomically(|tx| {
                let value = v.read(tx)?;
                if value == 0 {
                    return tx.retry();
                }
                Ok(value)
            })
        })
    };
    wait_until_listed(sleeper.thread().id());
    commit(&v);
    sleeper.join().unwrap()
}

#[test]
fn modify_alone_wakes_a_sleeping_retry() {
    with_watchdog(10, || {
        assert_eq!(woken_by(|v| assert_eq!(v.modify_alone(|x| x + 7), 7)), 7);
    });
}

#[test]
fn commit_alone_wakes_a_sleeping_retry() {
    with_watchdog(10, || {
        let seen = woken_by(|v| {
            let (_, seen) = v.load_seen();
            v.commit_alone(seen, 3).unwrap();
        });
        assert_eq!(seen, 3);
    });
}

#[test]
fn publish_box_alone_wakes_a_sleeping_retry() {
    fn swap_in(_old: u64, _version: u64, node: *mut u64) -> u64 {
        // SAFETY: the node is ours until this step publishes its value.
        unsafe { *node }
    }
    fn free(_old: u64, node: *mut u64) {
        // SAFETY: the first step copied the value out; the box is ours to free.
        drop(unsafe { Box::from_raw(node) });
    }
    with_watchdog(10, || {
        let seen = woken_by(|v| {
            // SAFETY: neither step blocks or panics; the node is published once, freed once.
            unsafe { v.publish_box_alone(Box::into_raw(Box::new(9u64)), swap_in, free) };
        });
        assert_eq!(seen, 9);
    });
}
