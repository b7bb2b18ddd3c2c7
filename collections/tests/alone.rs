//! The one-call forms that commit a single variable without a transaction (`TCounter`'s
//! `.atomic()` adds, `TMap`'s `.atomic()` lookups and updates of present keys) against
//! transactions on the same variables: no update is lost, and what they return is exact.

mod common;

use common::OneBucket;
use commute::{TCounter, TMap, atomically};
use commute_test_support::{Counted, in_child_process};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ROUNDS: u64 = 20_000;

#[test]
fn map_updates_alone_and_transactions_on_one_leaf_lose_nothing() {
    let m: Arc<TMap<u64, u64, OneBucket>> = Arc::new(TMap::with_hasher(OneBucket));
    for k in 0..4 {
        m.atomic().insert(k, 0);
    }
    let alone = {
        let m = m.clone();
        std::thread::spawn(move || {
            for i in 1..=ROUNDS {
                // Only this thread writes key 0: the value replaced is exactly the previous one.
                assert_eq!(m.atomic().insert(0, i), Some(i - 1));
                assert_eq!(m.atomic().get(&0), Some(i));
            }
        })
    };
    let transactional = {
        let m = m.clone();
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                atomically(|tx| {
                    let v = m.get(tx, &1)?.expect("key 1 is present");
                    m.insert(tx, 1, v + 1)?;
                    Ok(())
                });
            }
        })
    };
    alone.join().unwrap();
    transactional.join().unwrap();
    assert_eq!(m.atomic().get(&0), Some(ROUNDS));
    assert_eq!(
        m.atomic().get(&1),
        Some(ROUNDS),
        "a transaction's update was lost"
    );
    assert_eq!(m.atomic().len(), 4);
    assert!(m.atomic().contains_key(&3) && !m.atomic().contains_key(&4));
}

