//! The async waiting forms of the queues (`pop_wait_async`, `push_async`) on tokio runtimes:
//! every item pushed is popped exactly once, and a full bounded queue holds producers back. On
//! a closed queue they panic, as the blocking forms do.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use commute::{TBoundedQueue, TQueue, pending_async_registrations};
use commute_test_support::with_watchdog;

const PER_PRODUCER: u64 = 500;

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap()
    }
}

/// Consumers wait in `pop_wait_async` while producers push; each item arrives exactly once.
fn queue_round(workers: usize) {
    let rt = runtime(workers);
    rt.block_on(async {
        let q = Arc::new(TQueue::new());
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        match q.atomic().pop_wait_async().await {
                            u64::MAX => return got,
                            item => got.push(item),
                        }
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        q.atomic().push(p * PER_PRODUCER + i);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for p in producers {
            p.await.unwrap();
        }
        for _ in 0..4 {
            q.atomic().push(u64::MAX);
        }
        let mut all = Vec::new();
        for c in consumers {
            all.extend(c.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..2 * PER_PRODUCER).collect::<Vec<_>>());
    });
}

#[test]
fn pop_wait_async_current_thread() {
    with_watchdog(30, || queue_round(0));
}

#[test]
fn pop_wait_async_multi_thread() {
    with_watchdog(30, || queue_round(2));
}

#[test]
fn bounded_push_async_waits_for_room() {
    with_watchdog(30, || {
        let rt = runtime(2);
        rt.block_on(async {
            let q = Arc::new(TBoundedQueue::with_capacity(4));
            let producer = {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..1000u32 {
                        q.atomic().push_async(i).await;
                        assert!(q.atomic().len() <= 4);
                    }
                })
            };
            let mut next = 0;
            while next < 1000 {
                assert_eq!(q.atomic().pop_wait_async().await, next);
                next += 1;
            }
            producer.await.unwrap();
            assert!(q.atomic().is_empty());
        });
    });
}

#[test]
fn cancelled_pop_takes_nothing() {
    with_watchdog(30, || {
        let rt = runtime(0);
        rt.block_on(async {
            let q = Arc::new(TQueue::<u32>::new());
            let waiting = {
                let q = q.clone();
                tokio::spawn(async move { q.atomic().pop_wait_async().await })
            };
            // Let it run until it waits.
            while pending_async_registrations() == 0 {
                tokio::task::yield_now().await;
            }
            waiting.abort();
            assert!(waiting.await.unwrap_err().is_cancelled());
            q.atomic().push(7);
            assert_eq!(q.atomic().pop(), Some(7), "the cancelled pop took nothing");
        });
    });
}

/// A pending `pop_wait_async` whose queue is closed panics on the poll the close wakes, as
/// `pop_wait` does; the panic was missing from its documentation (which listed only "polled
/// inside a transaction"), and this test keeps it documented behaviour.
#[test]
#[should_panic(expected = "closed and empty")]
fn a_pending_pop_wait_async_whose_queue_is_closed_panics() {
    let q = TQueue::<u32>::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut pop = pin!(q.atomic().pop_wait_async());
    assert_eq!(pop.as_mut().poll(&mut cx), Poll::Pending);
    q.atomic().close();
    let _ = pop.as_mut().poll(&mut cx);
}

/// `push_async` on a closed bounded queue panics, as `push` does; the panic was missing from
/// both their documentations.
#[test]
#[should_panic(expected = "on a closed queue")]
fn bounded_push_async_on_a_closed_queue_panics() {
    let q = TBoundedQueue::<u32>::with_capacity(1);
    q.atomic().close();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = pin!(q.atomic().push_async(1)).as_mut().poll(&mut cx);
}
