//! `TMap` values that are not `Clone`: `TMap<K, Owned<T>>` shares each value between bucket
//! versions and moves it out of `remove` and `insert` through a `Taken` handle, exactly once,
//! never from an attempt that was rolled back, and never while a transaction that began
//! before the removal may still read it.

mod common;

use commute::{
    Change, Owned, TMap, TVar, Taken, atomically, in_transaction, read_only, reclaim_retired,
    try_atomically,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Counts its drops; not `Clone`; must be dropped outside transactions.
#[derive(Debug)]
struct Probe {
    id: usize,
    drops: Arc<Vec<AtomicU32>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        assert!(
            !in_transaction(),
            "a value was dropped inside a transaction"
        );
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

fn counters(n: usize) -> Arc<Vec<AtomicU32>> {
    Arc::new((0..n).map(|_| AtomicU32::new(0)).collect())
}

fn total(counts: &[AtomicU32]) -> u32 {
    counts.iter().map(|c| c.load(Ordering::SeqCst)).sum()
}

fn is_committed<T>(taken: &Taken<T>) -> bool {
    format!("{taken:?}").contains("committed: true")
}

fn probe(id: usize, drops: &Arc<Vec<AtomicU32>>) -> Owned<Probe> {
    Owned::new(Probe {
        id,
        drops: drops.clone(),
    })
}

type Job = Box<dyn FnOnce() -> usize + Send + Sync>;

#[test]
fn jobs_removed_by_several_threads_run_exactly_once() {
    common::with_watchdog(120, || {
        const JOBS: usize = 2_000;
        const WORKERS: usize = 3;
        let runs = counters(JOBS);
        // Small buckets: every insert and removal copies its neighbours' shares.
        let jobs: Arc<TMap<usize, Owned<Job>>> = Arc::new(TMap::with_config(4, 2, 4));
        for id in 0..JOBS {
            let runs = runs.clone();
            let job: Job = Box::new(move || {
                runs[id].fetch_add(1, Ordering::SeqCst);
                id
            });
            jobs.atomic().insert(id, Owned::new(job));
        }
        // Workers read `noise` in their removals, and a writer keeps changing it: attempts are
        // rolled back after removing, and their handles must hold nothing.
        let noise = Arc::new(TVar::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (noise, stop) = (noise.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    atomically(|tx| noise.modify(tx, |n| n + 1));
                    std::thread::yield_now();
                }
            })
        };
        // Every worker tries to remove every job, in its own order: each job is removed by
        // one committed attempt, whose handle runs it.
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (jobs, noise) = (jobs.clone(), noise.clone());
                std::thread::spawn(move || {
                    let (mut ran, mut rolled_back) = (0usize, 0usize);
                    for i in 0..JOBS {
                        let id = (i * (w + 1) * 7919) % JOBS;
                        // Every attempt's handle is kept: only the last one's removal committed.
                        let mut handles: Vec<Taken<Job>> = Vec::new();
                        let found = atomically(|tx| {
                            noise.read(tx)?;
                            match jobs.remove(tx, &id)? {
                                Some(taken) => {
                                    handles.push(taken);
                                    std::thread::yield_now();
                                    Ok(true)
                                }
                                None => Ok(false),
                            }
                        });
                        if !found {
                            assert!(handles.iter().all(|h| !is_committed(h)));
                            rolled_back += handles.len();
                            continue;
                        }
                        let committed = handles.pop().unwrap();
                        assert!(is_committed(&committed));
                        for aborted in handles {
                            assert!(!is_committed(&aborted), "a rolled-back removal");
                            rolled_back += 1;
                        }
                        assert_eq!(committed.into_inner()(), id);
                        ran += 1;
                    }
                    (ran, rolled_back)
                })
            })
            .collect();
        let (mut ran, mut rolled_back) = (0, 0);
        for worker in workers {
            let (r, b) = worker.join().unwrap();
            ran += r;
            rolled_back += b;
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        assert_eq!(ran, JOBS);
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
        assert!(jobs.atomic().is_empty());
        eprintln!("{ran} jobs run, {rolled_back} handles of rolled-back removals");
    });
}

#[test]
fn every_value_is_dropped_once_whatever_happens_to_it() {
    common::with_watchdog(120, || {
        const N: usize = 400;
        let drops = counters(N * 2);
        let map: TMap<usize, Owned<Probe>> = TMap::with_config(2, 2, 4);
        for id in 0..N {
            map.atomic().insert(id, probe(id, &drops));
        }
        let mut moved = Vec::new();
        for id in 0..N {
            match id % 5 {
                // Moved out, then dropped by us.
                0 => moved.push(map.atomic().remove(&id).unwrap().into_inner()),
                // Removed, handle dropped unused: dropped by the map's reclamation.
                1 => drop(atomically(|tx| map.remove(tx, &id)).unwrap()),
                // Replaced: the old value comes back through a handle, moved out.
                2 => moved.push(
                    map.atomic()
                        .insert(id, probe(N + id, &drops))
                        .unwrap()
                        .into_inner(),
                ),
                // Replaced in a transaction, handle dropped unused.
                3 => drop(atomically(|tx| map.insert(tx, id, probe(N + id, &drops))).unwrap()),
                // Left in the map (and its neighbours' updates share it many times).
                _ => {}
            }
        }
        // Removed by `alter` (not handed back): dropped with its bucket.
        atomically(|tx| map.alter(tx, 4, |v| (Change::Remove, v.map(|p| p.id))));
        assert_eq!(moved.len(), 2 * N / 5);
        for p in &moved {
            assert_eq!(drops[p.id].load(Ordering::SeqCst), 0, "moved, yet dropped");
        }
        let expected_left = N / 5 * 2 + N / 5 - 1; // replacements 2 and 3, and the 4s but one
        assert_eq!(map.atomic().len(), expected_left);
        drop(moved);
        drop(map);
        assert!(common::reclaim_until(
            || total(&drops) as usize == N + 2 * N / 5
        ));
        assert!(
            drops.iter().all(|d| d.load(Ordering::SeqCst) <= 1),
            "dropped twice"
        );
        for (id, d) in drops.iter().enumerate() {
            let made = id < N || matches!((id - N) % 5, 2 | 3);
            assert_eq!(d.load(Ordering::SeqCst), u32::from(made), "value {id}");
        }
    });
}

