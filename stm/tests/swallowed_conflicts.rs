//! A closure that swallows a conflict (uses a default instead of passing the `StmError` on)
//! goes against the docs, but must not commit what it computed from a value it never read: the
//! attempt was told to roll back, and it runs again. Before, it committed (a reviewer's
//! suspicion; the test below failed).

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn an_attempt_that_swallowed_a_conflict_does_not_commit() {
    with_watchdog(60, || {
        let x = Arc::new(TVar::new(5u64));
        let (held, attempts) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        // An irrevocable transaction holds `x` locked (it read it) until the swallowing
        // transaction has run again, or for five seconds.
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
        let z = TVar::new(0u64);
        atomically(|tx| {
            attempts.fetch_add(1, Ordering::SeqCst);
            // Against the docs: a conflict (x is locked by the irrevocable transaction)
            // swallowed into a default.
            let v = x.read(tx).unwrap_or(0);
            z.write(tx, v);
            Ok(())
        });
        holder.join().expect("the holder");
        assert_eq!(z.load(), 5, "the value of x, which never held 0");
        assert!(attempts.load(Ordering::SeqCst) >= 2);
    });
}
