//! What a thread asleep in `retry` holds of the memory other threads drop: nothing but what it
//! waits on. A collection's memory is freed once the `atomically` calls running at its drop have
//! returned (an attempt may still hold its variables' addresses); a thread asleep in `retry`
//! counted as running for as long as it slept, so one idle waiter (a worker blocked in
//! `pop_wait`) kept every collection dropped anywhere in the process. Its own test binary: it
//! counts the process's live heap. (A reviewer's test; it failed before the fix, 6.5 MB held.)

use std::sync::Arc;

use commute::{TCounter, TMap, TVar, atomically, reclaim_retired};
use commute_test_support::{CountingAllocator, allocated, with_watchdog};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn a_thread_asleep_in_retry_does_not_hold_back_dropped_collections() {
    with_watchdog(60, || {
        let flag = Arc::new(TVar::new(false));
        let waiter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                atomically(|tx| if flag.read(tx)? { Ok(()) } else { tx.retry() })
            })
        };
        while commute::blocked_transactions().is_empty() {
            std::thread::yield_now();
        }
        reclaim_retired();
        let before = allocated();
        for i in 0..5_000u64 {
            let counter = TCounter::with_shards(4);
            counter.atomic().incr();
            drop(counter);
            let map: TMap<u64, u64> = (0..8).map(|k| (k, i)).collect();
            drop(map);
        }
        for _ in 0..3 {
            reclaim_retired();
        }
        let during = allocated();
        atomically(|tx| {
            flag.write(tx, true);
            Ok(())
        });
        waiter.join().unwrap();
        assert!(
            during <= before + 64 * 1024,
            "{} bytes held back while a thread slept in retry",
            during - before
        );
    });
}
