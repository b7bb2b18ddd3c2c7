//! Items left in a dropped `TQueue` whose drop panics: every other item left is still dropped,
//! exactly once (as a `Vec` drops the rest of its elements), and the panic passes on.

mod common;

use common::reclaim_until;
use commute::{TBoundedQueue, TQueue};
use commute_test_support::panic_message;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

const BOOM: &str = "deliberate panic in a left item's drop";

/// Counts its drops by id; panics in its drop if `armed`.
struct Item {
    id: usize,
    armed: bool,
    drops: Arc<Vec<AtomicUsize>>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
        if self.armed {
            panic!("{BOOM}");
        }
    }
}

/// One test at a time: a queue is dropped at once only while no thread runs a transaction.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn drops(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

fn each_dropped_once(drops: &[AtomicUsize]) -> bool {
    drops.iter().all(|d| d.load(Ordering::SeqCst) == 1)
}

fn counts(drops: &[AtomicUsize]) -> Vec<usize> {
    drops.iter().map(|d| d.load(Ordering::SeqCst)).collect()
}

/// Runs `drop_queue`, which drops a queue holding one armed item, and checks that the panic
/// passed on and that every item is dropped once.
fn dropped_with_panics(drop_queue: impl FnOnce(), drops: &[AtomicUsize]) {
    let dropped = catch_unwind(AssertUnwindSafe(drop_queue));
    // The queue is dropped at once, as no thread runs a transaction (`serial`): its panic
    // passes on from the drop.
    let payload = dropped.expect_err("an item's drop panicked: the panic passes on");
    assert_eq!(panic_message(&*payload), BOOM);
    assert!(
        reclaim_until(|| each_dropped_once(drops)),
        "drops per item: {:?}",
        counts(drops)
    );
}

#[test]
fn a_dropped_queue_drops_every_item_left_when_one_drop_panics() {
    let _serial = serial();
    common::with_watchdog(20, || {
        const N: usize = 6;
        let drops = drops(N);
        let q = TQueue::new();
        // One armed item (a second panic during the unwinding would abort the process): the
        // first of those left in the queue.
        for id in 0..N {
            q.atomic().push(Item {
                id,
                armed: id == 1,
                drops: drops.clone(),
            });
        }
        // One item popped, so that the left ones start after a sentinel with an item.
        let first = q.atomic().take().expect("an item");
        assert_eq!(first.id, 0);
        drop(first);
        dropped_with_panics(move || drop(q), &drops);
    });
}

#[test]
fn a_dropped_bounded_queue_drops_every_item_left_when_one_drop_panics() {
    let _serial = serial();
    common::with_watchdog(20, || {
        const N: usize = 4;
        let drops = drops(N);
        let q = TBoundedQueue::with_capacity(N);
        for id in 0..N {
            let item = Item {
                id,
                armed: id == 0,
                drops: drops.clone(),
            };
            let mut item = Some(item);
            commute::atomically(|tx| q.try_push(tx, item.take().expect("one attempt")))
                .ok()
                .expect("room");
        }
        dropped_with_panics(move || drop(q), &drops);
    });
}
