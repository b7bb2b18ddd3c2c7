//! `atomically_async` and `try_atomically_async`: waiting on a waker instead of a thread, on a
//! hand-written executor and on tokio's runtimes; and the thread left clean between polls.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use commute_stm::{
    TVar, TxError, atomically, atomically_async, in_transaction, try_atomically_async,
};
use commute_test_support::with_watchdog;

/// A minimal executor: polls on this thread, parks between polls, unparked by the waker.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker: Waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            // A spurious unpark only costs a poll that returns `Pending` again.
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A waker that counts its wakes.
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Counting>, Waker) {
    let counter = Arc::new(Counting(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

#[test]
fn completes_at_once_without_retry() {
    let v = TVar::new(1u64);
    let got = block_on(atomically_async(|tx| {
        let n = v.read(tx)?;
        v.write(tx, n + 1);
        Ok(n)
    }));
    assert_eq!(got, 1);
    assert_eq!(v.load(), 2);
}

#[test]
fn block_on_waits_for_another_threads_commit() {
    with_watchdog(20, || {
        for round in 0..200u64 {
            let slot = Arc::new(TVar::new(0u64));
            let producer = {
                let slot = slot.clone();
                std::thread::spawn(move || {
                    atomically(|tx| {
                        slot.write(tx, round + 1);
                        Ok(())
                    })
                })
            };
            let got = block_on(atomically_async(|tx| match slot.read(tx)? {
                0 => tx.retry(),
                n => {
                    slot.write(tx, 0);
                    Ok(n)
                }
            }));
            assert_eq!(got, round + 1);
            producer.join().unwrap();
            assert_eq!(slot.load(), 0);
        }
    });
}

#[test]
fn pending_poll_leaves_the_thread_outside_any_transaction() {
    let gate = TVar::new(false);
    let other = TVar::new(0u32);
    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = pin!(atomically_async(|tx| {
        if gate.read(tx)? { Ok(1) } else { tx.retry() }
    }));
    let mut second = pin!(atomically_async(|tx| {
        if gate.read(tx)? { Ok(2) } else { tx.retry() }
    }));
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    // Between polls this thread runs other transactions and non-transactional loads.
    assert!(!in_transaction());
    assert_eq!(other.load(), 0);
    atomically(|tx| {
        other.write(tx, 5);
        Ok(())
    });
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        0,
        "no wake before the gate opens"
    );
    // A poll that was not woken stays pending without running the transaction.
    assert!(first.as_mut().poll(&mut cx).is_pending());
    atomically(|tx| {
        gate.write(tx, true);
        Ok(())
    });
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        2,
        "both futures woken once each"
    );
    assert_eq!(first.as_mut().poll(&mut cx), Poll::Ready(1));
    assert_eq!(second.as_mut().poll(&mut cx), Poll::Ready(2));
}

#[test]
fn a_commit_after_pending_wakes_and_the_next_poll_completes() {
    let v = TVar::new(0u32);
    let (_wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(atomically_async(|tx| match v.read(tx)? {
        0 => tx.retry(),
        n => Ok(n),
    }));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    atomically(|tx| {
        v.write(tx, 3);
        Ok(())
    });
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(3));
}

#[test]
fn try_atomically_async_rolls_back_on_error_and_waits_on_retry() {
    with_watchdog(20, || {
        let stock = Arc::new(TVar::new(0u32));
        let refused: Result<u32, &str> = block_on(try_atomically_async(|tx| {
            stock.write(tx, 99);
            tx.abort("refused")
        }));
        assert_eq!(refused, Err("refused"));
        assert_eq!(stock.load(), 0);

        let filler = {
            let stock = stock.clone();
            std::thread::spawn(move || {
                atomically(|tx| {
                    stock.write(tx, 4);
                    Ok(())
                })
            })
        };
        let taken: Result<u32, &str> = block_on(try_atomically_async(|tx| {
            let n = stock.read(tx)?;
            if n == 0 {
                return Err(TxError::Stm(tx.retry::<()>().unwrap_err()));
            }
            stock.write(tx, n - 1);
            Ok(n)
        }));
        assert_eq!(taken, Ok(4));
        assert_eq!(stock.load(), 3);
        filler.join().unwrap();
    });
}

/// `n` waiting tasks each take one permit; the producer hands out `n` permits one by one.
async fn permits_round(n: u64) {
    let permits = Arc::new(TVar::new(0u64));
    let taken = Arc::new(TVar::new(0u64));
    let waiters: Vec<_> = (0..n)
        .map(|_| {
            let permits = permits.clone();
            let taken = taken.clone();
            tokio::spawn(atomically_async(move |tx| {
                let p = permits.read(tx)?;
                if p == 0 {
                    return tx.retry();
                }
                permits.write(tx, p - 1);
                taken.modify(tx, |t| t + 1)?;
                Ok(())
            }))
        })
        .collect();
    for _ in 0..n {
        let permits = permits.clone();
        atomically(|tx| permits.modify(tx, |p| p + 1));
        tokio::task::yield_now().await;
    }
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(taken.load(), n);
    assert_eq!(permits.load(), 0);
}

#[test]
fn tokio_current_thread_runtime() {
    with_watchdog(30, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(permits_round(200));
    });
}

#[test]
fn tokio_multi_thread_runtime() {
    with_watchdog(30, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        for _ in 0..10 {
            rt.block_on(permits_round(100));
        }
    });
}

