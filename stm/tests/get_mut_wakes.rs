//! `TBox::get_mut` changes a value that a `retry` may be waiting on: a thread or a future that
//! read the box through a handle it has let go of. The change must wake it, as a commit would.
//! Both tests failed before (a reviewer's): the sleeper counts as outside `atomically` while it
//! sleeps, and a pending future between polls, so `get_mut` changed the value in place and woke
//! nobody. Each test runs with no other thread inside `atomically`, which would hide the fault.

use commute_stm::{TBox, atomically, atomically_async, blocked_transactions};
use commute_test_support::with_watchdog;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A box behind a handle that the waiting side clones, reads through, and lets go of.
type Shared = Arc<Mutex<Arc<TBox<u64>>>>;

fn shared() -> Shared {
    Arc::new(Mutex::new(Arc::new(TBox::new(0))))
}

/// Reads the box through a clone of the handle, lets go of it, and waits for the value 1.
fn wait_for_one(shared: &Shared, tx: &commute_stm::Transaction) -> commute_stm::StmResult<u64> {
    let handle = shared.lock().unwrap().clone();
    let v = *handle.read(tx)?;
    drop(handle);
    if v == 1 { Ok(v) } else { tx.retry() }
}

/// Sets the box to 1 through `get_mut`: the waiting side holds no handle now.
fn set_to_one(shared: &Shared) {
    let mut handle = shared.lock().unwrap();
    *Arc::get_mut(&mut handle)
        .expect("the waiting side let go of its handle")
        .get_mut() = 1;
}

#[test]
fn a_change_through_get_mut_wakes_a_thread_asleep_in_retry() {
    with_watchdog(60, || {
        let shared = shared();
        let waiter = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("get-mut-sleeper".into())
                .spawn(move || atomically(|tx| wait_for_one(&shared, tx)))
                .unwrap()
        };
        // Asleep, so counted outside `atomically` (a readiness check, not a sleep).
        while !blocked_transactions()
            .iter()
            .any(|b| b.thread_name() == Some("get-mut-sleeper"))
        {
            std::thread::yield_now();
        }
        set_to_one(&shared);
        assert_eq!(waiter.join().unwrap(), 1);
    });
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn a_change_through_get_mut_wakes_a_pending_future() {
    with_watchdog(60, || {
        let shared = shared();
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(atomically_async(|tx| wait_for_one(&shared, tx)));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        set_to_one(&shared);
        assert!(
            woken.0.load(Ordering::Acquire),
            "the box changed and the pending future was not woken"
        );
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(1));
    });
}
