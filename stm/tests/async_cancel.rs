//! Cancel-safety of `atomically_async`: a future dropped while pending leaves no registration
//! behind, and a later commit wakes nobody stale, even when the variables it waited on were
//! dropped meanwhile. One test per file: the registration count is process-wide.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use commute_stm::{TVar, atomically, atomically_async, pending_async_registrations};

struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn write(v: &TVar<u64>, value: u64) {
    atomically(|tx| {
        v.write(tx, value);
        Ok(())
    });
}

#[test]
fn dropped_pending_futures_leave_nothing_behind() {
    let wakes = Arc::new(Counting(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);

    // 1. A future waiting on two variables, dropped while pending.
    let a = TVar::new(0u64);
    let b = TVar::new(0u64);
    {
        let mut fut = Box::pin(atomically_async(|tx| {
            if a.read(tx)? + b.read(tx)? == 0 {
                return tx.retry();
            }
            Ok(())
        }));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            pending_async_registrations(),
            2,
            "one entry per variable read"
        );
    }
    assert_eq!(
        pending_async_registrations(),
        0,
        "the dropped future deregistered"
    );
    write(&a, 1);
    write(&b, 1);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "no stale waker woken");

    // 2. A `'static` future holding `Arc` clones, spawned-style, dropped while pending.
    let shared = Arc::new(TVar::new(0u64));
    {
        let held = shared.clone();
        let mut fut: Pin<Box<dyn Future<Output = u64> + Send>> =
            Box::pin(atomically_async(move |tx| match held.read(tx)? {
                0 => tx.retry(),
                n => Ok(n),
            }));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pending_async_registrations(), 1);
    }
    assert_eq!(pending_async_registrations(), 0);
    assert_eq!(
        Arc::strong_count(&shared),
        1,
        "the closure's clone went with the future"
    );
    write(&shared, 9);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0);

    // 3. The variable waited on is dropped while the future is pending: the closure reached it
    //    through shared state, not through anything it owns. Waking and deregistering must not
    //    touch the freed variable (run under valgrind: `scripts/valgrind.sh`).
    let door: Arc<Mutex<Option<Arc<TVar<u64>>>>> =
        Arc::new(Mutex::new(Some(Arc::new(TVar::new(0)))));
    {
        let inside = door.clone();
        let mut fut = Box::pin(atomically_async(move |tx| {
            let var = inside.lock().unwrap().clone();
            match var {
                Some(var) => match var.read(tx)? {
                    0 => tx.retry(),
                    n => Ok(n),
                },
                None => Ok(0),
            }
        }));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pending_async_registrations(), 1);
        // The last handle goes while the future waits; the variable is freed now.
        let gone = door.lock().unwrap().take();
        drop(gone);
        // New variables may take its address; commits to them are at most a spurious wake.
        let fresh: Vec<TVar<u64>> = (0..64).map(TVar::new).collect();
        for v in &fresh {
            write(v, 1);
        }
        drop(fut);
    }
    assert_eq!(pending_async_registrations(), 0);

    // 4. Woken, then dropped before the next poll: nothing left either.
    let c = TVar::new(0u64);
    {
        let mut fut = Box::pin(atomically_async(|tx| match c.read(tx)? {
            0 => tx.retry(),
            n => Ok(n),
        }));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        let before = wakes.0.load(Ordering::SeqCst);
        write(&c, 2);
        assert_eq!(wakes.0.load(Ordering::SeqCst), before + 1, "woken once");
    }
    assert_eq!(pending_async_registrations(), 0);
    write(&c, 3);
    commute_stm::reclaim_retired();
}
