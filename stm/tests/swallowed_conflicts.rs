//! A closure that swallows a conflict (uses a default instead of passing the `StmError` on)
//! goes against the docs, but must not commit what it computed from a value it never read: the
//! attempt was told to roll back, and it runs again. Before, it committed (a reviewer's
//! suspicion; the first test below failed). Both commit paths check it: the one of an attempt
//! that wrote, and the one of an attempt that wrote nothing (the second test, a reviewer's,
//! fails if only that path's check is taken out).

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `swallower` while an irrevocable transaction holds `x` (5) locked (it read it), until
/// `swallower`'s transaction has made two attempts, or for five seconds; `swallower` counts its
/// attempts in the counter it gets. Returns what `swallower` returned and its attempts.
fn with_x_held(swallower: impl FnOnce(&TVar<u64>, &AtomicUsize) -> u64) -> (u64, usize) {
    let x = Arc::new(TVar::new(5u64));
    let (held, attempts) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let holder = {
        let (x, held, attempts) = (x.clone(), held.clone(), attempts.clone());
        std::thread::spawn(move || {
            let y = Arc::new(TVar::new(0u64));
            atomically(|tx| {
                if !tx.is_irrevocable() {
                    irrevocable::conflict_unless_irrevocable(tx, &y)?;
                }
                x.read(tx)?;
                held.store(true, Ordering::SeqCst);
                let start = Instant::now();
                while attempts.load(Ordering::SeqCst) < 2
                    && start.elapsed() < Duration::from_secs(5)
                {
                    std::thread::yield_now();
                }
                Ok(())
            })
        })
    };
    while !held.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let got = swallower(&x, &attempts);
    holder.join().expect("the holder");
    (got, attempts.load(Ordering::SeqCst))
}

#[test]
fn an_attempt_that_swallowed_a_conflict_does_not_commit() {
    with_watchdog(60, || {
        let (z, attempts) = with_x_held(|x, attempts| {
            let z = TVar::new(0u64);
            atomically(|tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                // Against the docs: a conflict (x is locked by the irrevocable transaction)
                // swallowed into a default.
                let v = x.read(tx).unwrap_or(0);
                z.write(tx, v);
                Ok(())
            });
            z.load()
        });
        assert_eq!(z, 5, "the value of x, which never held 0");
        assert!(attempts >= 2);
    });
}

/// The same, in an attempt that writes nothing: its commit takes the read-only path, which has
/// a check of its own; it must not hand back what it computed from the default either.
#[test]
fn a_read_only_attempt_that_swallowed_a_conflict_does_not_commit() {
    with_watchdog(60, || {
        let (seen, attempts) = with_x_held(|x, attempts| {
            atomically(|tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Ok(x.read(tx).unwrap_or(0))
            })
        });
        assert_eq!(seen, 5, "the value of x, which never held 0");
        assert!(attempts >= 2);
    });
}
