//! Snapshots of collections (`read_only`): a whole-map walk commits in its first attempt while
//! transfers go on, with an exact sum; lengths and queue contents are consistent states.
//!
//! Readers wait, in the middle of their snapshot, until writers have committed more: a writer
//! held up by the reader would deadlock, caught by the watchdog.

use commute::{TMap, TQueue, atomically, read_only};
use commute_test_support::{spawn_counted, wait_for_more, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The measurement as a test: one transaction sums a 100,000-entry map, pausing (here:
/// waiting for the writer) every 10,000 entries, while another thread runs transfers on random
/// keys. Each of 5 rounds commits in one attempt, never irrevocably, with the exact sum.
#[test]
fn a_whole_map_sum_commits_in_one_attempt_under_transfers() {
    with_watchdog(300, || {
        const KEYS: u64 = 100_000;
        let map: Arc<TMap<u64, i64>> = Arc::new((0..KEYS).map(|k| (k, 10)).collect());
        let (stop, transfers) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let writer = {
            let map = map.clone();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            spawn_counted(&stop, &transfers, move |_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let (a, b) = (rng % KEYS, (rng >> 32) % KEYS);
                atomically(|tx| {
                    map.upsert(tx, a, || 0, |v| *v -= 1)?;
                    map.upsert(tx, b, || 0, |v| *v += 1)
                });
            })
        };
        for round in 0..5 {
            let mut attempts = 0;
            let mut during = 0;
            let sum = read_only(|tx| {
                attempts += 1;
                assert!(tx.is_snapshot() && !tx.is_irrevocable());
                let start = transfers.load(Ordering::Acquire);
                let (mut sum, mut seen) = (0, 0u64);
                map.for_each(tx, |_, v| {
                    sum += v;
                    seen += 1;
                    if seen % 10_000 == 0 {
                        wait_for_more(&transfers, 50);
                    }
                })?;
                assert_eq!(map.len(tx)?, KEYS as usize);
                during = transfers.load(Ordering::Acquire) - start;
                Ok(sum)
            });
            assert_eq!(attempts, 1, "round {round}");
            assert_eq!(sum, 10 * KEYS as i64, "round {round}");
            assert!(
                during >= 500,
                "round {round}: {during} transfers during the walk"
            );
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
        let total = atomically(|tx| {
            let mut total = 0;
            map.for_each(tx, |_, v| total += v)?;
            Ok(total)
        });
        assert_eq!(total, 10 * KEYS as i64);
    });
}

/// Keys move (one removed, one added, in one commit): a snapshot's length always equals the
/// number of entries its walk finds.
#[test]
fn a_snapshot_length_matches_its_walk_while_keys_move() {
    with_watchdog(120, || {
        const LIVE: u64 = 500;
        let map: Arc<TMap<u64, u64>> = Arc::new((0..LIVE).map(|k| (k, k)).collect());
        let (stop, moves) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let writer = {
            let map = map.clone();
            spawn_counted(&stop, &moves, move |i| {
                atomically(|tx| {
                    map.remove(tx, &i)?;
                    map.insert(tx, i + LIVE, i + LIVE)?;
                    Ok(())
                });
            })
        };
        for _ in 0..50 {
            let (len, walked, min, max) = read_only(|tx| {
                let len = map.len(tx)?;
                wait_for_more(&moves, 5);
                let (mut walked, mut min, mut max) = (0, u64::MAX, 0);
                map.for_each(tx, |&k, &v| {
                    assert_eq!(k, v);
                    walked += 1;
                    min = min.min(k);
                    max = max.max(k);
                })?;
                Ok((len, walked, min, max))
            });
            assert_eq!(len, LIVE as usize);
            assert_eq!(walked, LIVE as usize);
            // The live keys are the window [min, min + LIVE): the snapshot is one state.
            assert_eq!(max - min, LIVE - 1);
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
    });
}

/// A producer pushes increasing numbers and a consumer pops them: a snapshot of the queue runs
/// in one attempt, and is always a run of consecutive numbers.
#[test]
fn a_queue_snapshot_is_a_consistent_run() {
    const BACKLOG: u64 = 256;
    with_watchdog(120, || {
        let q: Arc<TQueue<u64>> = Arc::new(TQueue::new());
        let (stop, pushed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        // Pop attempts (`popped`, the consumer's count) and items taken.
        let (popped, taken) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let producer = {
            let (q, stop, taken) = (q.clone(), stop.clone(), taken.clone());
            spawn_counted(&stop.clone(), &pushed, move |i| {
                // At most `BACKLOG` items ahead of the consumer: a one-call push is several
                // times faster than a transactional pop, and the walks below are as long as
                // the queue.
                while i >= taken.load(Ordering::Acquire) + BACKLOG && !stop.load(Ordering::Acquire)
                {
                    std::thread::yield_now();
                }
                q.atomic().push(i);
            })
        };
        let consumer = {
            let q = q.clone();
            spawn_counted(&stop, &popped, move |_| {
                if atomically(|tx| q.pop(tx)).is_some() {
                    taken.fetch_add(1, Ordering::Release);
                }
            })
        };
        let mut snapshots = 0;
        for _ in 0..50 {
            let items = read_only(|tx| {
                let items = q.iter(tx)?;
                if tx.is_snapshot() {
                    // Only a snapshot may wait for others inside: an ordinary transaction that
                    // waits would abort until it runs irrevocably, holding up the writers.
                    wait_for_more(&pushed, 3);
                    snapshots += 1;
                }
                Ok(items)
            });
            for pair in items.windows(2) {
                assert_eq!(pair[1], pair[0] + 1, "not a run: {items:?}");
            }
        }
        stop.store(true, Ordering::Release);
        producer.join().unwrap();
        consumer.join().unwrap();
        // Every read ran on its snapshot, in one attempt, although items came and went.
        assert_eq!(snapshots, 50);
    });
}

/// `Taken::into_inner` waits for the snapshots that may still read the item, not for one taken
/// after the take committed: a long status read does not hold up a worker that takes jobs.
#[test]
fn a_later_snapshot_does_not_hold_up_a_take() {
    with_watchdog(60, || {
        let q: Arc<TQueue<String>> = Arc::new(["job".to_string()].into_iter().collect());
        let taken = atomically(|tx| q.take(tx)).expect("one job queued");
        let (opened, open) = std::sync::mpsc::channel();
        let (close, closed) = std::sync::mpsc::channel::<()>();
        let reader = {
            let q = q.clone();
            std::thread::spawn(move || {
                read_only(|tx| {
                    let len = q.len(tx)?;
                    opened.send(()).unwrap();
                    closed.recv().unwrap();
                    Ok(len)
                })
            })
        };
        open.recv().unwrap();
        // The snapshot is open (and stays open until we say): this must not wait for it.
        assert_eq!(taken.into_inner(), "job");
        close.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
    });
}
