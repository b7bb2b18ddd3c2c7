//! Loom models of `atomically_async`: a future that retries registers its waker on what it read,
//! and a commit racing with that registration must wake it (or be seen by it).
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use commute_loom_tests::run_model;
use commute_stm::{TVar, atomically, atomically_async, pending_async_registrations};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// A waker that records that it was woken, in a loom atomic.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: StdArc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// A future waits for a slot to be filled while another thread fills it.
///
/// Catches lost wake-ups of the waker path: a future that returns `Pending` although the
/// commit it waits for happened between its attempt and its `WAITERS` flag (and so is never
/// woken), or a committer that sees the flag but misses the registration. After the producer
/// has finished, a pending future must have been woken, and its next poll must complete.
#[test]
fn waker_registration_vs_commit() {
    run_model("waker_registration_vs_commit", || {
        let slot = Arc::new(TVar::new(0u64));
        let producer = {
            let slot = slot.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    slot.write(tx, 7);
                    Ok(())
                })
            })
        };
        let flag = StdArc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(atomically_async(|tx| match slot.read(tx)? {
            0 => tx.retry(),
            n => Ok(n),
        }));
        let first = fut.as_mut().poll(&mut cx);
        producer.join().unwrap();
        match first {
            Poll::Ready(n) => assert_eq!(n, 7),
            Poll::Pending => {
                assert!(
                    flag.0.load(Ordering::Acquire),
                    "pending future not woken by the commit"
                );
                assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(7));
            }
        }
        assert_eq!(pending_async_registrations(), 0);
    });
}

/// A pending future is dropped on one thread while another commits to what it waits on.
///
/// Catches a deregistration that races badly with a committer's wake (an entry left behind,
/// or a waker called after its future's registration was removed and counted).
#[test]
fn cancel_vs_commit() {
    run_model("cancel_vs_commit", || {
        let slot = Arc::new(TVar::new(0u64));
        let flag = StdArc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(atomically_async({
            let slot = slot.clone();
            move |tx| match slot.read(tx)? {
                0 => tx.retry(),
                n => Ok(n),
            }
        }));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        let producer = {
            let slot = slot.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    slot.write(tx, 1);
                    Ok(())
                })
            })
        };
        drop(fut);
        producer.join().unwrap();
        assert_eq!(pending_async_registrations(), 0);
        assert_eq!(slot.load(), 1);
    });
}
