//! Every way of reading a `TCounter`'s total counts every shard, whichever threads added to
//! which: `Debug` (outside a transaction, and inside a map's snapshot), `atomic().get()`,
//! `load` and `get` inside a transaction all show the same exact total.
//!
//! The other tests read counters mostly from the thread that added to them (whose own shard
//! then holds the whole total), so a reading that looked only at the caller's shard, or
//! skipped a shard, went unnoticed.

mod common;

use commute::{TCounter, TMap, atomically};
use std::sync::Arc;

/// Adds `1 << t` from each of `threads` threads started one after another: the threads take
/// consecutive shard tickets, so the adds land on every shard, and the total tells which
/// adds a reading missed.
fn add_from_threads(c: &Arc<TCounter>, threads: u32) -> i64 {
    for t in 0..threads {
        let c = c.clone();
        std::thread::spawn(move || c.atomic().add(1 << t))
            .join()
            .unwrap();
    }
    (1i64 << threads) - 1
}

#[test]
fn one_shard_counter_shows_its_value_in_debug() {
    // One shard: every add lands on it, so a `Debug` that leaves out any shard shows 0.
    let c = TCounter::with_shards(1);
    c.atomic().add(5);
    assert_eq!(c.load(), 5);
    assert_eq!(format!("{c:?}"), "TCounter { value: 5, shards: 1 }");
}

#[test]
fn every_reading_sees_the_adds_of_every_thread() {
    common::with_watchdog(20, || {
        for shards in [1usize, 2, 4, 8] {
            let c = Arc::new(TCounter::with_shards(shards));
            let total = add_from_threads(&c, 16);
            assert_eq!(c.load(), total, "{shards} shards: load");
            assert_eq!(atomically(|tx| c.get(tx)), total, "{shards} shards: get");
            // The one-call get, from this thread and from a fresh one (another shard ticket).
            assert_eq!(c.atomic().get(), total, "{shards} shards: atomic().get()");
            let other = {
                let c = c.clone();
                std::thread::spawn(move || c.atomic().get()).join().unwrap()
            };
            assert_eq!(
                other, total,
                "{shards} shards: atomic().get() on another thread"
            );
            assert_eq!(
                format!("{c:?}"),
                format!("TCounter {{ value: {total}, shards: {shards} }}"),
                "{shards} shards: Debug"
            );
        }
    });
}

#[test]
fn a_counter_in_a_map_shows_its_total_in_the_maps_debug() {
    common::with_watchdog(20, || {
        let c = Arc::new(TCounter::with_shards(4));
        let total = add_from_threads(&c, 12);
        let c = Arc::try_unwrap(c).expect("the threads are done");
        let map: TMap<u8, Arc<TCounter>> = TMap::new();
        map.atomic().insert(1, Arc::new(c));
        let shown = format!("{map:?}");
        assert_eq!(
            shown,
            format!("{{1: TCounter {{ value: {total}, shards: 4 }}}}")
        );
    });
}