/// An update alone commits one leaf slot, found through the slots above it. A transaction that
/// reads the map, clears it (which replaces only the root slots) and writes back what it read
/// committed between the walk and the commit: the update landed in the cleared subtree, and was
/// lost though it reported success (a reviewer's test; it failed within a second).
#[test]
fn an_update_alone_below_an_inner_node_is_not_lost_to_a_clear_and_rebuild() {
    common::with_watchdog(120, || {
        // One root slot, inner nodes of two, leaves of one: every key sits below an inner
        // node, so `clear` replaces the root slot and never writes a key's own leaf slot.
        let map: Arc<TMap<u32, u64>> = Arc::new(TMap::with_config(1, 2, 1));
        for k in 0..8 {
            map.atomic().insert(k, 0);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rebuilds = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rebuilder = {
            let (map, stop, rebuilds) = (map.clone(), stop.clone(), rebuilds.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Serially, leaves the contents as they were.
                    atomically(|tx| {
                        let all = map.iter(tx)?;
                        map.clear(tx)?;
                        for (k, v) in all {
                            map.insert(tx, k, v)?;
                        }
                        Ok(())
                    });
                    rebuilds.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Updates until the rebuilder has run many times among them.
        let mut lost = None;
        let mut i = 0;
        while i < ROUNDS || rebuilds.load(Ordering::Relaxed) < 20_000 {
            i += 1;
            // Only this thread writes a new value of key 0: it replaces the previous one.
            let old = map.atomic().insert(0, i);
            if old != Some(i - 1) {
                lost = Some((i, old, map.atomic().get(&0)));
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        rebuilder.join().expect("the rebuilder");
        let rebuilds = rebuilds.load(Ordering::Relaxed);
        assert_eq!(
            lost, None,
            "(i, insert(0, i), get(0)) after {rebuilds} rebuilds"
        );
    });
}

#[test]
fn map_insert_of_a_new_key_still_counts_it() {
    let m = TMap::new();
    assert_eq!(m.atomic().insert("a", 1), None); // new: a transaction (the length changes)
    assert_eq!(m.atomic().insert("a", 2), Some(1)); // present: alone
    assert_eq!(m.atomic().len(), 1);
    assert_eq!(m.atomic().get("a"), Some(2));
}

#[test]
fn counter_adds_alone_and_in_transactions_sum_exactly() {
    let c = Arc::new(TCounter::with_shards(1)); // one shard: every add hits the same variable
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    if t == 0 {
                        c.atomic().incr();
                    } else {
                        atomically(|tx| {
                            c.add(tx, 2);
                            Ok(())
                        });
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.load(), 3 * ROUNDS as i64);
}

#[test]
#[should_panic(expected = "cannot be called inside one")]
fn atomic_forms_alone_panic_inside_a_transaction() {
    let m: TMap<u8, u8> = TMap::new();
    atomically(|_| Ok(m.atomic().get(&1)));
}

/// Each update alone retires the leaf holding the value it replaced, from inside the pin under
/// which it walked: the reclamation passes those retirements make due must still run (when the
/// pin ends), so replaced values are dropped as the updates go, not left to pile up. In a child
/// process, so that no other test's pinned thread holds reclamation back.
#[test]
fn values_replaced_by_updates_alone_are_dropped_as_they_go() {
    in_child_process(|| {
        let live = Arc::new(AtomicUsize::new(0));
        let m: TMap<u64, Arc<Counted>> = TMap::new();
        m.atomic().insert(1, Arc::new(Counted::new(0, &live)));
        for i in 1..=1_000 {
            let old = m.atomic().insert(1, Arc::new(Counted::new(i, &live)));
            assert_eq!(old.map(|v| v.value()), Some(i - 1));
        }
        // The map's value, plus those replaced but not reclaimed yet: less than two batches
        // of retirements (a pass runs every 16 or so).
        let alive = live.load(Ordering::Relaxed);
        assert!(
            (1..=40).contains(&alive),
            "{alive} values alive after 1,000 updates alone of one key"
        );
        assert_eq!(m.atomic().get(&1).map(|v| v.value()), Some(1_000));
        drop(m);
        commute::reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}

/// A value whose `Clone` panics if it is fragile, and which counts the drops that ran while
/// its thread was unwinding.
struct Brittle {
    fragile: bool,
    live: Arc<AtomicUsize>,
    dropped_unwinding: Arc<AtomicUsize>,
}

impl Brittle {
    fn new(fragile: bool, live: &Arc<AtomicUsize>, dropped_unwinding: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Brittle {
            fragile,
            live: live.clone(),
            dropped_unwinding: dropped_unwinding.clone(),
        }
    }
}

impl Clone for Brittle {
    fn clone(&self) -> Self {
        assert!(!self.fragile, "a fragile value is never cloned");
        Brittle::new(false, &self.live, &self.dropped_unwinding)
    }
}

impl Drop for Brittle {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        if std::thread::panicking() {
            self.dropped_unwinding.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An update alone whose copy of the old value panics (after its commit, still pinned) unwinds
/// without reclaiming there: no retired value is dropped while the thread unwinds, and each is
/// dropped once, later. In a child process, as above.
#[test]
fn a_panic_after_an_update_alone_runs_no_destructor_while_unwinding() {
    in_child_process(|| {
        let live = Arc::new(AtomicUsize::new(0));
        let dropped_unwinding = Arc::new(AtomicUsize::new(0));
        let m: TMap<u64, Brittle> = TMap::new();
        assert!(
            m.atomic()
                .insert(1, Brittle::new(false, &live, &dropped_unwinding))
                .is_none()
        );
        let mut panicked = 0;
        for _ in 0..200 {
            let value = Brittle::new(true, &live, &dropped_unwinding);
            let update = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(m.atomic().insert(1, value));
            }));
            panicked += usize::from(update.is_err());
        }
        // Every update but the first replaced a fragile value, whose copy panicked.
        assert_eq!(panicked, 199);
        assert_eq!(dropped_unwinding.load(Ordering::Relaxed), 0);
        // The replaced values are retired; a pass outside any unwinding frees them.
        assert!(m.atomic().contains_key(&1));
        commute::reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 1);
        drop(m);
        commute::reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 0);
        assert_eq!(dropped_unwinding.load(Ordering::Relaxed), 0);
    });
}

/// The map of [`WaitsWhenDropped`]'s test: its values' `clone` writes it.
static WAITING_MAP: std::sync::OnceLock<TMap<u64, WaitsWhenDropped, OneBucket>> =
    std::sync::OnceLock::new();
/// Set: the next clone of a [`WaitsWhenDropped`] inserts a key into [`WAITING_MAP`], and the
/// clone waits for readers when dropped.
static CLONE_WRITES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// How many values that wait for readers were dropped.
static WAITED: AtomicUsize = AtomicUsize::new(0);

/// A value whose destructor may wait for readers (as a queue's `Taken::into_inner` does),
/// which a thread may do once it is outside transactions and pins.
struct WaitsWhenDropped {
    waits: bool,
}

impl Clone for WaitsWhenDropped {
    fn clone(&self) -> Self {
        let writes = CLONE_WRITES.swap(false, Ordering::SeqCst);
        if writes {
            let map = WAITING_MAP.get().expect("the test's map");
            map.atomic().insert(3, WaitsWhenDropped { waits: false });
        }
        WaitsWhenDropped { waits: writes }
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

#[test]
fn an_update_alone_that_finds_its_leaf_changed_drops_its_copies_after_its_pin() {
    let m = WAITING_MAP.get_or_init(|| TMap::with_hasher(OneBucket));
    for k in 1..=2 {
        m.atomic().insert(k, WaitsWhenDropped { waits: false });
    }
    // The update copies key 2's value into its new leaf; the copy writes the map, so the
    // update's commit fails, and its leaf, with the copy, is dropped: outside the pin, where
    // the copy may wait for readers. A transaction then updates the key.
    CLONE_WRITES.store(true, Ordering::SeqCst);
    assert!(
        m.atomic()
            .insert(1, WaitsWhenDropped { waits: false })
            .is_some()
    );
    assert_eq!(WAITED.load(Ordering::SeqCst), 1);
    assert_eq!(m.atomic().len(), 3);
    let mut keys = m.atomic().keys();
    keys.sort_unstable();
    assert_eq!(keys, [1, 2, 3]);
}
