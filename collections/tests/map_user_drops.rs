//! Keys and values of the map and set that the library lets go of (copies it made for a
//! one-call form, an argument it did not keep, copies left by a panic of user code) are
//! dropped outside transactions and pins, where their `Drop` may use commute. Each test failed
//! before (a panic from the `Drop`, or a process abort where it panicked while unwinding); the
//! refused commit's, before the core dropped what a refused attempt returned outside it.

mod common;

use common::OneBucket;
use commute::{Change, TCounter, TMap, TSet, atomically, in_transaction};
use commute_test_support::in_child_process;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// A key or value whose `Drop` uses commute (it counts itself with a transaction of its own),
/// as the docs allow for what the library drops.
#[derive(Debug)]
struct Registered {
    id: u32,
    drops: Arc<TCounter>,
}

impl Registered {
    fn new(id: u32, drops: &Arc<TCounter>) -> Self {
        Registered {
            id,
            drops: drops.clone(),
        }
    }
}

impl Clone for Registered {
    fn clone(&self) -> Self {
        if CLONE_RACES.swap(false, Ordering::SeqCst) {
            // Another thread updates the leaf of the map being read, and commits first.
            let drops = self.drops.clone();
            std::thread::spawn(move || {
                let m = RACED.get().expect("the test's map");
                m.atomic().insert(2, Registered::new(20, &drops));
            })
            .join()
            .expect("the other update");
        }
        Registered::new(self.id, &self.drops)
    }
}

impl PartialEq for Registered {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Registered {}

impl Hash for Registered {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        assert!(
            !in_transaction(),
            "a user value was dropped inside a transaction"
        );
        self.drops.atomic().incr();
    }
}

fn drops() -> Arc<TCounter> {
    Arc::new(TCounter::new())
}

#[test]
fn atomic_insert_if_absent_of_a_present_key_drops_its_copies_outside() {
    let d = drops();
    let m: TMap<u32, Registered> = TMap::new();
    assert!(m.atomic().insert_if_absent(1, Registered::new(1, &d)));
    assert!(!m.atomic().insert_if_absent(1, Registered::new(2, &d)));
    assert_eq!(m.atomic().get(&1).map(|v| v.id), Some(1));
}

#[test]
fn atomic_alter_that_keeps_or_removes_drops_its_key_outside() {
    let d = drops();
    let m: TMap<Registered, u32> = TMap::new();
    let r = m
        .atomic()
        .alter(Registered::new(1, &d), |v| (Change::Keep, v.copied()));
    assert_eq!(r, None);
    m.atomic().insert(Registered::new(1, &d), 1);
    m.atomic()
        .alter(Registered::new(1, &d), |_| (Change::Remove, ()));
    assert!(m.atomic().is_empty());
}

#[test]
fn atomic_set_insert_and_toggle_of_a_present_element_drop_their_copies_outside() {
    let d = drops();
    let s: TSet<Registered> = TSet::new();
    assert!(s.atomic().insert(Registered::new(1, &d)));
    assert!(!s.atomic().insert(Registered::new(1, &d)));
    assert_eq!(s.atomic().len(), 1);
    assert!(!s.atomic().toggle(Registered::new(1, &d)));
    assert!(s.atomic().is_empty());
}

#[test]
fn extend_with_present_keys_drops_what_it_replaces_outside() {
    let d = drops();
    let mut m: TMap<u32, Registered> = TMap::new();
    m.atomic().insert(1, Registered::new(1, &d));
    m.extend([(1, Registered::new(2, &d))]);
    assert_eq!(m.atomic().get(&1).map(|v| v.id), Some(2));
    let mut s: TSet<Registered> = TSet::new();
    s.atomic().insert(Registered::new(1, &d));
    s.extend([Registered::new(1, &d)]);
    assert_eq!(s.atomic().len(), 1);
}

/// The map of [`a_removed_value_handed_back_by_a_refused_commit_is_dropped_outside`].
static RACED: OnceLock<TMap<u32, Registered, OneBucket>> = OnceLock::new();
/// Set: the next clone of a [`Registered`] has another thread update [`RACED`] first.
static CLONE_RACES: AtomicBool = AtomicBool::new(false);

#[test]
fn a_removed_value_handed_back_by_a_refused_commit_is_dropped_outside() {
    let d = drops();
    let m = RACED.get_or_init(|| TMap::with_hasher(OneBucket));
    m.atomic().insert(1, Registered::new(1, &d));
    m.atomic().insert(2, Registered::new(2, &d));
    CLONE_RACES.store(true, Ordering::SeqCst);
    let removed = m.atomic().remove(&1);
    assert_eq!(removed.map(|v| v.id), Some(1));
    assert_eq!(m.atomic().len(), 1);
}

/// The key whose `Hash` panics, once armed (0: none).
static PANICKING_KEY: AtomicU32 = AtomicU32::new(0);

/// A key whose `Hash` panics for [`PANICKING_KEY`].
#[derive(Clone, PartialEq, Eq, Debug)]
struct TouchyKey(u32);

impl Hash for TouchyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert_ne!(self.0, PANICKING_KEY.load(Ordering::SeqCst), "Hash panics");
        self.0.hash(state)
    }
}