#[test]
fn tokio_producer_in_a_task_of_its_own() {
    with_watchdog(30, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let slot = Arc::new(TVar::new(0u64));
            let consumer = {
                let slot = slot.clone();
                tokio::spawn(async move {
                    let mut sum = 0;
                    for _ in 0..500 {
                        sum += atomically_async(|tx| match slot.read(tx)? {
                            0 => tx.retry(),
                            n => {
                                slot.write(tx, 0);
                                Ok(n)
                            }
                        })
                        .await;
                    }
                    sum
                })
            };
            for i in 1..=500u64 {
                // Wait for the slot to be empty, then fill it: a hand-off in both directions.
                atomically_async(|tx| match slot.read(tx)? {
                    0 => {
                        slot.write(tx, i);
                        Ok(())
                    }
                    _ => tx.retry(),
                })
                .await;
            }
            assert_eq!(consumer.await.unwrap(), 500 * 501 / 2);
        });
    });
}

/// A waker that checks it is called outside any transaction, and runs one itself.
struct Reentrant {
    wakes: AtomicUsize,
    side: TVar<u64>,
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        assert!(!in_transaction(), "a waker was called inside a transaction");
        atomically(|tx| self.side.modify(tx, |n| n + 1));
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn wakers_run_outside_the_committing_transaction() {
    let reentrant = Arc::new(Reentrant {
        wakes: AtomicUsize::new(0),
        side: TVar::new(0),
    });
    let waker = Waker::from(reentrant.clone());
    let mut cx = Context::from_waker(&waker);

    // Woken by an ordinary commit: called once `atomically` has returned.
    let v = TVar::new(0u64);
    let mut fut = pin!(atomically_async(|tx| match v.read(tx)? {
        0 => tx.retry(),
        n => Ok(n),
    }));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    atomically(|tx| {
        v.write(tx, 1);
        Ok(())
    });
    assert_eq!(reentrant.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(
        reentrant.side.load(),
        1,
        "the waker's own transaction committed"
    );
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(1));

    // Woken by a variable killed inside a transaction (`TBox::into_inner` wakes its waiters):
    // called when that `atomically` returns, not inside it. The future reaches the box through
    // shared state, so the box can go while the future waits.
    let door: Arc<std::sync::Mutex<Option<commute_stm::TBox<String>>>> = Arc::new(
        std::sync::Mutex::new(Some(commute_stm::TBox::new(String::new()))),
    );
    let inside = door.clone();
    let mut fut = pin!(atomically_async(move |tx| {
        let guard = inside.lock().unwrap();
        match guard.as_ref() {
            Some(b) if b.read(tx)?.is_empty() => tx.retry(),
            Some(b) => Ok(b.read(tx)?.clone()),
            None => Ok("gone".to_owned()),
        }
    }));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let taken = atomically(|tx| {
        let boxed = door.lock().unwrap().take();
        reentrant.side.read(tx)?; // a read, so the attempt is a real transaction
        Ok(boxed.map(commute_stm::TBox::into_inner))
    });
    assert_eq!(taken.as_deref(), Some(""));
    assert_eq!(
        reentrant.wakes.load(Ordering::SeqCst),
        2,
        "woken by the kill, after the commit"
    );
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready("gone".to_owned()));
}

#[test]
fn a_pending_future_moves_to_another_thread_and_its_first_thread_exits() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let (wakes, waker) = counting_waker();
        // Polled first on a thread that then exits: nothing of the future stays in it.
        let fut = {
            let v = v.clone();
            let waker = waker.clone();
            std::thread::spawn(move || {
                let mut fut = Box::pin(atomically_async(move |tx| match v.read(tx)? {
                    0 => tx.retry(),
                    n => Ok(n),
                }));
                let mut cx = Context::from_waker(&waker);
                assert!(fut.as_mut().poll(&mut cx).is_pending());
                fut
            })
            .join()
            .unwrap()
        };
        let mut fut = fut;
        atomically(|tx| {
            v.write(tx, 8);
            Ok(())
        });
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        let mut cx = Context::from_waker(&waker);
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(8));
    });
}

#[test]
#[should_panic(expected = "has read no TVar")]
fn retry_without_reads_panics_from_poll() {
    block_on(atomically_async(|tx| tx.retry::<()>()));
}

#[test]
#[should_panic(expected = "polled after completion")]
fn polling_after_completion_panics() {
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut fut = pin!(atomically_async(|_| Ok(1)));
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(1));
    let _ = fut.as_mut().poll(&mut cx);
}

#[test]
fn a_panicking_closure_leaves_the_thread_clean() {
    let v = TVar::new(0u64);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(atomically_async(|tx| {
            v.write(tx, 9);
            if v.read(tx)? == 9 {
                panic!("in the closure");
            }
            Ok(())
        }))
    }));
    assert!(caught.is_err());
    assert!(!in_transaction());
    assert_eq!(v.load(), 0, "rolled back");
    assert_eq!(block_on(atomically_async(|tx| v.read(tx))), 0);
}

#[test]
#[should_panic(expected = "no timer")]
fn retry_until_in_an_async_transaction_panics_clearly() {
    let v = commute_stm::TVar::new(0u32);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    commute_stm::__block_on(commute_stm::atomically_async(|tx| {
        if v.read(tx)? == 0 {
            tx.retry_until(deadline)?;
        }
        Ok(())
    }));
}
