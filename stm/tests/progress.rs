//! Progress: the irrevocable fallback, long transactions against short writers, panics,
//! nesting.

use commute_stm::{IRREVOCABLE_AFTER, TVar, atomically, stats};
use commute_test_support::with_watchdog;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[test]
fn after_enough_conflicts_a_transaction_runs_irrevocably_and_commits() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let out = TVar::new(0u64);
        let before = stats::thread();
        let mut attempts = 0;
        let irrevocable = atomically(|tx| {
            attempts += 1;
            let seen = v.read(tx)?;
            if !tx.is_irrevocable() {
                // Make every optimistic attempt conflict: another thread changes what we read.
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
            }
            out.write(tx, seen);
            Ok(tx.is_irrevocable())
        });
        let delta = stats::thread() - before;
        assert!(irrevocable);
        assert_eq!(attempts, IRREVOCABLE_AFTER + 1);
        assert_eq!(delta.aborts_read_validation, u64::from(IRREVOCABLE_AFTER));
        assert_eq!((delta.commits, delta.irrevocable_commits), (1, 1));
        assert_eq!(out.load(), u64::from(IRREVOCABLE_AFTER));
        // The conflicts were attributed to `v` and to this transaction's call site.
        let (site, n) = delta.top_conflicts()[0];
        assert_eq!(n, u64::from(IRREVOCABLE_AFTER));
        assert_eq!(site.var_created_at.line(), v.created_at().line());
        assert_eq!(site.tx_site.file(), file!());
    });
}

#[test]
fn a_transaction_reading_ten_thousand_tvars_completes_against_short_writers() {
    with_watchdog(20, || {
        const N: usize = 10_000;
        let vars: Arc<Vec<TVar<i64>>> = Arc::new((0..N).map(|_| TVar::new(1)).collect());
        let done = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let writer = {
            let (vars, done, writes) = (vars.clone(), done.clone(), writes.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !done.load(Ordering::Relaxed) {
                    // A transfer between two of the variables the long transaction reads.
                    let (a, b) = (i % N, (i * 7 + 3) % N);
                    atomically(|tx| {
                        vars[a].modify(tx, |x| x - 1)?;
                        vars[b].modify(tx, |x| x + 1)?;
                        Ok(())
                    });
                    i = i.wrapping_add(7919);
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        while writes.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now(); // wait until the writer is running
        }
        let start = writes.load(Ordering::Relaxed);
        let before = stats::thread();
        let mut sums = Vec::new();
        // Long read-only transactions, until the writer has committed plenty meanwhile.
        while writes.load(Ordering::Relaxed) - start < 2_000 && sums.len() < 100_000 {
            sums.push(atomically(|tx| {
                let mut sum = 0;
                for v in vars.iter() {
                    sum += v.read(tx)?;
                }
                Ok(sum)
            }));
        }
        done.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let delta = stats::thread() - before;
        assert!(sums.iter().all(|&s| s == N as i64));
        assert_eq!(delta.commits, sums.len() as u64);
        eprintln!(
            "long readers: {} commits ({} irrevocable), {} aborts, while the writer committed {}",
            delta.commits,
            delta.irrevocable_commits,
            delta.aborts(),
            writes.load(Ordering::Relaxed) - start
        );
    });
}

#[test]
fn a_panic_leaves_no_trace_and_releases_everything() {
    with_watchdog(20, || {
        let a = Arc::new(TVar::new(1u32));
        let b = Arc::new(TVar::new(2u32));
        let result = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                a.write(tx, 100);
                b.add(tx, 100);
                if a.read(tx)? == 100 {
                    panic!("boom");
                }
                Ok(())
            })
        }));
        assert!(result.is_err());
        assert_eq!((a.load(), b.load()), (1, 2));
        // No lock is held: other threads commit to both variables.
        let (a2, b2) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            atomically(|tx| {
                a2.modify(tx, |x| x + 1)?;
                b2.modify(tx, |x| x + 1)?;
                Ok(())
            })
        })
        .join()
        .unwrap();
        assert_eq!((a.load(), b.load()), (2, 3));
        // And this thread can run transactions again.
        atomically(|tx| a.modify(tx, |x| x * 10));
        assert_eq!(a.load(), 20);
    });
}

#[test]
fn a_panicking_commute_at_commit_releases_the_locks() {
    with_watchdog(20, || {
        let a = TVar::new(1u32);
        let b = TVar::new(5u32);
        let result = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                a.write(tx, 50);
                b.commute(tx, |_| panic!("bad commute"));
                Ok(())
            })
        }));
        assert!(result.is_err());
        assert_eq!((a.load(), b.load()), (1, 5));
        atomically(|tx| {
            a.add(tx, 1);
            b.add(tx, 1);
            Ok(())
        });
        assert_eq!((a.load(), b.load()), (2, 6));
    });
}

#[test]
fn a_panic_in_an_irrevocable_transaction_releases_its_locks() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let result = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                v.read(tx)?;
                if !tx.is_irrevocable() {
                    let v2 = v.clone();
                    std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                        .join()
                        .unwrap();
                    v.write(tx, 0);
                    return Ok(());
                }
                v.write(tx, 999);
                panic!("irrevocable boom")
            })
        }));
        assert!(result.is_err());
        assert_eq!(v.load(), u64::from(IRREVOCABLE_AFTER));
        let v2 = v.clone();
        std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
            .join()
            .unwrap();
        assert_eq!(v.load(), u64::from(IRREVOCABLE_AFTER) + 1);
    });
}

#[test]
#[should_panic(expected = "transactions do not nest")]
fn nested_atomically_panics_with_advice() {
    atomically(|_| Ok(atomically(|_| Ok(1))));
}

#[test]
fn labels_name_variables_in_conflict_statistics() {
    with_watchdog(20, || {
        let hits = Arc::new(TVar::new(0u64).with_label("hits"));
        let before = stats::thread();
        let mut first = true;
        atomically(|tx| {
            hits.read(tx)?;
            if std::mem::take(&mut first) {
                let h = hits.clone();
                std::thread::spawn(move || atomically(|tx| h.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
            }
            hits.modify(tx, |x| x + 1)?;
            Ok(())
        });
        let delta = stats::thread() - before;
        let (site, n) = delta.top_conflicts()[0];
        assert_eq!((site.var_label, n), (Some("hits"), 1));
        assert!(site.to_string().contains("TVar \"hits\""), "{site}");
        assert_eq!(hits.load(), 2);
    });
}

#[test]
fn load_inside_an_irrevocable_transaction_panics_instead_of_waiting_for_its_own_lock() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let seen = atomically(|tx| {
            let read = v.read(tx)?;
            if !tx.is_irrevocable() {
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
                v.write(tx, 0);
                return Ok(None);
            }
            // The irrevocable attempt holds v's lock; a plain load inside a transaction is
            // refused at once (it would read outside the transaction), it does not wait.
            let load = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v.load()));
            Ok(Some((read, load.is_err())))
        });
        let n = u64::from(IRREVOCABLE_AFTER);
        assert_eq!(seen, Some((n, true)));
    });
}
