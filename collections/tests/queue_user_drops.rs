//! Items of the queues that the library lets go of (the copy a one-call pop or drain made in an
//! attempt whose commit was refused, a snapshot attempt's, the copy a push into a full bounded
//! queue could not place) are dropped outside transactions and pins, where their `Drop` may use
//! commute. Each test failed before ("called inside a transaction" from the item's `Drop`):
//! the refused and snapshot attempts' until the core dropped what such an attempt returned
//! outside it, the drain's and the full push's until the queues let go of their copies so.

use commute::{TBoundedQueue, TCounter, TQueue};
use commute_test_support::with_watchdog;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The tests that share [`HOOK`] run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

type Hook = Box<dyn FnOnce() + Send>;
/// Run (once) by the next clone of a [`Waits`] item, which then waits for readers when dropped.
static HOOK: Mutex<Option<Hook>> = Mutex::new(None);
/// How many items that wait for readers were dropped.
static WAITED: AtomicUsize = AtomicUsize::new(0);

/// An item whose destructor may wait for readers (as `Taken::into_inner` does).
struct Waits {
    id: u32,
    waits: bool,
}

impl Waits {
    fn new(id: u32) -> Self {
        Waits { id, waits: false }
    }
}

impl Clone for Waits {
    fn clone(&self) -> Self {
        let hook = HOOK.lock().expect("the hook").take();
        let waits = hook.is_some();
        if let Some(hook) = hook {
            hook();
        }
        Waits { id: self.id, waits }
    }
}

impl Drop for Waits {
    fn drop(&mut self) {
        if self.waits {
            commute::wait_for_readers(commute::version_bound());
            WAITED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Sets [`HOOK`]: the next clone of a [`Waits`] item has another thread pop item 0 from the
/// queue `pop_first` pops (one call), so that the cloning attempt's commit is refused.
fn next_clone_pops_elsewhere(pop_first: fn() -> Option<u32>) {
    *HOOK.lock().expect("the hook") = Some(Box::new(move || {
        let got = std::thread::spawn(pop_first)
            .join()
            .expect("the other thread");
        assert_eq!(got, Some(0));
    }));
}

#[test]
fn a_refused_bounded_pop_alone_drops_its_copy_outside_the_transaction() {
    let _s = serial();
    static Q: OnceLock<TBoundedQueue<Waits>> = OnceLock::new();
    let q = Q.get_or_init(|| TBoundedQueue::with_capacity(8));
    for id in 0..3 {
        q.atomic().push(Waits::new(id));
    }
    let before = WAITED.load(Ordering::SeqCst);
    // The pop's copy of item 0 lets another thread pop item 0 first: its commit is refused.
    next_clone_pops_elsewhere(|| Q.get().expect("the queue").atomic().pop().map(|w| w.id));
    let got = with_watchdog(20, || {
        Q.get().expect("the queue").atomic().pop().map(|w| w.id)
    });
    assert_eq!(got, Some(1));
    assert_eq!(WAITED.load(Ordering::SeqCst), before + 1);
    assert_eq!(q.atomic().len(), 1);
    assert_eq!(q.atomic().pop().map(|w| w.id), Some(2));
}

#[test]
fn a_refused_drain_alone_drops_its_copies_outside_the_transaction() {
    let _s = serial();
    static Q: OnceLock<TQueue<Waits>> = OnceLock::new();
    let q = Q.get_or_init(TQueue::new);
    for id in 0..3 {
        q.atomic().push(Waits::new(id));
    }
    let before = WAITED.load(Ordering::SeqCst);
    next_clone_pops_elsewhere(|| Q.get().expect("the queue").atomic().pop().map(|w| w.id));
    let got: Vec<u32> = with_watchdog(20, || {
        let drained = Q.get().expect("the queue").atomic().drain();
        drained.into_iter().map(|w| w.id).collect()
    });
    assert_eq!(got, [1, 2]);
    assert_eq!(WAITED.load(Ordering::SeqCst), before + 1);
    assert!(q.atomic().is_empty());
}

/// An item whose destructor updates a counter (a transaction of its own).
#[derive(Clone)]
struct Lease(Arc<TCounter>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.atomic().add(-1);
    }
}

/// Consumers popping one bounded queue one call at a time: pops whose commits are refused drop
/// their copies outside the transaction, and every item is popped once.
#[test]
fn bounded_pops_alone_under_contention_drop_refused_copies_outside() {
    let _s = serial();
    with_watchdog(120, || {
        for _ in 0..4 {
            let live = Arc::new(TCounter::new());
            let q = Arc::new(TBoundedQueue::with_capacity(1 << 16));
            const N: usize = 20_000;
            for _ in 0..N {
                live.atomic().add(1);
                q.atomic().push(Lease(live.clone()));
            }
            let consumers: Vec<_> = (0..4)
                .map(|_| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        let mut got = 0;
                        while let Some(lease) = q.atomic().pop() {
                            drop(lease);
                            got += 1;
                        }
                        got
                    })
                })
                .collect();
            let popped: usize = consumers
                .into_iter()
                .map(|c| c.join().expect("no consumer panics"))
                .sum();
            assert_eq!(popped, N);
        }
    });
}

#[test]
fn a_snapshot_attempts_pop_drops_its_copy_outside_the_transaction() {
    let _s = serial();
    let live = Arc::new(TCounter::new());
    let q = TQueue::new();
    live.atomic().add(1);
    q.atomic().push(Lease(live.clone()));
    // A pop writes: the snapshot attempt runs again as an ordinary transaction.
    let got = commute::read_only(|tx| q.pop(tx));
    assert!(got.is_some());
    drop(got);
    assert!(q.atomic().is_empty());
}

/// A one-call push into a full bounded queue waits for room; the copy an attempt could not
/// place is dropped outside the transaction.
#[test]
fn a_push_alone_into_a_full_bounded_queue_drops_its_copy_outside() {
    let _s = serial();
    with_watchdog(20, || {
        let live = Arc::new(TCounter::new());
        let q = Arc::new(TBoundedQueue::with_capacity(1));
        live.atomic().add(1);
        q.atomic().push(Lease(live.clone()));
        let pusher = {
            let (q, live) = (q.clone(), live.clone());
            std::thread::spawn(move || {
                live.atomic().add(1);
                q.atomic().push(Lease(live.clone())); // full: waits for the pop below
            })
        };
        // Once the pusher is waiting (its attempt found the queue full), make room.
        while commute::blocked_transactions().is_empty() {
            std::thread::yield_now();
        }
        drop(q.atomic().pop_wait());
        pusher.join().expect("the push does not panic");
        assert_eq!(q.atomic().len(), 1);
    });
}