#[test]
fn a_rolled_back_removal_leaves_the_value_and_its_handle_holds_nothing() {
    let drops = counters(1);
    let map: TMap<u32, Owned<Probe>> = TMap::new();
    map.atomic().insert(1, probe(0, &drops));
    // Rolled back by the user's error: the handle escapes through a captured variable.
    let mut escaped = None;
    let result: Result<(), &str> = try_atomically(|tx| {
        escaped = map.remove(tx, &1)?;
        tx.abort("refused")
    });
    assert_eq!(result, Err("refused"));
    let escaped = escaped.expect("the attempt removed it");
    assert!(!is_committed(&escaped));
    // Rolled back by `or_else`'s retrying branch.
    let mut branch = None;
    let kept = atomically(|tx| {
        tx.or_else(
            |tx| {
                branch = map.remove(tx, &1)?;
                tx.retry()
            },
            |tx| Ok(map.get_ref(tx, &1)?.map(|p| p.id)),
        )
    });
    assert_eq!(kept, Some(0));
    let branch = branch.expect("the branch removed it");
    assert!(!is_committed(&branch));
    for handle in [escaped, branch] {
        let panic = catch_unwind(AssertUnwindSafe(|| handle.into_inner())).unwrap_err();
        let message = commute_test_support::panic_message(&*panic);
        assert!(message.contains("did not commit"), "{message}");
    }
    assert_eq!(
        atomically(|tx| Ok(map.get_ref(tx, &1)?.map(|p| p.id))),
        Some(0)
    );
    let value = map.atomic().remove(&1).unwrap().into_inner();
    assert_eq!(value.id, 0);
    drop(value);
    assert_eq!(total(&drops), 1);
    drop(map);
    reclaim_retired();
    assert_eq!(total(&drops), 1);
}

#[test]
fn a_value_does_not_move_while_a_snapshot_that_saw_it_still_reads() {
    common::with_watchdog(60, || {
        let map: Arc<TMap<u32, Owned<String>>> = Arc::new(TMap::new());
        map.atomic().insert(1, Owned::new("one".to_string()));
        let seen = Arc::new(AtomicBool::new(false));
        let removed = Arc::new(AtomicBool::new(false));
        let moved = Arc::new(AtomicBool::new(false));
        let remover = {
            let (map, seen, removed, moved) =
                (map.clone(), seen.clone(), removed.clone(), moved.clone());
            std::thread::spawn(move || {
                while !seen.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                let taken = map.atomic().remove(&1).expect("present");
                removed.store(true, Ordering::SeqCst);
                let value = taken.into_inner();
                moved.store(true, Ordering::SeqCst);
                value
            })
        };
        let mut reads = 0u64;
        let attempts = AtomicU64::new(0);
        read_only(|tx| {
            attempts.fetch_add(1, Ordering::SeqCst);
            // The snapshot is taken before the removal (the remover waits for the first read).
            let first = map.get_ref(tx, &1)?.map(|s| s.to_string());
            assert_eq!(first.as_deref(), Some("one"));
            seen.store(true, Ordering::SeqCst);
            // Wait for the removal to commit (a snapshot never holds a writer up; the watchdog
            // catches one that would)...
            while !removed.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            // ...then read the value again, many times, while the handle waits.
            for _ in 0..1_000 {
                assert_eq!(map.get_ref(tx, &1)?.map(|s| s.as_str()), Some("one"));
                reads += 1;
            }
            assert!(
                !moved.load(Ordering::SeqCst),
                "moved while a snapshot reads it"
            );
            Ok(())
        });
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(reads, 1_000);
        assert_eq!(remover.join().unwrap(), "one");
        assert!(map.atomic().is_empty());
    });
}

#[test]
fn readers_see_whole_values_while_writers_replace_and_move_them_out() {
    common::with_watchdog(120, || {
        const KEYS: u64 = 64;
        const ROUNDS: u64 = 3_000;
        // Each value is a vector of one repeated number: a torn or freed one shows.
        let map: Arc<TMap<u64, Owned<Vec<u64>>>> = Arc::new(TMap::with_config(4, 2, 4));
        for k in 0..KEYS {
            map.atomic().insert(k, Owned::new(vec![k; 32]));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (map, stop) = (map.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut checked = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        atomically(|tx| {
                            map.for_each(tx, |_, v| {
                                assert!(v.iter().all(|&x| x == v[0]), "a torn value");
                            })
                        });
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let map = map.clone();
                std::thread::spawn(move || {
                    let mut sum = 0u64;
                    for r in 0..ROUNDS {
                        let k = (r * 7 + w) % KEYS;
                        let stamp = r * 2 + w;
                        let old = if r % 2 == 0 {
                            map.atomic().insert(k, Owned::new(vec![stamp; 32]))
                        } else {
                            atomically(|tx| map.insert(tx, k, Owned::new(vec![stamp; 32])))
                        };
                        let old = old.expect("every key stays present").into_inner();
                        assert!(old.iter().all(|&x| x == old[0]));
                        sum += old[0];
                    }
                    sum
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(map.atomic().len(), KEYS as usize);
    });
}
