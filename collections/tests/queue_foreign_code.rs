//! Foreign code at points a queue does not control: an item whose drop panics when the queue is
//! dropped, and wakers of pending futures (a commit of its own calls them), which may panic or
//! poll their task on the spot. Each test failed (a leak, or a hang caught by the watchdog)
//! before the queue dropped the rest of its items past a panic and commits of their own called
//! wakers only once their work was done.
mod common;
use commute::{TQueue, atomically_async, reclaim_retired};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};

struct Counted(Arc<AtomicIsize>, bool);
impl Counted {
    fn new(live: &Arc<AtomicIsize>, panics: bool) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Counted(live.clone(), panics)
    }
}
impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(&self.0, false)
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        assert!(!self.1, "drop panics");
    }
}
struct PanickingWaker;
impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("waker panics");
    }
}

/// A dropped queue drops every item left in it, even past one whose drop panics. In a child
/// process: beside another test inside `atomically`, the drop is deferred to a later
/// reclamation pass, on whichever thread runs it (CI saw `drop(q)` return without the panic).
#[test]
fn dropped_queue_with_a_panicking_item_drops_the_others() {
    commute_test_support::in_child_process(|| {
        let live = Arc::new(AtomicIsize::new(0));
        let q = TQueue::new();
        q.atomic().push(Counted::new(&live, true));
        q.atomic().push(Counted::new(&live, false));
        q.atomic().push(Counted::new(&live, false));
        assert!(catch_unwind(AssertUnwindSafe(|| drop(q))).is_err());
        reclaim_retired();
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "items left in the dropped queue leaked"
        );
    });
}

/// A waker that panics when a push wakes it does not stop the push from linking its node.
#[test]
fn a_panicking_waker_does_not_leave_a_pushed_node_unlinked() {
    common::with_watchdog(10, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        let waker = Waker::from(Arc::new(PanickingWaker));
        let mut fut = Box::pin(q.atomic().pop_wait_async());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert!(catch_unwind(AssertUnwindSafe(|| q.atomic().push(1))).is_err());
        drop(fut);
        assert_eq!(q.atomic().len(), 1);
        assert_eq!(q.atomic().pop(), Some(1)); // hangs
    });
}

/// A waker that polls its task on the spot (the task pops) finds the pushed item linked.
#[test]
fn an_inline_waker_that_pops_does_not_hang() {
    common::with_watchdog(10, || {
        struct Inline(Arc<TQueue<u32>>, Arc<AtomicUsize>);
        impl Wake for Inline {
            fn wake(self: Arc<Self>) {
                if let Some(x) = self.0.atomic().pop() {
                    self.1.store(x as usize, Ordering::SeqCst);
                }
            }
        }
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        let got = Arc::new(AtomicUsize::new(0));
        let waker = Waker::from(Arc::new(Inline(q.clone(), got.clone())));
        let mut fut = Box::pin(q.atomic().pop_wait_async());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        q.atomic().push(5); // never returns
        assert_eq!(got.load(Ordering::SeqCst), 5);
    });
}

/// A waker that panics when a pop wakes it does not stop the pop from retiring what it
/// replaced: the item is dropped once.
#[test]
fn a_panicking_waker_does_not_leak_the_popped_item() {
    common::with_watchdog(10, || {
        let live = Arc::new(AtomicIsize::new(0));
        let q = Arc::new(TQueue::new());
        q.atomic().push(Counted::new(&live, false));
        let waker = Waker::from(Arc::new(PanickingWaker));
        let q2 = q.clone();
        let mut fut = Box::pin(atomically_async(move |tx| {
            if q2.is_empty(tx)? { Ok(()) } else { tx.retry() } // waits on `head`
        }));
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert!(catch_unwind(AssertUnwindSafe(|| q.atomic().pop())).is_err());
        drop(fut);
        drop(q);
        reclaim_retired();
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "the popped item was never dropped"
        );
    });
}

/// The queue of [`WaitsWhenDropped`]'s test: its items' `clone` pops it.
static WAITING_QUEUE: std::sync::OnceLock<TQueue<WaitsWhenDropped>> = std::sync::OnceLock::new();
/// Set: the next clone of a [`WaitsWhenDropped`] pops [`WAITING_QUEUE`], and the clone waits for
/// readers when dropped.
static CLONE_POPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// How many items that wait for readers were dropped.
static WAITED: AtomicUsize = AtomicUsize::new(0);

/// An item whose destructor may wait for readers (as a queue's `Taken::into_inner` does), which
/// a thread may do once it is outside transactions and pins.
struct WaitsWhenDropped {
    id: u32,
    waits: bool,
}

impl Clone for WaitsWhenDropped {
    fn clone(&self) -> Self {
        let pops = CLONE_POPS.swap(false, Ordering::SeqCst);
        if pops {
            let q = WAITING_QUEUE.get().expect("the test's queue");
            assert_eq!(q.atomic().pop().map(|item| item.id), Some(self.id));
        }
        WaitsWhenDropped {
            id: self.id,
            waits: pops,
        }
    }
}

impl Drop for WaitsWhenDropped {
    fn drop(&mut self) {
        if self.waits {
            commute::wait_for_readers(commute::version_bound());
            WAITED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A pop of its own whose commit finds the head moved drops its copy of the item outside its
/// pin, where the copy may wait for readers, then pops the next item.
#[test]
fn a_refused_pop_alone_drops_its_copy_after_its_pin() {
    let q = WAITING_QUEUE.get_or_init(TQueue::new);
    for id in 0..3 {
        q.atomic().push(WaitsWhenDropped { id, waits: false });
    }
    CLONE_POPS.store(true, Ordering::SeqCst);
    assert_eq!(q.atomic().pop().map(|item| item.id), Some(1));
    assert_eq!(WAITED.load(Ordering::SeqCst), 1);
    assert_eq!(q.atomic().pop().map(|item| item.id), Some(2));
    assert!(q.atomic().pop().is_none());
}
