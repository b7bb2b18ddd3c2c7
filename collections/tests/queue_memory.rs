//! `TQueue` memory: popped items and dropped queues are freed. Its own test binary (one test), so
//! that no other test's running transaction holds back reclamation.

use commute::{TQueue, reclaim_retired};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn popped_items_and_dropped_queues_are_freed() {
    struct Tracked(Arc<AtomicUsize>);
    impl Clone for Tracked {
        fn clone(&self) -> Self {
            self.0.fetch_add(1, Ordering::SeqCst);
            Tracked(self.0.clone())
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let q = TQueue::new();
    for round in 0..100 {
        for _ in 0..100 {
            live.fetch_add(1, Ordering::SeqCst);
            q.atomic().push(Tracked(live.clone()));
        }
        for _ in 0..100 {
            drop(q.atomic().pop().expect("pushed above"));
        }
        // At most the current sentinel's item stays alive, once no other test's transaction is
        // pinned (tests share the process, and so the reclamation epoch).
        settle(|| live.load(Ordering::SeqCst) <= 1);
        assert!(
            live.load(Ordering::SeqCst) <= 1,
            "round {round}: {} live",
            live.load(Ordering::SeqCst)
        );
    }
    for _ in 0..10 {
        live.fetch_add(1, Ordering::SeqCst);
        q.atomic().push(Tracked(live.clone()));
    }
    drop(q);
    settle(|| live.load(Ordering::SeqCst) == 0);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// Runs reclamation until `done` holds (other tests' pinned transactions may delay it), at most
/// a bounded number of times.
fn settle(done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        reclaim_retired();
        if done() {
            return;
        }
        std::thread::yield_now();
    }
}
