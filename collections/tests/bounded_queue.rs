//! `TBoundedQueue`: capacity is respected under concurrency, nothing is lost, blocking works.

mod common;

use commute::{TBoundedQueue, atomically};
use std::sync::Arc;

#[test]
fn capacity_is_never_exceeded_and_nothing_is_lost() {
    common::with_watchdog(20, || {
        const CAP: usize = 8;
        const PER_PRODUCER: u64 = 5_000;
        let q = Arc::new(TBoundedQueue::with_capacity(CAP));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        atomically(|tx| {
                            q.push(tx, (p, i))?;
                            // Inside the transaction, the queue can never hold more than CAP items.
                            assert!(q.len(tx)? <= CAP);
                            Ok(())
                        });
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 2 * PER_PRODUCER as usize {
            got.push(q.atomic().pop_wait());
        }
        for p in producers {
            p.join().unwrap();
        }
        for p in 0..2 {
            let mine: Vec<u64> = got
                .iter()
                .filter(|(who, _)| *who == p)
                .map(|&(_, i)| i)
                .collect();
            assert_eq!(mine, (0..PER_PRODUCER).collect::<Vec<_>>());
        }
        // All credits came back: the queue accepts exactly CAP items again.
        for i in 0..CAP {
            assert_eq!(q.atomic().try_push((9, i as u64)), Ok(()));
        }
        assert_eq!(q.atomic().try_push((9, 99)), Err((9, 99)));
    });
}

#[test]
fn a_full_queue_blocks_pushers_until_a_pop() {
    common::with_watchdog(20, || {
        let q = Arc::new(TBoundedQueue::with_capacity(1));
        q.atomic().push(1u8);
        let pusher = {
            let q = q.clone();
            std::thread::spawn(move || q.atomic().push(2))
        };
        assert_eq!(q.atomic().pop_wait(), 1);
        pusher.join().unwrap();
        assert_eq!(q.atomic().pop(), Some(2));
        assert!(q.atomic().is_empty());
    });
}

#[test]
fn rolled_back_pushes_return_their_credit() {
    common::with_watchdog(20, || {
        let q = TBoundedQueue::with_capacity(1);
        let pushed = atomically(|tx| {
            tx.or_else(
                |tx| {
                    q.push(tx, 'x')?;
                    tx.retry()
                },
                |tx| Ok(q.try_push(tx, 'y')?.is_ok()),
            )
        });
        assert!(pushed);
        assert_eq!(q.atomic().pop(), Some('y'));
    });
}

#[test]
#[should_panic(expected = "the capacity must be at least 1")]
fn zero_capacity_panics() {
    let _ = TBoundedQueue::<u8>::with_capacity(0);
}

#[test]
fn iter_and_debug_show_the_items_front_to_back_and_nothing_else() {
    common::with_watchdog(20, || {
        let q = TBoundedQueue::with_capacity(4);
        q.atomic().push('a');
        q.atomic().push('b');
        let seen = atomically(|tx| {
            q.pop(tx)?;
            q.push(tx, 'c')?;
            q.iter(tx)
        });
        assert_eq!(seen, ['b', 'c']);
        assert_eq!(q.atomic().iter(), ['b', 'c']);
        let mut lengths = 0;
        atomically(|tx| {
            lengths = 0;
            q.for_each(tx, |_| lengths += 1)
        });
        assert_eq!(lengths, 2);
        assert_eq!(
            format!("{q:?}"),
            "TBoundedQueue { capacity: 4, items: ['b', 'c'] }"
        );
    });
}

/// `extend` on a closed queue panics, as documented, with no items too (as `TQueue`'s does);
/// it did not for an empty iterator (a reviewer's test). Nothing is pushed.
#[test]
fn extend_on_a_closed_queue_panics_even_with_no_items() {
    use commute_test_support::panic_message;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut q: TBoundedQueue<u32> = TBoundedQueue::with_capacity(2);
    q.atomic().close();
    for items in [vec![], vec![1]] {
        let n = items.len();
        let extended = catch_unwind(AssertUnwindSafe(|| q.extend(items)));
        let message = panic_message(&*extended.expect_err("extend of a closed queue panics"));
        assert!(message.contains("closed"), "{n} items: {message}");
    }
    assert_eq!(q.atomic().len(), 0);
}