/// A `Hash` that panics while an insert splits a leaf (which hashes the leaf's keys again)
/// leaves the map unchanged; the copies the split made are dropped outside the transaction.
#[test]
fn a_hash_that_panics_in_a_split_drops_the_copies_outside() {
    in_child_process(|| {
        let d = drops();
        // Leaves of two entries: the third key of a leaf splits it.
        let m: TMap<TouchyKey, Registered> = TMap::with_config(1, 2, 2);
        m.atomic().insert(TouchyKey(1), Registered::new(1, &d));
        m.atomic().insert(TouchyKey(2), Registered::new(2, &d));
        PANICKING_KEY.store(2, Ordering::SeqCst);
        let inserted = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| m.insert(tx, TouchyKey(3), Registered::new(3, &d)))
        }));
        assert!(inserted.is_err(), "the Hash of key 2 panicked");
        PANICKING_KEY.store(0, Ordering::SeqCst);
        assert_eq!(m.atomic().len(), 2);
    });
}

/// A value whose `Clone` panics when it is fragile, and whose `Drop` waits for readers when it
/// says so (as a queue's `Taken::into_inner` does).
struct FragileWaiter {
    fragile: bool,
    waits: bool,
}

impl Clone for FragileWaiter {
    fn clone(&self) -> Self {
        assert!(!self.fragile, "a fragile value is never cloned");
        FragileWaiter {
            fragile: false,
            waits: self.waits,
        }
    }
}

impl Drop for FragileWaiter {
    fn drop(&mut self) {
        if self.waits {
            commute::wait_for_readers(commute::version_bound());
        }
    }
}

/// An update alone (`atomic().insert` of a present key) copies the other entries of the key's
/// leaf while pinned; a neighbour's `Clone` that panics leaves the copies and the caller's new
/// value to drop outside the pin.
#[test]
fn a_clone_that_panics_in_an_update_alone_drops_the_copies_outside_the_pin() {
    in_child_process(|| {
        let m: TMap<u32, FragileWaiter, OneBucket> = TMap::with_hasher(OneBucket);
        m.atomic().insert(
            1,
            FragileWaiter {
                fragile: false,
                waits: false,
            },
        );
        // In a transaction: a one-call insert of a new key would clone the value.
        let mut fragile = Some(FragileWaiter {
            fragile: true,
            waits: false,
        });
        atomically(|tx| m.insert(tx, 2, fragile.take().expect("one attempt")));
        let update = catch_unwind(AssertUnwindSafe(|| {
            // Key 1 is present: an update alone, which copies key 2's fragile value.
            m.atomic().insert(
                1,
                FragileWaiter {
                    fragile: false,
                    waits: true,
                },
            );
        }));
        assert!(update.is_err(), "the clone of key 2's value panicked");
    });
}

/// A value whose `Drop` waits for readers.
#[derive(Clone)]
struct WaitsOnDrop;

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        commute::wait_for_readers(commute::version_bound());
    }
}

/// The other map of [`a_transaction_run_by_a_clone_inside_a_lookup_alone_drops_nothing_pinned`].
static OTHER: OnceLock<TMap<u32, WaitsOnDrop, OneBucket>> = OnceLock::new();

/// A value whose `Clone` records it in another map, with a transaction of its own.
struct Recorded;

impl Clone for Recorded {
    fn clone(&self) -> Self {
        let other = OTHER.get().expect("the test's other map");
        // Two new keys of one leaf: the second insert replaces the leaf the first wrote in the
        // same attempt; that leaf, with its values, is freed when the attempt ends.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let k = NEXT.fetch_add(2, Ordering::SeqCst);
        atomically(|tx| {
            assert!(other.insert(tx, k, WaitsOnDrop)?.is_none());
            assert!(other.insert(tx, k + 1, WaitsOnDrop)?.is_none());
            Ok(())
        });
        Recorded
    }
}

/// `atomic().get` clones the value while pinned; what a transaction run by the clone frees
/// is dropped once the lookup's pin has ended.
#[test]
fn a_transaction_run_by_a_clone_inside_a_lookup_alone_drops_nothing_pinned() {
    let _ = OTHER.get_or_init(|| TMap::with_hasher(OneBucket));
    let m: TMap<u32, Recorded> = TMap::new();
    let mut v = Some(Recorded);
    atomically(|tx| m.insert(tx, 1, v.take().expect("one attempt")).map(|_| ()));
    assert!(m.atomic().get(&1).is_some());
    assert_eq!(OTHER.get().expect("the other map").atomic().len(), 2);
}

/// How many [`CountsWaiting`] values were dropped.
static WAITED_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A value whose `Drop` waits for readers, then counts itself.
#[derive(Clone)]
struct CountsWaiting;

impl Drop for CountsWaiting {
    fn drop(&mut self) {
        commute::wait_for_readers(commute::version_bound());
        WAITED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// A map dropped inside a pin (here `pinned`'s closure; as by a value's `Clone` in a one-call
/// lookup) drops its values once the pin has ended (or, while other threads run transactions,
/// by a later pass); they were dropped inside the pin before, where their `Drop` panicked.
#[test]
fn a_map_dropped_inside_a_pin_drops_its_values_outside_it() {
    let m: TMap<u32, CountsWaiting> = TMap::new();
    m.atomic().insert(1, CountsWaiting);
    let before = WAITED_DROPS.load(Ordering::SeqCst);
    commute::pinned(move || drop(m));
    let dropped = common::reclaim_until(|| WAITED_DROPS.load(Ordering::SeqCst) == before + 1);
    assert!(dropped, "the map's value was dropped");
}
