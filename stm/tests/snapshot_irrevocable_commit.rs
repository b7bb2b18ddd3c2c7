//! Snapshot readers against the irrevocable transaction's commit. A snapshot reads a variable
//! that the irrevocable transaction holds as the value under its lock (the value before it), and
//! that is right only while the commit is after the snapshot: the commit turns its locks into
//! plain ones before it decides which snapshots it is after. A snapshot that registers after
//! that decision (the commit is before it) and finds a variable still under the irrevocable
//! lock, not yet written back, must wait for the new value; reading the old one, beside the new
//! value of a variable written back already, would see the commit half done.
//!
//! A large write set makes the write-back long; snapshot readers start one after another
//! meanwhile, reading the variable written back last before the one written back first.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TVar, atomically, read_only};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const VARS: usize = 50_000;
const ROUNDS: u64 = 12;

#[test]
fn a_snapshot_never_sees_an_irrevocable_commit_half_done() {
    with_watchdog(60, || {
        let xs: Arc<Vec<TVar<u64>>> = Arc::new((0..VARS).map(|_| TVar::new(0)).collect());
        let y = Arc::new(TVar::new(0u64));
        let done = Arc::new(AtomicBool::new(false));
        let snapshots = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (xs, done, snapshots) = (xs.clone(), done.clone(), snapshots.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Acquire) {
                        let (last, first) = read_only(|tx| {
                            // The last variable written back first, then the first.
                            Ok((xs[VARS - 1].read(tx)?, xs[0].read(tx)?))
                        });
                        assert!(
                            first == last,
                            "a snapshot saw an irrevocable commit half done: the first variable \
                             written back holds round {first}, the last round {last}"
                        );
                        snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for round in 1..=ROUNDS {
            atomically(|tx| {
                irrevocable::conflict_unless_irrevocable(tx, &y)?;
                for x in xs.iter() {
                    x.write(tx, round);
                }
                Ok(())
            });
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
        assert!(xs.iter().all(|x| x.load() == ROUNDS));
        assert!(snapshots.load(Ordering::Relaxed) > 0);
    });
}
