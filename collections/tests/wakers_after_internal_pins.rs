//! Wakers were called inside the internal pin of a one-call operation (`TMap`'s
//! `.atomic().insert` of a present key, `TQueue`'s `.atomic().pop`): such a form commits alone
//! under a pin of its own, and its commit called the wakers of the pending futures it woke
//! before the pin ended. A waker that polls its task at once (an inline executor) then polled a
//! transaction future inside a pin the user never took: an attempt that retried again panicked
//! ("retry() would wait inside a pin"), and the panic passed on from the unrelated `insert` or
//! `pop`, whose popped item was lost. Wakers woken inside a pin are now called once it ends.
use commute::{TMap, TQueue, TVar, atomically, atomically_async};
use commute_test_support::with_watchdog;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

type Task = Pin<Box<dyn Future<Output = u32> + Send>>;

/// A waker that polls its task at once (an "inline" executor).
struct Inline(Mutex<Option<Task>>, Mutex<Option<u32>>);
impl Wake for Inline {
    fn wake(self: Arc<Self>) {
        let w = Waker::from(self.clone());
        let mut slot = self.0.lock().unwrap();
        if let Some(task) = slot.as_mut() {
            if let Poll::Ready(v) = task.as_mut().poll(&mut Context::from_waker(&w)) {
                *self.1.lock().unwrap() = Some(v);
                *slot = None;
            }
        }
    }
}

fn start(task: Task) -> Arc<Inline> {
    let inline = Arc::new(Inline(Mutex::new(Some(task)), Mutex::new(None)));
    inline.clone().wake(); // first poll: pending
    assert!(inline.1.lock().unwrap().is_none());
    inline
}

/// A map whose key 1 holds 0, and a started task that waits until it holds `at_least`.
fn map_and_waiter(at_least: u32) -> (Arc<TMap<u32, u32>>, Arc<Inline>) {
    let m: Arc<TMap<u32, u32>> = Arc::new(TMap::new());
    m.atomic().insert(1, 0);
    let m2 = m.clone();
    let inline = start(Box::pin(atomically_async(move |tx| {
        let v = m2.get(tx, &1)?.unwrap();
        if v < at_least { tx.retry() } else { Ok(v) }
    })));
    (m, inline)
}

#[test]
fn a_map_insert_of_a_present_key_does_not_poll_wakers_inside_its_pin() {
    with_watchdog(20, || {
        let (m, inline) = map_and_waiter(2);
        // A present key: committed alone under the map's pin, which wakes the future there.
        let r = catch_unwind(AssertUnwindSafe(|| m.atomic().insert(1, 1)));
        assert!(
            r.is_ok(),
            "map.atomic().insert(1, 1) panicked: {}",
            commute_test_support::panic_message(&*r.unwrap_err())
        );
        m.atomic().insert(1, 2);
        assert_eq!(*inline.1.lock().unwrap(), Some(2));
    });
}

#[test]
fn a_queue_pop_does_not_poll_wakers_inside_its_pin() {
    with_watchdog(20, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        q.atomic().push(1);
        q.atomic().push(2);
        let q2 = q.clone();
        // Waits until the queue is empty.
        let inline = start(Box::pin(atomically_async(move |tx| {
            if q2.is_empty(tx)? { Ok(7) } else { tx.retry() }
        })));
        let r = catch_unwind(AssertUnwindSafe(|| q.atomic().pop()));
        assert!(
            r.is_ok(),
            "q.atomic().pop() panicked: {}",
            commute_test_support::panic_message(&*r.unwrap_err())
        );
        assert_eq!(r.unwrap(), Some(1), "the popped item reaches its caller");
        assert_eq!(q.atomic().pop(), Some(2));
        assert_eq!(*inline.1.lock().unwrap(), Some(7));
    });
}

/// A transaction inside the user's own pin wakes a future: its waker runs once the pin has
/// ended, not inside it.
#[test]
fn a_transaction_inside_a_pin_wakes_once_the_pin_ends() {
    with_watchdog(20, || {
        let (m, inline) = map_and_waiter(1);
        commute::pinned(|| {
            commute::atomically(|tx| m.insert(tx, 1, 1).map(drop));
            assert_eq!(*inline.1.lock().unwrap(), None, "not woken inside the pin");
        });
        assert_eq!(
            *inline.1.lock().unwrap(),
            Some(1),
            "woken once the pin ended"
        );
    });
}

/// A pin that ends in a panic after a one-call commit woke a future still wakes it.
#[test]
fn a_pin_that_panics_still_wakes_what_its_commits_woke() {
    with_watchdog(20, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        q.atomic().push(1);
        let q2 = q.clone();
        let inline = start(Box::pin(atomically_async(move |tx| {
            if q2.is_empty(tx)? { Ok(7) } else { tx.retry() }
        })));
        let r = catch_unwind(AssertUnwindSafe(|| {
            commute::pinned(|| {
                assert_eq!(q.atomic().pop(), Some(1));
                panic!("the pin's code fails");
            })
        }));
        assert!(r.is_err());
        assert_eq!(
            *inline.1.lock().unwrap(),
            Some(7),
            "woken as the pin unwound"
        );
    });
}

/// A pin that wakes a future (a one-call `pop`) and then waits, bounded, with `retry_until` for
/// what that future commits: the wakers the pin holds back are called before the thread blocks
/// (they were held to the pin's end, and the wait ran out its whole deadline).
#[test]
fn a_bounded_wait_inside_a_pin_sees_the_commit_of_a_future_the_pin_woke() {
    with_watchdog(30, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        q.atomic().push(1);
        let reply = Arc::new(TVar::new(false));
        let (q2, reply2) = (q.clone(), reply.clone());
        let (tx_ready, rx_ready) = std::sync::mpsc::channel();
        // Thread B: a future that waits for the queue to empty, then answers.
        let b = std::thread::spawn(move || {
            let fut = atomically_async(move |tx| {
                if q2.is_empty(tx)? {
                    reply2.write(tx, true);
                    Ok(())
                } else {
                    tx.retry()
                }
            });
            let _ = tx_ready.send(());
            commute_stm::__block_on(fut);
        });
        rx_ready.recv().unwrap();
        // Let B's first poll register (it is pending until the pop).
        while commute_stm::pending_async_registrations() == 0 {
            std::thread::yield_now();
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        let got = commute::pinned(|| {
            assert_eq!(q.atomic().pop(), Some(1)); // wakes B's future
            atomically(|tx| {
                if reply.read(tx)? {
                    return Ok(true);
                }
                tx.retry_until(deadline)?;
                Ok(false)
            })
        });
        let waited = start.elapsed();
        b.join().unwrap();
        assert!(
            got,
            "the bounded wait in the pin ran out ({waited:?}): the future it woke was never \
             woken while the pin lasted"
        );
    });
}
