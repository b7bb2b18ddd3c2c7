//! A `Taken` handle dropped inside a pin (`commute::pinned`, `TBox::load_with`'s closure)
//! dropped the item it left right there, inside the pin, when the take's marker had already
//! been reclaimed (the handle's drop deferred only inside a transaction): the user's values are
//! never dropped inside a pin (`drop_outside`), and an item whose `Drop` waits for readers
//! (here: moves out a `Taken` it holds) panicked. Such an item is now dropped once the pin ends.

use commute::{TQueue, Taken, atomically, pinned, reclaim_retired};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Taken by each test for its whole run: a test counts on its reclamation passes freeing the
/// take's marker, which a pin of the other test, running on another thread, would hold back
/// (the handle then came first, and the job was not dropped at the pin's end: a flaky failure).
static ALONE: Mutex<()> = Mutex::new(());

/// Jobs dropped, per test (`Job::test`).
static DROPPED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

struct Job {
    result: Option<Taken<u32>>,
    test: usize,
}

impl Drop for Job {
    fn drop(&mut self) {
        // A job dropped unrun still collects its result (a wait for readers: legal outside
        // transactions and pins, where commute promises to drop user values).
        if let Some(r) = self.result.take() {
            let _ = r.into_inner();
        }
        DROPPED[self.test].fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_taken_item_dropped_in_a_pin_is_dropped_once_the_pin_ends() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let results: TQueue<u32> = TQueue::new();
    results.atomic().push(5);
    let r = atomically(|tx| results.take(tx)).unwrap();
    let jobs: TQueue<Job> = TQueue::new();
    jobs.atomic().push(Job {
        result: Some(r),
        test: 0,
    });
    let handle = atomically(|tx| jobs.take(tx)).unwrap();
    // The take's marker is reclaimed (no other thread runs): it is done with the item first.
    for _ in 0..4 {
        reclaim_retired();
    }
    // Dropped unused inside a pin: the handle comes second and drops the job here.
    let outcome = catch_unwind(AssertUnwindSafe(|| pinned(move || drop(handle))));
    assert!(
        outcome.is_ok(),
        "the job's Drop ran inside the pin (and panicked waiting for readers)"
    );
    assert_eq!(
        DROPPED[0].load(Ordering::SeqCst),
        1,
        "dropped once the pin ended"
    );
}

/// The same through a `TMap<_, Owned<_>>` removal: the handle's share is the last once the old
/// bucket is reclaimed, and `Owned::release` drops the value inside the pin.
#[test]
fn a_taken_map_value_dropped_in_a_pin_is_dropped_once_the_pin_ends() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    use commute::{Owned, TMap};
    let results: TQueue<u32> = TQueue::new();
    results.atomic().push(5);
    let r = atomically(|tx| results.take(tx)).unwrap();
    let m: TMap<u32, Owned<Job>> = TMap::new();
    m.atomic().insert(
        1,
        Owned::new(Job {
            result: Some(r),
            test: 1,
        }),
    );
    let handle = m.atomic().remove(&1).unwrap();
    for _ in 0..4 {
        reclaim_retired();
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| pinned(move || drop(handle))));
    assert!(
        outcome.is_ok(),
        "the value's Drop ran inside the pin (and panicked waiting for readers)"
    );
    assert_eq!(
        DROPPED[1].load(Ordering::SeqCst),
        1,
        "dropped once the pin ended"
    );
}
