//! Memory of a map under churn while a snapshot stays open: bounded by the map's size (one old
//! bucket per bucket changed), not by the number of updates. Alone in its test binary, with a
//! counting allocator: other tests would allocate meanwhile.

use commute::{TMap, atomically, read_only, reclaim_retired};
use commute_test_support::{CountingAllocator, allocated, peak, reset_peak, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `updates` random updates of `map` (keys below `keys`) on another thread while `during`
/// runs on this one; returns the most bytes live meanwhile.
fn churn_while<T>(
    map: &Arc<TMap<u64, u64>>,
    keys: u64,
    updates: u64,
    during: impl FnOnce(&AtomicU64) -> T,
) -> (usize, T) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    reset_peak();
    let writer = {
        let (map, done, stop) = (map.clone(), done.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            for i in 0..updates {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                map.atomic().insert(rng % keys, i);
                atomically(|tx| map.upsert(tx, (rng >> 32) % keys, || 0, |v| *v += 1));
                done.fetch_add(2, Ordering::Release);
            }
        })
    };
    let result = during(&done);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    (peak(), result)
}

#[test]
fn an_open_snapshot_keeps_at_most_one_old_bucket_per_bucket() {
    // The reader waits for the writer inside its snapshot: a writer held up would hang.
    with_watchdog(300, keeps_at_most_one_old_bucket_per_bucket);
}

fn keeps_at_most_one_old_bucket_per_bucket() {
    const KEYS: u64 = 20_000;
    const UPDATES: u64 = 200_000;
    let before = allocated();
    let map: Arc<TMap<u64, u64>> = Arc::new((0..KEYS).map(|k| (k, 0)).collect());
    reclaim_retired();
    let map_bytes = allocated() - before;

    // Without a reader: what churn alone keeps alive (reclamation batches).
    let base = allocated();
    let (peak_plain, ()) = churn_while(&map, KEYS, UPDATES / 4, |_| ());
    reclaim_retired();

    // A snapshot open for the whole churn, reading the map at its start and at its end.
    let base_open = allocated();
    let (peak_open, (first, last)) = churn_while(&map, KEYS, UPDATES, |done| {
        read_only(|tx| {
            let first = map.len(tx)?;
            let mut sum_before = 0u64;
            map.for_each(tx, |_, v| sum_before += v)?;
            // Wait for the whole churn with the snapshot open.
            while done.load(Ordering::Acquire) < UPDATES * 2 {
                thread::yield_now();
            }
            let mut sum_after = 0u64;
            map.for_each(tx, |_, v| sum_after += v)?;
            assert_eq!(sum_before, sum_after, "the snapshot moved");
            Ok((first, map.len(tx)?))
        })
    });
    assert_eq!(first, last);
    let kept = peak_open.saturating_sub(base_open);
    let churn = peak_plain.saturating_sub(base);
    eprintln!(
        "map of {KEYS} keys: {map_bytes} bytes; {UPDATES} x 2 updates: at most {churn} bytes \
         more live without a reader ({} per 4), {kept} bytes more with a snapshot open \
         ({:.2} x the map)",
        UPDATES / 4,
        kept as f64 / map_bytes as f64,
    );
    // An ordinary pin would keep every replaced bucket: about 400,000 of them, many times the
    // map. The snapshot keeps one old bucket per bucket changed, at most the map again (plus
    // the versions' bookkeeping and reclamation's batches).
    assert!(
        kept < 2 * map_bytes,
        "{kept} bytes kept with the snapshot open, for a map of {map_bytes}"
    );
}
