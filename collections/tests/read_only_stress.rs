//! Overlapping snapshots under churn: two readers take snapshot after snapshot (so versions of
//! several epochs coexist, are cut and buried while others still read) while writers move money
//! between map entries and replace boxed values, a producer and a consumer run a queue, and
//! every value counts its drops. Every snapshot must be exact, in one attempt; at the end every
//! value must have been dropped exactly once.

use commute::{TBox, TMap, TQueue, atomically, read_only, reclaim_retired};
use commute_test_support::{Counted, spawn_counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[test]
fn overlapping_snapshots_stay_exact_and_drop_everything_once() {
    with_watchdog(300, || {
        const KEYS: u64 = 2_000;
        const BOXES: usize = 64;
        const ROUNDS: u64 = 30;
        const BACKLOG: u64 = 256;
        let live = Arc::new(AtomicUsize::new(0));
        let map: Arc<TMap<u64, i64>> = Arc::new((0..KEYS).map(|k| (k, 100)).collect());
        // The boxes hold values whose sum is always `BOXES * 1000`, moved in pairs.
        let boxes: Arc<Vec<TBox<Counted>>> = Arc::new(
            (0..BOXES)
                .map(|_| TBox::new(Counted::new(1000, &live)))
                .collect(),
        );
        let queue: Arc<TQueue<u64>> = Arc::new(TQueue::new());
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for seed in 1..=2u64 {
            let (map, boxes, live) = (map.clone(), boxes.clone(), live.clone());
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            workers.push(spawn_counted(&stop, &done, move |_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let (a, b) = (rng % KEYS, (rng >> 20) % KEYS);
                let (x, y) = ((rng >> 40) as usize % BOXES, (rng >> 50) as usize % BOXES);
                atomically(|tx| {
                    map.upsert(tx, a, || 0, |v| *v -= 7)?;
                    map.upsert(tx, b, || 0, |v| *v += 7)?;
                    if x != y {
                        let (vx, vy) = (boxes[x].read(tx)?.value(), boxes[y].read(tx)?.value());
                        let d = vx.min(3);
                        boxes[x].write(tx, Counted::new(vx - d, &live));
                        boxes[y].write(tx, Counted::new(vy + d, &live));
                    }
                    Ok(())
                });
            }));
        }
        // Items taken by the popper: the pusher stays at most `BACKLOG` ahead (a one-call push
        // is several times faster than a transactional pop, and every reader walks the queue).
        let taken = Arc::new(AtomicU64::new(0));
        {
            let (queue, stop2, taken) = (queue.clone(), stop.clone(), taken.clone());
            workers.push(spawn_counted(&stop, &done, move |i| {
                while i >= taken.load(Ordering::Acquire) + BACKLOG && !stop2.load(Ordering::Acquire)
                {
                    std::thread::yield_now();
                }
                queue.atomic().push(i);
            }));
        }
        {
            let queue = queue.clone();
            workers.push(spawn_counted(&stop, &done, move |_| {
                if atomically(|tx| queue.pop(tx)).is_some() {
                    taken.fetch_add(1, Ordering::Release);
                }
            }));
        }
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (map, boxes, queue) = (map.clone(), boxes.clone(), queue.clone());
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let mut attempts = 0;
                        let (sum, money, run_ok) = read_only(|tx| {
                            attempts += 1;
                            let mut sum = 0;
                            map.for_each(tx, |_, v| sum += v)?;
                            let mut money = 0;
                            for b in boxes.iter() {
                                money += b.read(tx)?.value();
                            }
                            let items = queue.iter(tx)?;
                            let run_ok = items.windows(2).all(|w| w[1] == w[0] + 1);
                            Ok((sum, money, run_ok))
                        });
                        assert_eq!(attempts, 1);
                        assert_eq!(sum, 100 * KEYS as i64);
                        assert_eq!(money, 1000 * BOXES as u64);
                        assert!(run_ok, "a queue snapshot that is not a run");
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        for w in workers {
            w.join().unwrap();
        }
        assert!(done.load(Ordering::Acquire) > 0);
        // One more write of every box with no reader left lets go of the versions they kept.
        for b in boxes.iter() {
            atomically(|tx| {
                let v = b.read(tx)?.value();
                b.write(tx, Counted::new(v, &live));
                Ok(())
            });
        }
        reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), BOXES);
        drop(boxes);
        reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}
