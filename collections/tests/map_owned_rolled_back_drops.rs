//! An `Owned` map value whose removal was rolled back is still dropped, exactly once, with the
//! map (or by a later removal's handle).
//!
//! A removal shares the value's cell with its `Taken` handle; when the removal is rolled back
//! (by `tx.abort`, by an `or_else` branch that retries) that share must be given back, or the
//! last bucket to let go of the cell never frees it and the value is never dropped. The other
//! tests move the value out afterwards (which drops it through the handle, leak or not), so a
//! share that was never given back went unnoticed.

use commute::{Owned, TMap, atomically, in_transaction, reclaim_retired, try_atomically};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Counts its drops; not `Clone`.
#[derive(Debug)]
struct Probe {
    drops: Arc<AtomicU32>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        assert!(
            !in_transaction(),
            "a value was dropped inside a transaction"
        );
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn probe(drops: &Arc<AtomicU32>) -> Owned<Probe> {
    Owned::new(Probe {
        drops: drops.clone(),
    })
}

/// Reclaims until `drops` reaches `expected` (other tests of this binary may hold reclamation
/// back for a while), or 5 seconds have passed; returns the count.
fn drops_reaching(drops: &AtomicU32, expected: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while drops.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        reclaim_retired();
        std::thread::yield_now();
    }
    drops.load(Ordering::SeqCst)
}

/// Removes key 1 in an attempt that `abort` rolls back, then in an `or_else` branch that
/// retries: two removals rolled back.
fn roll_back_removals(map: &TMap<u32, Owned<Probe>>) {
    let result: Result<(), &str> = try_atomically(|tx| {
        let taken = map.remove(tx, &1)?;
        assert!(taken.is_some());
        tx.abort("refused")
    });
    assert_eq!(result, Err("refused"));
    let present = atomically(|tx| {
        tx.or_else(
            |tx| {
                assert!(map.remove(tx, &1)?.is_some());
                tx.retry()
            },
            |tx| map.contains_key(tx, &1),
        )
    });
    assert!(present);
}

#[test]
fn a_value_left_in_the_map_after_rolled_back_removals_is_dropped_with_the_map() {
    let drops = Arc::new(AtomicU32::new(0));
    let map: TMap<u32, Owned<Probe>> = TMap::new();
    map.atomic().insert(1, probe(&drops));
    roll_back_removals(&map);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "still in the map");
    drop(map);
    assert_eq!(
        drops_reaching(&drops, 1),
        1,
        "the map is gone: its value must be dropped once"
    );
    for _ in 0..16 {
        reclaim_retired();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped twice");
}

#[test]
fn a_value_whose_later_removal_handle_is_dropped_unused_is_dropped_once() {
    let drops = Arc::new(AtomicU32::new(0));
    let map: TMap<u32, Owned<Probe>> = TMap::new();
    map.atomic().insert(1, probe(&drops));
    roll_back_removals(&map);
    // A committed removal whose handle is dropped without `into_inner`: the value goes with
    // the last bucket that held it.
    let taken = map.atomic().remove(&1).expect("still there");
    drop(taken);
    assert!(map.atomic().is_empty());
    assert_eq!(
        drops_reaching(&drops, 1),
        1,
        "removed and let go of: dropped once"
    );
    drop(map);
    for _ in 0..16 {
        reclaim_retired();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped twice");
}

#[test]
fn rolled_back_removals_of_many_values_leave_every_value_to_the_maps_drop() {
    let drops = Arc::new(AtomicU32::new(0));
    let map: TMap<u32, Owned<Probe>> = TMap::new();
    for k in 0..100 {
        map.atomic().insert(k, probe(&drops));
    }
    // One attempt removes them all and is rolled back.
    let result: Result<(), ()> = try_atomically(|tx| {
        for k in 0..100 {
            assert!(map.remove(tx, &k)?.is_some());
        }
        tx.abort(())
    });
    assert_eq!(result, Err(()));
    assert_eq!(map.atomic().len(), 100);
    drop(map);
    assert_eq!(drops_reaching(&drops, 100), 100);
}
