//! A committed `Taken` handle dropped, unused, inside a later transaction, once the take's
//! marker has been reclaimed: the handle is then the last of the item's two owners, and drops
//! it, but never inside the transaction (an item's `Drop` may use commute): once the
//! transaction has returned, exactly once.

mod common;

use common::reclaim_until;
use commute::{TQueue, atomically, in_transaction, reclaim_retired};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Counts its drops, and those that ran inside a transaction.
struct Probe {
    drops: Arc<AtomicU32>,
    inside: Arc<AtomicU32>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        if in_transaction() {
            self.inside.fetch_add(1, Ordering::SeqCst);
        }
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_handle_dropped_in_a_transaction_after_the_marker_drops_its_item_outside() {
    common::with_watchdog(20, || {
        let (drops, inside) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let q = TQueue::new();
        for _ in 0..8 {
            q.atomic().push(Probe {
                drops: drops.clone(),
                inside: inside.clone(),
            });
        }
        for round in 0..8 {
            let taken = atomically(|tx| q.take(tx)).expect("an item");
            // The take's marker is reclaimed (no other transaction runs in this test binary):
            // the handle is left as the item's last owner.
            for _ in 0..16 {
                reclaim_retired();
                std::thread::yield_now();
            }
            assert_eq!(
                drops.load(Ordering::SeqCst),
                round,
                "the handle holds the item"
            );
            let mut handle = Some(taken);
            atomically(|_| {
                drop(handle.take());
                Ok(())
            });
            assert!(
                reclaim_until(|| drops.load(Ordering::SeqCst) == round + 1),
                "round {round}: the item left in the handle was not dropped"
            );
            assert_eq!(
                inside.load(Ordering::SeqCst),
                0,
                "round {round}: the item was dropped inside the transaction"
            );
        }
        assert!(q.atomic().is_empty());
        assert_eq!(drops.load(Ordering::SeqCst), 8);
    });
}
