//! A queue's one-call forms against a commit the same thread has already seen: a pop alone
//! after a commit that pushed finds the items, and a push after a close was seen panics as
//! documented. Both failed before (a reviewer's tests): the pop read `tail` while the pushing
//! commit was still writing back, and the push read a flag that the close set only in a hook
//! after its commit.

mod common;

use commute::{TQueue, TVar, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[test]
fn a_pop_alone_after_seeing_a_commit_that_pushed_finds_its_items() {
    const BATCH: u64 = 2_000;
    const ROUNDS: u64 = 300;
    common::with_watchdog(300, || {
        let q: Arc<TQueue<u64>> = Arc::new(TQueue::new());
        let round = Arc::new(TVar::new(0u64));
        let drained = Arc::new(AtomicU64::new(0));
        let producer = {
            let (q, round, drained) = (q.clone(), round.clone(), drained.clone());
            std::thread::spawn(move || {
                for r in 1..=ROUNDS {
                    while drained.load(Ordering::Acquire) != r - 1 {
                        std::thread::yield_now();
                    }
                    atomically(|tx| {
                        // Written first, so written back first; the many pushes keep `tail`
                        // locked a while after.
                        round.write(tx, r);
                        for i in 0..BATCH {
                            q.push(tx, i);
                        }
                        Ok(())
                    });
                }
            })
        };
        let mut missed = Vec::new();
        for r in 1..=ROUNDS {
            // This thread sees the commit that wrote `round = r` and pushed the batch...
            while atomically(|tx| round.read(tx)) != r {
                std::hint::spin_loop();
            }
            // ... so a pop after it finds the batch's first item.
            let first = q.atomic().pop();
            if first != Some(0) {
                missed.push((r, first));
            }
            let rest = atomically(|tx| q.drain(tx));
            let expected = if first == Some(0) { BATCH - 1 } else { BATCH };
            assert_eq!(
                rest.len() as u64,
                expected,
                "round {r}: items lost or duplicated"
            );
            drained.store(r, Ordering::Release);
        }
        producer.join().expect("the producer");
        assert!(
            missed.is_empty(),
            "{} of {ROUNDS} pops found nothing after seeing the push; first: {:?}",
            missed.len(),
            &missed[..missed.len().min(5)]
        );
    });
}

#[test]
fn a_push_after_a_close_was_seen_panics_while_the_closers_hooks_still_run() {
    common::with_watchdog(60, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        let released = Arc::new(AtomicBool::new(false));
        let closer = {
            let (q, released) = (q.clone(), released.clone());
            std::thread::spawn(move || {
                atomically(|tx| {
                    // A hook of the caller's: the close's commit is done, its hooks not yet.
                    let released = released.clone();
                    tx.on_commit(move || {
                        while !released.load(Ordering::Acquire) {
                            std::thread::yield_now();
                        }
                    });
                    q.close(tx);
                    Ok(())
                });
            })
        };
        while !q.atomic().is_closed() {
            std::thread::yield_now();
        }
        // Closed and empty: the end of the stream.
        assert_eq!(q.atomic().recv(), None);
        let pushed = catch_unwind(AssertUnwindSafe(|| q.atomic().push(7)));
        let pushed_in_tx = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                q.push(tx, 8);
                Ok(())
            })
        }));
        released.store(true, Ordering::Release);
        closer.join().expect("the closer");
        assert_eq!(q.atomic().recv(), None, "nothing came in after the close");
        assert!(pushed.is_err(), "the push alone was accepted");
        assert!(
            pushed_in_tx.is_err(),
            "the push in a transaction was accepted"
        );
    });
}

#[test]
fn a_push_after_a_close_was_seen_panics_racing_the_close() {
    common::with_watchdog(300, || {
        let mut accepted = 0;
        let rounds = 300;
        for _ in 0..rounds {
            let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
            let closer = {
                let q = q.clone();
                std::thread::spawn(move || q.atomic().close())
            };
            while !q.atomic().is_closed() {
                std::hint::spin_loop();
            }
            if catch_unwind(AssertUnwindSafe(|| q.atomic().push(7))).is_ok() {
                accepted += 1;
            }
            closer.join().expect("the closer");
        }
        assert_eq!(
            accepted, 0,
            "of {rounds} pushes made after the close was seen"
        );
    });
}
