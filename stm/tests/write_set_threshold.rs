//! The write set crosses from a scanned list to an indexed one at its ninth entry. A thread whose
//! earlier attempt wrote many variables keeps the larger buffer: the ninth entry then fits
//! without a reallocation, and must still be indexed, or the attempt loses track of its own
//! writes (reads them as the committed values, and writes them twice).

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;

/// On a fresh thread: an attempt that writes `warm` variables (growing the thread's buffers),
/// then attempts that write `n` variables, read each back, write each again, and commit.
fn own_writes_read_back(warm: usize, n: usize) {
    let vars: Arc<Vec<TVar<u64>>> = Arc::new((0..32).map(|_| TVar::new(0)).collect());
    let v = vars.clone();
    with_watchdog(20, move || {
        std::thread::spawn(move || {
            atomically(|tx| {
                for x in v.iter().take(warm) {
                    x.write(tx, 1);
                }
                Ok(())
            });
            for round in 2..6u64 {
                atomically(|tx| {
                    for (i, x) in v.iter().take(n).enumerate() {
                        x.write(tx, round * 100 + i as u64);
                    }
                    for (i, x) in v.iter().take(n).enumerate() {
                        assert_eq!(
                            x.read(tx)?,
                            round * 100 + i as u64,
                            "{n} writes after {warm}: variable {i} does not read its own write"
                        );
                    }
                    for (i, x) in v.iter().take(n).enumerate() {
                        x.write(tx, round * 1000 + i as u64);
                    }
                    Ok(())
                });
                for (i, x) in v.iter().enumerate() {
                    let expected = if i < n {
                        round * 1000 + i as u64
                    } else if i < warm {
                        1
                    } else {
                        0
                    };
                    assert_eq!(x.load(), expected, "round {round}: variable {i}");
                }
            }
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
}

#[test]
fn a_ninth_write_after_a_large_attempt_is_read_back() {
    for n in 7..=12 {
        own_writes_read_back(20, n);
    }
}

#[test]
fn a_ninth_write_on_a_fresh_thread_is_read_back() {
    for n in 7..=12 {
        own_writes_read_back(0, n);
    }
}

#[test]
fn a_ninth_add_after_a_large_attempt_is_summed_once() {
    let vars: Arc<Vec<TVar<u64>>> = Arc::new((0..16).map(|_| TVar::new(0)).collect());
    let v = vars.clone();
    with_watchdog(20, move || {
        std::thread::spawn(move || {
            atomically(|tx| {
                for x in v.iter() {
                    x.write(tx, 0);
                }
                Ok(())
            });
            atomically(|tx| {
                for x in v.iter().take(9) {
                    x.add(tx, 1);
                }
                // A second add to each: folds into the entry of the first.
                for x in v.iter().take(9) {
                    x.add(tx, 2);
                }
                assert_eq!(v[8].read(tx)?, 3);
                assert_eq!(v[0].read(tx)?, 3);
                Ok(())
            });
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
    for (i, x) in vars.iter().enumerate() {
        assert_eq!(x.load(), if i < 9 { 3 } else { 0 }, "variable {i}");
    }
}
