//! `TQueue` memory: popped items, dropped queues and rolled-back pushes are freed. Its own test
//! binary, so that no other test file's running transaction holds back reclamation.

mod common;

use commute::{TQueue, atomically};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

#[test]
fn popped_items_and_dropped_queues_are_freed() {
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
        let settled = common::reclaim_until(|| live.load(Ordering::SeqCst) <= 1);
        assert!(
            settled,
            "round {round}: {} live",
            live.load(Ordering::SeqCst)
        );
    }
    for _ in 0..10 {
        live.fetch_add(1, Ordering::SeqCst);
        q.atomic().push(Tracked(live.clone()));
    }
    drop(q);
    let freed = common::reclaim_until(|| live.load(Ordering::SeqCst) == 0);
    assert!(freed, "{} live after the drop", live.load(Ordering::SeqCst));
}

#[test]
fn pushes_of_a_rolled_back_branch_are_freed_when_the_transaction_commits() {
    common::with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let q = TQueue::new();
        let tracked = || {
            live.fetch_add(1, Ordering::SeqCst);
            Tracked(live.clone())
        };
        atomically(|tx| {
            tx.or_else(
                |tx| {
                    q.push(tx, tracked());
                    q.push(tx, tracked());
                    tx.retry()
                },
                |_| Ok(()),
            )
        });
        // Not retired: never published, so freed with the attempt, no reclamation needed.
        assert_eq!(live.load(Ordering::SeqCst), 0, "a rolled-back push leaked");
        assert_eq!(q.atomic().len(), 0);
    });
}
