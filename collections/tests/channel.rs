//! The queues as channels: `close`, `send`, `recv`, `recv_until`/`recv_timeout`, `drain`,
//! `is_full`, on `TQueue` and `TBoundedQueue`.

mod common;

use commute::{Closed, RecvTimeoutError, TBoundedQueue, TQueue, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn tqueue_close_gives_sends_back_and_drains_before_reporting_closed() {
    let q = TQueue::new();
    q.atomic().push(1);
    assert_eq!(q.atomic().send(2), Ok(()));
    assert!(!q.atomic().is_closed());
    q.atomic().close();
    assert!(q.atomic().is_closed());
    assert_eq!(q.atomic().send(3), Err(Closed(3)));
    assert_eq!(
        atomically(|tx| q.send(tx, 4)).map_err(Closed::into_inner),
        Err(4)
    );
    assert_eq!(q.atomic().recv(), Some(1));
    assert_eq!(q.atomic().recv_timeout(Duration::from_secs(60)), Ok(2));
    assert_eq!(q.atomic().recv(), None);
    assert_eq!(
        q.atomic().recv_timeout(Duration::from_secs(60)),
        Err(RecvTimeoutError::Closed)
    );
    assert_eq!(q.atomic().pop(), None);
    q.atomic().close(); // twice: nothing changes
    assert!(q.atomic().is_closed());
}

#[test]
fn tqueue_close_in_the_same_transaction_as_pushes() {
    let q = TQueue::new();
    let sent = atomically(|tx| {
        q.push(tx, 'a');
        q.close(tx);
        // Closed from here on in this transaction too.
        Ok((q.is_closed(tx)?, q.send(tx, 'b')?))
    });
    assert_eq!(sent, (true, Err(Closed('b'))));
    assert_eq!(q.atomic().drain(), ['a']);
    assert_eq!(q.atomic().recv(), None);
}

#[test]
fn a_closed_tqueue_refuses_push_with_a_panic() {
    let q = TQueue::new();
    q.atomic().close();
    let r = catch_unwind(AssertUnwindSafe(|| q.atomic().push(1)));
    let payload = r.unwrap_err();
    let message = (payload.downcast_ref::<String>().map(String::as_str))
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .expect("a message");
    assert!(message.contains("closed queue"), "{message}");
    assert_eq!(q.atomic().len(), 0);
}

/// A closed queue still hands out what it holds, to the one-call `pop_wait` too (which pops
/// without a transaction when an item is there), and only then refuses.
#[test]
fn pop_wait_on_a_closed_tqueue_drains_it_first() {
    // A wrong answer here would block: under a watchdog.
    common::with_watchdog(20, || {
        let q = TQueue::new();
        q.atomic().push(1);
        q.atomic().push(2);
        q.atomic().close();
        assert_eq!(q.atomic().pop_wait(), 1);
        assert_eq!(q.atomic().recv(), Some(2));
        assert_eq!(q.atomic().recv(), None);
        let r = catch_unwind(AssertUnwindSafe(|| q.atomic().pop_wait()));
        assert!(
            r.is_err(),
            "pop_wait on the closed, drained queue must panic"
        );
    });
}

#[test]
#[should_panic(expected = "closed and empty queue would block forever")]
fn pop_wait_on_a_closed_empty_tqueue_panics() {
    let q: TQueue<u8> = TQueue::new();
    q.atomic().close();
    q.atomic().pop_wait();
}

#[test]
#[should_panic(expected = "closed and empty queue would block forever")]
fn pop_wait_on_a_closed_empty_bounded_queue_panics() {
    let q: TBoundedQueue<u8> = TBoundedQueue::with_capacity(1);
    q.atomic().close();
    q.atomic().pop_wait();
}

#[test]
#[should_panic(expected = "TBoundedQueue::push on a closed queue")]
fn push_on_a_closed_bounded_queue_panics() {
    let q = TBoundedQueue::with_capacity(1);
    q.atomic().close();
    q.atomic().push(1);
}

#[test]
fn recv_blocked_on_an_empty_queue_wakes_on_close() {
    common::with_watchdog(20, || {
        let q: Arc<TQueue<u8>> = Arc::new(TQueue::new());
        let b: Arc<TBoundedQueue<u8>> = Arc::new(TBoundedQueue::with_capacity(1));
        let (q2, b2) = (q.clone(), b.clone());
        let consumer = std::thread::spawn(move || (q2.atomic().recv(), b2.atomic().recv()));
        q.atomic().close();
        b.atomic().close();
        assert_eq!(consumer.join().unwrap(), (None, None));
    });
}

#[test]
fn recv_timeout_takes_the_timeout_path_after_at_least_the_timeout() {
    common::with_watchdog(20, || {
        let timeout = Duration::from_millis(25);
        let q: TQueue<u8> = TQueue::new();
        let start = Instant::now();
        assert_eq!(
            q.atomic().recv_timeout(timeout),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= timeout);

        let b: TBoundedQueue<u8> = TBoundedQueue::with_capacity(2);
        let start = Instant::now();
        let deadline = start + timeout;
        assert_eq!(
            atomically(|tx| b.recv_until(tx, deadline)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn recv_timeout_gets_an_item_sent_while_it_waits() {
    common::with_watchdog(20, || {
        let q: Arc<TQueue<u64>> = Arc::new(TQueue::new());
        let b: Arc<TBoundedQueue<u64>> = Arc::new(TBoundedQueue::with_capacity(1));
        let (q2, b2) = (q.clone(), b.clone());
        let consumer = std::thread::spawn(move || {
            let hour = Duration::from_secs(3600);
            (
                q2.atomic().recv_timeout(hour),
                b2.atomic().recv_timeout(hour),
            )
        });
        q.atomic().push(7);
        b.atomic().push(8);
        assert_eq!(consumer.join().unwrap(), (Ok(7), Ok(8)));
    });
}

#[test]
fn bounded_send_blocked_on_a_full_queue_gets_its_item_back_on_close() {
    common::with_watchdog(20, || {
        let q = Arc::new(TBoundedQueue::with_capacity(1));
        assert_eq!(q.atomic().send(1), Ok(()));
        assert!(q.atomic().is_full());
        assert_eq!(q.atomic().try_push(9), Err(9));
        let p = q.clone();
        let producer = std::thread::spawn(move || p.atomic().send(2));
        q.atomic().close();
        assert_eq!(producer.join().unwrap(), Err(Closed(2)));
        assert_eq!(q.atomic().try_push(3), Err(3), "closed");
        assert_eq!(q.atomic().recv(), Some(1));
        assert_eq!(q.atomic().recv(), None);
        assert!(!q.atomic().is_full());
    });
}

#[test]
fn is_full_follows_the_count() {
    let q = TBoundedQueue::with_capacity(3);
    for i in 0..3 {
        assert!(!q.atomic().is_full());
        q.atomic().push(i);
    }
    assert!(q.atomic().is_full());
    q.atomic().pop();
    assert!(!q.atomic().is_full());
    // In a transaction, its own pushes count.
    assert!(atomically(|tx| {
        q.push(tx, 10)?;
        q.is_full(tx)
    }));
}

#[test]
fn drain_takes_everything_in_order_and_gives_the_capacity_back() {
    let q = TBoundedQueue::with_capacity(4);
    for i in 0..4 {
        q.atomic().push(i);
    }
    let (drained, own) = atomically(|tx| {
        let drained = q.drain(tx)?;
        q.push(tx, 100)?;
        Ok((drained, q.drain(tx)?))
    });
    assert_eq!(drained, [0, 1, 2, 3]);
    assert_eq!(own, [100], "a drain sees the transaction's own pushes");
    assert_eq!(q.atomic().len(), 0);
    for i in 0..4 {
        assert_eq!(q.atomic().try_push(i), Ok(()), "every credit is back");
    }
    assert!(q.atomic().is_full());

    let t: TQueue<String> = ["a", "b"].into_iter().map(String::from).collect();
    assert_eq!(t.atomic().drain(), ["a", "b"]);
    assert!(t.atomic().drain().is_empty());
}

/// Several producers send, then one closes; several consumers receive until closed. Every
/// item is received exactly once, and each producer's items in order.
fn channel_run(bounded: bool) {
    const PRODUCERS: u64 = 2;
    const CONSUMERS: usize = 2;
    const PER_PRODUCER: u64 = 3_000;
    enum Q {
        Unbounded(TQueue<(u64, u64)>),
        Bounded(TBoundedQueue<(u64, u64)>),
    }
    impl Q {
        fn send(&self, item: (u64, u64)) -> Result<(), Closed<(u64, u64)>> {
            match self {
                Q::Unbounded(q) => q.atomic().send(item),
                Q::Bounded(q) => q.atomic().send(item),
            }
        }
        fn recv(&self) -> Option<(u64, u64)> {
            match self {
                Q::Unbounded(q) => q.atomic().recv(),
                Q::Bounded(q) => q.atomic().recv(),
            }
        }
        fn close(&self) {
            match self {
                Q::Unbounded(q) => q.atomic().close(),
                Q::Bounded(q) => q.atomic().close(),
            }
        }
    }
    let q = Arc::new(if bounded {
        Q::Bounded(TBoundedQueue::with_capacity(4))
    } else {
        Q::Unbounded(TQueue::new())
    });
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(item) = q.recv() {
                    got.push(item);
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    q.send((p, i)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    assert_eq!(q.send((9, 9)), Err(Closed((9, 9))));
    let mut all = Vec::new();
    for c in consumers {
        let got = c.join().unwrap();
        for p in 0..PRODUCERS {
            let mine: Vec<u64> = got.iter().filter(|x| x.0 == p).map(|x| x.1).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order");
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |i| (p, i)))
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn tqueue_channel_delivers_everything_once_then_closes() {
    common::with_watchdog(60, || channel_run(false));
}

#[test]
fn bounded_channel_delivers_everything_once_then_closes() {
    common::with_watchdog(60, || channel_run(true));
}

/// A timeout too long for an `Instant` (`Duration::MAX`) waits without a deadline, as std's
/// channels take it (both overflowed computing the deadline before: a reviewer's test).
#[test]
fn recv_timeout_of_duration_max_waits_without_a_deadline() {
    let q: TQueue<u8> = TQueue::new();
    q.atomic().push(4);
    assert_eq!(q.atomic().recv_timeout(Duration::MAX), Ok(4));
    q.atomic().close();
    assert_eq!(
        q.atomic().recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Closed)
    );
    let b: TBoundedQueue<u8> = TBoundedQueue::with_capacity(1);
    b.atomic().push(5);
    assert_eq!(b.atomic().recv_timeout(Duration::MAX), Ok(5));
    b.atomic().close();
    assert_eq!(
        b.atomic().recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Closed)
    );
}
