//! The node handed to `TVar::publish_box_on_commit` by an attempt that is rolled back (its
//! publishing operation never runs) is freed with the attempt, once: by an abort, and by a
//! conflict after which the closure runs again and publishes a node of its own.

use commute_stm::{TVar, atomically, try_atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn link(_old: u64, _version: u64, node: *mut Counted) -> u64 {
    node as usize as u64
}

fn node(value: u64, live: &Arc<AtomicUsize>) -> *mut Counted {
    Box::into_raw(Box::new(Counted::new(value, live)))
}

#[test]
fn the_node_of_an_aborted_publishing_attempt_is_freed() {
    let live = Arc::new(AtomicUsize::new(0));
    let slot = TVar::new(0u64);
    for _ in 0..10 {
        let aborted: Result<(), &str> = try_atomically(|tx| {
            // SAFETY: `link` neither panics nor blocks; the node is fresh.
            unsafe { slot.publish_box_on_commit(tx, node(1, &live), link) };
            tx.abort("rolled back")
        });
        assert_eq!(aborted, Err("rolled back"));
    }
    assert_eq!(slot.load(), 0);
    assert_eq!(
        live.load(Ordering::Relaxed),
        0,
        "nodes of rolled-back publishing operations were never freed"
    );
}

#[test]
fn the_node_of_a_conflicting_publishing_attempt_is_freed() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let slot = TVar::new(0u64);
        let other = Arc::new(TVar::new(0u64));
        let mut attempts = 0;
        atomically(|tx| {
            attempts += 1;
            // SAFETY: `link` neither panics nor blocks; the node is fresh.
            unsafe { slot.publish_box_on_commit(tx, node(attempts, &live), link) };
            other.read(tx)?;
            if attempts == 1 {
                let o = other.clone();
                std::thread::spawn(move || atomically(|tx| o.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
                other.read(tx)?; // newer than the attempt's snapshot: a conflict
            }
            Ok(())
        });
        assert!(attempts >= 2);
        assert_eq!(
            live.load(Ordering::Relaxed),
            1,
            "only the published node is alive (the rolled-back attempts' nodes are freed)"
        );
        let published = slot.load() as usize as *mut Counted;
        // SAFETY: the published node, owned by the test now; freed once.
        let published = unsafe { Box::from_raw(published) };
        assert_eq!(published.value(), attempts);
        drop(published);
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}
