//! Loom model of the `retry` sleep counted outside `atomically` (2d2fae5): a variable the
//! sleeper reached through a handle it let go of is dropped by another thread, freed at once
//! when the sleeper's mark shows it asleep, deferred otherwise; then the sleeper is woken.
#![cfg(loom)]

use commute_loom_tests::{Payload, run_model, settle};
use commute_stm::{TBox, TVar, atomically, reclaim_retired};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

static FREED_ASLEEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FREED_DEFERRED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The sleeper reads a box through a clone of a shared `Arc` it drops in its attempt, and a
/// flag; it retries until the flag is set. The main thread takes the `Arc` out and drops it
/// (the box's last handle), then sets the flag. The box's value must be dropped once, never
/// while an attempt of the sleeper reads it (the payload's loom cell reports that), and the
/// sleeper must be woken (loom reports a deadlock otherwise).
#[test]
fn var_freed_while_a_retry_sleeps() {
    run_model("var_freed_while_a_retry_sleeps", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Mutex::new(Some(Arc::new(TBox::new(Payload::new(
            1, &drops,
        ))))));
        let flag = Arc::new(TVar::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let tried = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (shared, flag, done, tried) =
                (shared.clone(), flag.clone(), done.clone(), tried.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    let h = shared.lock().unwrap().clone();
                    if let Some(h) = h {
                        assert_eq!(h.read(tx)?.id(), 1);
                    }
                    if flag.read(tx)? {
                        return Ok(());
                    }
                    tried.store(true, Ordering::Release);
                    tx.retry()
                });
                done.store(true, Ordering::Release);
            })
        };
        let h = shared.lock().unwrap().take();
        drop(h);
        if drops.load(Ordering::Acquire) == 1 {
            // Tried (it has retried once) and not done: its mark is odd only inside an
            // attempt, where the free would have been deferred; so it was asleep.
            if tried.load(Ordering::Acquire) && !done.load(Ordering::Acquire) {
                FREED_ASLEEP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        } else {
            FREED_DEFERRED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        atomically(|tx| {
            flag.write(tx, true);
            Ok(())
        });
        sleeper.join().unwrap();
        settle();
        reclaim_retired();
        assert_eq!(drops.load(Ordering::Acquire), 1, "box value not freed once");
    });
    eprintln!(
        "executions where the box was freed while the sleeper slept in retry: {}, deferred: {}",
        FREED_ASLEEP.load(std::sync::atomic::Ordering::Relaxed),
        FREED_DEFERRED.load(std::sync::atomic::Ordering::Relaxed)
    );
}

static RACE_ASLEEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// As `var_freed_while_a_retry_sleeps`, with the wake-up racing the free: a third thread sets
/// the flag while the main thread drops the last handle of a `TVar` (plain variable) and of a
/// box the sleeper reached through handles it let go of. Three threads: preemption bound 2.
#[test]
fn free_races_the_wake() {
    commute_loom_tests::run_model_with(
        "free_races_the_wake",
        commute_loom_tests::capped_builder(2),
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let shared = Arc::new(Mutex::new(Some((
                Arc::new(TBox::new(Payload::new(1, &drops))),
                Arc::new(TVar::new(5u64)),
            ))));
            let flag = Arc::new(TVar::new(false));
            let tried = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            let sleeper = {
                let (shared, flag, tried, done) =
                    (shared.clone(), flag.clone(), tried.clone(), done.clone());
                thread::spawn(move || {
                    atomically(|tx| {
                        let h = shared.lock().unwrap().clone();
                        if let Some((b, v)) = h {
                            assert_eq!(b.read(tx)?.id(), 1);
                            assert_eq!(v.read(tx)?, 5);
                        }
                        if flag.read(tx)? {
                            return Ok(());
                        }
                        tried.store(true, Ordering::Release);
                        tx.retry()
                    });
                    done.store(true, Ordering::Release);
                })
            };
            let waker = {
                let flag = flag.clone();
                thread::spawn(move || {
                    atomically(|tx| {
                        flag.write(tx, true);
                        Ok(())
                    })
                })
            };
            let h = shared.lock().unwrap().take();
            drop(h);
            if drops.load(Ordering::Acquire) == 1
                && tried.load(Ordering::Acquire)
                && !done.load(Ordering::Acquire)
            {
                RACE_ASLEEP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            waker.join().unwrap();
            sleeper.join().unwrap();
            settle();
            reclaim_retired();
            assert_eq!(drops.load(Ordering::Acquire), 1, "box value not freed once");
        },
    );
    eprintln!(
        "executions where the box was freed while the sleeper slept in retry: {}",
        RACE_ASLEEP.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// `TBox::get_mut` on a box a `retry` waits on: the sleeper reads the box through a clone of a
/// shared handle it lets go of in its attempt, and waits for the value 1; the main thread sets
/// it through `get_mut` once it holds the only handle. The sleeper must be woken (loom reports
/// a deadlock otherwise), whether it is still in its attempt (counted inside `atomically`) or
/// asleep (counted outside, found by the flag it set on the box before it slept).
#[test]
fn get_mut_wakes_a_sleeper() {
    run_model("get_mut_wakes_a_sleeper", || {
        let shared = Arc::new(Mutex::new(Arc::new(TBox::new(0u64))));
        let sleeper = {
            let shared = shared.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    let handle = shared.lock().unwrap().clone();
                    let v = *handle.read(tx)?;
                    drop(handle);
                    if v == 1 { Ok(v) } else { tx.retry() }
                })
            })
        };
        loop {
            let mut handle = shared.lock().unwrap();
            if let Some(b) = Arc::get_mut(&mut handle) {
                *b.get_mut() = 1;
                break;
            }
            drop(handle);
            thread::yield_now();
        }
        assert_eq!(sleeper.join().unwrap(), 1);
        drop(shared);
        settle();
        reclaim_retired();
    });
}
