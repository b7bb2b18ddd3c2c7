//! Exact results under two-thread contention, and opacity checked inside running attempts.

use commute_stm::{TVar, atomically, stats};
use commute_test_support::with_watchdog;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

fn on_threads<R: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn read_modify_write_increments_are_exact() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let w = v.clone();
        on_threads(2, move |_| {
            for _ in 0..50_000 {
                atomically(|tx| w.modify(tx, |x| x + 1));
            }
        });
        assert_eq!(v.load(), 100_000);
    });
}

#[test]
fn commutative_adds_are_exact_and_never_abort() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0i64));
        let w = v.clone();
        let deltas = on_threads(2, move |i| {
            let before = stats::thread();
            for _ in 0..50_000 {
                atomically(|tx| {
                    w.add(tx, if i == 0 { 3 } else { -1 });
                    Ok(())
                });
            }
            stats::thread() - before
        });
        assert_eq!(v.load(), 50_000 * 3 - 50_000);
        for d in deltas {
            assert_eq!(d.commits, 50_000);
            assert_eq!(d.aborts(), 0, "commutative adds aborted: {d}");
        }
    });
}

#[test]
fn a_read_after_add_sees_the_pending_update() {
    let v = TVar::new(10u32);
    let seen = atomically(|tx| {
        v.add(tx, 5);
        let mid = v.read(tx)?;
        v.add(tx, 1);
        Ok((mid, v.read(tx)?))
    });
    assert_eq!(seen, (15, 16));
    assert_eq!(v.load(), 16);
}

#[test]
fn bank_total_is_invariant_inside_every_attempt() {
    with_watchdog(20, || {
        const ACCOUNTS: usize = 8;
        const TOTAL: i64 = 1_000 * ACCOUNTS as i64;
        let bank: Arc<Vec<TVar<i64>>> = Arc::new((0..ACCOUNTS).map(|_| TVar::new(1_000)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let audited = Arc::new(AtomicU64::new(0));
        let (b, s, done) = (bank.clone(), stop.clone(), audited.clone());
        let audits = on_threads(3, move |i| {
            let mut audits = 0u64;
            let mut seed = i as u64 * 7919 + 1;
            if i == 2 {
                // Auditor: every attempt, even one that will abort, must see the invariant.
                loop {
                    let total = atomically(|tx| {
                        let mut sum = 0;
                        for acc in b.iter() {
                            sum += acc.read(tx)?;
                        }
                        assert_eq!(sum, TOTAL, "an attempt observed an inconsistent state");
                        Ok(sum)
                    });
                    assert_eq!(total, TOTAL);
                    audits += 1;
                    done.store(audits, Ordering::Relaxed);
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                }
            } else {
                for _ in 0..40_000 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let (from, to) = (
                        (seed % ACCOUNTS as u64) as usize,
                        ((seed >> 8) % ACCOUNTS as u64) as usize,
                    );
                    let amount = (seed >> 16) as i64 % 50;
                    atomically(|tx| {
                        b[from].modify(tx, |x| x - amount)?;
                        b[to].modify(tx, |x| x + amount)?;
                        Ok(())
                    });
                }
                if i == 0 {
                    // Stop the auditor only once it has audited alongside the transfers at least
                    // a little (on a loaded machine it may not have been scheduled yet).
                    while done.load(Ordering::Relaxed) < 10 {
                        std::thread::yield_now();
                    }
                    s.store(true, Ordering::Relaxed);
                }
            }
            audits
        });
        assert!(audits[2] >= 10);
        assert_eq!(bank.iter().map(TVar::load).sum::<i64>(), TOTAL);
    });
}

/// Two threads increment the same variables, reading each, one thread in ascending and the
/// other in descending order: every increment lands. With 4 variables the commit locks the set
/// as written and falls back to address order when the two meet; with 12 (past the write
/// set's index) it sorts first. Either way it validates reads of variables it has locked
/// itself, which it knows by its thread's tag in the lock word.
#[test]
fn crossed_read_modify_writes_of_small_and_large_sets_are_exact() {
    with_watchdog(60, || {
        for width in [4usize, 12] {
            let vars: Arc<Vec<TVar<u64>>> = Arc::new((0..width).map(|_| TVar::new(0)).collect());
            let v = vars.clone();
            on_threads(2, move |i| {
                for _ in 0..5_000 {
                    atomically(|tx| {
                        for k in 0..width {
                            let k = if i == 0 { k } else { width - 1 - k };
                            v[k].modify(tx, |x| x + 1)?;
                        }
                        Ok(())
                    });
                }
            });
            let values: Vec<u64> = vars.iter().map(TVar::load).collect();
            assert_eq!(values, vec![10_000; width], "{width} variables");
        }
    });
}
